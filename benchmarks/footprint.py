"""Start-up to ready, and what an idle server holds in memory, side by side.

    python benchmarks/footprint.py [--rounds 12] [--projects before=DIR,...]

Each round starts the identity project's server (and each `--projects` render) in turn,
the order alternating, and times it from the command to the first 200 of
/v2/health/ready; once ready, it reads the resident memory (VmRSS) of the supervisor
and the worker, then stops the server. Each project is given its bytecode first, as an
image built by `taichu_serve build` has it; `--source-only` adds the identity project
without it, compiled at every start. Prints medians with their range, and each
start-up as a ratio to the first project's. Not part of CI.
"""

import argparse
import http.client
import shlex
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from common import compile_bytecode, free_port, render_project, server_command


def resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def is_ready(port: int) -> bool:
    """One GET /v2/health/ready, light enough to ask every 2 ms: a plain connection,
    not an HTTP client (httpx makes an SSL context per call, milliseconds of CPU)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    try:
        connection.request("GET", "/v2/health/ready")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def start_once(project: Path, env: dict) -> tuple:
    """(seconds to ready, supervisor MiB, worker MiB)."""
    http_port, grpc_port = free_port(), free_port()
    command = server_command(project, env).format(http=http_port, grpc=grpc_port)
    started = time.perf_counter()
    process = subprocess.Popen(
        shlex.split(command), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while not is_ready(http_port):
            if process.poll() is not None:
                raise RuntimeError(f"{project}: the server exited")
            time.sleep(0.002)
        ready = time.perf_counter() - started
        time.sleep(0.5)  # idle: what start-up left, settled
        children = Path(f"/proc/{process.pid}/task/{process.pid}/children")
        (worker,) = [int(pid) for pid in children.read_text().split()]
        return ready, resident_mib(process.pid), resident_mib(worker)
    finally:
        process.terminate()
        process.wait(timeout=60)


def spread(values: list) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--projects", default="", help="NAME=DIR,... beside `now`")
    parser.add_argument(
        "--source-only",
        action="store_true",
        help="also `now` without bytecode, compiled at every start",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        projects = {"now": render_project(Path(scratch) / "now", "")}
        for item in filter(None, args.projects.split(",")):
            name, _, directory = item.partition("=")
            projects[name] = compile_bytecode(Path(directory).resolve())
        environments = {name: {} for name in projects}
        if args.source_only:
            source = render_project(Path(scratch) / "source", "", bytecode=False)
            projects["source only"] = source
            environments["source only"] = {"PYTHONDONTWRITEBYTECODE": "1"}
        runs: dict = {name: [] for name in projects}
        for round_index in range(args.rounds):
            order = list(projects)
            if round_index % 2:
                order.reverse()
            for name in order:
                runs[name].append(start_once(projects[name], environments[name]))
    first = statistics.median(ready for ready, _, _ in runs["now"])
    print("project | start-up to ready, s | ratio | supervisor MiB | worker MiB")
    for name, results in runs.items():
        ready, supervisor, worker = (list(column) for column in zip(*results))
        print(
            f"{name} | {spread(ready)} | {statistics.median(ready) / first:.3f} | "
            f"{statistics.median(supervisor):.0f} | {statistics.median(worker):.0f}"
        )


if __name__ == "__main__":
    main()
