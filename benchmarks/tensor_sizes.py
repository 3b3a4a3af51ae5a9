"""Throughput and memory from 1 KiB to 64 MiB tensors, HTTP with the binary extension.

    python benchmarks/tensor_sizes.py --rounds 3 --seconds 4

One FP32 tensor of each size goes to the generated identity server and comes back
(binary in and out, as tritonclient sends it with binary_data=True); the same bytes go
to a bare ASGI echo on uvicorn (benchmarks/reference/bytes_echo.py), which answers
with what it was sent and parses nothing: the stack's ceiling. wrk sends them one at a
time (1 connection) and, with --connections, several at once. Reported: MB/s of
tensor one way, its ratio to the bare echo and to a memcpy of the same size in this
process (numpy), and how much one request grows the worker's peak resident memory
(VmHWM) against its size on the wire, and the CPU time of the server's processes per
request under each load. Servers pinned to CPU 0, wrk to CPU 1; servers started in
turn, their order rotating by round; medians over rounds. The generated
server runs with max_request_size and max_decoded_size raised to 256 MiB, since a
64 MiB tensor plus its JSON header is over the default limit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from binary_vs_json import run_wrk
from charts import curves
from common import (
    BENCH,
    REPO,
    render_project,
    results_dir,
    rotated,
    runtime_from,
    server_command,
    start_pinned,
)
from request_memory import status_kb

sys.path.insert(0, str(BENCH))
import bench  # noqa: E402

KIB = 1024
TICKS = os.sysconf("SC_CLK_TCK")  # of the CPU times in /proc
SIZES = [KIB, 16 * KIB, 256 * KIB, 4 * KIB * KIB, 64 * KIB * KIB]
LIMITS = {
    "TAICHU_MAX_REQUEST_SIZE": str(256 * KIB * KIB),
    "TAICHU_MAX_DECODED_SIZE": str(256 * KIB * KIB),
    "TAICHU_ACCESS_LOG": "true",
}


def request(size: int) -> tuple[bytes, dict, np.ndarray]:
    x = np.arange(size // 4, dtype=np.float32)
    raw = x.tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [1, x.size],
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "x", "parameters": {"binary_data": True}}],
        }
    ).encode()
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }
    return header + raw, headers, x


def check(url: str, body: bytes, headers: dict, x: np.ndarray) -> None:
    answer = httpx.post(url, content=body, headers=headers, timeout=60)
    answer.raise_for_status()
    length = int(answer.headers["inference-header-content-length"])
    raw = answer.content[length:]
    if not np.array_equal(np.frombuffer(raw[-x.nbytes :], np.float32), x):
        raise RuntimeError(f"{url} did not send the tensor back")


def memcpy_mb_s(size: int) -> float:
    source = np.ones(size, np.uint8)
    target = np.empty_like(source)
    best = float("inf")
    for _ in range(max(3, min(200, (256 * KIB * KIB) // size))):
        started = time.perf_counter()
        np.copyto(target, source)
        best = min(best, time.perf_counter() - started)
    return size / best / 1e6


def worker_of(server: bench.Server) -> int:
    """The process with the largest resident size: the worker (or the bare echo)."""
    tree = bench.proc_tree(server.proc.pid)
    return max(tree, key=lambda pid: status_kb(pid, "VmRSS"))


def peak_growth(pid: int, url: str, body: bytes, headers: dict) -> int:
    time.sleep(1.0)  # memory of what came before is given back
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # peak := current
    before = status_kb(pid, "VmRSS")
    httpx.post(url, content=body, headers=headers, timeout=60).raise_for_status()
    return (status_kb(pid, "VmHWM") - before) * KIB


def measure(name: str, command: str, args, work: Path) -> dict:
    server, http, _ = start_pinned(command, None, {}, work / f"{name}.log", 60)
    url = f"{http}/v2/models/ModelService/infer"
    cells = {}
    try:
        pid = worker_of(server)
        for size in args.sizes:
            body, headers, x = request(size)
            check(url, body, headers, x)
            cell = {"peak_growth": peak_growth(pid, url, body, headers) / len(body)}
            for connections in args.connections:
                server.wait_idle()
                ticks = server.cpu_ticks()
                with tempfile.TemporaryDirectory() as tmp:
                    result = run_wrk(
                        url, body, headers, connections, args.seconds, tmp, timeout=30
                    )
                used = (server.cpu_ticks() - ticks) / TICKS
                cell[f"mb_s c{connections}"] = result["rps"] * size / 1e6
                cell[f"cpu_us c{connections}"] = used / result["requests"] * 1e6
                cell[f"p50_ms c{connections}"] = result["p50_ms"]
                cell[f"errors c{connections}"] = result["errors"]
            cells[size] = cell
            print(f"  {name} {size // KIB} KiB: {cell}", flush=True)
    finally:
        server.stop()
    return cells


def label(size: int) -> str:
    return f"{size // KIB // KIB} MiB" if size >= KIB * KIB else f"{size // KIB} KiB"


def table(results: dict, memcpy: dict, connections: list[int]) -> str:
    bare = results["bare"]
    first = connections[0]
    lines = [
        "| tensor | server | "
        + " | ".join(f"MB/s c{c} | / bare c{c} | CPU µs c{c}" for c in connections)
        + f" | p50 ms c{first} | / memcpy c{first} | peak growth × wire |",
        "|---|---|" + "---:|---:|---:|" * len(connections) + "---:|---:|---:|",
    ]
    for size in memcpy:
        for name, cells in results.items():
            cell = cells[size]
            rates = " | ".join(
                f"{cell[f'mb_s c{c}']:.0f} "
                f"| {cell[f'mb_s c{c}'] / bare[size][f'mb_s c{c}']:.2f}× "
                f"| {cell[f'cpu_us c{c}']:.0f}"
                for c in connections
            )
            lines.append(
                f"| {label(size)} | {name} | {rates} | {cell[f'p50_ms c{first}']:.2f} "
                f"| {cell[f'mb_s c{first}'] / memcpy[size]:.3f} "
                f"| {cell['peak_growth']:.2f} |"
            )
    sizes = ", ".join(f"{label(size)} {memcpy[size]:.0f}" for size in memcpy)
    return "\n".join(lines) + f"\n\nmemcpy in this process, MB/s: {sizes}\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", default="1,8")
    parser.add_argument(
        "--sizes",
        default=",".join(str(size // KIB) for size in SIZES),
        help="comma list of tensor sizes in KiB",
    )
    parser.add_argument(
        "--before",
        default="",
        help="comma list of git revisions: their runtime serves beside this one",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.connections = [int(c) for c in args.connections.split(",")]
    args.sizes = [int(size) * KIB for size in args.sizes.split(",")]

    out = results_dir(args.out)
    memcpy = {size: memcpy_mb_s(size) for size in args.sizes}
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = render_project(Path(tmp) / "project", "")
        echo = REPO / "benchmarks" / "reference" / "bytes_echo.py"
        commands = {
            "taichu-3": server_command(project, LIMITS),
            "bare": f"{sys.executable} {echo} --port {{http}}",
        }
        for revision in filter(None, args.before.split(",")):
            earlier = runtime_from(render_project(Path(tmp) / revision, ""), revision)
            commands[f"taichu-{revision}"] = server_command(earlier, LIMITS)
        names = list(commands)
        for round_ in range(args.rounds):
            order = rotated(names, round_)
            print(f"round {round_ + 1}: {', '.join(order)}", flush=True)
            for name in order:
                bench.wait_cpu_idle("0,1")
                runs.setdefault(name, []).append(
                    measure(name, commands[name], args, out)
                )
    results = {
        name: {
            size: {
                key: statistics.median(run[size][key] for run in cells)
                for key in cells[0][size]
            }
            for size in args.sizes
        }
        for name, cells in runs.items()
    }
    (out / "raw.json").write_text(json.dumps(runs, indent=1))
    (out / "table.md").write_text(table(results, memcpy, args.connections))
    x = [size // KIB for size in args.sizes]
    first = args.connections[0]
    lines = {
        name: [results[name][s][f"mb_s c{first}"] for s in args.sizes]
        for name in results
    }
    curves(
        out / "tensor_sizes.png",
        f"One FP32 tensor there and back, HTTP binary extension, {first} connection(s), 1 core",
        x,
        lines | {"memcpy": [memcpy[s] for s in args.sizes]},
        {
            name: [results[name][s][f"p50_ms c{first}"] for s in args.sizes]
            for name in results
        },
        x_label="tensor size, KiB",
        throughput_label="MB/s of tensor, one way",
        latency_label="p50 latency, ms",
        throughput_log=True,
    )
    print((out / "table.md").read_text())
    print(f"results: {out}")


if __name__ == "__main__":
    main()
