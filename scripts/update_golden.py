"""Re-render tests/golden/project after a template change: `python scripts/update_golden.py`.

Uses the installed taichu_serve (run `pip install .` first), like the tests do.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from golden import GOLDEN, snapshot, write_golden  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    project = Path(tmp) / "project"
    subprocess.run(
        [sys.executable, "-m", "taichu_serve", "init", str(project)], check=True
    )
    write_golden(snapshot(project))
print(f"updated {GOLDEN}")
