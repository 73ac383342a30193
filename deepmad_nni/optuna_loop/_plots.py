"""PNG plots of a tuning study (matplotlib, Agg backend): history, rho_0 vs accuracy, Pareto front."""
from __future__ import annotations

from pathlib import Path


def _completed(study):
    from optuna.trial import TrialState
    return [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if "accuracy" in t.user_attrs]


def pareto_front(points):
    """Indices of the points (accuracy, flops) that no other point beats in both (higher acc, lower FLOPs)."""
    front = []
    for i, (a, f) in enumerate(points):
        if not any((a2 >= a and f2 <= f) and (a2 > a or f2 < f) for a2, f2 in points):
            front.append(i)
    return front


def write_plots(study, out_dir) -> dict:
    """Write ``history.png``, ``rho_accuracy.png`` and ``pareto.png`` to ``out_dir``; return their paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    trials = _completed(study)
    number = [t.number for t in trials]
    acc = [t.user_attrs["accuracy"] for t in trials]
    paths = {}

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter(number, acc, s=14, label="trial")
    best, run = [], float("-inf")
    for a in acc:
        run = max(run, a)
        best.append(run)
    ax.step(number, best, where="post", color="C3", label="best so far")
    ax.set(xlabel="trial", ylabel="accuracy", title=f"Optimisation history: {study.study_name}")
    ax.legend(loc="lower right")
    paths["history"] = _save(fig, out_dir / "history.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    rho = [t.params.get("rho_0", float("nan")) for t in trials]
    beta = [t.params.get("beta", 10.0) for t in trials]
    sc = ax.scatter(rho, acc, c=beta, cmap="viridis", s=18)
    fig.colorbar(sc, ax=ax, label="beta")
    ax.set_xscale("log")
    ax.set(xlabel="rho_0 (effectiveness bound)", ylabel="accuracy", title="rho_0 vs accuracy")
    paths["rho_accuracy"] = _save(fig, out_dir / "rho_accuracy.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    flops = [t.user_attrs["flops"] / 1e6 for t in trials]
    ax.scatter(flops, acc, s=14, color="0.6", label="designs")
    front = sorted(pareto_front(list(zip(acc, flops))), key=lambda i: flops[i])
    ax.plot([flops[i] for i in front], [acc[i] for i in front], "o-", color="C3", label="Pareto front")
    ax.set(xlabel="FLOPs (M MACs)", ylabel="accuracy", title="Accuracy vs FLOPs")
    ax.legend(loc="lower right")
    paths["pareto"] = _save(fig, out_dir / "pareto.png")
    return paths


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)
