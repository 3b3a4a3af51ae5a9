"""taichu-serve: turn one file of model code into a complete model-serving app.

This package is the generator (the `taichu_serve` command). The apps it generates
never import it: they carry their own runtime in taichu_runtime/.
"""

import re
from pathlib import Path


def _template_version() -> str:
    """The version is set in one place, the runtime's own record of it, which every
    project receives as it is: templates/app/taichu_runtime/_version.py."""
    here = Path(__file__).resolve().parent
    for root in (here / "_template", here.parent):
        record = root / "templates" / "app" / "taichu_runtime" / "_version.py"
        if record.is_file():
            found = re.search(
                r'^GENERATOR_VERSION = "([^"]+)"', record.read_text(), re.MULTILINE
            )
            if found:
                return found.group(1)
    raise RuntimeError(f"taichu-serve's template is missing from {here}")


__version__ = _template_version()
