"""Upgrades never lose a byte of the user's: every command that writes, run over user
trees full of what real projects hold, leaves every user file byte-identical, `.git`
sound and everything outside the project untouched; a tampered manifest is refused
before anything is written."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Dict, Tuple

import pytest

from conftest import REPO, cli

COPIER = str(Path(sys.executable).parent / "copier")
Entry = Tuple[str, ...]


def snapshot(root: Path) -> Dict[str, Entry]:
    """Every file (hash and mode), symlink (target) and folder under root, never
    following a link."""
    entries: Dict[str, Entry] = {}
    for directory, folders, files in os.walk(root):
        for name in folders + files:
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                entries[relative] = ("link", os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                entries[relative] = ("dir",)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                entries[relative] = ("file", digest, oct(info.st_mode & 0o777))
    return entries


def assert_kept(before: Dict[str, Entry], root: Path) -> None:
    after = snapshot(root)
    changed = [k for k, v in before.items() if after.get(k) != v]
    assert changed == [], f"user entries changed or gone: {changed}"


def user_entries(project: Path) -> Dict[str, Entry]:
    """The snapshot less what taichu-serve wrote and still owns (its manifest's files),
    but with the framework files edited by hand: those are the user's work too."""
    manifest = json.loads((project / ".taichu-manifest.json").read_text())
    ours = {".taichu-manifest.json"}
    for relative, digest in manifest["files"].items():
        if hashlib.sha256((project / relative).read_bytes()).hexdigest() == digest:
            ours.add(relative)
    return {k: v for k, v in snapshot(project).items() if k not in ours}


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def make_user_tree(directory: Path, outside: Path, collide: bool = True) -> None:
    """What users keep beside their model: nested data, dotfiles, a git repository
    with history, symlinks in and out, binary files, empty folders and, with
    `collide`, files at paths the template renders."""
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.txt").write_text("outside the project\n")
    files = {
        "NOTES.md": b"notes\n",
        "helpers.py": b"def helper():\n    return 1\n",
        "data/train.csv": b"1,2\n",
        "data/raw/deep/x.csv": b"3,4\n",
        ".env": b"TOKEN=abc\n",
        ".config/tool.toml": b"[tool]\n",
        "blob.bin": bytes(range(256)) * 64,
        "models/w.bin": os.urandom(4096),
        "docs/taichu_runtime/model.py": b"# my notes on the runtime\n",
        "server.py": b"# my own server script\n",
    }
    if collide:
        files.update(
            {
                "test/http_client.py": b"# my own client, like 2.x had\n",
                "test/__init__.py": b"",
                "Dockerfile": b"FROM my-base\n",
                "deploy/kserve.yaml": b"# my own InferenceService\n",
            }
        )
    for relative, data in files.items():
        path = directory / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (directory / "empty").mkdir()
    (directory / "data" / "empty").mkdir()
    (directory / "link_in").symlink_to("data/train.csv")
    (directory / "link_out").symlink_to(outside / "secret.txt")
    (directory / "dir_out").symlink_to(outside)
    git("init", "-q", cwd=directory)
    git("config", "user.email", "me@example.com", cwd=directory)
    git("config", "user.name", "me", cwd=directory)
    git("add", "-A", cwd=directory)
    git("commit", "-qm", "mine", cwd=directory)
    (directory / "NOTES.md").write_text("notes\nmore notes\n")
    git("commit", "-qam", "more", cwd=directory)


def assert_git_sound(directory: Path) -> None:
    git("fsck", "--strict", cwd=directory)
    assert "more" in git("log", "--oneline", cwd=directory)


@pytest.fixture
def user_tree(tmp_path):
    project = tmp_path / "project"
    outside = tmp_path / "outside"
    project.mkdir()
    make_user_tree(project, outside)
    return project, outside


def test_init_force_into_a_user_tree_keeps_every_user_file(user_tree):
    project, outside = user_tree
    before, outside_before = snapshot(project), snapshot(outside)
    result = cli("init", str(project), "--force", check=False)
    # Files of the user's at template paths are kept, said, and make the exit code 1.
    assert result.returncode == 1, result.stdout + result.stderr
    assert "conflict: test/http_client.py (not written by taichu-serve" in result.stdout
    assert (
        "added:" in result.stdout and "taichu_runtime/pipeline/host.py" in result.stdout
    )
    assert_kept(before, project)
    assert snapshot(outside) == outside_before
    assert_git_sound(project)
    assert (project / "taichu_runtime" / "__main__.py").is_file()
    assert not (project / "models" / "README.md").exists()  # models/ is the user's


@pytest.fixture
def project_in_user_tree(user_tree):
    """A project rendered into a user tree, then committed: the state users upgrade."""
    project, outside = user_tree
    cli("init", str(project), "--force", check=False)
    git("add", "-A", cwd=project)
    git("commit", "-qm", "taichu-serve project", cwd=project)
    return project, outside


@pytest.mark.parametrize(
    "command",
    [
        ("regenerate",),
        ("regenerate", "--force"),
        ("init", "--force"),
        ("build", "--no-build"),
        ("build", "--no-build", "--force"),
        ("manifests",),
        ("manifests", "--force"),
    ],
)
def test_every_command_that_writes_keeps_every_user_file(project_in_user_tree, command):
    project, outside = project_in_user_tree
    # A framework file edited by hand is the user's work too: --force backs it up.
    edited = project / "taichu_runtime" / "logs.py"
    edited.write_text(edited.read_text() + "# my fix\n")
    before, outside_before = user_entries(project), snapshot(outside)
    name, *flags = command
    result = cli(name, str(project), *flags, check=False)
    assert "Traceback" not in result.stderr, result.stderr
    forced = "--force" in flags and name in ("regenerate", "init")
    if forced:  # the hand edit moved to its backup, the only change --force may make
        del before["taichu_runtime/logs.py"]
        (backup,) = (project / ".taichu-backup").rglob("logs.py")
        assert backup.read_text().endswith("# my fix\n")
    assert_kept(before, project)
    assert snapshot(outside) == outside_before
    assert_git_sound(project)
    assert (project / "Dockerfile").read_text() == "FROM my-base\n"
    assert (project / "deploy" / "kserve.yaml").read_text().startswith("# my own")


def copier(*args: str, cwd=None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [COPIER, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def tagged_template(tmp_path_factory) -> Path:
    """This checkout's working tree as a git repository tagged v3.0.0, as users clone it."""
    template = tmp_path_factory.mktemp("tpl") / "tpl"
    shutil.copytree(
        REPO, template, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__")
    )
    git("init", "-q", cwd=template)
    git("config", "user.email", "ci@example.com", cwd=template)
    git("config", "user.name", "ci", cwd=template)
    git("add", "-A", cwd=template)
    git("commit", "-qm", "release", cwd=template)
    git("tag", "v3.0.0", cwd=template)
    return template


def test_the_reported_copier_path_loses_nothing(tmp_path, tagged_template):
    """copier copy --overwrite into a git repository, then regenerate: 3.0 removed the
    user's NOTES.md, data/, helpers.py and .git here."""
    project, outside = tmp_path / "ex", tmp_path / "outside"
    project.mkdir()
    make_user_tree(project, outside, collide=False)
    before = snapshot(project)
    copier(
        "copy",
        "--trust",
        "--defaults",
        "--overwrite",
        str(tagged_template),
        ".",
        cwd=project,
    )
    assert_kept(before, project)
    answers = (project / ".copier-answers.yml").read_bytes()
    assert b"_commit: v3.0.0" in answers

    result = cli("regenerate", str(project), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "removed" not in result.stdout and "up to date" in result.stdout
    assert_kept(before, project)
    assert_git_sound(project)
    assert (project / ".copier-answers.yml").read_bytes() == answers

    # copier update still works after regenerate (the answers file is copier's).
    git("add", "-A", cwd=project)
    git("commit", "-qm", "project", cwd=project)
    logs = tagged_template / "templates" / "app" / "taichu_runtime" / "logs.py"
    logs.write_text(logs.read_text() + "\n# Changed in 3.0.1.\n")
    git("commit", "-qam", "3.0.1", cwd=tagged_template)
    git("tag", "v3.0.1", cwd=tagged_template)
    try:
        copier("update", "--trust", "--defaults", cwd=project)
    finally:
        git("tag", "-d", "v3.0.1", cwd=tagged_template)
        git("reset", "-q", "--hard", "v3.0.0", cwd=tagged_template)
    assert (project / "taichu_runtime" / "logs.py").read_text().endswith("3.0.1.\n")
    assert "_commit: v3.0.1" in (project / ".copier-answers.yml").read_text()
    assert_kept({k: v for k, v in before.items() if not k.startswith(".git")}, project)
    assert_git_sound(project)


def test_copier_copy_never_overwrites_a_user_file_without_being_told(
    tmp_path, tagged_template
):
    project, outside = tmp_path / "ex", tmp_path / "outside"
    project.mkdir()
    make_user_tree(project, outside)  # holds test/http_client.py of the user's
    before = snapshot(project)
    result = copier(
        "copy",
        "--trust",
        "--defaults",
        str(tagged_template),
        ".",
        cwd=project,
        check=False,
    )
    assert result.returncode != 0  # copier asks before replacing; with no TTY it stops
    assert_kept(before, project)
    assert_git_sound(project)


TAMPERED = [
    ("../outside/secret.txt", "is not a relative path inside the project"),
    ("<outside>/secret.txt", "is not a relative path inside the project"),
    (".git/HEAD", "inside .git/"),
    ("models/w.bin", "a file of yours that taichu-serve never writes"),
    ("customize_service.py", "a file of yours that taichu-serve never writes"),
    ("dir_out/secret.txt", "dir_out is a symbolic link"),
    ("test/link.py", "test/link.py is a symbolic link"),
]


@pytest.mark.parametrize("entry, message", TAMPERED)
@pytest.mark.parametrize(
    "command", [("regenerate",), ("regenerate", "--force"), ("build", "--no-build"),
                ("manifests",), ("init", "--force")],  # fmt: skip
)
def test_a_tampered_manifest_is_refused_before_anything_is_written(
    project_in_user_tree, entry, message, command
):
    project, outside = project_in_user_tree
    # An absolute entry names a file of the test's own, never a system file: 3.0 deleted
    # what such an entry named when its hash matched.
    entry = entry.replace("<outside>", str(outside))
    (project / "test" / "link.py").symlink_to(outside / "secret.txt")
    manifest_path = project / ".taichu-manifest.json"
    manifest = json.loads(manifest_path.read_text())
    target = project / entry if not entry.startswith("/") else Path(entry)
    data = target.read_bytes() if target.is_file() else b""
    manifest["files"][entry] = hashlib.sha256(data).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    (project / "taichu_runtime" / "extra_state").write_text("x")  # any drift at all
    logs = project / "taichu_runtime" / "logs.py"
    logs.write_text(logs.read_text() + "# edited\n")
    before, outside_before = snapshot(project), snapshot(outside)

    name, *flags = command
    result = cli(name, str(project), *flags, check=False)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith("error: .taichu-manifest.json lists") and message in line
    assert "nothing was changed" in line
    assert snapshot(project) == before
    assert snapshot(outside) == outside_before


def test_a_symlinked_backup_folder_is_refused_before_anything_is_written(
    project_in_user_tree,
):
    project, outside = project_in_user_tree
    (project / ".taichu-backup").symlink_to(outside)
    logs = project / "taichu_runtime" / "logs.py"
    logs.write_text(logs.read_text() + "# edited\n")
    (project / "taichu_runtime" / "sockets.py").unlink()  # work that would come first
    before, outside_before = snapshot(project), snapshot(outside)
    result = cli("regenerate", str(project), "--force", check=False)
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert ".taichu-backup is a symbolic link" in line
    assert snapshot(project) == before and snapshot(outside) == outside_before


def random_user_tree(directory: Path, outside: Path, seed: int) -> None:
    """make_user_tree, plus files drawn at random: nested names, dotfiles, binary
    contents, and paths the template renders (taken from its own file list)."""
    import random

    from taichu_serve.ownership import template_files

    make_user_tree(directory, outside)
    rng = random.Random(seed)
    framework = sorted(template_files(REPO))
    words = ["a", "b", ".hidden", "data", "taichu_runtime", "test", "deploy", "x y"]
    for _ in range(25):
        if rng.random() < 0.3:
            relative = rng.choice(framework)
        else:
            depth = rng.randint(1, 4)
            relative = "/".join(rng.choice(words) for _ in range(depth)) + rng.choice(
                ["", ".py", ".bin", ".md"]
            )
        path = directory / relative
        if any(p.is_file() or p.is_symlink() for p in path.parents if p != directory):
            continue  # a file already stands where a folder would go
        if path.is_dir() or path.is_symlink() or relative.startswith(".git"):
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randint(0, 300)))
    git("add", "-A", cwd=directory)
    git("commit", "-qm", "random files", cwd=directory)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_user_trees_survive_every_command_in_turn(tmp_path, seed):
    project, outside = tmp_path / "project", tmp_path / "outside"
    project.mkdir()
    random_user_tree(project, outside, seed)
    before, outside_before = snapshot(project), snapshot(outside)
    for command in (
        ("init", "--force"),
        ("regenerate",),
        ("regenerate", "--force"),
        ("build", "--no-build", "--force"),
        ("manifests", "--force"),
        ("init", "--force"),
    ):
        result = cli(command[0], str(project), *command[1:], check=False)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        assert_kept(before, project)
        assert snapshot(outside) == outside_before
    assert_git_sound(project)
