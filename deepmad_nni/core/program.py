"""The DeepMAD program (spec, "The program"): objective, constraints and the checks on its inputs.

    maximise    sum_i alpha_i H_i - beta * Q
    subject to  rho <= rho_0,  FLOPs <= flops,  params <= params,  c_1 <= ... <= c_M  (the family's rules)
"""
from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass

from .family import Family
from .plan import NUMERICS
from .score import CONVENTIONS, Score, default_alpha, score


def _finite_real(value) -> bool:
    """A finite real number: not a bool, a string or another type that float() merely converts."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def positive_number(name: str, value, *, allow_none: bool = True):
    """``value`` as a positive finite float (``None`` passes when ``allow_none``); a ValueError naming
    ``name``, what it must be and what came otherwise.  The one check for user-given budgets, bounds and
    limits across the package."""
    if value is None and allow_none:
        return None
    if not (_finite_real(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number{' or None' if allow_none else ''}, "
                         f"but got {value!r}.")
    return float(value)


def non_negative_number(name: str, value) -> float:
    """``value`` as a non-negative finite float; a ValueError naming ``name`` otherwise."""
    if not (_finite_real(value) and value >= 0):
        raise ValueError(f"{name} must be a non-negative finite number, but got {value!r}.")
    return float(value)


def non_negative_weights(name: str, values) -> tuple[float, ...]:
    """``values`` (a sequence, not a string) as a tuple of non-negative finite floats (stage weights); a
    ValueError naming ``name`` otherwise."""
    items = None if isinstance(values, (str, bytes)) or not isinstance(values, Iterable) else tuple(values)
    if items is None or not all(_finite_real(a) and a >= 0 for a in items):
        raise ValueError(f"{name} must be a sequence of non-negative finite numbers, but got {values!r}.")
    return tuple(float(a) for a in items)


@dataclass(frozen=True)
class Program:
    """One instance of the program over a family.  Build it with :meth:`create`, which checks the input."""

    family: Family
    flops: float | None
    params: float | None
    rho: float
    alpha: tuple[float, ...]
    beta: float
    convention: str

    @classmethod
    def create(cls, family: Family, *, flops=None, params=None, rho=None, alpha=None, beta=10.0,
               convention: str = "official") -> "Program":
        if not isinstance(family, Family):
            raise TypeError(f"family must be a Family, but got {type(family).__name__}.")
        flops = positive_number("flops", flops)
        params = positive_number("params", params)
        rho = positive_number("rho", family.default_rho if rho is None else rho, allow_none=False)
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, but got {convention!r}.")
        beta = non_negative_number("beta", beta)
        m = family.num_stages()
        alpha = non_negative_weights("alpha", default_alpha(m) if alpha is None else alpha)
        if len(alpha) != m:
            raise ValueError(f"alpha must have one weight per stage of {family.name} ({m}), but got {len(alpha)}.")
        return cls(family, flops, params, rho, alpha, beta, convention)

    def score(self, arch) -> Score:
        return score(arch, alpha=self.alpha, beta=self.beta, convention=self.convention)

    def violations(self, s: Score, tol: float = NUMERICS.same) -> list[str]:
        """The constraints ``s`` breaks (empty when feasible)."""
        out = []
        if s.effectiveness > self.rho * (1 + tol):
            out.append(f"rho {s.effectiveness:.4g} > {self.rho:.4g}")
        if self.flops is not None and s.flops > self.flops:
            out.append(f"FLOPs {s.flops:.4g} > {self.flops:.4g}")
        if self.params is not None and s.params > self.params:
            out.append(f"params {s.params:.4g} > {self.params:.4g}")
        return out

    def feasible(self, s: Score) -> bool:
        return not self.violations(s)

    def as_dict(self) -> dict:
        return {"family": self.family.name, "flops": self.flops, "params": self.params, "rho": self.rho,
                "alpha": list(self.alpha), "beta": self.beta, "convention": self.convention}
