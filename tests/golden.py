"""The golden record: what the template renders from Jinja, kept in tests/golden/project
for review in diffs. Every other file of a project is a verbatim copy of the template
(a test checks that), so the record holds only what varies.

Every file is stored with a `.golden` suffix (so tools do not take it for source).
Left out: the answers file (it holds an absolute path). Refresh with
`python scripts/update_golden.py`.
"""

from pathlib import Path
from typing import Dict, List

GOLDEN = Path(__file__).resolve().parent / "golden" / "project"
APP = Path(__file__).resolve().parents[1] / "templates" / "app"
SKIPPED = {".copier-answers.yml"}


def rendered_from_jinja() -> List[str]:
    """Project paths of the template's .jinja files."""
    return sorted(
        p.relative_to(APP).as_posix().removesuffix(".jinja")
        for p in APP.rglob("*.jinja")
        if "_copier_conf" not in p.name
    )


def snapshot(project: Path) -> Dict[str, str]:
    return {
        relative: (project / relative).read_text()
        for relative in rendered_from_jinja()
        if relative not in SKIPPED
    }


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
