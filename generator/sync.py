"""Bring a project in line with a freshly rendered tree, by the ownership rules.

User-owned files are never written (a missing one is created). A framework file is
replaced only if it is still what the generator wrote (its hash is in the manifest):
one edited by hand is a conflict, reported with its diff, and overwritten only with
`force` (the edited copy is kept as FILE.orig). Framework files the new version no
longer has are removed, unless edited by hand.
"""

import difflib
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

from .manifest import NAME as MANIFEST, Manifest, config_keys, read_manifest, sha256
from .ownership import is_user_file

ANSWERS = ".copier-answers.yml"  # copier's; the generator rewrites it every time

ADD, UPDATE, REMOVE, KEEP, CONFLICT, CREATE_USER = (
    "added",
    "updated",
    "removed",
    "unchanged",
    "conflict",
    "created",
)


@dataclass
class Change:
    path: str
    action: str
    reason: str = ""


def _files(root: Path) -> List[str]:
    return sorted(
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.name != MANIFEST
    )


def plan(
    project: Path, rendered: Path, manifest: Optional[Manifest], user: List[str]
) -> List[Change]:
    recorded = manifest.files if manifest else {}
    changes = []
    new_files = _files(rendered)
    for path in new_files:
        target = project / path
        if is_user_file(path, user):
            if not target.exists():
                changes.append(Change(path, CREATE_USER))
            continue
        if not target.exists():
            changes.append(Change(path, ADD))
        elif target.read_bytes() == (rendered / path).read_bytes():
            changes.append(Change(path, KEEP))
        elif path == ANSWERS or recorded.get(path) == sha256(target):
            changes.append(Change(path, UPDATE))
        elif path in recorded:
            changes.append(Change(path, CONFLICT, "edited by hand"))
        else:
            changes.append(Change(path, CONFLICT, "not written by taichu-serve"))
    for path in sorted(set(recorded) - set(new_files)):
        target = project / path
        if not target.exists():
            continue
        if sha256(target) == recorded[path]:
            changes.append(Change(path, REMOVE))
        else:
            changes.append(
                Change(path, CONFLICT, "edited by hand; gone from the template")
            )
    return changes


def diff(project: Path, rendered: Path, change: Change) -> str:
    def lines(path: Path) -> List[str]:
        if not path.exists():
            return []
        return path.read_text(encoding="utf-8", errors="replace").splitlines(
            keepends=True
        )

    return "".join(
        difflib.unified_diff(
            lines(project / change.path),
            lines(rendered / change.path),
            f"a/{change.path}",
            f"b/{change.path}",
        )
    )


def apply(project: Path, rendered: Path, changes: List[Change], force: bool) -> None:
    for change in changes:
        source, target = rendered / change.path, project / change.path
        if change.action == CONFLICT and not force:
            continue
        if change.action == CONFLICT and target.exists():
            shutil.copy2(target, target.with_name(target.name + ".orig"))
        if change.action in (ADD, UPDATE, CREATE_USER) or (
            change.action == CONFLICT and source.exists()
        ):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        elif change.action == REMOVE or change.action == CONFLICT:
            target.unlink()
            _prune_empty_dirs(target.parent, project)


def _prune_empty_dirs(directory: Path, project: Path) -> None:
    while directory != project and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent


def record(
    project: Path,
    rendered: Path,
    user: List[str],
    version: str,
    kept: Optional[Dict[str, str]] = None,
) -> Manifest:
    """The manifest of what the generator just rendered: framework files and config
    keys. `kept`: framework files the template dropped but the user's edits kept
    (path -> the hash the generator wrote), so they stay conflicts until resolved."""
    files = {
        path: sha256(rendered / path)
        for path in _files(rendered)
        if not is_user_file(path, user) and path != ANSWERS
    }
    files.update(kept or {})
    previous = read_manifest(project)
    manifest = Manifest(
        version,
        files,
        config_keys(rendered / "config.ini"),
        previous.build_files if previous else {},  # `build` owns those
    )
    manifest.write(project)
    return manifest
