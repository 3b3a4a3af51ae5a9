"""LLM-style token streams: time to first token and tokens per second per stream.

    python benchmarks/token_streams.py --rounds 3 --seconds 6

Every request is answered with 64 tokens sent as fast as the server can: the generated
server (benchmarks/services/tokens.py, a generator), the bare stack
(benchmarks/reference/token_echo.py: grpc.aio and Starlette SSE on uvicorn; as
`bare-threaded`, gRPC on grpcio's threaded server with a thread per stream) and
MLServer 1.7 (a runtime whose predict_stream yields the tokens). Each over gRPC
(ModelStreamInfer, one request per call) and SSE (generate_stream), with 1 and 64
streams at once, each stream asking again as soon as its last token came. The server
is pinned to CPU 0, the client (grpc.aio; raw asyncio sockets for SSE, so that the
client is not what limits) to CPU 1. Reported: median and p99 time to first token,
median tokens/s of one stream, tokens/s of all streams, and the server's CPU time per
token (which does not depend on how fast the client is). Servers are started in turn,
their order rotating by round; medians over rounds. Writes table.md, raw.json and
token_streams.png to --out.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from charts import curves
from common import (
    ANCHORS,
    BENCH,
    REPO,
    mlserver_servers,
    render_project,
    results_dir,
    rotated,
    runtime_from,
    server_command,
    start_pinned,
)

sys.path.insert(0, str(BENCH))
import bench  # noqa: E402

TOKENS = 64
STREAM_PATH = "/inference.GRPCInferenceService/ModelStreamInfer"

MLSERVER_RUNTIME = f"""
from mlserver import MLModel
from mlserver.types import InferenceResponse, ResponseOutput


class TokenRuntime(MLModel):
    async def load(self) -> bool:
        return True

    async def predict_stream(self, payloads):
        async for payload in payloads:
            for _ in range({TOKENS}):
                yield InferenceResponse(
                    model_name=self.name,
                    outputs=[
                        ResponseOutput(
                            name="text_output", shape=[1], datatype="BYTES", data=[b"tok"]
                        )
                    ],
                )
"""

V2_PROMPT = {
    "inputs": [
        {"name": "text_input", "shape": [1], "datatype": "BYTES", "data": ["hello"]}
    ]
}


def servers(tmp: Path, only: list[str], before: list[str]) -> dict:
    """name -> (command with {http}/{grpc}/{metrics}, cwd, env, model, SSE body)"""
    project = render_project(tmp / "project", "tokens")
    earlier = {}
    for revision in before:
        directory = runtime_from(render_project(tmp / revision, "tokens"), revision)
        earlier[f"taichu-{revision}"] = (
            server_command(directory, {}),
            None,
            {},
            "ModelService",
            json.dumps({"text_input": "hello"}).encode(),
        )
    mlserver = tmp / "mlserver"
    mlserver.mkdir()
    (mlserver / "token_runtime.py").write_text(MLSERVER_RUNTIME)
    (mlserver / "settings.json").write_text(json.dumps({"host": "127.0.0.1"}))
    (mlserver / "model-settings.json").write_text(
        json.dumps({"name": "tokens", "implementation": "token_runtime.TokenRuntime"})
    )
    reference = REPO / "benchmarks" / "reference" / "token_echo.py"
    prompt = json.dumps({"text_input": "hello"}).encode()
    v2_prompt = json.dumps(V2_PROMPT).encode()  # MLServer's generate_stream wants v2
    every = {
        "taichu-3": (server_command(project, {}), None, {}, "ModelService", prompt),
        "bare": (
            f"{ANCHORS / 'ceiling' / 'bin' / 'python'} {reference} "
            "--http-port {http} --grpc-port {grpc}",
            None,
            {"BENCH_DIR": str(BENCH)},
            "tokens",
            prompt,
        ),
    }
    # grpcio's threaded server, a thread per stream as the generated server has them
    every["bare-threaded"] = (
        every["bare"][0] + " --threaded 1000",
        *every["bare"][1:],
    )
    for name, spec in mlserver_servers(mlserver, "tokens").items():
        every[name] = spec + (v2_prompt,)
    return {name: every[name] for name in only} | earlier


# -- the client (a process of its own, pinned to CPU 1) --------------------------------


async def sse_stream(port: int, path: str, body: bytes, until: float, out: list):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    clock = time.perf_counter
    while clock() < until:
        sent = clock()
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(head.decode(errors="replace"))
        first = last = 0.0
        count = 0
        while True:  # chunked transfer encoding, as uvicorn streams
            size = int((await reader.readline()).strip(), 16)
            if size == 0:
                await reader.readline()
                break
            chunk = await reader.readexactly(size + 2)
            found = chunk.count(b"data:")
            if found:
                last = clock()
                first = first or last
                count += found
        out.append((first - sent, count, last - first))
    writer.close()


async def grpc_stream(channel, body: bytes, until: float, out: list):
    call_method = channel.stream_stream(
        STREAM_PATH, request_serializer=None, response_deserializer=None
    )
    clock = time.perf_counter
    while clock() < until:
        sent = clock()
        first = last = 0.0
        count = 0
        async for _ in call_method(iter([body])):
            last = clock()
            first = first or last
            count += 1
        out.append((first - sent, count, last - first))


async def client(spec: dict) -> list:
    import grpc
    from v2proto import load

    until = time.perf_counter() + spec["seconds"]
    out: list = []
    if spec["protocol"] == "sse":
        body = spec["body"].encode()
        streams = [
            sse_stream(spec["http"], spec["path"], body, until, out)
            for _ in range(spec["streams"])
        ]
        await asyncio.gather(*streams)
        return out
    pb2, _ = load()
    request = pb2.ModelInferRequest(model_name=spec["model"])
    prompt = request.inputs.add(name="text_input", datatype="BYTES", shape=[1])
    prompt.contents.bytes_contents.append(b"hello")
    body = request.SerializeToString()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{spec['grpc']}") as channel:
        streams = [
            grpc_stream(channel, body, until, out) for _ in range(spec["streams"])
        ]
        await asyncio.gather(*streams)
    return out


def run_client(spec: dict) -> list:
    """The client, in a process pinned to CPU 1."""
    command = [
        "taskset",
        "-c",
        "1",
        sys.executable,
        __file__,
        "--client",
        json.dumps(spec),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(done.stderr[-800:])
    return json.loads(done.stdout)


# -- the driver ------------------------------------------------------------------------


def summary(generations: list, seconds: float, cpu_s: float) -> dict:
    complete = [g for g in generations if g[1] == TOKENS]
    if not complete:
        return {"error": f"no complete stream of {TOKENS} tokens: {generations[:3]}"}
    ttft = sorted(g[0] * 1000 for g in complete)
    per_stream = [(g[1] - 1) / g[2] for g in complete if g[2] > 0]
    tokens = sum(g[1] for g in generations)
    return {
        "ttft_p50_ms": statistics.median(ttft),
        "ttft_p99_ms": ttft[min(len(ttft) - 1, int(len(ttft) * 0.99))],
        "stream_tokens_s": statistics.median(per_stream) if per_stream else 0.0,
        "tokens_s": tokens / seconds,
        "cpu_us_per_token": cpu_s / tokens * 1e6,
        "incomplete": len(generations) - len(complete),
    }


def measure(name: str, spec: tuple, args, work: Path) -> dict:
    command, cwd, env, model, body = spec
    server, _, ports = start_pinned(command, cwd, env, work / f"{name}.log")
    cells = {}
    try:
        for protocol in ("grpc", "sse"):
            for streams in args.streams:
                client_spec = {
                    "protocol": protocol,
                    "http": ports["http"],
                    "grpc": ports["grpc"],
                    "path": f"/v2/models/{model}/generate_stream",
                    "model": model,
                    "body": body.decode(),
                    "streams": streams,
                }
                server.wait_idle()
                try:
                    run_client(client_spec | {"seconds": 1.0})  # warm-up
                    ticks = server.cpu_ticks()
                    generations = run_client(client_spec | {"seconds": args.seconds})
                    cpu_s = (server.cpu_ticks() - ticks) / os.sysconf("SC_CLK_TCK")
                    cell = summary(generations, args.seconds, cpu_s)
                except RuntimeError as error:
                    cell = {"error": " ".join(str(error).split())[-300:]}
                cells[f"{protocol} {streams}"] = cell
                print(f"  {name} {protocol} {streams}: {cell}", flush=True)
    finally:
        server.stop()
    return cells


def table(results: dict, keys: list[str]) -> str:
    lines = [
        "| server | stream | TTFT p50 ms | TTFT p99 ms | tokens/s per stream "
        "| tokens/s in all | server CPU µs per token | / bare |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    bare = results.get("bare", {})
    for name, cells in results.items():
        for key in keys:
            cell = cells.get(key, {})
            if "tokens_s" not in cell:
                lines.append(f"| {name} | {key} | {cell.get('error', 'n/a')} |||||")
                continue
            ratio = (
                f"{cell['tokens_s'] / bare[key]['tokens_s']:.2f}×"
                if bare.get(key, {}).get("tokens_s")
                else ""
            )
            lines.append(
                f"| {name} | {key} | {cell['ttft_p50_ms']:.2f} | {cell['ttft_p99_ms']:.2f} "
                f"| {cell['stream_tokens_s']:.0f} | {cell['tokens_s']:.0f} "
                f"| {cell['cpu_us_per_token']:.1f} | {ratio} |"
            )
    return "\n".join(lines) + "\n"


def medians(runs: list[dict]) -> dict:
    cells = {}
    for key in runs[0]:
        good = [run[key] for run in runs if "tokens_s" in run.get(key, {})]
        if not good:
            cells[key] = runs[0][key]
            continue
        cells[key] = {k: statistics.median(cell[k] for cell in good) for k in good[0]}
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--streams", default="1,64")
    parser.add_argument("--servers", default="taichu-3,bare,mlserver-pw0")
    parser.add_argument(
        "--before",
        default="",
        help="comma list of git revisions: their runtime serves the same project "
        "beside this one",
    )
    parser.add_argument("--out", default=None)
    parser.add_argument("--client", help=argparse.SUPPRESS)  # the client process
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(client(json.loads(args.client)))))
        return
    args.streams = [int(s) for s in args.streams.split(",")]

    out = results_dir(args.out)
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        specs = servers(
            Path(tmp),
            args.servers.split(","),
            list(filter(None, args.before.split(","))),
        )
        names = list(specs)
        for round_ in range(args.rounds):
            order = rotated(names, round_)
            print(f"round {round_ + 1}: {', '.join(order)}", flush=True)
            for name in order:
                bench.wait_cpu_idle("0,1")
                runs.setdefault(name, []).append(measure(name, specs[name], args, out))
    results = {name: medians(cells) for name, cells in runs.items()}
    keys = [f"{p} {s}" for p in ("grpc", "sse") for s in args.streams]
    (out / "raw.json").write_text(json.dumps(runs, indent=1))
    (out / "table.md").write_text(table(results, keys))
    for protocol in ("grpc", "sse"):
        shown = {
            name: cells
            for name, cells in results.items()
            if all("tokens_s" in cells.get(f"{protocol} {s}", {}) for s in args.streams)
        }
        curves(
            out / f"token_streams_{protocol}.png",
            f"{TOKENS}-token streams over {protocol.upper()}, 1 core",
            args.streams,
            {
                n: [c[f"{protocol} {s}"]["tokens_s"] for s in args.streams]
                for n, c in shown.items()
            },
            {
                n: [c[f"{protocol} {s}"]["ttft_p99_ms"] for s in args.streams]
                for n, c in shown.items()
            },
            x_label="streams at once",
            throughput_label="tokens per second, all streams",
            latency_label="p99 time to first token, ms",
        )
    print((out / "table.md").read_text())
    print(f"results: {out}")


if __name__ == "__main__":
    main()
