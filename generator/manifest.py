"""The project's record of what the generator wrote: `.taichu-manifest.json`.

    {"generator_version": "3.0.0",
     "config_keys": ["limits.max_qps", ...],       # keys config.ini had at generation
     "files": {"taichu_runtime/model.py": "<sha256>", ...},
     "build_files": {"Dockerfile": "<sha256>", ...}}   # written by `taichu_serve build`

regenerate compares a framework file's hash with the recorded one to tell a file the
user edited by hand from one the generator wrote.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .project import read_config

NAME = ".taichu-manifest.json"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def config_keys(config_ini: Path) -> List[str]:
    parser = read_config(config_ini)
    return sorted(f"{s}.{k}" for s in parser.sections() for k in parser[s])


@dataclass
class Manifest:
    generator_version: str
    files: Dict[str, str] = field(default_factory=dict)
    config_keys: List[str] = field(default_factory=list)
    # Dockerfile, .dockerignore, launch.sh: written by `build`, not by regenerate.
    build_files: Dict[str, str] = field(default_factory=dict)

    def write(self, project: Path) -> None:
        document = {
            "generator_version": self.generator_version,
            "config_keys": sorted(self.config_keys),
            "files": dict(sorted(self.files.items())),
            "build_files": dict(sorted(self.build_files.items())),
        }
        (project / NAME).write_text(
            json.dumps(document, indent=1) + "\n", encoding="utf-8"
        )


def read_manifest(project: Path) -> Optional[Manifest]:
    path = project / NAME
    if not path.is_file():
        return None
    document = json.loads(path.read_text(encoding="utf-8"))
    return Manifest(
        document.get("generator_version", "unknown"),
        document.get("files", {}),
        document.get("config_keys", []),
        document.get("build_files", {}),
    )
