"""DeepMAD's evaluation-spending NNI strategies as strategies of the comparison: ``deepmad-optuna``
(:class:`deepmad_nni.nas.optuna_strategy.DeepMADOptuna`) and ``deepmad-evolution``
(:class:`deepmad_nni.nas.evolution.DeepMADEvolution`).

Both run exactly as a user runs them, through the harness NNI's built-ins run through
(:func:`~.harness.run_nni_strategy`: NNI's ``SequentialExecutionEngine(max_model_count=N)``, the budget's
``Filter``, the problem's evaluator), with the problem's FLOPs/params budgets.  N counts distinct trained
networks: neither strategy submits a network it has evaluated.  The one thing set beside the constructor's
settings is the route (what DeepMAD solves over): the problem's own (``problem.deepmad_route()``), so that on
the training track the program counts FLOPs/params at the dataset's input like the budget's filter does.
``DeepMADOptuna``'s study lives in memory, one per run, its sampler seeded with the run's seed.
"""
from __future__ import annotations

from . import strategies as S
from .harness import quiet_nni, run_nni_strategy
from .records import RunRecord


def optuna_unavailable() -> str:
    try:
        import optuna  # noqa: F401

        from ..nas.optuna_strategy import DeepMADOptuna  # noqa: F401
    except ImportError as err:
        return f"deepmad-optuna skipped: Optuna is unavailable ({err})."
    return ""


def make_deepmad_loop(problem, name: str, seed: int, *, sampler: str = "tpe"):
    """The strategy ``name`` (one of :data:`strategies.DEEPMAD_LOOPS`) for ``problem``'s budget and space."""
    with quiet_nni():
        strategy = S.deepmad_loop(name, seed, flops=problem.budget.flops, params=problem.budget.params,
                                  sampler=sampler)
        strategy.route = problem.deepmad_route()
    return strategy


def run_deepmad_loop(problem, name: str, *, n_max: int, seed: int, sampler: str = "tpe") -> RunRecord:
    """One run of ``deepmad-optuna`` / ``deepmad-evolution`` on ``problem``: up to ``n_max`` trained networks."""
    strategy = make_deepmad_loop(problem, name, seed, sampler=sampler)
    record = run_nni_strategy(problem, name, strategy, n_max=n_max, seed=seed)
    if name == S.DEEPMAD_OPTUNA and strategy.study is not None:
        from optuna.trial import TrialState
        told = [t for t in strategy.study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
        failed = sum(t.state == TrialState.FAIL for t in told)
        record.note = f"{len(told)} Optuna trials ({failed} failed)" + (f"; {record.note}" if record.note else "")
    return record
