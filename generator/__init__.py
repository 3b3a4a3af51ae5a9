"""taichu-serve: turn one file of model code into a complete model-serving app.

This package is the generator (the `taichu_serve` command). The apps it generates
never import it: they carry their own runtime in taichu_runtime/.

`from taichu_serve import Service` (or the 2.x name `ModelServer`) gives the base class
of customize_service.py, so that tests, IDEs and type checkers resolve it where
taichu-serve is installed. service.py is the runtime's own file (a link to it in the
source tree, a copy in the wheel); inside the server the app's copy stands in for it.
"""

import re
from pathlib import Path

from .service import ModelServer, Service

__all__ = ["ModelServer", "Service", "__version__"]


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
