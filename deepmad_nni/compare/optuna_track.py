"""DeepMAD tuned by the Optuna loop (:func:`deepmad_nni.optuna_loop.tune`), as a strategy of the comparison."""
from __future__ import annotations


def optuna_unavailable() -> str:
    try:
        from ..optuna_loop import tune  # noqa: F401
    except ImportError as err:
        return f"deepmad-optuna skipped: the Optuna loop is unavailable ({err})."
    return ""


def run_deepmad_optuna(problem, *, n_max: int, seed: int, sampler: str = "tpe"):
    raise NotImplementedError
