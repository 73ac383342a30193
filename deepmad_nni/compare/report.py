"""Reports of a comparison: CSV, a markdown table and a PNG of regret versus search GPU-hours (symlog axes)."""
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


REGRET_LINTHRESH = 0.1  # pp: the y axis is linear below this, logarithmic above (symlog)
REGRET_TICKS = (0, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)


def plot_regret(rows, path) -> Path:
    """One panel per (track, budget): mean regret against mean search GPU-hours, a line per strategy.

    Both axes are symlog.  y: linear from 0 to :data:`REGRET_LINTHRESH` (0.1 pp) and logarithmic above, so
    a regret of 0 (the budget's best network found) is drawn at 0, and 0.2 / 0.5 / 1 pp stay apart even when
    a poor strategy (NNI's GridSearch, 5-9 pp) shares the panel; nothing is clipped, every point is drawn
    at its value.  Curves that coincide (DeepMAD's strategies often train the same first designs) show as
    nested markers: the earlier ones in the legend are drawn wider."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

    panels = sorted({(r["track"], r["budget"]) for r in rows})
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(5.5 * max(len(panels), 1), 4.5), squeeze=False)
    for ax, (track, budget) in zip(axes[0], panels):
        strategies = sorted({r["strategy"] for r in rows if (r["track"], r["budget"]) == (track, budget)})
        top = 0.0
        for i, s in enumerate(strategies):
            pts = sorted((r["gpu_hours"], r["regret"]) for r in rows
                         if (r["track"], r["budget"], r["strategy"]) == (track, budget, s)
                         and not math.isnan(r["regret"]))
            if pts:
                top = max(top, max(p[1] for p in pts))
                # earlier curves drawn wider and with bigger markers: coinciding curves stay visible
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="os^vDP*Xph"[i % 10],
                        markersize=max(3.0, 9.0 - 0.7 * i), linewidth=max(1.0, 3.0 - 0.25 * i), alpha=0.85,
                        linestyle="-" if s.startswith("deepmad") else "--", label=s)
        ax.set_xscale("symlog", linthresh=0.1)
        ax.set_yscale("symlog", linthresh=REGRET_LINTHRESH, linscale=0.5)
        high = max(top * 1.4, 2 * REGRET_LINTHRESH)
        ax.set_ylim(-0.02 * REGRET_LINTHRESH, high)
        ax.yaxis.set_major_locator(FixedLocator([t for t in REGRET_TICKS if t <= high]))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_xlabel("search GPU-hours (0 = nothing trained)")
        ax.set_ylabel(f"regret (accuracy points; linear below {REGRET_LINTHRESH:g}, log above)")
        ax.set_title(f"{track}, budget {budget}")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
