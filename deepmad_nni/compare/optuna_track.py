"""DeepMAD tuned by the Optuna loop (:func:`deepmad_nni.optuna_loop.tune`), as a strategy of the comparison.

Each Optuna trial draws DeepMAD's (rho_0, beta, alpha), solves the program under the budget and trains
the design with the problem's evaluator; a design already trained in the study is not trained again
(the loop's cache), so N counts distinct trained designs (``max_evaluations=N``).  The first trial is the
paper's default hyperparameters, i.e. DeepMAD's top-1.  No pruning: every trained candidate is trained fully.
"""
from __future__ import annotations

import dataclasses
import time

from .harness import _Clock, _evaluate
from .records import RunRecord

TRIALS_PER_EVALUATION = 5  # at most this many trials (cache hits included) per trained candidate


def optuna_unavailable() -> str:
    try:
        import optuna  # noqa: F401

        from ..optuna_loop import tune  # noqa: F401
    except ImportError as err:
        return f"deepmad-optuna skipped: the Optuna loop is unavailable ({err})."
    return ""


def _family(problem):
    if hasattr(problem, "deepmad_family"):
        return problem.deepmad_family()
    from ..core import get_family
    fam = get_family("nas-bench-macro")
    data = getattr(problem, "data", None)
    if data is None:
        return fam
    return dataclasses.replace(fam, resolution=data.resolution, in_channels=data.in_channels,
                               num_classes=data.num_classes)


def run_deepmad_optuna(problem, *, n_max: int, seed: int, sampler: str = "tpe") -> RunRecord:
    from search_spaces.nas_bench_macro import sample_of_key

    from ..benchmarks.nas_bench_macro import key_of_architecture
    from ..optuna_loop import tune

    clock, trained = _Clock(), []
    t0 = time.perf_counter()

    def evaluate(architecture):
        sample = (problem.sample_of_architecture(architecture) if hasattr(problem, "sample_of_architecture")
                  else sample_of_key(key_of_architecture(architecture)))
        return _evaluate(problem, sample, clock, trained).accuracy

    result = tune(_family(problem), flops=problem.budget.flops, params=problem.budget.params, evaluator=evaluate,
                  n_trials=TRIALS_PER_EVALUATION * n_max, max_evaluations=n_max, sampler=sampler, pruner="none",
                  seed=seed, storage=None, out_dir=None, plots=False, progress=False, start_from_defaults=True)
    trials = len(result.study.trials)
    note = f"{trials} Optuna trials"
    if len(trained) < n_max:
        note += f"; stopped after {len(trained)} distinct designs"
    return RunRecord(problem.track, "deepmad-optuna", problem.budget.name, seed, n_max, problem.reference_accuracy,
                     candidates=trained[:n_max], search_cpu_s=clock.search_cpu(), wall_s=time.perf_counter() - t0,
                     device=problem.device, note=note)
