"""The Lagrangian dual G(theta) of :mod:`deepmad_nni.nas.solver` for one program (:class:`Dual`), minimised by a
box-step cutting-plane method."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .space_settings import DUAL_BOX, DUAL_MIN_STEP, DUAL_ROUNDS, DUAL_STEP, DUAL_TOLERANCE, SERIOUS_STEP


@dataclass(frozen=True)
class DualProgram:
    """max sum_name objective[name] * name(x)  s.t.  F <= flops, P <= params, rho <= rho (None: no limit)."""

    objective: dict
    flops: float | None
    params: float | None
    rho: float | None


class Dual:
    """G(theta) (the :mod:`deepmad_nni.nas.solver` docstring) for one program, over scaled multipliers u
    (theta = u * unit), with the maximisers met along the way."""

    def __init__(self, lag, program: DualProgram, layer_range, fixed_mu=None):
        self.lag, self.p, self.fixed_mu, self.fixed = lag, program, fixed_mu, None
        # exact in N (the term mu (T - h(N(x))) as tables) when N spans few labels, else nu relaxes n = N(x)
        self.exact_count = fixed_mu is None and lag.count_scope is not None
        self.keys = [k for k, lim in (("F", program.flops), ("P", program.params)) if lim is not None]
        if program.rho is not None:
            self.keys += ["mu"] if self.exact_count else ["nu"] if fixed_mu is not None else ["mu", "nu"]
        self.n = np.arange(layer_range[0], layer_range[1] + 1, dtype=float)
        self.h = self.n * np.log(self.n / program.rho) if program.rho is not None else None
        self.maximisers: list = []
        self.history: list = []             # (theta, G without its max_n term)
        value, x = lag.maximise(dict(program.objective, T=fixed_mu or 0.0))
        flops, params, t, n = lag.model.totals(x)
        self.scale = max(abs(value), 1.0)
        refs = {"F": program.flops, "P": program.params, "mu": max(sum(t), 1.0), "nu": max(sum(n), 1.0)}
        self.unit = np.array([self.scale / refs[k] for k in self.keys])
        self.lower = np.array([-DUAL_BOX if k == "nu" else 0.0 for k in self.keys])
        self.upper = np.full(len(self.keys), DUAL_BOX)
        self.evaluations = 0

    def __call__(self, u):
        """(G, its subgradient in u) at the scaled multipliers u."""
        theta = dict(zip(self.keys, np.asarray(u) * self.unit))
        w = dict(self.p.objective)
        w["F"] = w.get("F", 0.0) - theta.get("F", 0.0)
        w["P"] = w.get("P", 0.0) - theta.get("P", 0.0)
        mu, nu = theta.get("mu", self.fixed_mu or 0.0), theta.get("nu", 0.0)
        w["T"] = w.get("T", 0.0) + mu
        w["N"] = w.get("N", 0.0) - nu
        if self.exact_count:
            w["H"] = -mu
        inner, x = self.lag.maximise(w, self.p.rho, self.fixed)
        self.evaluations += 1
        self.maximisers.append(tuple(x))
        flops, params, t, n = self.lag.model.totals(x)
        value, grad = inner, {}
        theta = dict(theta, mu=mu)
        if "F" in theta:
            value += theta["F"] * self.p.flops
            grad["F"] = self.p.flops - flops
        if "P" in theta:
            value += theta["P"] * self.p.params
            grad["P"] = self.p.params - params
        self.history.append((theta, value))
        if self.exact_count and "mu" in self.keys:
            grad["mu"] = sum(t) - sum(n) * math.log(sum(n) / self.p.rho)
        elif "nu" in theta:
            gain = nu * self.n - mu * self.h
            k = int(np.argmax(gain))
            value += float(gain[k])
            grad["mu"], grad["nu"] = sum(t) - float(self.h[k]), float(self.n[k]) - sum(n)
        return value, np.array([grad[k] for k in self.keys]) * self.unit

    def minimise(self, rounds=DUAL_ROUNDS, start=None):
        """Box-step cutting planes: (smallest G met, its u).  The cuts G(u_k) + g_k . (u - u_k) bound G from
        below; the next point minimises their maximum over a trust region around the best point."""
        from scipy.optimize import linprog
        dim = len(self.keys)
        center = np.zeros(dim) if start is None else np.clip(start, self.lower, self.upper)
        best, grad = self(center)
        if dim == 0:
            return best, center
        cuts_a, cuts_b = [np.append(grad, -1.0)], [float(grad @ center) - best]
        radius, tolerance = DUAL_STEP, DUAL_TOLERANCE * max(1.0, abs(best))

        def model_min(lo, hi):
            res = linprog(np.append(np.zeros(dim), 1.0), A_ub=np.array(cuts_a), b_ub=np.array(cuts_b),
                          bounds=list(zip(lo, hi)) + [(None, None)], method="highs")
            return (res.x[:dim], best - res.fun) if res.status == 0 else (None, 0.0)

        for _ in range(rounds):
            u, predicted = model_min(np.maximum(self.lower, center - radius), np.minimum(self.upper, center + radius))
            if predicted <= tolerance:      # no descent near the center: test the whole box (the model is a
                u, predicted = model_min(self.lower, self.upper)   # lower bound of G: then G >= best - tol)
                if u is None or predicted <= tolerance:
                    break
                radius = float(np.max(np.abs(u - center)))
            value, grad = self(u)
            cuts_a.append(np.append(grad, -1.0))
            cuts_b.append(float(grad @ u) - value)
            if value <= best - SERIOUS_STEP * predicted:    # a serious step: move the center, widen the region
                center, best, radius = u, value, min(2 * radius, DUAL_BOX)
            else:                                   # a null step: keep the cut, narrow the region
                radius = max(radius / 2, DUAL_MIN_STEP)
        return best, center
