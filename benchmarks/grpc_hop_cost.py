"""What one hand-over costs a grpc.aio server, side by side in one run.

    python benchmarks/grpc_hop_cost.py [--rounds 3] [--duration 4]

Runs the shared harness (grpc-small, 64 concurrent) against reference/grpc_echo.py
with --hop none, await, thread and sync, and against the generated identity project,
interleaved over rounds, and prints medians with the ratio to the bare echo. It shows
how much of the gap to the bare echo any server pays that runs the model off the
event loop (docs/benchmarks.md). Not part of CI.
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from common import BENCH, free_port, render_project, results_dir, server_command

ECHO = Path(__file__).resolve().parent / "reference" / "grpc_echo.py"


def measure(command: str, model: str, args, log: Path) -> dict:
    port = free_port()
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        subprocess.run(
            [
                sys.executable, str(BENCH / "bench.py"),
                "--grpc", f"127.0.0.1:{port}", "--model", model,
                "--scenarios", "grpc-small", "--concurrency", args.concurrency,
                "--duration", str(args.duration), "--warmup", "1",
                "--server-cmd", command.format(grpc=port, http=free_port()),
                "--server-log", str(log), "--json", result.name, "--quiet",
            ],
            check=True,
        )  # fmt: skip
        return json.load(open(result.name))["results"][0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4)
    parser.add_argument("--concurrency", default="64")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = results_dir(args.out)
    with tempfile.TemporaryDirectory() as tmp:
        project = render_project(Path(tmp) / "project", "")
        servers = {
            f"echo, hop {hop}": (
                f"{sys.executable} {ECHO} --port {{grpc}} --hop {hop}",
                "echo",
            )
            for hop in ("none", "await", "thread", "sync", "sync-thread")
        }
        servers["taichu-3 (identity project)"] = (
            server_command(project, {}),
            "ModelService",
        )
        rates = {name: [] for name in servers}
        for round_number in range(args.rounds):
            names = list(servers)
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                command, model = servers[name]
                log = out / f"hop-{len(rates[name])}-{name.split()[0]}.log"
                rate = measure(command, model, args, log)["rps"]
                rates[name].append(rate)
                print(f"round {round_number + 1}: {name}: {rate:.0f} req/s", flush=True)
    ceiling = statistics.median(rates["echo, hop none"])
    title = (
        f"grpc-small at {args.concurrency} concurrent (h2load), server on CPU 0, "
        f"medians of {args.rounds} interleaved rounds of {args.duration:g} s."
    )
    lines = [
        title,
        "",
        "| server | req/s | ratio to the bare echo |",
        "|---|---|---|",
    ]
    for name, values in rates.items():
        rate = statistics.median(values)
        lines.append(f"| {name} | {rate:.0f} | {rate / ceiling:.2f} |")
    table = "\n".join(lines) + "\n"
    (out / "hop.md").write_text(table)
    print(table)


if __name__ == "__main__":
    main()
