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
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import BENCH, free_port, render_project, server_command
from run import VARIANTS

sys.path.insert(0, str(BENCH))
import bench  # noqa: E402  the shared harness: payloads, h2load output, process trees
from v2proto import load  # noqa: E402

ECHO = Path(__file__).resolve().parent / "reference" / "grpc_echo.py"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int:
    total = 0
    for process in bench.proc_tree(pid):
        try:
            stat = Path(f"/proc/{process}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total


def wait_ready(port: int, process: subprocess.Popen) -> None:
    import grpc

    pb2, _ = load()
    ready = grpc.insecure_channel(f"127.0.0.1:{port}").unary_unary(
        "/inference.GRPCInferenceService/ServerReady",
        request_serializer=pb2.ServerReadyRequest.SerializeToString,
        response_deserializer=pb2.ServerReadyResponse.FromString,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if ready(pb2.ServerReadyRequest(), timeout=1).ready:
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError("server not ready after 30 s")


def measure(command: str, model: str, seconds: int, frame_file: Path, log) -> tuple:
    """(CPU µs per call, calls/s, CPU utilisation) of one server."""
    port = free_port()
    argv = ["taskset", "-c", "0"] + shlex.split(
        command.format(grpc=port, http=free_port())
    )
    process = subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_ready(port, process)
        pb2, _ = load()
        payload = bench.Payloads("small", "tensor", model, None, 0)
        frame_file.write_bytes(
            bench.grpc_frame(payload.grpc_msg(pb2, raw=False).SerializeToString())
        )
        url = f"http://127.0.0.1:{port}/inference.GRPCInferenceService/ModelInfer"

        def h2load(duration: int) -> str:
            return subprocess.run(
                ["taskset", "-c", "1", "h2load", "-t1", "-c1", "-m64",
                 f"-D{duration}", "-d", str(frame_file),
                 "-H", "content-type: application/grpc", "-H", "te: trailers", url],
                capture_output=True, text=True, check=True,
            ).stdout  # fmt: skip

        h2load(1)  # warm-up
        ticks, started = cpu_ticks(process.pid), time.monotonic()
        out = h2load(seconds)
        used = (cpu_ticks(process.pid) - ticks) / TICKS
        wall = time.monotonic() - started
        succeeded = int(bench.H2_RE["requests"].search(out).group(4))
        return used / succeeded * 1e6, succeeded / seconds, used / wall
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait()


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
        with open(Path(tmp) / "servers.log", "ab") as log:
            for round_number in range(args.rounds):
                names = list(servers)
                random.shuffle(names)
                for name in names:
                    command, model = servers[name]
                    result = measure(
                        command, model, args.seconds, Path(tmp) / "frame.bin", log
                    )
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
