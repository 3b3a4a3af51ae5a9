"""CPU time per small gRPC call, side by side in one run.

    python benchmarks/grpc_cpu_cost.py [--variants default,no-metrics] [--rounds 5]

Starts each server pinned to CPU 0, loads it with h2load on CPU 1 (grpc-small,
64 concurrent, the shared harness's request), and divides the CPU time the server's
processes used by the calls they answered. Throughput on this VM varies by a fifth
between rounds (steal time, which a process's CPU time does not include), CPU time per
call by a few per cent, so it answers "which costs less" in far fewer rounds. At
saturation (utilisation 1.00) calls per second is 1 / (CPU per call). Servers: the
generated identity project in each variant of run.py, and the bare echoes of
reference/grpc_echo.py (threaded server, with and without a hand-over). Not part of CI.
"""

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH, free_port, render_project, server_command
from run import VARIANTS

sys.path.insert(0, str(BENCH))
import bench  # noqa: E402  the shared harness: payloads, h2load, the server process
from v2proto import load  # noqa: E402

ECHO = Path(__file__).resolve().parent / "reference" / "grpc_echo.py"
TICKS = os.sysconf("SC_CLK_TCK")


def ready_probe(port: int):
    import grpc

    pb2, _ = load()
    ready = grpc.insecure_channel(f"127.0.0.1:{port}").unary_unary(
        "/inference.GRPCInferenceService/ServerReady",
        request_serializer=pb2.ServerReadyRequest.SerializeToString,
        response_deserializer=pb2.ServerReadyResponse.FromString,
    )

    def probe() -> bool:
        try:
            return ready(pb2.ServerReadyRequest(), timeout=1).ready
        except Exception:
            return False

    return probe


def measure(command: str, model: str, seconds: int, tmp: str) -> tuple:
    """(CPU µs per call, calls/s, CPU utilisation) of one server."""
    port = free_port()
    server = bench.Server(
        command.format(grpc=port, http=free_port()),
        None,
        {},
        "0",
        str(Path(tmp) / "servers.log"),
    )
    server.start()
    try:
        server.wait_ready(ready_probe(port), 30)
        pb2, _ = load()
        payload = bench.Payloads("small", "tensor", model, None, 0)
        frame = bench.grpc_frame(payload.grpc_msg(pb2, raw=False).SerializeToString())
        path = "/inference.GRPCInferenceService/ModelInfer"

        def h2load(duration: int) -> dict:
            return bench.run_h2load(
                f"127.0.0.1:{port}", path, frame, 64, duration, 0, "1", tmp, 0, 1
            )

        h2load(1)  # warm-up
        ticks, started = server.cpu_ticks(), time.monotonic()
        result = h2load(seconds)
        used = (server.cpu_ticks() - ticks) / TICKS
        wall = time.monotonic() - started
        calls = result["rps"] * seconds
        return used / calls * 1e6, result["rps"], used / wall
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variants", default="default,no-metrics")
    parser.add_argument("--echoes", default="sync,sync-thread", help="'' for none")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = render_project(Path(tmp) / "project", "")
        servers = {
            f"taichu-3 {variant}": (
                server_command(project, VARIANTS[variant]),
                "ModelService",
            )
            for variant in args.variants.split(",")
        }
        for hop in filter(None, args.echoes.split(",")):
            command = f"{sys.executable} {ECHO} --port {{grpc}} --hop {hop}"
            servers[f"echo, hop {hop}"] = (command, "echo")
        results = {name: [] for name in servers}
        for round_number in range(args.rounds):
            names = list(servers)
            random.shuffle(names)
            for name in names:
                command, model = servers[name]
                result = measure(command, model, args.seconds, tmp)
                results[name].append(result)
                print(
                    f"round {round_number + 1}: {name}: {result[0]:.0f} us/call, "
                    f"{result[1]:.0f} calls/s, utilisation {result[2]:.2f}",
                    flush=True,
                )
    first = statistics.median(r[0] for r in results[next(iter(results))])
    print(
        f"\ngrpc-small at 64 (h2load), {args.rounds} interleaved rounds of "
        f"{args.seconds} s, medians\n"
    )
    print("| server | CPU µs per call | ratio | calls/s | every round, µs |")
    print("|---|---:|---:|---:|---|")
    for name, rows in results.items():
        cost = statistics.median(r[0] for r in rows)
        rate = statistics.median(r[1] for r in rows)
        every = ", ".join(f"{r[0]:.0f}" for r in rows)
        print(f"| {name} | {cost:.0f} | {cost / first:.2f} | {rate:.0f} | {every} |")


if __name__ == "__main__":
    main()
