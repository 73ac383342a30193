"""Exact solver for small families, amortised over trials.

``core.solve`` enumerates a small family (<= ``BRUTE_FORCE_MAX`` designs) on every call: seconds per
trial.  Only the objective's weights and the rho_0 bound change between trials, so this scores every
design once (per-stage entropies H_i, rho, Q, FLOPs, params) and answers each trial with a masked argmax:
``max sum_i alpha_i H_i - beta * Q  s.t.  rho <= rho_0, FLOPs <= budget, params <= budget``.
Tested against ``core.solve`` (the oracle) on random hyperparameters.
"""
from __future__ import annotations

import time

import numpy as np


class EnumeratedSolver:
    """``solve(rho=, alpha=, beta=)`` -> a ``DesignResult`` like ``core.solve(family, flops=, params=, ...)``."""

    def __init__(self, family, *, flops=None, params=None, convention="official"):
        from ..core.score import score
        self.family, self.flops, self.params, self.convention = family, flops, params, convention
        m = family.num_stages()
        archs, rows = [], []
        self.min_flops = self.min_params = float("inf")
        for arch in family.enumerate():
            s = score(arch, alpha=(1.0,) * m, beta=0.0, convention=convention)
            self.min_flops, self.min_params = min(self.min_flops, s.flops), min(self.min_params, s.params)
            if (flops is None or s.flops <= flops) and (params is None or s.params <= params):
                archs.append(arch)
                rows.append((*s.stage_entropy, s.effectiveness, s.q))
        self.archs = archs
        table = np.array(rows, dtype=float).reshape(len(rows), m + 2)
        self.stage_entropy, self.rho, self.q = table[:, :m], table[:, m], table[:, m + 1]

    def solve(self, *, rho, alpha, beta):
        from ..core.program import Program
        from ..core.result import INFEASIBLE, OPTIMAL, Design, DesignResult
        t0 = time.perf_counter()
        program = Program.create(self.family, flops=self.flops, params=self.params, rho=rho, alpha=alpha,
                                 beta=beta, convention=self.convention)
        feasible = self.rho <= program.rho * (1 + 1e-9)
        if not feasible.any():
            return DesignResult(INFEASIBLE, f"No design meets the constraints (rho_0={program.rho:.4g}; the family "
                                f"reaches at least {self.min_flops:.4g} FLOPs and {self.min_params:.4g} params).",
                                [], float("-inf"), time.perf_counter() - t0, 0, self.family.name, program.as_dict())
        objective = self.stage_entropy @ np.asarray(program.alpha) - program.beta * self.q
        objective[~feasible] = -np.inf
        best = int(np.argmax(objective))
        arch = self.archs[best]
        s = program.score(arch)
        return DesignResult(OPTIMAL, f"Optimal over {len(self.archs)} designs within the budgets.", [Design(arch, s)],
                            s.objective, time.perf_counter() - t0, len(self.archs), self.family.name,
                            program.as_dict())
