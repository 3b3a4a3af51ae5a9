"""A CPU model of real cost with dynamic batching, against MLServer's adaptive batching.

    python benchmarks/real_model.py --rounds 2 --duration 8

The model is benchmarks/models/mlp_model.py (256 -> 1024 -> 1024 -> 16, numpy, one
BLAS thread): the same code runs in the generated server (benchmarks/services/mlp.py,
max_batch_size and max_batch_delay_ms) and in MLServer 1.7 (a custom runtime with
max_batch_size and max_batch_time), both with and without MLServer's inference pool
(parallel_workers 1 and 0). Each server is pinned to CPU 0, wrk to CPU 1; every
request is x [1, 256] as v2 JSON; one answer per server is checked against the model
run here. For each concurrency: answers per second, p50 and p99. Servers are started
in turn, their order rotating by round; medians over rounds. Writes table.md,
raw.json and real_model.png (throughput and p99 against concurrency) to --out.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
from charts import curves
from common import (
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
sys.path.insert(0, str(REPO / "benchmarks" / "models"))
import bench  # noqa: E402
from mlp_model import INPUTS, MLP  # noqa: E402

MODEL_FILE = REPO / "benchmarks" / "models" / "mlp_model.py"
ONE_BLAS_THREAD = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}

MLSERVER_RUNTIME = """
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse

from mlp_model import MLP


class MLPRuntime(MLModel):
    async def load(self) -> bool:
        self.model = MLP()
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        y = self.model(x)
        return InferenceResponse(
            model_name=self.name, outputs=[NumpyCodec.encode_output("y", y)]
        )
"""


def mlserver_dir(directory: Path, batch: int, delay_ms: float) -> Path:
    directory.mkdir()
    shutil.copy(MODEL_FILE, directory)
    (directory / "mlp_runtime.py").write_text(MLSERVER_RUNTIME)
    (directory / "settings.json").write_text(json.dumps({"host": "127.0.0.1"}))
    settings = {"name": "mlp", "implementation": "mlp_runtime.MLPRuntime"}
    if batch > 1:
        settings |= {"max_batch_size": batch, "max_batch_time": delay_ms / 1000}
    (directory / "model-settings.json").write_text(json.dumps(settings))
    return directory


def servers(
    tmp: Path, batch: int, delay_ms: float, only: list[str], before: list[str]
) -> dict:
    """name -> (command with {http}/{grpc}/{metrics}, cwd, environment, model name)"""
    project = render_project(tmp / "project", "mlp")
    shutil.copy(MODEL_FILE, project)
    ours = {
        "TAICHU_MAX_BATCH_SIZE": str(batch),
        "TAICHU_MAX_BATCH_DELAY_MS": str(delay_ms),
    }
    earlier = {}
    for revision in before:
        directory = render_project(tmp / f"project-{revision}", "mlp")
        shutil.copy(MODEL_FILE, directory)
        runtime_from(directory, revision)
        earlier[f"taichu-{revision}"] = (
            server_command(directory, ours),
            None,
            {},
            "ModelService",
        )
    mlserver = mlserver_dir(tmp / "mlserver", batch, delay_ms)
    every = {
        "taichu-3": (server_command(project, ours), None, {}, "ModelService"),
        **mlserver_servers(mlserver, "mlp"),
    }
    return {name: every[name] for name in only} | earlier


def request_body(rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    x = rng.standard_normal((1, INPUTS)).astype(np.float32)
    document = {
        "inputs": [
            {
                "name": "x",
                "shape": [1, INPUTS],
                "datatype": "FP32",
                "data": x.ravel().tolist(),
            }
        ]
    }
    return json.dumps(document).encode(), x


def check_answer(url: str, body: bytes, x: np.ndarray) -> None:
    answer = httpx.post(url, content=body, headers={"content-type": "application/json"})
    answer.raise_for_status()
    output = answer.json()["outputs"][0]
    y = np.asarray(output["data"], np.float32).reshape(output["shape"])
    if not np.allclose(y, MLP()(x), rtol=1e-3, atol=1e-4):
        raise RuntimeError(f"{url} answered another y: {output}")


def measure(name, spec, args, work: Path, body: bytes, x: np.ndarray) -> dict:
    command, cwd, env, model = spec
    server, http, _ = start_pinned(
        command, cwd, ONE_BLAS_THREAD | env, work / f"{name}.log"
    )
    url = f"{http}/v2/models/{model}/infer"
    cells = {}
    try:
        check_answer(url, body, x)
        for concurrency in args.concurrency:
            server.wait_idle()
            cells[concurrency] = bench.run_wrk(
                url, body, concurrency, args.duration, args.warmup, "1", str(work), 30
            )
            print(
                f"  {name} c{concurrency}: {cells[concurrency]['rps']:.0f}/s "
                f"p50 {cells[concurrency]['p50_ms']:.1f} ms "
                f"p99 {cells[concurrency]['p99_ms']:.1f} ms "
                f"errors {cells[concurrency]['errors']}",
                flush=True,
            )
    finally:
        server.stop()
    return cells


def median_cells(runs: list[dict], concurrencies: list[int]) -> dict:
    return {
        c: {
            key: statistics.median(run[c][key] for run in runs)
            for key in ("rps", "p50_ms", "p99_ms", "errors")
        }
        | {
            "range": (
                min(run[c]["rps"] for run in runs),
                max(run[c]["rps"] for run in runs),
            )
        }
        for c in concurrencies
    }


def table(results: dict, concurrencies: list[int]) -> str:
    peers = [name for name in results if name != "taichu-3"]
    lines = [
        "| server | in flight | answers/s (range) | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, cells in results.items():
        for c in concurrencies:
            cell = cells[c]
            low, high = cell["range"]
            lines.append(
                f"| {name} | {c} | {cell['rps']:.0f} ({low:.0f}-{high:.0f}) "
                f"| {cell['p50_ms']:.1f} | {cell['p99_ms']:.1f} | {cell['errors']:.0f} |"
            )
    if "taichu-3" in results and peers:
        lines += [
            "",
            "| in flight | "
            + " | ".join(f"throughput / {p} | p99 / {p}" for p in peers)
            + " |",
            "|---:|" + "---:|---:|" * len(peers),
        ]
        ours = results["taichu-3"]
        for c in concurrencies:
            ratios = [
                (
                    f"{ours[c]['rps'] / results[p][c]['rps']:.2f}× | "
                    f"{ours[c]['p99_ms'] / results[p][c]['p99_ms']:.2f}×"
                    if results[p][c]["rps"]
                    else "n/a | n/a"
                )
                for p in peers
            ]
            lines.append(f"| {c} | " + " | ".join(ratios) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--concurrency", default="1,16,64,256")
    parser.add_argument("--batch", type=int, default=32, help="max batch size, both")
    parser.add_argument("--delay-ms", type=float, default=5, help="longest batch wait")
    parser.add_argument("--servers", default="taichu-3,mlserver,mlserver-pw0")
    parser.add_argument(
        "--before",
        default="",
        help="comma list of git revisions: their runtime serves the same project "
        "beside this one (e.g. the commit before a change)",
    )
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.concurrency = [int(c) for c in args.concurrency.split(",")]

    out = results_dir(args.out)
    body, x = request_body(np.random.default_rng(1))
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        specs = servers(
            Path(tmp),
            args.batch,
            args.delay_ms,
            args.servers.split(","),
            list(filter(None, args.before.split(","))),
        )
        names = list(specs)
        for round_ in range(args.rounds):
            order = rotated(names, round_)
            print(f"round {round_ + 1}: {', '.join(order)}", flush=True)
            for name in order:
                bench.wait_cpu_idle("0,1")
                cells = measure(name, specs[name], args, out, body, x)
                runs.setdefault(name, []).append(cells)
    results = {name: median_cells(runs[name], args.concurrency) for name in runs}
    (out / "raw.json").write_text(json.dumps(runs, indent=1))
    (out / "table.md").write_text(table(results, args.concurrency))
    curves(
        out / "real_model.png",
        f"MLP 256-1024-1024-16, batches of up to {args.batch}, HTTP JSON, 1 core",
        args.concurrency,
        {
            name: [cells[c]["rps"] for c in args.concurrency]
            for name, cells in results.items()
        },
        {
            name: [cells[c]["p99_ms"] for c in args.concurrency]
            for name, cells in results.items()
        },
    )
    print((out / "table.md").read_text())
    print(f"results: {out}")


if __name__ == "__main__":
    main()
