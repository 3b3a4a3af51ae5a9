"""Large tensors over HTTP: the binary tensor extension against JSON, on one server.

    python benchmarks/binary_vs_json.py [--rounds 3] [--duration 4] [--elements 65536]

Renders the documented identity project, starts it pinned to CPU 0 (the shared
harness's Server), and loads it with wrk on CPU 1 with the same FP32 [1, N] tensor
sent two ways, interleaved over rounds:
- json:   the v2 JSON body (what ../shared/bench's http-large sends);
- binary: Triton's binary extension as tritonclient sends it with binary_data=True:
  a JSON header (`Inference-Header-Content-Length`) then the raw bytes, and the
  output asked back as raw bytes.
Prints (and writes to benchmarks/results/<name>/binary.md) medians and the ratio.
Not part of CI.
"""

import argparse
import json
import os
import re
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from common import BENCH, free_port, render_project, results_dir, server_command

sys.path.insert(0, str(BENCH))
import bench  # the shared harness: Server, pin, payload values

INPUT = "input-0"

WRK_LUA = """
local f = assert(io.open(%(body)s, "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
%(headers)s
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.read + summary.errors.connect
    + summary.errors.write + summary.errors.timeout, latency:percentile(50)))
end
"""


def bodies(elements: int) -> dict:
    """mode -> (body, headers); the values are exact in FP32 and short in JSON."""
    values = bench.tensor_values(elements)
    tensor = {"name": INPUT, "datatype": "FP32", "shape": [1, elements]}
    as_json = json.dumps({"inputs": [{**tensor, "data": values}]}).encode()
    raw = struct.pack(f"<{elements}f", *values)
    header = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}],
            "outputs": [{"name": INPUT, "parameters": {"binary_data": True}}],
        }
    ).encode()
    return {
        "json": (as_json, {"Content-Type": "application/json"}),
        "binary": (
            header + raw,
            {
                "Content-Type": "application/octet-stream",
                "Inference-Header-Content-Length": str(len(header)),
            },
        ),
    }


def check(url: str, body: bytes, headers: dict, elements: int) -> None:
    """One request of each kind must come back with the values it sent."""
    import urllib.request

    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as reply:
        data = reply.read()
        length = reply.headers.get("Inference-Header-Content-Length")
    values = bench.tensor_values(elements)
    if length is None:
        returned = json.loads(data)["outputs"][0]["data"]
    else:
        raw = data[int(length) :]
        returned = list(struct.unpack(f"<{elements}f", raw))
    if returned != values:
        raise SystemExit(f"wrong reply for {headers['Content-Type']}")


def run_wrk(url, body, headers, connections, duration, tmp, timeout=2) -> dict:
    body_path = Path(tmp) / f"body-{len(body)}"
    body_path.write_bytes(body)
    lua = Path(tmp) / f"post-{len(body)}.lua"
    header_lines = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    lua.write_text(
        WRK_LUA % {"body": json.dumps(str(body_path)), "headers": header_lines}
    )
    command = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "-s", str(lua)]
    command += [f"--timeout={timeout}s", url]
    output = subprocess.run(
        bench.pin(command, "1"), capture_output=True, text=True, check=True
    ).stdout
    requests, micros, errors, p50 = map(
        int, re.search(r"RESULT (\d+) (\d+) (\d+) (\d+)", output).groups()
    )
    return {
        "rps": requests / (micros / 1e6),
        "requests": requests,
        "errors": errors,
        "p50_ms": p50 / 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=4)
    parser.add_argument("--elements", type=int, default=65536)
    parser.add_argument("--concurrency", default="1,64")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = results_dir(args.out)
    kinds = bodies(args.elements)
    results = {}  # (mode, connections) -> list of runs
    with tempfile.TemporaryDirectory() as tmp:
        project = render_project(Path(tmp) / "project", "")
        http, grpc = free_port(), free_port()
        command = server_command(project, {}).format(http=http, grpc=grpc)
        server = bench.Server(command, None, {}, "0", str(out / "binary-server.log"))
        server.start()
        base = f"http://127.0.0.1:{http}"
        try:
            server.wait_ready(
                lambda: bench.http_get_status(base + "/v2/health/ready") == 200, 60
            )
            url = base + "/v2/models/ModelService/infer"
            for body, headers in kinds.values():
                check(url, body, headers, args.elements)
            for _ in range(args.rounds):
                for connections in map(int, args.concurrency.split(",")):
                    for mode, (body, headers) in kinds.items():
                        run_wrk(url, body, headers, connections, 1, tmp)  # warm-up
                        run = run_wrk(
                            url, body, headers, connections, args.duration, tmp
                        )
                        results.setdefault((mode, connections), []).append(run)
                        print(mode, connections, round(run["rps"], 1), flush=True)
        finally:
            server.stop()

    title = (
        f"FP32 [1, {args.elements}] over HTTP, one server (CPU 0), wrk on CPU 1, "
        f"medians of {args.rounds} interleaved rounds of {args.duration} s."
    )
    lines = [
        title,
        "",
        "| body | connections | req/s | p50 ms | errors | binary / json |",
        "|---|---|---|---|---|---|",
    ]
    for connections in map(int, args.concurrency.split(",")):
        medians = {}
        for mode in kinds:
            runs = results[(mode, connections)]
            medians[mode] = statistics.median(r["rps"] for r in runs)
            p50 = statistics.median(r["p50_ms"] for r in runs)
            errors = sum(r["errors"] for r in runs)
            ratio = medians[mode] / medians["json"]
            lines.append(
                f"| {mode} | {connections} | {medians[mode]:.0f} | {p50:.2f} "
                f"| {errors} | {ratio:.2f} |"
            )
    table = "\n".join(lines) + "\n"
    (out / "binary.md").write_text(table)
    print(table)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
