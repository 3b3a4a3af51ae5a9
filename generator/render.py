"""Render the app template (copier) into a fresh directory.

`init`, `regenerate` and copier's task render into a temporary directory first and then
sync files into the project (sync.py), so that the ownership rules apply in one place.
Rendering copies: the runtime and the gRPC stubs are plain files of the template.
"""

from pathlib import Path
from typing import Dict, Optional

from .errors import UserError


def template_root() -> Path:
    """Where copier.yml, templates/ and protos/ are: inside the wheel, or the source tree."""
    here = Path(__file__).resolve().parent
    for root in (here / "_template", here.parent):
        if (root / "copier.yml").is_file() and (root / "templates" / "app").is_dir():
            return root
    raise UserError(f"the app template is missing from this installation ({here})")


def render_to(directory: Path, answers: Dict, root: Optional[Path] = None) -> None:
    """Render the whole project into `directory`, which must not exist yet."""
    import copier

    root = root or template_root()
    try:
        copier.run_copy(
            str(root),
            str(directory),
            data=answers,
            defaults=True,
            quiet=True,
            skip_tasks=True,  # the task records a manifest; the caller syncs instead
            vcs_ref="HEAD",
        )
    except (copier.errors.CopierError, ValueError) as error:
        raise UserError(f"rendering the template failed: {error}") from None
