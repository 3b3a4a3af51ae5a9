"""The project's record of what the generator wrote: `.taichu-manifest.json`.

    {"config_keys": ["limits.max_qps", ...],            # keys config.ini had at generation
     "files": {"taichu_runtime/model.py": "<sha256>",  # every file taichu-serve wrote:
               "Dockerfile": "<sha256>", ...}}          # app, build and deploy alike

A hash tells a file still as the generator wrote it from one edited by hand. The
manifest is only evidence: which paths taichu-serve may own comes from the template,
and an entry that breaks the hard limits (ownership.py) stops every command that
writes, before it writes anything. The version is not recorded here (it is in
taichu_runtime/_version.py), so a release that changes no file leaves this file as is.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .errors import UserError
from .ownership import MANIFEST, VERSION_FILE, is_never_touched, safe_target

VERSION_LINE = re.compile(rb'^GENERATOR_VERSION = "[^"\n]*"$', re.MULTILINE)


def fingerprint(relative: str, data: bytes) -> str:
    """The sha256 of a file's bytes; the version file's hash leaves out the version
    itself, so that a new version does not count as an edit."""
    if relative == VERSION_FILE:
        data = VERSION_LINE.sub(b'GENERATOR_VERSION = ""', data)
    return hashlib.sha256(data).hexdigest()


@dataclass
class Manifest:
    files: Dict[str, str] = field(default_factory=dict)
    config_keys: List[str] = field(default_factory=list)
    # Read from a 3.0 manifest only, for the "old -> new" line of regenerate.
    legacy_version: Optional[str] = None

    def write(self, project: Path) -> None:
        document = {
            "config_keys": sorted(self.config_keys),
            "files": dict(sorted(self.files.items())),
        }
        path = safe_target(project, MANIFEST)
        path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")


def read_manifest(project: Path) -> Manifest:
    """The project's manifest (empty if it has none), every entry checked first."""
    path = safe_target(project, MANIFEST)
    if not path.exists():
        return Manifest()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        files = {**document.get("files", {}), **document.get("build_files", {})}
        keys = list(document.get("config_keys", []))
        if not all(isinstance(v, str) for v in files.values()):
            raise ValueError("a hash is not a string")
    except (ValueError, AttributeError, TypeError) as error:
        message = f"{MANIFEST} is not a manifest taichu-serve wrote ({error})"
        raise UserError(f"{message}; {_WAY_OUT}") from None
    for relative in files:
        try:
            safe_target(project, relative)
        except UserError as error:
            raise UserError(
                f"{MANIFEST} lists {relative!r}: {error}; {_WAY_OUT}"
            ) from None
        if is_never_touched(relative):
            raise UserError(
                f"{MANIFEST} lists {relative!r}, a file of yours that taichu-serve never "
                f"writes; {_WAY_OUT}"
            )
    return Manifest(files, keys, document.get("generator_version"))


_WAY_OUT = (
    "nothing was changed. Restore the manifest from version control, or delete it "
    "(then only files identical to this version's are taken as taichu-serve's)"
)
