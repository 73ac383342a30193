"""Continuous relaxation of the DeepMAD program: widths, mid widths and depths as real numbers.

Per slot the variables are ``log c_out`` and, for repeatable blocks, the depth ``d`` and either
``log mid`` (a bottleneck's grid width) or ``log e`` (an inverted residual's expansion).  Kernels are fixed
per solve.  Blocks are the closed forms of core/terms.py at real arguments; a slot is its first block plus
``d - 1`` repeats.  SLSQP maximises ``sum_i alpha_i H_i - beta Q`` under rho (every stage prefix under the
official and tinynas conventions), FLOPs, params and the width rules, from one start.

It is a heuristic: the relaxation is not concave, so its point is a local optimum and proves nothing.  Its
point is what core/rounding.py rounds to designs, and its KKT multipliers are the branch and bound's
Lagrangian multipliers (:meth:`ContinuousPoint.lagrange`), which give a valid bound whatever they are, but a
tight one only when they are the point's: SciPy >= 1.16 reports SLSQP's own (``OptimizeResult.multipliers``);
with an older SciPy :func:`kkt_multipliers` computes them at SLSQP's point (R50: a 2.6% gap either way,
42.5% with none).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, nnls

from .arch import REPEATABLE
from .plan import NUMERICS, QUICK_ROUNDING
from .program import Program
from .rules import penalised_groups, stage_ends
from .score import CONVENTIONS, convention_rules, family_entropy_resolutions
from .terms import block_terms, se_width

STEP = NUMERICS.fd_step       # forward-difference step of the Jacobians
SCALE = NUMERICS.slsqp_scale  # the objective is divided by this inside SLSQP


def smooth_se(mid):
    """SE width as a line through the middle of :func:`~deepmad_nni.core.terms.se_width`'s steps; SLSQP
    solves with it (its line search stalls on the steps: MBConv+SE families took 3-4 times the evaluations)."""
    return np.maximum(8.0, mid / 4 - 4.0)


def kkt_multipliers(gradient: np.ndarray, jacobian: np.ndarray, values: np.ndarray, above_lower: np.ndarray,
                    below_upper: np.ndarray, *, active: float = NUMERICS.active) -> np.ndarray:
    """Non-negative KKT multipliers of ``min f(z)`` s.t. ``c(z) >= 0`` and box bounds, at a point ``z``.

    ``gradient`` is grad f (n,), ``jacobian`` the constraints' (K, n), ``values`` c(z) (K,), ``above_lower`` and
    ``below_upper`` the distances z - lower and upper - z (n,).  The multipliers solve the stationarity
    condition ``grad f = J_A^T kappa_A + (bound terms)`` in the least-squares sense with every multiplier
    >= 0 (scipy.optimize.nnls); only the constraints and bounds within ``active`` of binding take part, the
    others get 0 (complementary slackness).  Variables whose bounds coincide (held fixed) are left out of
    the condition.  Returns kappa (K,); what SciPy >= 1.16 reports as SLSQP's ``multipliers`` otherwise.
    """
    free = (above_lower + below_upper) > active
    on = np.flatnonzero(values <= active)
    at_lower = np.flatnonzero(free & (above_lower <= active))
    at_upper = np.flatnonzero(free & (below_upper <= active))
    eye = np.eye(len(gradient))
    columns = np.hstack([jacobian[on].T, eye[:, at_lower], -eye[:, at_upper]])[free]
    kappa = np.zeros(len(values))
    if columns.size:
        kappa[on] = nnls(columns, gradient[free])[0][:len(on)]
    return kappa


def _mode(slot, kernel: int) -> str | None:
    """How a slot is relaxed at ``kernel``: "conv", "basic", "grid" (mid from the grid), "out"/"in"
    (mid = expansion x output/input width); None when the relaxation does not cover it."""
    ops = [o for o in slot.ops if o.kernel == kernel]
    blocks = {o.block for o in slot.ops}
    if not ops or len(blocks) != 1:
        return None
    block = blocks.pop()
    if block == "conv":
        return "conv"
    if block not in REPEATABLE:
        return None
    if block == "basic":
        return "basic"
    if all(o.mid_from_grid for o in ops):
        return "grid"
    bases = {o.base for o in ops}
    return bases.pop() if len(bases) == 1 and all(o.expansion > 0 for o in ops) else None


def relaxable(program: Program) -> bool:
    """Whether every slot of the family has a relaxation (core/continuous.py covers it)."""
    return all(_mode(s, max(o.kernel for o in s.ops)) is not None for s in program.family.slots)


@dataclass
class ContinuousPoint:
    """A local optimum of the relaxation: per slot width, mid width and depth (reals), and its figures."""

    x: np.ndarray
    widths: np.ndarray
    mids: np.ndarray
    depths: np.ndarray
    kernels: tuple
    objective: float
    feasible: bool
    iterations: int
    lagrange: tuple          # (lambda_F, lambda_P, mu, n0) for the branch and bound's relaxation


class ContinuousRelaxation:
    """The relaxed program over ``program.family`` with the given kernel per slot (default: the largest)."""

    def __init__(self, program: Program, kernels=None):
        fam = program.family
        self.program, self.family = program, fam
        n = len(fam.slots)
        self.kernels = tuple(max(o.kernel for o in s.ops) for s in fam.slots) if kernels is None else tuple(kernels)
        self.modes = [_mode(s, k) for s, k in zip(fam.slots, self.kernels)]
        if None in self.modes:
            raise ValueError(f"family {fam.name} has slots the continuous relaxation does not cover.")
        self.ends = stage_ends(fam.slots)
        r, self.r_in, self.r_out = fam.resolution, [], []
        for s in fam.slots:
            self.r_in.append(r)
            r = -(-r // s.stride)
            self.r_out.append(r)
        lo, hi, self.c_var, self.m_var, self.d_var = [], [], [], [], []

        def var(a, b):
            lo.append(a)
            hi.append(b)
            return len(lo) - 1

        for s, k, mode in zip(fam.slots, self.kernels, self.modes):
            self.c_var.append(var(math.log(min(s.widths)), math.log(max(s.widths))))
            ops = [o for o in s.ops if o.kernel == k]
            if mode == "grid":
                self.m_var.append(var(math.log(min(s.mids)), math.log(max(s.mids))))
            elif mode in ("in", "out"):
                es = [o.expansion for o in ops]
                self.m_var.append(var(math.log(min(es)), math.log(max(es))))
            else:
                self.m_var.append(None)
            self.d_var.append(None if mode == "conv" else var(float(min(s.depths)), float(max(s.depths))))
        self.lo, self.hi = np.array(lo), np.array(hi)
        self.block = [next(iter({o.block for o in s.ops})) for s in fam.slots]
        # per block type: its slots; the columns of (c_in, c_out) and of (c_out, c_out) that its first blocks
        # and (repeatable types) its repeats read; and the kernels, strides, input resolutions of both
        self._blocks = []
        for block in sorted(set(self.block)):
            cols = [j for j in range(n) if self.block[j] == block]
            k = [self.kernels[j] for j in cols]
            stride, r = [fam.slots[j].stride for j in cols], [self.r_in[j] for j in cols]
            if block != "conv":
                k, stride, r = k + k, stride + [1] * len(cols), r + [self.r_out[j] for j in cols]
            self._blocks.append((block, np.array(cols), np.r_[cols, n + np.array(cols, np.int64)], np.r_[cols, cols],
                                 np.array(k, float), np.array(stride), np.array(r)))
        self.has_d = [j for j in range(n) if self.d_var[j] is not None]
        self.d_cols = [self.d_var[j] for j in self.has_d]
        self.s = CONVENTIONS[program.convention]
        self.rules = convention_rules(program.convention)
        area_res = family_entropy_resolutions(fam, program.convention)   # the r_i the entropy reads
        self.area = np.array([area_res[e] ** 2 for e in self.ends], float)
        self.alpha = np.array(program.alpha)
        self.groups = self._depth_groups()
        self.prefixes = np.arange(len(self.ends)) if self.rules.prefix_rho else [len(self.ends) - 1]
        # the same indices as arrays, for the evaluation's fancy indexing (a list is converted at every use)
        self._index = {"c": np.array(self.c_var), "has_d": np.array(self.has_d, np.int64),
                       "d": np.array(self.d_cols, np.int64), "ends": np.array(self.ends)}
        self._mid_index = []   # per mode of the mids: its slots and their variables
        for mode in ("grid", "out", "in"):
            cols = [j for j in range(n) if self.modes[j] == mode]
            if cols:
                self._mid_index.append((mode, np.array(cols, np.int64), np.array([self.m_var[j] for j in cols], np.int64)))
        self.linear = self._linear_constraints()

    def _linear_constraints(self):
        """(A, b) with the width rules as ``A x + b >= 0``: widths never decrease, a slot stays within
        ``max_width_ratio`` x its input, and a bottleneck mid lies in [mid_min_ratio x out, out]."""
        rows, consts = [], []

        def row(pairs, const):
            r = np.zeros(len(self.lo))
            for i, v in pairs:
                r[i] += v
            rows.append(r)
            consts.append(const)

        for j in range(1, len(self.modes)):
            row([(self.c_var[j], 1.0), (self.c_var[j - 1], -1.0)], 0.0)
            ratio = self.family.slot_rules(j)["max_width_ratio"]
            if ratio is not None:
                row([(self.c_var[j], -1.0), (self.c_var[j - 1], 1.0)], math.log(ratio))
        for j, mode in enumerate(self.modes):
            if mode == "grid":
                row([(self.m_var[j], 1.0), (self.c_var[j], -1.0)], -math.log(self.family.mid_min_ratio))
                row([(self.c_var[j], 1.0), (self.m_var[j], -1.0)], 0.0)
        return np.array(rows).reshape(len(rows), len(self.lo)), np.array(consts)

    def _depth_groups(self) -> np.ndarray:
        """(slots, groups) 0/1 matrix: the depths Q is taken over are ``depths @ groups`` (core/rules.py)."""
        return penalised_groups(self.family, self.program.convention)

    # ---- evaluation --------------------------------------------------------------------------------
    def parts(self, X: np.ndarray, smooth: bool = False):
        """Per-slot (t, n, macs, params) and (width, mid, depth), each (B, slots), of points X (B, vars);
        ``smooth`` takes SE widths from :func:`smooth_se`."""
        X = np.atleast_2d(X)
        fam, b, index = self.family, len(X), self._index
        widths = np.exp(X[:, index["c"]])
        c_in = np.concatenate([np.full((b, 1), float(fam.in_channels)), widths[:, :-1]], axis=1)
        mids, depths = np.ones_like(widths), np.ones_like(widths)
        terms = [np.zeros_like(widths) for _ in range(4)]
        depths[:, index["has_d"]] = X[:, index["d"]]
        bases = {"grid": None, "out": widths, "in": c_in}
        for mode, cols, var in self._mid_index:
            base = bases[mode]
            mids[:, cols] = np.exp(X[:, var]) * (1.0 if base is None else base[:, cols])
        near = np.round(mids)   # exp(log m) at a grid width: snap its float error (SE widths floor)
        mids = np.where(np.abs(mids - near) < NUMERICS.fd_step * near, near, mids)
        se = smooth_se if smooth else se_width
        both_widths = np.concatenate([c_in, widths], axis=1)
        for block, cols, first_then_rest, twice, k, stride, r in self._blocks:   # one call per block type
            if block == "conv":
                for dst, a in zip(terms, block_terms(block, c_in[:, cols], widths[:, cols], k, mids[:, cols],
                                                     stride, r, se)):
                    dst[:, cols] = a
                continue
            both = block_terms(block, both_widths[:, first_then_rest], widths[:, twice], k, mids[:, twice],
                               stride, r, se)
            extra, m = depths[:, cols] - 1.0, len(cols)
            for dst, a in zip(terms, both):
                dst[:, cols] = a[:, :m] + extra * a[:, m:]
        terms[2][:, -1] += widths[:, -1] * fam.num_classes                     # the classifier
        terms[3][:, -1] += widths[:, -1] * fam.num_classes + fam.num_classes
        return terms, (widths, mids, depths)

    def evaluate(self, X: np.ndarray, margin: float = 0.0, smooth: bool = False):
        """Objective (B,) and the nonlinear constraint values (B, K): rho of each counted prefix, then FLOPs
        and params; feasible where all of them and the width rules (:meth:`_linear_constraints`) are >= 0.
        ``margin`` tightens the budgets and rho (relative), so that a rounded point has room; ``smooth`` as
        in :meth:`parts`."""
        return self._figures(self.parts(X, smooth), margin)

    def _figures(self, parts, margin: float):
        """:meth:`evaluate` from the output of :meth:`parts`."""
        p = self.program
        (t, nl, f, pa), (widths, mids, depths) = parts
        ends = self._index["ends"]
        s_cum, n_cum = np.cumsum(t, axis=1)[:, ends], np.cumsum(nl, axis=1)[:, ends]
        entropy = (self.s * np.log(self.area * widths[:, ends]) * s_cum) @ self.alpha
        g = depths @ self.groups
        if g.shape[1] > 1:   # exp(std), written out (np.std's overhead is most of its time here)
            centred = g - g.mean(axis=1, keepdims=True)
            q = np.exp(np.sqrt((centred * centred).mean(axis=1)))
        else:
            q = np.ones(len(g))
        s_p, n_p = s_cum[:, self.prefixes], n_cum[:, self.prefixes]
        cons = [s_p / n_p - np.log(n_p / p.rho) + math.log1p(-margin)]   # rho <= rho_0: S/n >= log(n/rho_0)
        for total, budget in ((f, p.flops), (pa, p.params)):
            if budget is not None:
                cons.append(1.0 - margin - total.sum(axis=1, keepdims=True) / budget)
        return entropy - p.beta * q, np.concatenate(cons, axis=1)

    def feasible(self, x: np.ndarray, tol: float = NUMERICS.slsqp_tolerance, constraints: np.ndarray | None = None) -> bool:
        """Whether ``x`` meets every constraint (``constraints``: its :meth:`evaluate` values, if known)."""
        a, b = self.linear
        cons = self.evaluate(x[None, :])[1] if constraints is None else constraints
        return bool(cons.min() >= -tol and (a @ x + b).min(initial=0.0) >= -tol)

    # ---- solve -------------------------------------------------------------------------------------
    def start(self, fraction: float = QUICK_ROUNDING.start) -> np.ndarray:
        """A start: every variable ``fraction`` of the way from its lower to its upper bound."""
        return self.lo + fraction * (self.hi - self.lo)

    def solve(self, x0: np.ndarray, *, margin: float = 0.0, fixed: dict | None = None,
              max_iterations: int = QUICK_ROUNDING.first_iterations,
              tolerance: float = NUMERICS.slsqp_tolerance) -> ContinuousPoint:
        """A local optimum of the relaxation from ``x0`` (SLSQP on the variables scaled to [0, 1],
        forward-difference Jacobians, SE widths by :func:`smooth_se`), with the variables in ``fixed``
        (index -> value) held.  The point's figures and feasibility are the exact ones."""
        span = np.where(self.hi > self.lo, self.hi - self.lo, 1.0)
        fixed = {i: (v - self.lo[i]) / span[i] for i, v in (fixed or {}).items()}
        eye = STEP * np.eye(len(x0))
        memo: dict = {}

        def at(z):
            key = z.tobytes()
            if key not in memo:
                memo.clear()
                o, c = self.evaluate(self.lo + span * np.vstack([z, z + eye]), margin, smooth=True)
                memo[key] = (-o / SCALE, c)
            return memo[key]

        def objective(z):
            return at(z)[0][0]

        def gradient(z):
            o = at(z)[0]
            return (o[1:] - o[0]) / STEP

        def constraints(z):
            return at(z)[1][0]

        def jacobian(z):
            c = at(z)[1]
            return ((c[1:] - c[0]) / STEP).T

        a, b = self.linear
        lin_a, lin_b = a * span[None, :], a @ self.lo + b   # the width rules in the scaled variables
        z0 = np.clip((np.asarray(x0, float) - self.lo) / span, 0.0, 1.0)
        bounds = [(fixed[i], fixed[i]) if i in fixed else (0.0, 1.0 if h > lo else 0.0)
                  for i, (lo, h) in enumerate(zip(self.lo, self.hi))]
        z0 = np.clip(z0, [b[0] for b in bounds], [b[1] for b in bounds])
        res = minimize(objective, z0, jac=gradient, method="SLSQP", bounds=bounds,
                       options={"maxiter": max_iterations, "ftol": tolerance},
                       constraints=[{"type": "ineq", "fun": constraints, "jac": jacobian},
                                    {"type": "ineq", "fun": lambda z: lin_a @ z + lin_b, "jac": lambda z: lin_a}])
        x = self.lo + span * np.clip(res.x, [b[0] for b in bounds], [b[1] for b in bounds])
        parts = self.parts(x[None, :])
        obj, cons = self._figures(parts, 0.0)
        (_, layers, _, _), (widths, mids, depths) = parts
        multipliers = getattr(res, "multipliers", None)   # SciPy >= 1.16 reports SLSQP's own
        if multipliers is None:
            lower, upper = np.array(bounds).T
            z = res.x
            multipliers = kkt_multipliers(gradient(z), np.vstack([jacobian(z), lin_a]),
                                          np.concatenate([constraints(z), lin_a @ z + lin_b]),
                                          z - lower, upper - z)
        kappa = np.maximum(np.asarray(multipliers, float)[:cons.shape[1]], 0.0) * SCALE
        return ContinuousPoint(x, widths[0], mids[0], depths[0], self.kernels, float(obj[0]),
                               self.feasible(x, constraints=cons), int(res.nit),
                               self._lagrange(float(layers.sum()), kappa))

    def _lagrange(self, n0: float, kappa: np.ndarray) -> tuple:
        """(lambda_F, lambda_P, mu, n0) from the multipliers of the whole-network rho, FLOPs and params
        constraints (see the module docstring of core/lagrangian.py), ``n0`` the point's layer count."""
        p = self.program
        k = len(self.prefixes)
        mu = kappa[k - 1] / n0
        lam = []
        for budget in (p.flops, p.params):
            if budget is None:
                lam.append(0.0)
            else:
                lam.append(kappa[k] / budget)
                k += 1
        return lam[0], lam[1], float(mu), n0
