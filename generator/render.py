"""Render the app template (copier) into a fresh directory, stubs compiled and formatted.

Both `init` and `regenerate` render into a temporary directory first and then copy
files into the project (sync.py), so that ownership rules are applied in one place.
"""

import tempfile
from pathlib import Path
from typing import Dict

from . import __version__
from .errors import UserError
from .postprocess import compile_stubs, install_stubs, stub_versions


def template_root() -> Path:
    """Where copier.yml, templates/ and protos/ are: inside the wheel, or the source tree."""
    here = Path(__file__).resolve().parent
    for root in (here / "_template", here.parent):
        if (root / "copier.yml").is_file() and (root / "templates" / "app").is_dir():
            return root
    raise UserError(f"the app template is missing from this installation ({here})")


def render_to(directory: Path, answers: Dict, root: Path = None) -> None:
    """Render the whole project into `directory`, which must not exist yet."""
    import copier

    root = root or template_root()
    with tempfile.TemporaryDirectory() as tmp:
        stubs = compile_stubs(root / "protos", Path(tmp))
        grpcio_version, protobuf_version = stub_versions(stubs[0].parent)
        data = {
            **answers,
            "generator_version": __version__,
            "grpcio_version": grpcio_version,
            "protobuf_version": protobuf_version,
        }
        try:
            copier.run_copy(
                str(root),
                str(directory),
                data=data,
                defaults=True,
                quiet=True,
                skip_tasks=True,  # install_stubs below does the task's work
                vcs_ref="HEAD",
            )
        except (copier.errors.CopierError, ValueError) as error:
            raise UserError(f"rendering the template failed: {error}") from None
        install_stubs(stubs, directory, __version__)
