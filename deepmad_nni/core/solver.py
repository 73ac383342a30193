"""Entry point of the solver: ``solve(family, flops=..., params=..., rho=...)``."""
from __future__ import annotations

from .bruteforce import solve_enumerate
from .plan import ENUMERATE_MAX, QUICK_PLAN, TIMED_PLAN
from .presets import get_family
from .program import Program
from .result import DesignResult
from .runner import run_plan

BRUTE_FORCE_MAX = ENUMERATE_MAX   # method="auto" enumerates families of at most this many designs


def solve(family, *, flops=None, params=None, rho=None, alpha=None, beta=10.0, convention="official",
          top_k: int = 1, time_limit: float | None = None, node_limit: int | None = None, seed: int = 0,
          method: str = "auto", progress=None, latency=None, latency_table=None,
          max_feature_map=None) -> DesignResult:
    """Solve the DeepMAD program over ``family`` (a :class:`Family` or a family name).

    Returns the ``top_k`` best distinct designs with a proven status (see :class:`DesignResult`).
    ``method``: ``"branch-and-bound"`` (core/plan.py's TIMED_PLAN: the continuous relaxation, rounded, and
    evolution seed the incumbents, then the exact search runs until it closes or ``time_limit`` seconds /
    ``node_limit`` nodes; with ``time_limit=None``, QUICK_PLAN: the rounded relaxation and the bound of its
    multipliers; ``deepmad-nni design --explain`` prints both),
    ``"enumerate"`` (brute force, small families only) or ``"auto"`` (enumerate families of at most
    20,000 designs).

    ``latency`` (ms, predicted by ``latency_table``: a :class:`~deepmad_nni.core.latency.LatencyTable` or its
    file) and ``max_feature_map`` (elements of the largest block input/output tensor) add budgets through the
    wrapper of :mod:`deepmad_nni.core.latency_solve`; its result also reports each design's predicted latency.
    """
    if latency is not None or latency_table is not None or max_feature_map is not None:
        from .latency_solve import solve_with_budgets
        return solve_with_budgets(family, latency=latency, latency_table=latency_table,
                                  max_feature_map=max_feature_map, flops=flops, params=params, rho=rho, alpha=alpha,
                                  beta=beta, convention=convention, top_k=top_k, time_limit=time_limit,
                                  node_limit=node_limit, seed=seed, method=method, progress=progress)
    if isinstance(family, str):
        family = get_family(family)
    program = Program.create(family, flops=flops, params=params, rho=rho, alpha=alpha, beta=beta,
                             convention=convention)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, but got {top_k!r}.")
    if time_limit is not None and not (isinstance(time_limit, (int, float)) and time_limit > 0):
        raise ValueError(f"time_limit must be a positive number of seconds or None, but got {time_limit!r}.")
    if node_limit is not None and (not isinstance(node_limit, int) or node_limit < 0):
        raise ValueError(f"node_limit must be a non-negative integer or None, but got {node_limit!r}.")
    if method not in ("auto", "branch-and-bound", "enumerate"):
        raise ValueError(f"method must be one of ['auto', 'branch-and-bound', 'enumerate'], but got {method!r}.")
    if method == "enumerate" or (method == "auto" and family.size() <= BRUTE_FORCE_MAX):
        return solve_enumerate(program, top_k)
    plan = QUICK_PLAN if time_limit is None else TIMED_PLAN
    return run_plan(program, plan, time_limit=None if time_limit is None else float(time_limit), top_k=top_k,
                    node_limit=node_limit, seed=seed, progress=progress)
