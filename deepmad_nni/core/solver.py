"""Entry point of the solver: ``solve(family, flops=..., params=..., rho=...)``."""
from __future__ import annotations

from .bruteforce import solve_brute_force
from .family import Family
from .presets import get_family
from .program import Program
from .result import DesignResult

BRUTE_FORCE_MAX = 20000


def solve(family, *, flops=None, params=None, rho=None, alpha=None, beta=10.0, convention="official",
          top_k: int = 1, time_limit: float = 10.0) -> DesignResult:
    """Solve the DeepMAD program over ``family`` (a :class:`Family` or a family name).

    Returns the ``top_k`` best distinct designs with a proven status (see :class:`DesignResult`).
    """
    if isinstance(family, str):
        family = get_family(family)
    program = Program.create(family, flops=flops, params=params, rho=rho, alpha=alpha, beta=beta,
                             convention=convention)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, but got {top_k!r}.")
    if not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds, but got {time_limit!r}.")
    if family.size() <= BRUTE_FORCE_MAX:
        return solve_brute_force(program, top_k)
    from .branch_and_bound import solve_branch_and_bound
    return solve_branch_and_bound(program, top_k=top_k, time_limit=time_limit)
