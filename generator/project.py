"""Facts about a generated project on disk."""

import re
from pathlib import Path
from typing import Optional

RUNTIME = "taichu_runtime"


def is_project(directory: Path) -> bool:
    return (directory / RUNTIME / "__main__.py").is_file()


def generated_version(directory: Path) -> Optional[str]:
    """The taichu-serve version that rendered the project: taichu_runtime/_version.py
    (3.0 recorded it in taichu_runtime/__init__.py)."""
    for name in ("_version.py", "__init__.py"):
        path = directory / RUNTIME / name
        if path.is_file() and not path.is_symlink():
            text = path.read_text(encoding="utf-8", errors="replace")
            match = re.search(r'^GENERATOR_VERSION = "([^"]+)"', text, re.MULTILINE)
            if match:
                return match.group(1)
    return None


def looks_like_2x(directory: Path) -> bool:
    return (directory / "model_service.py").is_file() and not is_project(directory)
