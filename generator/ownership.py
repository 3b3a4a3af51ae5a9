"""Who owns which file of a project, and the limits that no manifest can lift.

Framework-owned: a path this generator renders (the app template's own file list,
the build and deploy files, and the paths earlier versions rendered) whose bytes are
still what the manifest recorded. Everything else is the user's. The user files the
template provides (copier.yml's `_skip_if_exists`) are created when missing, never
written again.

Hard limits, checked before anything is written: a path is relative, inside the
project, never through a symbolic link, never under `.git/` or `models/`, and never one
of the user's own files.
"""

import fnmatch
from pathlib import Path, PurePosixPath
from typing import FrozenSet, List, Set

import yaml

from .errors import UserError

ANSWERS = (
    ".copier-answers.yml"  # copier's record of the answers: created, never rewritten
)
MANIFEST = ".taichu-manifest.json"  # the generator's record of what it wrote
BACKUPS = ".taichu-backup"  # where --force keeps the hand edits it replaces
VERSION_FILE = "taichu_runtime/_version.py"  # the one file that records the version

# Written by `taichu_serve build` (templates/docker) and `taichu_serve manifests`
# (templates/deploy): path in the project -> template.
BUILD_FILES = {
    "Dockerfile": "docker/Dockerfile.jinja",
    ".dockerignore": "docker/dockerignore.jinja",
    "launch.sh": "docker/launch.sh.jinja",
}
DEPLOY_FILES = {
    "deploy/kubernetes.yaml": "deploy/kubernetes.yaml.jinja",
    "deploy/kserve.yaml": "deploy/kserve.yaml.jinja",
}

# The user's, whatever a manifest says: never written, deleted or adopted.
NEVER_TOUCHED_DIRS = (".git", "models")
NEVER_TOUCHED_FILES = (
    "customize_service.py",
    "config.ini",
    "requirements.txt",
    "dependencies.txt",
)


def user_patterns(template_root: Path) -> List[str]:
    config = yaml.safe_load((template_root / "copier.yml").read_text(encoding="utf-8"))
    return [*config.get("_skip_if_exists", []), ANSWERS]


def is_user_file(relative: str, patterns: List[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("/**"):
            if relative.startswith(pattern[:-2]):
                return True
        elif fnmatch.fnmatchcase(relative, pattern):
            return True
    return False


def is_never_touched(relative: str) -> bool:
    parts = PurePosixPath(relative).parts
    return (
        relative in NEVER_TOUCHED_FILES
        or parts[0] in NEVER_TOUCHED_DIRS
        or ".git" in parts
    )


def template_files(template_root: Path) -> Set[str]:
    """The paths the app template renders: its own file list, `.jinja` dropped."""
    app = template_root / "templates" / "app"
    config = yaml.safe_load((template_root / "copier.yml").read_text(encoding="utf-8"))
    excluded = config.get("_exclude", [])
    suffix = config.get("_templates_suffix", ".jinja")
    paths = set()
    for path in app.rglob("*"):
        relative = path.relative_to(app).as_posix()
        if not path.is_file() or any(
            fnmatch.fnmatchcase(part, pattern)
            for part in relative.split("/")
            for pattern in excluded
        ):
            continue
        relative = relative.removesuffix(suffix)
        paths.add(ANSWERS if "_copier_conf.answers_file" in relative else relative)
    return paths


def retired_files(template_root: Path) -> Set[str]:
    """Paths earlier versions rendered and this one does not (templates/retired.txt)."""
    path = template_root / "templates" / "retired.txt"
    if not path.is_file():
        return set()
    lines = path.read_text(encoding="utf-8").splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


def known_files(template_root: Path) -> FrozenSet[str]:
    """Every path taichu-serve may own in a project."""
    return frozenset(
        template_files(template_root)
        | retired_files(template_root)
        | set(BUILD_FILES)
        | set(DEPLOY_FILES)
    )


def safe_target(project: Path, relative: str) -> Path:
    """project/relative, once it is shown to be a plain path inside the project that
    goes through no symbolic link; otherwise a UserError naming it."""
    parts = relative.split("/")
    if (
        not relative
        or PurePosixPath(relative).is_absolute()
        or "\\" in relative
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise UserError(f"{relative!r} is not a relative path inside the project")
    if ".git" in parts:
        raise UserError(
            f"{relative!r} is inside .git/, which taichu-serve never touches"
        )
    target = project
    for part in parts:
        target = target / part
        if target.is_symlink():
            raise UserError(
                f"{target.relative_to(project).as_posix()} is a symbolic link; "
                "taichu-serve never writes through one (replace it with a real file or "
                "directory, or move it away)"
            )
    return target
