"""Who owns which file of a generated project.

User-owned: the `_skip_if_exists` patterns of copier.yml (customize_service.py,
config.ini, requirements.txt, dependencies.txt, models/), and anything the generator
did not write. Framework-owned: every other file the template renders; the generator
records them, with their hashes, in the project's manifest.
"""

import fnmatch
from pathlib import Path
from typing import List

import yaml


def user_patterns(template_root: Path) -> List[str]:
    config = yaml.safe_load((template_root / "copier.yml").read_text(encoding="utf-8"))
    return list(config.get("_skip_if_exists", []))


def is_user_file(relative: str, patterns: List[str]) -> bool:
    for pattern in patterns:
        if pattern.endswith("/**"):
            if relative.startswith(pattern[:-2]):
                return True
        elif fnmatch.fnmatchcase(relative, pattern):
            return True
    return False
