"""What a submitted trial carries about DeepMAD: its hyperparameters and figures, beside the design's labels.

NNI's web UI shows a NAS trial's parameters as the submitted model's ``sample``.  The package's strategies
submit ``{**sample, INFO_KEY: info}``: the labels build the network as before (freezing reads only the
space's own labels), and ``info`` holds how the design was found (``source``, ``rho0``, ``alpha``, ``beta``,
the solver's ``status``, the Optuna ``trial``) and its DeepMAD figures (``objective``, ``entropy``, ``rho``,
``q``, ``flops``, ``params``).  :func:`design_sample` strips it again.
"""
from __future__ import annotations

from deepmad_nni.core.score import Score

INFO_KEY = "__deepmad__"


def figures(score: Score) -> dict:
    """The figures of ``score`` a trial shows, as plain JSON numbers."""
    return {"objective": float(score.objective), "entropy": float(score.entropy),
            "rho": float(score.effectiveness), "q": float(score.q), "flops": int(score.flops),
            "params": int(score.params)}


def annotated(sample: dict, score: Score, **how) -> dict:
    """``sample`` with ``INFO_KEY`` holding ``how`` (JSON values: numbers, strings, lists) and ``score``'s figures."""
    info = {k: _plain(v) for k, v in how.items() if v is not None}
    return {**sample, INFO_KEY: {**info, **figures(score)}}


def _plain(value):
    """JSON-safe copies of numbers (numpy's included), strings and sequences of them."""
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (str, bool, int)):
        return value
    return float(value)


def design_sample(sample: dict) -> dict:
    """The design's own labels of a submitted (possibly annotated) sample."""
    return {k: v for k, v in sample.items() if k != INFO_KEY}
