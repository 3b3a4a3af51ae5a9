"""Facts about a generated project on disk."""

import configparser
import re
from pathlib import Path
from typing import Optional

RUNTIME = "taichu_runtime"


def is_project(directory: Path) -> bool:
    return (directory / RUNTIME / "__main__.py").is_file()


def generated_version(directory: Path) -> Optional[str]:
    """The taichu-serve version that rendered the project, from its runtime package."""
    init = directory / RUNTIME / "__init__.py"
    if not init.is_file():
        return None
    match = re.search(
        r'GENERATOR_VERSION = "([^"]+)"', init.read_text(encoding="utf-8")
    )
    return match.group(1) if match else None


def looks_like_2x(directory: Path) -> bool:
    return (directory / "model_service.py").is_file() and not is_project(directory)


def read_config(config_ini: Path) -> configparser.ConfigParser:
    """config.ini as the server reads it (inline `#` comments allowed); empty if absent."""
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))
    parser.read(config_ini, encoding="utf-8")
    return parser
