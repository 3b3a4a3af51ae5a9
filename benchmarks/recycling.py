"""What replacing workers under load costs, and whether any request fails.

    python benchmarks/recycling.py [--rounds 3] [--seconds 15] [--max-worker-requests 5000]
        [--connection-age 2] [--keep-logs DIR]

The identity project with 2 workers, pinned to CPU 0, loaded from CPU 1 by wrk (HTTP,
64 keep-alive connections) and a grpc.aio client (1 channel, 16 calls in flight;
h2load does not move to a new connection after a GOAWAY) at once for
`--seconds`, in two variants started in turn within each round (the order alternates):
`steady` (no limit) and `recycling` (max_worker_requests set, so that a worker is
replaced every few seconds). Both set max_connection_age (`--connection-age`): a
replaced worker waits for its gRPC clients to move, which they do at that age. Prints each run's answers per second, failures and
replacements, and the ratio of recycling to steady per round (the median, with the
range). Not part of CI.
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import BENCH, free_port, render_project, server_command, wait_ready

sys.path.insert(0, str(BENCH))
import bench  # noqa: E402  the shared harness: payloads, load tools
from v2proto import load  # noqa: E402

HTTP_CONNECTIONS = 64
GRPC_STREAMS = 16


def run_once(
    project: Path, limit: int, age: float, seconds: int, tmp: str, keep_logs: str
) -> dict:
    ports = {"http": free_port(), "grpc": free_port()}
    env = {
        "TAICHU_WORKERS": "2",
        "TAICHU_MAX_WORKER_REQUESTS": str(limit),
        "TAICHU_MAX_CONNECTION_AGE": str(age),
    }
    command = server_command(project, env).format(**ports)
    log = Path(tmp) / f"server-{ports['http']}.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            ["taskset", "-c", "0", "sh", "-c", f"exec {command}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(f"http://127.0.0.1:{ports['http']}")
        payload = bench.Payloads("small", "tensor", "ModelService", None, 0)
        pb2, _ = load()
        body = payload.grpc_msg(pb2, raw=False).SerializeToString()
        target = f"127.0.0.1:{ports['grpc']}"
        path = "/inference.GRPCInferenceService/ModelInfer"
        url = f"http://127.0.0.1:{ports['http']}/v2/models/ModelService/infer"
        with ThreadPoolExecutor(1) as pool:  # both loads at once
            grpc_load = pool.submit(
                bench.run_py_grpc, target, path, body, GRPC_STREAMS, seconds, 0, "1", 1
            )
            http = bench.run_wrk(
                url, payload.http_body(), HTTP_CONNECTIONS, seconds, 0, "1", tmp, 10
            )
            grpc = grpc_load.result()
    finally:
        server.terminate()
        server.wait(timeout=60)
    if (http["errors"] or grpc["errors"]) and keep_logs:
        shutil.copy(log, keep_logs)  # to see what the server did
    return {
        "http/s": http["rps"],
        "http errors": http["errors"],
        "http error kinds": {k: v for k, v in http["detail"].items() if v},
        "grpc/s": grpc["rps"],
        "grpc errors": grpc["errors"],
        "replacements": log.read_text().count("starting its replacement"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--max-worker-requests", type=int, default=5000)
    parser.add_argument("--connection-age", type=float, default=2)
    parser.add_argument("--keep-logs", metavar="DIR", help="logs of runs with errors")
    args = parser.parse_args()
    variants = {"steady": 0, "recycling": args.max_worker_requests}
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        project = render_project(Path(tmp) / "project", "")
        print(
            "| round | variant | HTTP/s | HTTP errors | gRPC/s | gRPC errors | replaced |"
        )
        print("|---|---|---:|---:|---:|---:|---:|")
        for round_ in range(args.rounds):
            order = list(variants) if round_ % 2 == 0 else list(variants)[::-1]
            results = {}
            for name in order:
                time.sleep(1)
                results[name] = result = run_once(
                    project,
                    variants[name],
                    args.connection_age,
                    args.seconds,
                    tmp,
                    args.keep_logs,
                )
                print(
                    f"| {round_ + 1} | {name} | {result['http/s']:.0f} | "
                    f"{result['http errors']} {result['http error kinds'] or ''} | "
                    f"{result['grpc/s']:.0f} | "
                    f"{result['grpc errors']} | {result['replacements']} |",
                    flush=True,
                )
            steady, recycling = results["steady"], results["recycling"]
            ratios.append(
                (recycling["http/s"] + recycling["grpc/s"])
                / (steady["http/s"] + steady["grpc/s"])
            )
    print(
        f"answers per second, recycling / steady: {statistics.median(ratios):.3f} "
        f"(rounds: {', '.join(f'{r:.3f}' for r in ratios)})"
    )


if __name__ == "__main__":
    sys.exit(main())
