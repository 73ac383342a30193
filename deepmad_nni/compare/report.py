"""Reports of a comparison: CSV, a markdown table and a PNG of regret versus search GPU-hours."""
from __future__ import annotations

import csv
import math
from pathlib import Path

COLUMNS = ("track", "budget", "strategy", "N", "trained", "gpu_hours", "cpu_s", "accuracy", "accuracy_std",
           "regret", "regret_std", "pick_flops", "pick_params", "reference", "seeds")


def write_csv(rows, path) -> Path:
    path = Path(path)
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: r[k] for k in COLUMNS})
    return path


def _num(x, fmt):
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def markdown_table(rows) -> str:
    head = ("| track | budget (MACs) | strategy | N | candidates trained | search GPU-h | search CPU-s | "
            "accuracy found (%) | regret (pp) | pick MFLOPs | pick M params | seeds |")
    lines = [head, "|" + "---|" * 12]
    for r in rows:
        lines.append(
            f"| {r['track']} | {r['budget']} | {r['strategy']} | {r['N']} | {_num(r['trained'], '.1f')} | "
            f"{_num(r['gpu_hours'], '.2f')} | {_num(r['cpu_s'], '.2f')} | "
            f"{_num(r['accuracy'], '.2f')} ± {_num(r['accuracy_std'], '.2f')} | "
            f"{_num(r['regret'], '.2f')} ± {_num(r['regret_std'], '.2f')} | {_num(r['pick_flops'] / 1e6, '.1f')} | "
            f"{_num(r['pick_params'] / 1e6, '.2f')} | {r['seeds']} |")
    return "\n".join(lines) + "\n"


def plot_regret(rows, path) -> Path:
    """One panel per (track, budget): mean regret against mean search GPU-hours, a line per strategy."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["track"], r["budget"]) for r in rows})
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5 * max(len(panels), 1), 4), squeeze=False)
    for ax, (track, budget) in zip(axes[0], panels):
        strategies = sorted({r["strategy"] for r in rows if (r["track"], r["budget"]) == (track, budget)})
        for s in strategies:
            pts = sorted((r["gpu_hours"], r["regret"]) for r in rows
                         if (r["track"], r["budget"], r["strategy"]) == (track, budget, s)
                         and not math.isnan(r["regret"]))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=s)
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_xlabel("search GPU-hours (0 = nothing trained)")
        ax.set_ylabel("regret (accuracy points)")
        ax.set_title(f"{track}, budget {budget}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
