"""PNG charts of the benchmarks' curves (matplotlib, only where the benchmarks run)."""

from __future__ import annotations

from pathlib import Path


def curves(
    path: Path,
    title: str,
    x: list,
    throughput: dict[str, list[float]],
    p99_ms: dict[str, list[float]],
    x_label: str = "requests in flight",
    throughput_label: str = "answers per second",
    latency_label: str = "p99 latency, ms",
    throughput_log: bool = False,
) -> None:
    """Two panels side by side: throughput and p99 against x, one line per server."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, values in throughput.items():
        left.plot(x, values, marker="o", label=name)
    for name, values in p99_ms.items():
        right.plot(x, values, marker="o", label=name)
    for axes, label in ((left, throughput_label), (right, latency_label)):
        axes.set_xscale("log", base=2)
        axes.set_xticks(x, [str(v) for v in x])
        axes.set_xlabel(x_label)
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
    right.set_yscale("log")
    if throughput_log:
        left.set_yscale("log")
    else:
        left.set_ylim(bottom=0)
    left.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
