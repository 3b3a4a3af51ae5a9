"""Compile protos/ into the stubs the template ships: `python scripts/compile_protos.py`.

`taichu_serve init` compiles fresh stubs with the installed grpcio-tools; the shipped
ones serve a `copier copy` without --trust (no tasks run). tests/test_upgrade.py fails
when they no longer match protos/.
"""

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from generator import __version__  # noqa: E402
from generator.postprocess import PROTOS, compile_stubs, install_stubs  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    stubs = compile_stubs(PROTOS, Path(tmp))
    for path in install_stubs(stubs, REPO / "templates" / "app", __version__):
        print(f"wrote {path.relative_to(REPO)}")
