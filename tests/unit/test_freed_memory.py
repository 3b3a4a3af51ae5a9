"""freed_memory.py: a worker's malloc keeps what large requests free for the next
ones, and gives it back when asked (once large work is over)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from taichu_runtime import freed_memory

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's malloc only"
)

RUNTIME_HOME = str(Path(freed_memory.__file__).parents[1])
THRESHOLD_MIB = freed_memory.MMAP_THRESHOLD // 2**20
SMALLER, LARGER = THRESHOLD_MIB // 2, THRESHOLD_MIB * 2

# In a fresh interpreter: a buffer of argv[2] MiB made and freed; then how many MiB of
# resident memory the free gave back, and how many once trimmed.
PROBE = """
import sys
from taichu_runtime import freed_memory

def resident_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 2**20

if sys.argv[1] == "tuned":
    freed_memory.tune_malloc()
buffer = bytearray(int(sys.argv[2]) * 2**20)  # touched: zero-filled
before = resident_mib()
del buffer
freed = resident_mib()
freed_memory._trim(0)
print(before - freed, before - resident_mib())
"""


def given_back(mode: str, mib: int, **env: str) -> tuple:
    """(MiB given back by the free, MiB given back once trimmed)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    output = subprocess.run(
        [sys.executable, "-c", PROBE, mode, str(mib)],
        env={**environment, "PYTHONPATH": RUNTIME_HOME, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    freed, trimmed = map(float, output.split())
    return freed, trimmed


def test_a_tuned_worker_keeps_freed_memory_until_it_is_trimmed():
    freed, trimmed = given_back("tuned", SMALLER)
    assert freed < 1  # kept for the next request, not faulted in again
    assert trimmed > SMALLER - 1  # given back by malloc_trim


def test_a_tuned_worker_gives_a_block_past_the_threshold_back_at_once():
    freed, _ = given_back("tuned", LARGER)
    assert freed > LARGER - 1


def test_glibc_as_it_comes_gives_a_large_block_back_at_once():
    freed, _ = given_back("default", SMALLER)
    assert freed > SMALLER - 1


def test_a_malloc_variable_set_by_the_user_wins():
    freed, _ = given_back("tuned", SMALLER, MALLOC_MMAP_THRESHOLD_=str(128 * 1024))
    assert freed > SMALLER - 1  # mapped on its own pages, as the variable asks
