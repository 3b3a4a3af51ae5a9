"""The golden record: a rendered project, kept in tests/golden/project for review in diffs.

Every file is stored with a `.golden` suffix (so tools do not take it for source).
Left out, because they depend on the machine, not on our templates:
the answers file (holds an absolute path); and, for brevity, the gRPC stubs (a test
compares them with protos/). Refresh with `python scripts/update_golden.py`.
"""

import re
from pathlib import Path
from typing import Dict

GOLDEN = Path(__file__).resolve().parent / "golden" / "project"
SKIPPED = re.compile(
    r"(^\.copier-answers\.yml$|_pb2(_grpc)?\.py$|/__pycache__/|\.log$)"
)


def snapshot(project: Path) -> Dict[str, str]:
    files = {}
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        if path.is_file() and not SKIPPED.search(relative):
            files[relative] = path.read_text()
    return files


def read_golden() -> Dict[str, str]:
    return {
        path.relative_to(GOLDEN).as_posix().removesuffix(".golden"): path.read_text()
        for path in sorted(GOLDEN.rglob("*.golden"))
    }


def write_golden(files: Dict[str, str]) -> None:
    for old in GOLDEN.rglob("*.golden"):
        old.unlink()
    for relative, text in files.items():
        target = GOLDEN / (relative + ".golden")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
