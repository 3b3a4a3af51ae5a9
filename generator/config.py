"""config.ini read by the generator through the runtime's own code.

Every setting is declared once, in templates/app/taichu_runtime/settings.py (plain
Python that needs nothing beyond the standard library); the generator loads that module
from the template instead of parsing config.ini a second way with defaults of its own.
"""

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from types import ModuleType
from typing import Dict, List, Sequence

from .errors import UserError
from .render import template_root


@lru_cache(maxsize=1)
def runtime_settings() -> ModuleType:
    path = template_root() / "templates" / "app" / "taichu_runtime" / "settings.py"
    spec = importlib.util.spec_from_file_location("_taichu_runtime_settings", path)
    if spec is None or spec.loader is None:
        raise UserError(f"the runtime's settings module is missing ({path})")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def declared_keys() -> List[str]:
    """Every config.ini key this version knows, as "section.key"."""
    settings = runtime_settings()
    return sorted(
        f"{o.section}.{o.key}" for o in (*settings.OPTIONS, *settings.RESOURCES)
    )


def flag_arguments(values: Dict[str, str]) -> List[str]:
    """Setting values (attribute -> text) as the runtime's command-line flags."""
    return [
        argument
        for option in runtime_settings().OPTIONS
        if option.attr in values
        for argument in (option.flags[0], values[option.attr])
    ]


def server_settings(project: Path, flags: Sequence[str] = ()):
    """The project's settings as the server reads them from its config.ini and `flags`
    (not the environment): what an image built from it serves with."""
    settings = runtime_settings()
    config = project / "config.ini"
    if not config.is_file():  # the defaults, not a config.ini of the current directory
        config = Path(os.devnull)
    try:
        return settings.load_settings(["--config", str(config), *flags], environ={})
    except settings.SettingsError as error:
        raise UserError(str(error)) from None


def resources(project: Path) -> dict:
    settings = runtime_settings()
    try:
        return settings.load_resources(project / "config.ini")
    except settings.SettingsError as error:
        raise UserError(str(error)) from None
