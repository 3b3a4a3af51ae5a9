"""`taichu_serve init` and `taichu_serve regenerate`: render, then sync into the project."""

import tempfile
from pathlib import Path
from typing import Callable, Dict, List

import yaml

from . import __version__
from .manifest import config_keys, read_manifest
from .ownership import user_patterns
from .project import generated_version
from .render import render_to, template_root
from .sync import ANSWERS, CONFLICT, KEEP, Change, apply, diff, plan, record


def create(project: Path, answers: Dict) -> None:
    """init: every framework file written; user files only where missing."""
    root = template_root()
    user = user_patterns(root)
    with tempfile.TemporaryDirectory() as tmp:
        rendered = Path(tmp) / "project"
        render_to(rendered, answers, root)
        project.mkdir(parents=True, exist_ok=True)
        changes = plan(project, rendered, read_manifest(project), user)
        apply(project, rendered, changes, force=True)
        record(project, rendered, user, __version__)


def saved_answers(project: Path) -> Dict:
    path = project / ANSWERS
    if not path.is_file():
        return {}
    answers = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {k: v for k, v in answers.items() if not k.startswith("_")}


def regenerate(
    project: Path, check: bool, dry_run: bool, force: bool, echo: Callable[[str], None]
) -> int:
    """Returns the exit code: 1 when --check finds work, or conflicts were left."""
    root = template_root()
    user = user_patterns(root)
    manifest = read_manifest(project)
    old_version = manifest.generator_version if manifest else generated_version(project)
    old_keys = manifest.config_keys if manifest else config_keys(project / "config.ini")
    with tempfile.TemporaryDirectory() as tmp:
        rendered = Path(tmp) / "project"
        render_to(rendered, saved_answers(project), root)
        changes = plan(project, rendered, manifest, user)
        pending = [c for c in changes if c.action != KEEP and c.path != ANSWERS]
        conflicts = [c for c in pending if c.action == CONFLICT]
        new_keys = sorted(set(config_keys(rendered / "config.ini")) - set(old_keys))

        echo(f"taichu-serve {old_version or 'unknown'} -> {__version__}")
        _summary(pending, echo)
        for change in conflicts:
            echo(f"\nconflict: {change.path} ({change.reason})")
            echo(diff(project, rendered, change).rstrip())
        if new_keys:
            keys = ", ".join(
                f"[{k.split('.')[0]}] {k.split('.', 1)[1]}" for k in new_keys
            )
            echo(
                f"\nnew config keys (their defaults apply; add them to config.ini to change them): {keys}"
            )
        if dry_run:
            for change in pending:
                if change.action != CONFLICT:
                    echo(diff(project, rendered, change).rstrip())
            return 0
        if check:
            return 1 if pending or old_version != __version__ else 0
        apply(project, rendered, changes, force)
        kept = {}
        if manifest and not force:
            gone = [c.path for c in conflicts if not (rendered / c.path).exists()]
            kept = {
                path: manifest.files[path] for path in gone if path in manifest.files
            }
        record(project, rendered, user, __version__, kept)
    if conflicts and not force:
        echo(
            f"\n{len(conflicts)} file(s) kept as you edited them; merge the changes shown "
            "above, or run with --force to overwrite them (your copy is kept as FILE.orig)"
        )
        return 1
    return 0


def _summary(changes: List[Change], echo) -> None:
    if not changes:
        echo("up to date: nothing to change")
        return
    counts: Dict[str, List[str]] = {}
    for change in changes:
        counts.setdefault(change.action, []).append(change.path)
    for action, paths in sorted(counts.items()):
        echo(f"{action}: {len(paths)}")
        for path in paths:
            echo(f"  {path}")
