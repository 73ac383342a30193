"""What a trial tunes: rho_0 (log-uniform), beta, the last-stage weight alpha_M and optionally the others.

DeepMAD's program (spec, "The program"): maximise ``sum_i alpha_i H_i - beta * Q`` subject to
``rho <= rho_0`` and the budgets.  The paper tuned rho_0 by hand in [0.1, 2.0] and fixed beta = 10,
alpha = (1, ..., 1, 8).
"""
from __future__ import annotations

import math
from dataclasses import dataclass


def _range(name: str, value, *, positive: bool) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a (low, high) pair of numbers, but got {value!r}.") from None
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"{name} must hold finite numbers, but got {value!r}.")
    if low > high:
        raise ValueError(f"{name} is an empty range: low must be <= high, but got ({low:g}, {high:g}).")
    if positive and low <= 0:
        raise ValueError(f"{name} is log-uniform, so low must be > 0, but got ({low:g}, {high:g}).")
    if not positive and low < 0:
        raise ValueError(f"{name} must be non-negative, but got ({low:g}, {high:g}).")
    return low, high


@dataclass(frozen=True)
class SearchRanges:
    """Ranges of the tuned hyperparameters (``low == high`` fixes a value).

    ``rho``: rho_0, the effectiveness bound (Proposition 1), sampled log-uniformly.
    ``beta``: weight of the depth penalty Q (guideline 2), sampled uniformly.
    ``alpha_last``: weight of the last stage's entropy (guideline 1), sampled log-uniformly.
    ``alpha_others``: when given, every other stage weight alpha_1..alpha_{M-1} is tuned in this range
    (log-uniform); when None they stay 1 as in the paper.
    """

    rho: tuple[float, float] = (0.1, 2.0)
    beta: tuple[float, float] = (0.0, 20.0)
    alpha_last: tuple[float, float] = (1.0, 32.0)
    alpha_others: tuple[float, float] | None = None

    def __post_init__(self):
        object.__setattr__(self, "rho", _range("rho", self.rho, positive=True))
        object.__setattr__(self, "beta", _range("beta", self.beta, positive=False))
        object.__setattr__(self, "alpha_last", _range("alpha_last", self.alpha_last, positive=True))
        if self.alpha_others is not None:
            object.__setattr__(self, "alpha_others", _range("alpha_others", self.alpha_others, positive=True))

    def suggest(self, trial, num_stages: int) -> dict:
        """Draw rho_0, beta and alpha from an Optuna trial: ``{"rho": .., "beta": .., "alpha": (..)}``."""
        rho = _suggest(trial, "rho_0", self.rho, log=True)
        beta = _suggest(trial, "beta", self.beta, log=False)
        last = _suggest(trial, "alpha_last", self.alpha_last, log=True)
        if self.alpha_others is None:
            others = (1.0,) * (num_stages - 1)
        else:
            others = tuple(_suggest(trial, f"alpha_{i + 1}", self.alpha_others, log=True)
                           for i in range(num_stages - 1))
        return {"rho": rho, "beta": beta, "alpha": others + (last,)}

    def as_dict(self) -> dict:
        return {"rho": list(self.rho), "beta": list(self.beta), "alpha_last": list(self.alpha_last),
                "alpha_others": None if self.alpha_others is None else list(self.alpha_others)}


def _suggest(trial, name: str, bounds: tuple[float, float], *, log: bool) -> float:
    return trial.suggest_float(name, bounds[0], bounds[1], log=log)
