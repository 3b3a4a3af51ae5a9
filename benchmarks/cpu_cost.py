"""CPU time per request (or stream message), side by side in one run.

    python benchmarks/cpu_cost.py                                   # grpc-small
    python benchmarks/cpu_cost.py --scenarios grpc-small,http-small,grpc-stream \\
        --variants no-metrics,default --echoes '' --rounds 10 --segments 6 --together
    python benchmarks/cpu_cost.py --scenarios grpc-stream --anchors mlserver-pw0

Starts each server pinned to CPU 0 and loads it from CPU 1 with the shared harness
(grpc-small: h2load at 64 concurrent; http-small: wrk at 64; grpc-stream: its bidi
stream client, 64 messages in flight; its small tensor request every time). It divides
the CPU time the server's processes used by the requests they answered. Throughput on
this VM varies by a fifth between rounds (steal time, which a process's CPU time does
not include); CPU time per request by a few per cent, so it answers "which costs less"
in far fewer rounds. At saturation (utilisation 1.00) requests per second is
1 / (CPU per request).

A round starts one scenario's servers together (new processes each round, started in
an order that rotates from round to round: give as many rounds as servers, or a
multiple) and loads them one after another, `--segments` times over in a new order
each time; with `--together`, all at once, each by a load tool of its own, so that
they share CPU 0 and the VM's slow and fast moments (what metrics cost is measured
so). Each server is compared with the first one: the geometric mean of the ratios
measured in the same segment (seconds apart, so the drift of the VM's speed cancels),
with a bootstrap 95 % interval that draws whole rounds (a round's segments share
their processes), for CPU per request and for requests per second.

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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple, Optional

from common import BENCH, free_port, render_project, rotated, server_command
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
    round: int  # the round (the server processes) it was measured in


class Running(NamedTuple):
    server: "bench.Server"
    ports: dict
    payload: "bench.Payloads"


def start(spec: Spec, scenario: str, tmp: str) -> Running:
    """Start the server and wait until it is ready."""
    ports = {"grpc": free_port(), "http": free_port(), "metrics": free_port()}
    server = bench.Server(
        spec.command.format(**ports),
        spec.cwd,
        {key: value.format(**ports) for key, value in spec.env.items()},
        "0",
        str(Path(tmp) / "servers.log"),
    )
    server.start()
    if scenario.startswith("http"):
        url = f"http://127.0.0.1:{ports['http']}/v2/health/ready"
        probe = lambda: bench.http_get_status(url) == 200  # noqa: E731
    else:
        target = f"127.0.0.1:{ports['grpc']}"
        probe = bench.grpc_ready_probe(target, "inference.GRPCInferenceService")
    try:
        server.wait_ready(probe, 60)
    except BaseException:
        server.stop()
        raise
    return Running(
        server, ports, bench.Payloads("small", "tensor", spec.model, None, 0)
    )


def measure(running: Running, scenario: str, seconds: int, tmp: str, round_: int):
    """Load a running server for `seconds`: its CPU time per answered request."""
    server, ports, payload = running
    ticks, started = server.cpu_ticks(), time.monotonic()
    answered, errors = SCENARIOS[scenario](ports, payload, seconds, tmp)
    used = (server.cpu_ticks() - ticks) / TICKS
    wall = time.monotonic() - started
    cost = used / answered * 1e6 if answered else float("inf")
    return Result(cost, answered / seconds, used / wall, errors, round_)


def run_round(specs: dict, scenario: str, args, tmp: str, round_: int) -> dict:
    """Start the servers of one scenario, warm each up for a second, then load them
    for `args.seconds`, `args.segments` times over: one after another in a new order
    each time (the others wait idle on the same CPU), or with `args.together` all at
    once, each by a load tool of its own, so that they share CPU 0 and whatever the
    VM does to it at the same moments."""
    running, scratch = {}, {}
    try:
        for name, spec in specs.items():
            scratch[name] = tempfile.mkdtemp(dir=tmp)  # the load tools' files
            running[name] = start(spec, scenario, tmp)
            SCENARIOS[scenario](running[name].ports, running[name].payload, 1, tmp)
        results = {name: [] for name in specs}
        for segment in range(args.segments):
            order = random.sample(list(specs), len(specs))

            def load(name: str) -> Result:
                return measure(
                    running[name], scenario, args.seconds, scratch[name], round_
                )

            if args.together:
                with ThreadPoolExecutor(len(order)) as pool:
                    measured = dict(zip(order, pool.map(load, order)))
            else:
                measured = {name: load(name) for name in order}
            for name in order:
                result = measured[name]
                results[name].append(result)
                print(
                    f"round {round_ + 1}.{segment + 1}: {scenario} {name}: "
                    f"{result.cpu_us:.0f} us, {result.rate:.0f}/s, "
                    f"utilisation {result.utilisation:.2f}, errors {result.errors}",
                    flush=True,
                )
        return results
    finally:
        for each in running.values():
            each.server.stop()


def paired_ratio(rows: list, base: list, field: str) -> tuple:
    """The geometric mean of the ratios of `field` (rows / base) measured side by
    side (the same segment of the same round), and its 95 % interval: a bootstrap
    that draws whole rounds, since segments of one round share their server
    processes and are not independent."""
    by_round: dict = {}
    for a, b in zip(rows, base):
        ratio = math.log(getattr(a, field) / getattr(b, field))
        by_round.setdefault(a.round, []).append(ratio)
    rounds = [statistics.fmean(logs) for logs in by_round.values()]
    draw = random.Random(7)
    means = sorted(
        statistics.fmean(draw.choices(rounds, k=len(rounds))) for _ in range(2000)
    )
    return tuple(
        math.exp(x) for x in (statistics.fmean(rounds), means[50], means[1949])
    )


def report(scenario: str, results: dict, args) -> None:
    names = list(results)
    base = results[names[0]]
    print(
        f"\n{scenario}, {CONCURRENCY} in flight, {args.rounds} rounds of "
        f"{args.segments} segments of {args.seconds} s; ratios to {names[0]} measured "
        f"in the same segment (geometric mean, 95 % interval over rounds)\n"
    )
    print(
        "| server | CPU µs per request (median) | ratio | interval | req/s (median) "
        "| ratio | interval | errors | CPU µs per segment (the first 40) |"
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
            f"| {', '.join(f'{r.cpu_us:.0f}' for r in rows[:40])} |"
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
    parser.add_argument("--rounds", type=int, default=5, help="new processes each")
    parser.add_argument(
        "--segments", type=int, default=1, help="loads of each server per round"
    )
    parser.add_argument("--seconds", type=int, default=3, help="of one segment")
    parser.add_argument(
        "--together",
        action="store_true",
        help="load a round's servers at the same time (they share CPU 0)",
    )
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
        for round_ in range(args.rounds):
            for scenario in random.sample(scenarios, len(scenarios)):
                names = [
                    name
                    for name in servers
                    if not (scenario.startswith("http") and name.startswith("echo"))
                ]  # the echoes speak gRPC only
                # Started in an order that rotates by round: loaded together, a server
                # started later measured a few per cent less CPU per call (gRPC).
                specs = {name: servers[name] for name in rotated(names, round_)}
                measured = run_round(specs, scenario, args, tmp, round_)
                for name, rows in measured.items():
                    results[scenario][name] += rows
    for scenario in scenarios:
        measured = {name: rows for name, rows in results[scenario].items() if rows}
        report(scenario, measured, args)


if __name__ == "__main__":
    main()
