"""`taichu_serve init` and `taichu_serve regenerate`: render the app, then sync it into
the project (sync.py); and `adopt`, what copier's task runs after `copier copy`."""

import tempfile
from pathlib import Path
from typing import Callable, Dict, Optional

import yaml

from . import __version__
from .config import declared_keys
from .errors import UserError
from .manifest import Manifest, read_manifest
from .ownership import ANSWERS, known_files, retired_files, safe_target, user_patterns
from .project import generated_version
from .render import render_to, template_root
from .sync import (
    FOREIGN,
    apply,
    diff,
    pending,
    plan,
    reason,
    record,
    report,
)

Echo = Callable[[str], None]


def render_app(answers: Dict, root: Path) -> Dict[str, bytes]:
    """The app template rendered with `answers`: path -> bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        rendered = Path(tmp) / "project"
        render_to(rendered, answers, root)
        return {
            p.relative_to(rendered).as_posix(): p.read_bytes()
            for p in sorted(rendered.rglob("*"))
            if p.is_file()
        }


def sync_app(
    project: Path,
    answers: Dict,
    manifest: Manifest,
    force: bool,
    echo: Echo,
    check: bool = False,
    dry_run: bool = False,
    listing: bool = True,
) -> int:
    """init and regenerate. Returns the exit code: 1 when --check finds work, or when
    a file was left as it is (a hand edit without --force, or a file of the user's)."""
    root = template_root()
    user = user_patterns(root)
    rendered = render_app(answers, root)
    scope = set(rendered) | retired_files(root)
    changes = plan(project, rendered, manifest, scope, user)
    conflicts = [c for c in changes if c.is_conflict]
    keys = declared_keys()
    # Only an upgrade has new keys: a first render has none recorded.
    new_keys = (
        sorted(set(keys) - set(manifest.config_keys)) if manifest.config_keys else []
    )
    for change in conflicts:
        echo(f"\nconflict: {change.path} ({reason(change)})")
        if change.action != FOREIGN or (project / change.path).is_file():
            echo(diff(project, rendered, change).rstrip())
    if new_keys:
        listed = ", ".join(
            f"[{k.split('.')[0]}] {k.split('.', 1)[1]}" for k in new_keys
        )
        echo(
            "\nnew config keys (their defaults apply; add them to config.ini to "
            f"change them): {listed}"
        )
    if dry_run or check:
        if not pending(changes):
            echo("up to date: nothing to change")
        report(changes, echo)
        if dry_run:
            for change in pending(changes):
                if not change.is_conflict:
                    echo(diff(project, rendered, change).rstrip())
        if check:
            return 1 if pending(changes) else 0
        return 1 if conflicts else 0  # what the real run would exit with
    project.mkdir(parents=True, exist_ok=True)
    made = apply(project, rendered, changes, force)
    record(project, rendered, manifest, known_files(root), user, keys)
    if listing:
        report(made, echo)
    left = [c for c in conflicts if not c.backup]
    if listing and not pending(changes):
        echo("up to date: nothing to change")
    if left:
        echo(
            f"\n{len(left)} file(s) left as they are: merge the changes shown above, "
            "or run `taichu_serve regenerate --force` to replace hand edits (each is "
            "kept in .taichu-backup/); files taichu-serve did not write are never replaced"
        )
        return 1
    return 0


def saved_answers(project: Path) -> Dict:
    path = safe_target(project, ANSWERS)
    if not path.is_file():
        return {}
    try:
        answers = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise UserError(f"{ANSWERS} is not valid YAML: {error}") from None
    return {k: v for k, v in answers.items() if not k.startswith("_")}


def regenerate(
    project: Path, check: bool, dry_run: bool, force: bool, echo: Echo
) -> int:
    manifest = read_manifest(project)  # refuses a tampered one before any write
    old_version = generated_version(project) or manifest.legacy_version or "unknown"
    echo(f"taichu-serve {old_version} -> {__version__}")
    answers = saved_answers(project)
    return sync_app(project, answers, manifest, force, echo, check, dry_run)


def adopt(project: Path, root: Optional[Path] = None) -> Manifest:
    """After `copier copy` / `copier update`: record the files that copier left exactly
    as this template renders them; write nothing else."""
    root = root or template_root()
    manifest = read_manifest(project)
    rendered = render_app(saved_answers(project), root)
    user = user_patterns(root)
    keys = declared_keys()
    return record(project, rendered, manifest, known_files(root), user, keys)
