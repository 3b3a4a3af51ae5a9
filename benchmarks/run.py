"""Benchmark a generated project with the shared harness, side by side with the anchors.

    python benchmarks/run.py                                  # our server, default variant
    python benchmarks/run.py --variants default,no-metrics    # governance cost, one run
    python benchmarks/run.py --anchors mlserver-pw0,kserve,fastapi,grpc-aio --stream
    python benchmarks/run.py --projects before=/tmp/before    # beside an earlier render

It renders a project with `taichu_serve init` (the documented identity
customize_service.py), then runs ../shared/bench/anchors/run_anchors.py with each
variant as an extra server: every server is started by the harness, pinned to CPU 0,
load on CPU 1, servers interleaved over rounds, medians reported. Results go to
benchmarks/results/<name>/ (table.md, raw.json, logs). Not part of CI.
"""

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from common import BENCH, render_project, results_dir, server_command

# name -> environment of the generated server
VARIANTS = {
    "default": {},
    "no-metrics": {"TAICHU_METRICS": "false"},
    "no-access-log": {"TAICHU_ACCESS_LOG": "false"},
    "workers-2": {"TAICHU_WORKERS": "2"},
    "batch-8": {"TAICHU_MAX_BATCH_SIZE": "8", "TAICHU_MAX_BATCH_DELAY_MS": "5"},
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--variants", default="default", help=f"comma list of {', '.join(VARIANTS)}"
    )
    parser.add_argument(
        "--anchors",
        default="",
        help="comma list of anchors (run_anchors.py); default: fastapi",
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=2)
    parser.add_argument("--concurrency", default="1,64")
    parser.add_argument(
        "--scenarios", default="http-small,http-large,grpc-small,grpc-large"
    )
    parser.add_argument("--stream", action="store_true", help="also ModelStreamInfer")
    parser.add_argument("--out", default=None, help="results directory")
    parser.add_argument(
        "--service",
        default="",
        help="a model of benchmarks/services/ (default: identity)",
    )
    parser.add_argument(
        "--projects",
        default="",
        help="comma list of NAME=DIR: projects rendered (or edited) before, e.g. by "
        "the previous commit, run as extra servers beside this one",
    )
    args = parser.parse_args()

    out = results_dir(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        project = render_project(Path(tmp) / "project", args.service)
        command = [
            sys.executable,
            str(BENCH / "anchors" / "run_anchors.py"),
            "--rounds", str(args.rounds),
            "--duration", str(args.duration),
            "--warmup", str(args.warmup),
            "--concurrency", args.concurrency,
            "--scenarios", args.scenarios,
            "--out", str(out),
        ]  # fmt: skip
        if args.stream:
            command.append("--stream")
        # At least the FastAPI ceiling runs beside us, for the ratios.
        command += ["--only", args.anchors or "fastapi"]
        for variant in args.variants.split(","):
            name = "taichu-3" if variant == "default" else f"taichu-3-{variant}"
            extra = (
                f"{name}|{server_command(project, VARIANTS[variant])}|ModelService|1"
            )
            command += ["--extra", extra]
        for given in filter(None, args.projects.split(",")):
            name, directory = given.split("=", 1)
            command += [
                "--extra",
                f"{name}|{server_command(Path(directory), {})}|ModelService|1",
            ]
        subprocess.run(command, check=True)
    print(f"results: {out}/table.md")


if __name__ == "__main__":
    main()
