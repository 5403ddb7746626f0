"""The speedup chart of a benchmark report: each contender's speedup over NumPy, per workload.

matplotlib is the optional `plot` extra (`pip install 'graphflow[plot]'`); it
is imported only when a chart is drawn, and its absence is a one-line message.
"""

from __future__ import annotations

import os
from typing import Any

INSTALL = "pip install 'graphflow[plot]' (or: pip install matplotlib)"


class PlotUnavailable(Exception):
    """matplotlib cannot be imported; the message says how to install it."""


def require_matplotlib() -> Any:
    """Imports matplotlib with a file-only backend and returns pyplot.

    Raises:
      PlotUnavailable: matplotlib is not installed (or fails to import).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # no display needed: the chart goes to a file
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise PlotUnavailable(
            f"--plot needs matplotlib, which cannot be imported ({e}); install it: {INSTALL}"
        ) from None
    return plt


def speedups(report: dict[str, Any]) -> tuple[list[str], dict[str, list[float | None]]]:
    """(workload ids, {contender: NumPy median / its median per workload, None if not timed})."""
    timed = [w for w in report["workloads"] if not w["cold_start"]]
    ids = [w["id"] for w in timed]
    contenders: dict[str, list[float | None]] = {}
    for k, w in enumerate(timed):
        for r in w["results"]:
            if r["mode"] == "numpy":
                continue
            row = contenders.setdefault(r["contender"], [None] * len(timed))
            ratio = r.get("ratio_to_numpy")
            if r["status"] == "ok" and isinstance(ratio, float) and ratio > 0:
                row[k] = 1.0 / ratio
    return ids, contenders


def plot_speedups(report: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Draws a grouped bar chart (log scale; 1 = NumPy) of `report` into `path` (PNG, SVG, ...).

    Raises:
      PlotUnavailable: matplotlib is not installed.
    """
    plt = require_matplotlib()
    ids, contenders = speedups(report)
    figure, axes = plt.subplots(figsize=(max(6.0, 1.2 * len(ids) + 3.0), 4.5))
    width = 0.8 / max(1, len(contenders))
    colors = plt.get_cmap("tab20").colors  # distinct for up to 20 contenders
    for k, (label, values) in enumerate(contenders.items()):
        xs = [i + (k - (len(contenders) - 1) / 2) * width for i in range(len(ids))]
        heights = [v if v is not None else 0.0 for v in values]
        axes.bar(xs, heights, width, label=label, color=colors[k % len(colors)])
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_yscale("log")
    axes.set_xticks(range(len(ids)), ids)
    axes.set_ylabel("speedup over NumPy (median; higher is faster)")
    machine = report["machine"]
    axes.set_title(f"graphflow bench on {machine['cpu']}", fontsize=9)
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
