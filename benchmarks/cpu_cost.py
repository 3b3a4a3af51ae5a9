"""CPU time per request (or stream message), side by side in one run.

    python benchmarks/cpu_cost.py                                   # grpc-small
    python benchmarks/cpu_cost.py --scenarios grpc-small,http-small,grpc-stream \\
        --variants default,no-metrics --echoes '' --rounds 10       # what metrics cost
    python benchmarks/cpu_cost.py --scenarios grpc-stream --anchors mlserver-pw0

Starts each server pinned to CPU 0 and loads it from CPU 1 with the shared harness
(grpc-small: h2load at 64 concurrent; http-small: wrk at 64; grpc-stream: its bidi
stream client, 64 messages in flight; its small tensor request every time). It divides
the CPU time the server's processes used by the requests they answered. Throughput on
this VM varies by a fifth between rounds (steal time, which a process's CPU time does
not include); CPU time per request by a few per cent, so it answers "which costs less"
in far fewer rounds. At saturation (utilisation 1.00) requests per second is
1 / (CPU per request). Each server is compared with the first one: the mean of the
per-round ratios (each round runs one scenario's servers back to back, so the drift of
the VM's speed over the run cancels), with a bootstrap 95 % interval over the rounds,
for CPU per request and for requests per second.

Servers: the generated identity project in each variant of run.py, the bare echoes of
reference/grpc_echo.py (threaded server, with and without a hand-over; gRPC only) and,
when asked, the shared harness's anchors (MLServer, ...). Not part of CI.
"""

import argparse
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple, Optional

from common import BENCH, free_port, render_project, server_command
from run import VARIANTS

sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH / "anchors"))
import bench  # noqa: E402  the shared harness: payloads, load tools, the server process
import run_anchors  # noqa: E402  how the anchors start
from v2proto import load  # noqa: E402

ECHO = Path(__file__).resolve().parent / "reference" / "grpc_echo.py"
TICKS = os.sysconf("SC_CLK_TCK")
CONCURRENCY = 64


class Spec(NamedTuple):
    """How to start one server: {http}, {grpc} and {metrics} in `command` and `env`
    are free ports."""

    command: str
    model: str
    cwd: Optional[str] = None
    env: dict = {}


def anchor_spec(name: str, tmp: str) -> Spec:
    """An anchor of the shared harness (run_anchors.py), run from a scratch copy."""
    spec = run_anchors.anchors()[name]
    cwd = None
    if spec.get("src"):
        cwd = str(Path(tmp) / f"anchor-{name}")
        shutil.copytree(BENCH / "anchors" / spec["src"], cwd, dirs_exist_ok=True)
        for helper in ("v2proto.py", "open_inference_v2.proto"):
            shutil.copy(BENCH / helper, cwd)
    return Spec(spec["cmd"], spec["model"], cwd, spec.get("env", {}))


class Load(NamedTuple):
    answered: int  # requests (or messages) answered
    errors: int


def grpc_small(ports: dict, payload, seconds: int, tmp: str) -> Load:
    pb2, _ = load()
    frame = bench.grpc_frame(payload.grpc_msg(pb2, raw=False).SerializeToString())
    path = "/inference.GRPCInferenceService/ModelInfer"
    target = f"127.0.0.1:{ports['grpc']}"
    result = bench.run_h2load(
        target, path, frame, CONCURRENCY, seconds, 0, "1", tmp, 0, 1
    )
    return Load(round(result["rps"] * seconds), result["errors"])


def http_small(ports: dict, payload, seconds: int, tmp: str) -> Load:
    url = f"http://127.0.0.1:{ports['http']}/v2/models/{payload.model}/infer"
    result = bench.run_wrk(
        url, payload.http_body(), CONCURRENCY, seconds, 0, "1", tmp, 10
    )
    return Load(round(result["rps"] * seconds), result["errors"])


def grpc_stream(ports: dict, payload, seconds: int, tmp: str) -> Load:
    pb2, _ = load()
    message = payload.grpc_msg(pb2, raw=False).SerializeToString()
    harness = argparse.Namespace(
        grpc=f"127.0.0.1:{ports['grpc']}", duration=seconds, warmup=0
    )
    path = "/inference.GRPCInferenceService/ModelStreamInfer"
    latencies, _, _, note = bench.run_stream_pinned(
        harness, path, message, CONCURRENCY, 1
    )
    return Load(len(latencies), 1 if note else 0)


SCENARIOS = {
    "grpc-small": grpc_small,
    "http-small": http_small,
    "grpc-stream": grpc_stream,
}


class Result(NamedTuple):
    cpu_us: float  # CPU time per answered request
    rate: float  # answered per second
    utilisation: float  # CPU seconds per second
    errors: int


def measure(spec: Spec, scenario: str, seconds: int, tmp: str) -> Result:
    """Start the server, warm it up for a second, then load it for `seconds`."""
    ports = {"grpc": free_port(), "http": free_port(), "metrics": free_port()}
    server = bench.Server(
        spec.command.format(**ports),
        spec.cwd,
        {key: value.format(**ports) for key, value in spec.env.items()},
        "0",
        str(Path(tmp) / "servers.log"),
    )
    server.start()
    try:
        if scenario.startswith("http"):
            url = f"http://127.0.0.1:{ports['http']}/v2/health/ready"
            probe = lambda: bench.http_get_status(url) == 200  # noqa: E731
        else:
            target = f"127.0.0.1:{ports['grpc']}"
            probe = bench.grpc_ready_probe(target, "inference.GRPCInferenceService")
        server.wait_ready(probe, 60)
        payload = bench.Payloads("small", "tensor", spec.model, None, 0)
        run_load = SCENARIOS[scenario]
        run_load(ports, payload, 1, tmp)  # warm-up
        ticks, started = server.cpu_ticks(), time.monotonic()
        answered, errors = run_load(ports, payload, seconds, tmp)
        used = (server.cpu_ticks() - ticks) / TICKS
        wall = time.monotonic() - started
        cost = used / answered * 1e6 if answered else float("inf")
        return Result(cost, answered / seconds, used / wall, errors)
    finally:
        server.stop()


def paired_ratio(rows: list, base: list, field: str) -> tuple:
    """The geometric mean of the per-round ratios of `field` (rows / base: each
    round measures them back to back, so the VM's drift over the run cancels), and
    its bootstrap 95 % interval over the rounds."""
    logs = [math.log(getattr(a, field) / getattr(b, field)) for a, b in zip(rows, base)]
    draw = random.Random(7)
    means = sorted(
        statistics.fmean(draw.choices(logs, k=len(logs))) for _ in range(2000)
    )
    return tuple(math.exp(x) for x in (statistics.fmean(logs), means[50], means[1949]))


def report(scenario: str, results: dict, rounds: int, seconds: int) -> None:
    names = list(results)
    base = results[names[0]]
    print(
        f"\n{scenario}, {CONCURRENCY} in flight, {rounds} rounds of {seconds} s; "
        f"ratios to {names[0]} measured in the same round (geometric mean, "
        f"bootstrap 95 % interval)\n"
    )
    print(
        "| server | CPU µs per request (median) | ratio | interval | req/s (median) "
        "| ratio | interval | errors | CPU µs every round |"
    )
    print("|---|---:|---:|---|---:|---:|---|---:|---|")
    for name, rows in results.items():
        cost = rate = "| 1 | "  # the reference
        if rows is not base:
            cost = "| {:.3f} | {:.3f}-{:.3f} ".format(
                *paired_ratio(rows, base, "cpu_us")
            )
            rate = "| {:.3f} | {:.3f}-{:.3f} ".format(*paired_ratio(rows, base, "rate"))
        print(
            f"| {name} | {statistics.median(r.cpu_us for r in rows):.0f} {cost}"
            f"| {statistics.median(r.rate for r in rows):.0f} {rate}"
            f"| {sum(r.errors for r in rows)} "
            f"| {', '.join(f'{r.cpu_us:.0f}' for r in rows)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenarios", default="grpc-small")
    parser.add_argument("--variants", default="default,no-metrics")
    parser.add_argument("--echoes", default="sync,sync-thread", help="'' for none")
    parser.add_argument(
        "--anchors",
        default="",
        help="comma list of run_anchors.py's (mlserver-pw0, ...)",
    )
    parser.add_argument(
        "--projects",
        default="",
        help="comma list of NAME=DIR: projects rendered (and maybe edited) before",
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=3)
    args = parser.parse_args()
    scenarios = args.scenarios.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        project = render_project(Path(tmp) / "project", "")
        servers = {
            f"taichu-3 {variant}": Spec(
                server_command(project, VARIANTS[variant]), "ModelService"
            )
            for variant in args.variants.split(",")
        }
        for hop in filter(None, args.echoes.split(",")):
            command = f"{sys.executable} {ECHO} --port {{grpc}} --hop {hop}"
            servers[f"echo, hop {hop}"] = Spec(command, "echo")
        for name in filter(None, args.anchors.split(",")):
            servers[name] = anchor_spec(name, tmp)
        for given in filter(None, args.projects.split(",")):
            name, directory = given.split("=", 1)
            servers[name] = Spec(server_command(Path(directory), {}), "ModelService")
        results = {s: {name: [] for name in servers} for s in scenarios}
        for round_number in range(args.rounds):
            # Each scenario's servers back to back, in a new order every round.
            cells = []
            for scenario in random.sample(scenarios, len(scenarios)):
                names = [
                    name
                    for name in servers
                    if not (scenario.startswith("http") and name.startswith("echo"))
                ]  # the echoes speak gRPC only
                cells += [(scenario, name) for name in random.sample(names, len(names))]
            for scenario, name in cells:
                result = measure(servers[name], scenario, args.seconds, tmp)
                results[scenario][name].append(result)
                print(
                    f"round {round_number + 1}: {scenario} {name}: "
                    f"{result.cpu_us:.0f} us, {result.rate:.0f}/s, "
                    f"utilisation {result.utilisation:.2f}, errors {result.errors}",
                    flush=True,
                )
    for scenario in scenarios:
        measured = {name: rows for name, rows in results[scenario].items() if rows}
        report(scenario, measured, args.rounds, args.seconds)


if __name__ == "__main__":
    main()
