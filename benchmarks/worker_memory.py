"""Peak memory of each process of the generated server under the heaviest load.

    python benchmarks/worker_memory.py [--duration 6] [--before REV,...] [--rounds N]

The shared harness reports the sum over the process tree (the supervisor and the
worker); issue 7's bar is about one worker. This starts the identity project, runs the
shared harness's http-large and grpc-large scenarios at 64 concurrent (the ones that
hold the most data in flight), then prints each process's peak resident memory
(VmHWM). Not part of CI.
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import (
    BENCH,
    free_port,
    render_project,
    rotated,
    runtime_from,
    server_command,
)


def peak_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found += [int(child) for child in text]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=6)
    parser.add_argument(
        "--before",
        default="",
        help="comma list of git revisions: their runtime is measured beside this one",
    )
    parser.add_argument("--rounds", type=int, default=1, help="each in a new process")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        projects = {"now": render_project(Path(tmp) / "project", "")}
        for revision in filter(None, args.before.split(",")):
            rendered = render_project(Path(tmp) / revision, "")
            projects[revision] = runtime_from(rendered, revision)
        names = list(projects)
        for round_ in range(args.rounds):
            for name in rotated(names, round_):
                print(f"round {round_ + 1}, {name}:")
                measure(projects[name], args.duration, Path(tmp))


def measure(project: Path, duration: float, tmp: Path) -> None:
    http, grpc = free_port(), free_port()
    command = server_command(project, {}).format(http=http, grpc=grpc)
    server = subprocess.Popen(
        ["taskset", "-c", "0", "sh", "-c", f"exec {command}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        result = tmp / "result.json"
        subprocess.run(
            [
                sys.executable, str(BENCH / "bench.py"),
                "--http", f"http://127.0.0.1:{http}",
                "--grpc", f"127.0.0.1:{grpc}", "--model", "ModelService",
                "--scenarios", "http-large,grpc-large", "--concurrency", "64",
                "--duration", str(duration), "--warmup", "1",
                "--no-pin", "--json", str(result), "--quiet",
            ],
            check=True,
        )  # fmt: skip
        for run in json.loads(result.read_text())["results"]:
            print(f"  {run['scenario']} c64: {run['rps']:.0f} req/s")
        time.sleep(0.5)
        print(
            f"  supervisor (pid {server.pid}): peak {peak_kb(server.pid) / 1024:.1f} MB"
        )
        for pid in children(server.pid):
            print(f"  worker (pid {pid}): peak {peak_kb(pid) / 1024:.1f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
