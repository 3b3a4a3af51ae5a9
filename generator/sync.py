"""Bring a project in line with freshly rendered files: the one way every command writes.

`plan` decides, file by file, by the rules of ownership.py:
- a framework file still as the generator wrote it (its hash is in the manifest) is
  updated, or removed when the template no longer renders it;
- one edited by hand is a conflict, shown with its diff; `force` replaces it after
  copying the edit to a backup of its own (.taichu-backup/<time>/<path>);
- a file taichu-serve did not write is the user's: never replaced, even with `force`;
- a user file the template provides is created only when missing.
Every path is checked against the hard limits before anything is written.
"""

import difflib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Collection, Dict, List, Mapping, Optional

from .manifest import Manifest, fingerprint
from .ownership import (
    BACKUPS,
    is_never_touched,
    is_user_file,
    safe_target,
)

Rendered = Mapping[str, bytes]  # path in the project -> the bytes the template gives

ADD, UPDATE, REMOVE, KEEP, CREATE, EDITED, FOREIGN = (
    "added",
    "updated",
    "removed",
    "unchanged",
    "created",
    "edited by hand",
    "not written by taichu-serve",
)
CONFLICTS = (EDITED, FOREIGN)


@dataclass
class Change:
    path: str
    action: str
    gone_from_template: bool = False
    backup: Optional[str] = None  # set when `force` replaced a hand edit

    @property
    def is_conflict(self) -> bool:
        return self.action in CONFLICTS


def plan(
    project: Path,
    rendered: Rendered,
    manifest: Manifest,
    scope: Collection[str],
    user: List[str],
) -> List[Change]:
    """What syncing `rendered` into `project` means for each file. `scope`: the paths
    this command owns (what it renders, and what earlier versions did), so that a file
    the template dropped is removed and another command's files are left alone."""
    changes = []
    for path in sorted(rendered):
        target = safe_target(project, path)
        exists = os.path.lexists(target)
        if is_user_file(path, user):
            if not exists and not _inside_existing_user_dir(project, path, user):
                changes.append(Change(path, CREATE))
        elif not exists:
            changes.append(Change(path, ADD))
        elif not target.is_file():
            changes.append(Change(path, FOREIGN))
        elif (current := target.read_bytes()) == rendered[path]:
            changes.append(Change(path, KEEP))
        elif manifest.files.get(path) == fingerprint(path, current):
            changes.append(Change(path, UPDATE))
        elif path in manifest.files:
            changes.append(Change(path, EDITED))
        else:
            changes.append(Change(path, FOREIGN))
    for path in sorted(set(manifest.files) - set(rendered)):
        if path not in scope or is_never_touched(path):
            continue
        target = safe_target(project, path)
        if not target.is_file():
            continue
        pristine = manifest.files[path] == fingerprint(path, target.read_bytes())
        changes.append(Change(path, REMOVE if pristine else EDITED, True))
    return changes


def _inside_existing_user_dir(project: Path, path: str, user: List[str]) -> bool:
    """A folder of the user's (models/, tests/) gets the template's files only when it
    is created: models/README.md is never added to the user's models/, nor the
    generated tests to a tests/ of their own."""
    top = path.split("/", 1)[0]
    return "/" in path and f"{top}/**" in user and (project / top).exists()


def pending(changes: List[Change]) -> List[Change]:
    return [c for c in changes if c.action != KEEP]


def apply(
    project: Path, rendered: Rendered, changes: List[Change], force: bool
) -> List[Change]:
    """Write the plan; conflicts are replaced only with `force` and only hand edits
    (EDITED), each kept in a new backup first. Returns the changes made."""
    made = []
    backups: Optional[Path] = None
    # Every check before the first write: a refusal leaves the project as it was.
    for change in changes:
        safe_target(project, change.path)
    if force and any(c.action == EDITED for c in changes):
        safe_target(project, BACKUPS)
    for change in changes:
        if change.action == KEEP or change.action == FOREIGN:
            continue
        if change.action == EDITED and not force:
            continue
        target = safe_target(project, change.path)
        if change.action == EDITED:
            backups = backups or _new_backup_dir(project)
            backup = backups / change.path
            backup.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(target, backup)
            change.backup = backup.relative_to(project).as_posix()
        if change.path in rendered:
            _write(target, rendered[change.path])
        else:
            target.unlink()
            _prune_empty_dirs(target.parent, project)
        made.append(change)
    return made


def _write(target: Path, data: bytes) -> None:
    """Replace the file whole (a crash never leaves half a file); scripts (#!) are
    executable."""
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=".taichu-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.chmod(temporary, 0o755 if data.startswith(b"#!") else 0o644)
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise


def _new_backup_dir(project: Path) -> Path:
    """A folder no earlier --force used, so that backups never overwrite backups."""
    base = safe_target(project, BACKUPS) / time.strftime("%Y%m%d-%H%M%S")
    candidate, number = base, 1
    while True:
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            number += 1
            candidate = base.with_name(f"{base.name}-{number}")


def _prune_empty_dirs(directory: Path, project: Path) -> None:
    while directory != project and directory.is_dir() and not any(directory.iterdir()):
        directory.rmdir()
        directory = directory.parent


def record(
    project: Path,
    rendered: Rendered,
    manifest: Manifest,
    known: Collection[str],
    user: List[str],
    config_keys: Optional[List[str]] = None,
) -> Manifest:
    """The manifest after a sync: every rendered file the project now holds unchanged,
    the hand edits still unresolved (their old hashes, so they stay conflicts), and the
    other commands' files. Entries for paths taichu-serve never owns are dropped."""
    files: Dict[str, str] = {}
    for path, recorded in manifest.files.items():
        if path in known and path not in rendered and not is_user_file(path, user):
            target = project / path
            if target.is_file() and not target.is_symlink():
                files[path] = recorded
    for path, data in rendered.items():
        target = project / path
        if is_user_file(path, user) or target.is_symlink() or not target.is_file():
            continue
        if target.read_bytes() == data:
            files[path] = fingerprint(path, data)
        elif path in manifest.files:
            files[path] = manifest.files[path]
    updated = Manifest(
        files, manifest.config_keys if config_keys is None else config_keys
    )
    updated.write(project)
    return updated


def diff(project: Path, rendered: Rendered, change: Change) -> str:
    def lines(data: Optional[bytes]) -> List[str]:
        if data is None:
            return []
        return data.decode("utf-8", errors="replace").splitlines(keepends=True)

    target = project / change.path
    current = target.read_bytes() if target.is_file() else None
    return "".join(
        difflib.unified_diff(
            lines(current),
            lines(rendered.get(change.path)),
            f"a/{change.path}",
            f"b/{change.path}",
        )
    )


def report(changes: List[Change], echo: Callable[[str], None]) -> None:
    """Every file changed or left in conflict, by action, one path a line."""
    groups: Dict[str, List[str]] = {}
    for change in changes:
        if change.action == KEEP or change.is_conflict:
            continue
        groups.setdefault(change.action, []).append(change.path)
    for action, paths in sorted(groups.items()):
        echo(f"{action}: {len(paths)}")
        for path in paths:
            echo(f"  {path}")
    replaced = [c for c in changes if c.backup]
    if replaced:
        echo(f"replaced hand edits: {len(replaced)} (your versions are kept)")
        for change in replaced:
            echo(f"  {change.path} -> {change.backup}")


def reason(change: Change) -> str:
    if change.action == FOREIGN:
        return "not written by taichu-serve: never replaced; move it away to get the template's"
    if change.gone_from_template:
        return "edited by hand; gone from the template"
    return "edited by hand"
