"""What metrics cost a request, in CPU time, without the network's noise.

    python benchmarks/metrics_cost.py [--requests 20000] [--rounds 5]

Side-by-side throughput runs (run.py --variants default,no-metrics) on this VM vary by
±10-15 % between rounds, more than the cost in question. This script runs the request
path of the generated identity project in one process, without sockets: the guard
(request id, metrics, access line), the gRPC codec and the model host (with its hand-
over to the model thread), for gRPC calls (ModelHost.infer_blocking, as grpcio's
threads call it) and HTTP calls (ModelHost.infer on the event loop). It measures the
process's CPU time per request (every thread: the bookkeeping thread's recording
counts), metrics on and off interleaved, and prints the difference. Divide it by a
whole request's CPU time on the server (1 / req/s at saturation on one core) for the
share of throughput metrics can cost. Not part of CI.
"""

import argparse
import asyncio
import importlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

from common import render_project

LOOP = asyncio.new_event_loop()  # one for the whole run: the model threads keep theirs


def load_runtime(project: Path):
    sys.path.insert(0, str(project))
    modules = {}
    for name in (
        "background", "logs", "loader", "settings", "state", "grpc_api.codec",
        "governance.guard", "governance.metrics", "governance.tracing", "proto",
    ):  # fmt: skip
        modules[name] = importlib.import_module(f"taichu_runtime.{name}")
    return SimpleNamespace(**{k.split(".")[-1]: v for k, v in modules.items()})


def build(rt, project: Path, metrics_on: bool):
    """The guard and model host a worker makes, from the project's own config.ini and
    customize_service.py (the documented identity model)."""
    settings = rt.settings.load_settings(
        ["--config", str(project / "config.ini")],
        {
            "TAICHU_SERVICE_FILE": str(project / "customize_service.py"),
            "TAICHU_MODEL_PATH": str(project / "models"),
            "TAICHU_METRICS": str(metrics_on).lower(),
        },
    )
    guard = rt.guard.Guard(
        settings, rt.state.ServerState(), None, rt.tracing.NoTracing()
    )

    def instruments(model_name: str):
        if settings.metrics:
            guard.metrics = rt.metrics.Metrics(model_name, lambda: guard.inflight)
        return guard.metrics, guard.tracing

    return guard, rt.loader.load_model(settings, instruments)


def small_request(rt):
    pb2 = rt.proto.open_inference_pb2
    message = pb2.ModelInferRequest(model_name="ModelService")
    tensor = message.inputs.add(name="input-0", datatype="FP32")
    tensor.shape.extend([1, 4])
    tensor.contents.fp32_contents.extend([1.5, 2.5, 3.5, 4.5])
    return message


def grpc_calls(rt, guard, host, message, count: int) -> float:
    """CPU seconds per call, the way servicer.ModelInfer runs one."""
    codec = rt.codec
    started = time.process_time()
    for _ in range(count):
        with guard.call("grpc", message.model_name, {}) as call:
            request = codec.decode_request(message, codec.V2, {})
            call.adopt_id(request)
            response = host.infer_blocking(request, None, None)
            codec.encode_response(response, request, codec.V2)
    rt.background.run_now()  # what is still queued is part of the cost
    return (time.process_time() - started) / count


def http_calls(rt, guard, host, message, count: int) -> float:
    """CPU seconds per call through the async path (the HTTP route's), 64 at a time."""
    codec = rt.codec

    async def one():
        async with guard.call("http", message.model_name, {}) as call:
            request = codec.decode_request(message, codec.V2, {})
            call.adopt_id(request)
            await host.infer(request)

    async def all_of_them():
        for _ in range(count // 64):
            await asyncio.gather(*(one() for _ in range(64)))

    started = time.process_time()
    LOOP.run_until_complete(all_of_them())
    rt.background.run_now()
    return (time.process_time() - started) / (count // 64 * 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        project = render_project(Path(tmp) / "project", "")
        rt = load_runtime(project)
        rt.logs.configure_logging("info", batched=True)  # as in a worker
        rt.logs.logging.getLogger().handlers[0].stream = open("/dev/null", "w")
        rt.background.start()
        message = small_request(rt)
        servers = {on: build(rt, project, on) for on in (True, False)}
        samples = {(path, on): [] for path in ("grpc", "http") for on in (True, False)}
        for round_ in range(args.rounds):
            for on in (True, False) if round_ % 2 else (False, True):
                guard, host = servers[on]
                samples["grpc", on].append(
                    grpc_calls(rt, guard, host, message, args.requests)
                )
                samples["http", on].append(
                    http_calls(rt, guard, host, message, args.requests)
                )
    print("| path | metrics on, us/request | metrics off | cost of metrics |")
    print("|---|---:|---:|---:|")
    for path in ("grpc", "http"):
        on = statistics.median(samples[path, True]) * 1e6
        off = statistics.median(samples[path, False]) * 1e6
        print(f"| {path} | {on:.1f} | {off:.1f} | {on - off:.1f} us |")


if __name__ == "__main__":
    main()
