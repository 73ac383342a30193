"""Optuna outer loop: tune DeepMAD's rho_0, beta and alpha against real evaluations of its designs.

``tune(...)`` runs (or resumes) a study; evaluators: NAS-Bench-Macro lookup, short real training, any
callable, an NNI evaluator.  Needs ``optuna`` and ``matplotlib`` (``pip install deepmad-nni[optuna]``).
"""
from ._evaluators import CallableEvaluator, Evaluator, NasBenchMacroEvaluator, make_evaluator
from ._space import SearchRanges
from ._tune import TuneResult, make_storage, tune

__all__ = ["tune", "TuneResult", "SearchRanges", "Evaluator", "NasBenchMacroEvaluator", "CallableEvaluator",
           "TrainingEvaluator", "NNIEvaluator", "make_evaluator", "make_storage", "write_plots"]


def __getattr__(name):  # torch / nni / matplotlib only on first use
    if name == "TrainingEvaluator":
        from ._training import TrainingEvaluator
        return TrainingEvaluator
    if name == "NNIEvaluator":
        from ._nni import NNIEvaluator
        return NNIEvaluator
    if name == "write_plots":
        from ._plots import write_plots
        return write_plots
    raise AttributeError(f"module 'deepmad_nni.optuna_loop' has no attribute {name!r}")
