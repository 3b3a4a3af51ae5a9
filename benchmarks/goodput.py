"""Goodput under overload: answers in time per second when three times more requests
arrive than the model can take.

    python benchmarks/goodput.py [--projects NAME=DIR ...] [--seconds 10]

A model of fixed cost (tests/services/fixed_cost.py, 20 ms a request, one at a time:
50 a second at most) behind request_timeout 0.5 s gets 150 requests a second, sent on
a fixed schedule whatever the answers (an open loop, as independent clients do). It
prints, for the current runtime and for each earlier project given, the 200s per
second, the 504s, the requests the model ran and the p50 of the 200s. Not part of CI.
"""

import argparse
import asyncio
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from common import REPO, free_port, render_project, server_command, wait_ready

COST_MS = 20
RATE = 150  # requests per second: three times what the model can take
TIMEOUT = 0.5  # request_timeout, seconds
PATH = "/v2/models/FixedCostService/infer"


async def overload(http: str, seconds: float) -> dict:
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=1000)
    async with httpx.AsyncClient(base_url=http, limits=limits, timeout=30) as client:

        async def one() -> tuple:
            started = time.perf_counter()
            reply = await client.post(PATH, json={"parameters": {"go": 1}})
            return reply.status_code, time.perf_counter() - started

        start = time.perf_counter()
        sent = []
        for n in range(int(RATE * seconds)):
            delay = start + n / RATE - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent.append(asyncio.ensure_future(one()))
        answers = await asyncio.gather(*sent)
        elapsed = time.perf_counter() - start  # until the last answer
        while True:  # what the model still runs, it runs now; then it answers
            stats = await client.post(PATH, json={"parameters": {"stats": True}})
            if stats.status_code == 200:
                break
    in_time = [seconds_ for status, seconds_ in answers if status == 200]
    return {
        "200/s": len(in_time) / elapsed,
        "504": sum(1 for status, _ in answers if status == 504),
        "ran": stats.json()["parameters"]["runs"],
        "p50 ms": 1000 * statistics.median(in_time) if in_time else float("nan"),
        "sent": len(answers),
    }


def measure(project: Path, seconds: float) -> dict:
    http_port, grpc_port = free_port(), free_port()
    env = {"COST_MS": str(COST_MS), "TAICHU_REQUEST_TIMEOUT": str(TIMEOUT)}
    command = server_command(project, env).format(http=http_port, grpc=grpc_port)
    server = subprocess.Popen(
        ["sh", "-c", f"exec {command}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    http = f"http://127.0.0.1:{http_port}"
    try:
        wait_ready(http)
        return asyncio.run(overload(http, seconds))
    finally:
        server.terminate()
        server.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--projects", nargs="*", default=[], metavar="NAME=DIR")
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    service = REPO / "tests" / "services" / "fixed_cost.py"
    with tempfile.TemporaryDirectory() as tmp:
        projects = {"now": render_project(Path(tmp) / "now", "")}
        for given in args.projects:
            name, directory = given.split("=", 1)
            projects[name] = Path(tmp) / name
            shutil.copytree(directory, projects[name])
        print(
            f"{RATE} requests/s for {args.seconds:g} s to a model of {COST_MS} ms "
            f"(capacity {1000 // COST_MS}/s), request_timeout {TIMEOUT} s"
        )
        print("| runtime | 200s per second | 504s | requests run | p50 of 200s (ms) |")
        print("|---|---:|---:|---:|---:|")
        for name, project in projects.items():
            shutil.copy(service, project / "customize_service.py")
            result = measure(project, args.seconds)
            print(
                f"| {name} | {result['200/s']:.1f} | {result['504']} of "
                f"{result['sent']} | {result['ran']} | {result['p50 ms']:.0f} |"
            )


if __name__ == "__main__":
    sys.exit(main())
