"""What a trial tunes: rho_0 (log-uniform), beta, the last-stage weight alpha_M and the other stage weights.

DeepMAD's program (spec, "The program"): maximise ``sum_i alpha_i H_i - beta * Q`` subject to
``rho <= rho_0`` and the budgets.  The paper tuned rho_0 by hand in [0.1, 2.0] and fixed beta = 10,
alpha = (1, ..., 1, 8).  Here rho_0's range is, by default, where the constraint binds for the space and
budgets (:class:`deepmad_nni.core.rho_range.RhoRange`): below its low end no design exists, above its high
end every rho_0 gives the same design (on NAS-Bench-Macro that is 0.08-0.32 at 60M MACs, where a fixed
(0.1, 2.0) would waste most trials above 0.38).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace


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

    ``rho``: rho_0, the effectiveness bound (Proposition 1), sampled log-uniformly; ``None`` (default):
    the space's :class:`~deepmad_nni.core.rho_range.RhoRange` for the budgets (see :meth:`resolved`).
    ``beta``: weight of the depth penalty Q (guideline 2), sampled uniformly in [0, 20] (the paper: 10).
    ``alpha_last``: weight of the last stage's entropy (guideline 1), log-uniform in [1, 32] (the paper: 8).
    ``alpha_others``: every other stage weight alpha_1..alpha_{M-1}, each log-uniform in [0.5, 2] (the
    paper: 1); ``None`` keeps them at 1.
    """

    rho: tuple[float, float] | None = None
    beta: tuple[float, float] = (0.0, 20.0)
    alpha_last: tuple[float, float] = (1.0, 32.0)
    alpha_others: tuple[float, float] | None = (0.5, 2.0)

    def __post_init__(self):
        if self.rho is not None:
            object.__setattr__(self, "rho", _range("rho", self.rho, positive=True))
        object.__setattr__(self, "beta", _range("beta", self.beta, positive=False))
        object.__setattr__(self, "alpha_last", _range("alpha_last", self.alpha_last, positive=True))
        if self.alpha_others is not None:
            object.__setattr__(self, "alpha_others", _range("alpha_others", self.alpha_others, positive=True))

    def resolved(self, rho_range) -> "SearchRanges":
        """These ranges with ``rho`` set: as given, or ``rho_range()`` (a callable returning a RhoRange)."""
        if self.rho is not None:
            return self
        rr = rho_range()
        return replace(self, rho=(rr.low, max(rr.high, rr.low)))

    def suggest(self, trial, num_stages: int) -> dict:
        """Draw rho_0, beta and alpha from an Optuna trial: ``{"rho": .., "beta": .., "alpha": (..)}``."""
        if self.rho is None:
            raise ValueError("SearchRanges.rho is None: call resolved(...) with the space's rho range first.")
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
        return {"rho": None if self.rho is None else list(self.rho), "beta": list(self.beta), "alpha_last": list(self.alpha_last),
                "alpha_others": None if self.alpha_others is None else list(self.alpha_others)}


def _suggest(trial, name: str, bounds: tuple[float, float], *, log: bool) -> float:
    return trial.suggest_float(name, bounds[0], bounds[1], log=log)
