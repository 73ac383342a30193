"""``compare(...)``: every strategy, budget and seed on one track, resumable, with progress and reports.

Outputs under ``out_dir``: ``runs.jsonl`` (one line per finished (strategy, budget, seed, n_max) run;
on restart those are skipped), ``compare.csv``, ``compare.md`` and ``regret_vs_gpu_hours.png``.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from . import strategies as S
from .cost import CostModel
from .harness import Budget, quiet_nni, run_deepmad, run_nni_strategy
from .records import RunStore, summarize
from .report import markdown_table, plot_regret, write_csv

TRACKS = ("nas-bench-macro", "fashion-mnist")
GRID_MAX = 10_000  # GridSearch only where the space has at most this many samples
SETTINGS_FILE = "settings.json"


def _check_ns(ns):
    ns = sorted(set(ns))
    if not ns or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in ns):
        raise ValueError(f"ns must be positive integers (numbers of trained candidates), but got {ns!r}.")
    return ns


def _check_seeds(seeds):
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"seeds must be a positive count or a list of seeds, but got {seeds!r}.")
        return list(range(seeds))
    seeds = list(seeds)
    if not seeds or any(not isinstance(s, int) for s in seeds):
        raise ValueError(f"seeds must be a positive count or a list of integer seeds, but got {seeds!r}.")
    return seeds


def _problems(track, budgets, *, benchmark_path, cost_model, training):
    if track == "nas-bench-macro":
        from ..benchmarks.nas_bench_macro import NasBenchMacro, resolve_path
        from .bench_track import DEFAULT_BUDGETS, BenchmarkProblem
        # benchmark_path, else $DEEPMAD_NAS_BENCH_MACRO, else the copy packaged with deepmad-nni
        try:
            bench = NasBenchMacro(resolve_path(benchmark_path))
        except FileNotFoundError as err:
            raise ValueError(str(err)) from None
        return [BenchmarkProblem(bench, b, cost_model) for b in (budgets or DEFAULT_BUDGETS)]
    from ..data import load_dataset
    from .train_track import MACRO, TrainingProblem, space_median_flops
    t = dict(training)
    t.setdefault("space", MACRO)
    data = load_dataset("fashion-mnist", train_size=t.pop("train_size"), test_size=t.pop("test_size"),
                        resolution=t.pop("resolution"), val_fraction=t.pop("val_fraction"), seed=t["seed"])
    if not budgets:
        median = space_median_flops(t["space"], data)
        budgets = [Budget(f"{median / 1e6:.1f}M (median)", flops=median)]
    return [TrainingProblem(b, data=data, **t) for b in budgets]


def _check_settings(out: Path, settings: dict) -> None:
    path = out / SETTINGS_FILE
    if path.exists():
        old = json.loads(path.read_text())
        if old != settings:
            diff = {k: (old.get(k), settings.get(k)) for k in set(old) | set(settings) if old.get(k) != settings.get(k)}
            raise ValueError(f"out_dir {str(out)!r} holds runs made with other settings {diff} (old, new); "
                             "choose another out_dir or the same settings.")
    else:
        path.write_text(json.dumps(settings, indent=1, sort_keys=True))


def compare(*, track: str = "nas-bench-macro", out_dir="deepmad-compare", strategies=None, budgets=None,
            seeds=10, ns=(10, 30, 100), benchmark_path=None, cost_model: CostModel | None = None,
            optuna: dict | None = None, training: dict | None = None, progress=None,
            report_only: bool = False) -> dict:
    """Run the comparison; return ``{"rows": [...], "csv": path, "markdown": path, "plot": path, "skipped": [...]}``.

    ``strategies``: names from :data:`strategies.ALL` (default: all).  ``budgets``: :class:`Budget` list
    (default: the track's).  ``seeds``: a count or a list.  ``ns``: numbers of trained candidates at which
    each strategy is read.  ``training``: the Fashion-MNIST track's settings (see ``DEFAULT_TRAINING``).
    ``report_only``: run nothing; write the reports from the runs already in ``out_dir``.
    """
    if track not in TRACKS:
        raise ValueError(f"track must be one of {list(TRACKS)}, but got {track!r}.")
    names = S.check_strategies(strategies or S.ALL)
    ns, seeds = _check_ns(ns), _check_seeds(seeds)
    cost_model = cost_model or CostModel()
    given, training = training or {}, {**DEFAULT_TRAINING, **(training or {})}
    if track == "fashion-mnist" and "resolution" not in given:
        from .train_spaces import SPACH_RESOLUTION, SPACH_SPACES
        if training.get("space") in SPACH_SPACES:  # SPACH needs a multiple of 8 a side (see there)
            training["resolution"] = SPACH_RESOLUTION
    if training.get("space") == "nas-bench-macro":
        del training["space"]  # the default space is implied (folders written before --space existed resume)
    optuna = {**DEFAULT_OPTUNA, **(optuna or {})}
    say = progress or (lambda msg: print(msg, file=sys.stderr, flush=True))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    settings = {"track": track, "cost_model": cost_model.to_dict() if track == "nas-bench-macro" else None,
                "training": training if track == "fashion-mnist" else None, "optuna": optuna}
    _check_settings(out, settings)
    with quiet_nni():  # building the problems imports NNI's layers, which warn about torch's non-modules
        problems = _problems(track, budgets, benchmark_path=benchmark_path, cost_model=cost_model, training=training)
    store, n_max, skipped = RunStore(out), max(ns), []
    runnable = []
    for name in names:
        why = _unavailable(name, problems[0])
        if why:
            skipped.append(why)
            say(why)
        else:
            runnable.append(name)
    jobs = [(p, name, seed) for p in problems for name in runnable
            for seed in ([0] if name == S.DEEPMAD else seeds)]
    for i, (problem, name, seed) in enumerate(jobs, 1):
        key = (problem.track, name, problem.budget.name, seed, n_max)
        tag = f"[{i}/{len(jobs)}] {problem.track} budget={problem.budget.name} {name} seed={seed}"
        if key in store:
            say(f"{tag}: done before, skipped")
            continue
        if report_only:
            continue
        t0 = time.perf_counter()
        record = _run(problem, name, seed, n_max, optuna)
        store.add(record)
        last = record.at(len(record.candidates)) if record.candidates else record.at(0)
        note = f"; {record.note}" if record.note and name != S.DEEPMAD else ""
        say(f"{tag}: trained {len(record.candidates)} (rejected {record.rejected}), best {last['accuracy']:.2f}% "
            f"(regret {last['regret']:.2f}) in {time.perf_counter() - t0:.1f} s{note}")
    records = [r for r in store.records.values() if r.track == track and r.n_max == n_max]
    points = {name: ([0] + ns if name == S.DEEPMAD else [1] if name in S.ONESHOT else ns) for name in S.KNOWN}
    rows = summarize(records, points)
    paths = {"csv": write_csv(rows, out / "compare.csv"), "plot": plot_regret(rows, out / "regret_vs_gpu_hours.png")}
    md = out / "compare.md"
    md.write_text(_header(track, cost_model, training, problems, skipped) + markdown_table(rows))
    return {"rows": rows, "markdown": md, "skipped": skipped, **paths}


DEFAULT_TRAINING = {"train_size": 2000, "test_size": 1000, "resolution": 14, "val_fraction": 0.2, "epochs": 3,
                    "batch_size": 64, "lr": 0.05, "device": None, "seed": 0}
DEFAULT_OPTUNA = {"sampler": "tpe"}


def _unavailable(name, problem) -> str:
    if name in (S.DEEPMAD,) + S.DEEPMAD_LOOPS and hasattr(problem, "deepmad_unavailable"):
        why = problem.deepmad_unavailable()
        if why:
            return f"{name} skipped: {why}"
    if name in S.ONESHOT:
        from .oneshot import oneshot_unavailable
        return oneshot_unavailable(name, problem)
    if name == "rl":
        ok, why = S.rl_available()
        return "" if ok else why
    if name == "grid" and getattr(problem, "space_size", 3 ** 8) > GRID_MAX:
        return f"GridSearch skipped: the space has more than {GRID_MAX} samples."
    if name == S.DEEPMAD_OPTUNA:
        from .optuna_track import optuna_unavailable
        return optuna_unavailable()
    if name == S.MATHNAS:
        from .mathnas_track import mathnas_unavailable
        return mathnas_unavailable(problem)
    return ""


def _run(problem, name, seed, n_max, optuna):
    if name == S.DEEPMAD:
        return run_deepmad(problem, n_max=n_max)
    if name in S.DEEPMAD_LOOPS:
        from .optuna_track import run_deepmad_loop
        return run_deepmad_loop(problem, name, n_max=n_max, seed=seed, **optuna)
    if name == S.MATHNAS:
        from .mathnas_track import run_mathnas
        return run_mathnas(problem, n_max=n_max, seed=seed)
    if name in S.ONESHOT:
        from .oneshot import run_oneshot
        return run_oneshot(problem, name, n_max=n_max, seed=seed)
    with quiet_nni():
        strategy = S.NNI_STRATEGIES[name](seed)
    return run_nni_strategy(problem, name, strategy, n_max=n_max, seed=seed)


def _header(track, cost_model, training, problems, skipped) -> str:
    lines = [f"# DeepMAD vs NNI strategies: {track}", ""]
    if track == "nas-bench-macro":
        lines += [f"Cost model: {cost_model.to_dict()}.", "Accuracy: NAS-Bench-Macro mean test accuracy (3 seeds).",
                  "Reference of regret: best accuracy within the budget in the whole table."]
    else:
        lines += [f"Training: {training}; space: {problems[0].space_name}; device: {problems[0].device}; "
                  "GPU-h column = measured device-hours.",
                  "Reference of regret: best accuracy any run measured in that budget."]
    lines += ["N counts trained candidates within the budget; samples rejected by the FLOPs filter are not "
              "trained and not counted (their CPU time is in the CPU-s column).",
              "DeepMAD N=0: its top-1 design, nothing trained during the search (the pick's own training is "
              "the final training every method needs).",
              "deepmad-optuna / deepmad-evolution: the package's NNI strategies DeepMADOptuna / DeepMADEvolution, run "
              "through NNI's engine like NNI's built-ins (N = distinct networks trained).",
              "One-shot (darts, gumbel-darts, random-oneshot) N=1: the one trained candidate is the supernet (its "
              "measured training time is the search GPU-h); the exported network is then trained like any pick.", ""]
    lines += [f"Skipped: {s}" for s in skipped] + ([""] if skipped else [])
    return "\n".join(lines) + "\n"
