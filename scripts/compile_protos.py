"""Compile protos/ into the stubs the template ships: `python scripts/compile_protos.py`.

Rendering a project copies these stubs; tests/test_upgrade.py fails when they no
longer match protos/. The grpcio and protobuf versions they need are copier.yml's
grpcio_version and protobuf_version defaults (a test keeps them equal).
"""

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from generator.stubs import PROTOS, compile_stubs, install_stubs  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    stubs = compile_stubs(PROTOS, Path(tmp))
    for path in install_stubs(stubs, REPO / "templates" / "app"):
        print(f"wrote {path.relative_to(REPO)}")
