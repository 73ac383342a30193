"""The Lagrangian of the program over a compiled space (:class:`Lagrangian`): entropy, -beta Q, F, P, T and N as
label tables, maximised by elimination, exactly or bounded above (see :mod:`deepmad_nni.nas.solver`)."""
from __future__ import annotations

import itertools
import math

import numpy as np

from deepmad_nni.core.score import depth_penalty

from .max_sum import Eliminator
from .space_model import Lookup
from .space_settings import LOOKUP_LIMIT, WEIGHT_GRID


class Lagrangian:
    """Components of ``L_w(x) = sum_name w[name] * name(x)`` as tables over label scopes: ``E`` (entropy),
    ``Q`` (-beta Q, or a bound of it), ``F``, ``P``, ``T`` (sum of log w of the main convs), ``N`` (their
    number).  ``maximise(w)`` gives max_x L_w and a maximiser by elimination (``exact`` says which of E and Q
    are kept exactly; the others are bounded above).

    The entropy is E = sum_j B_j T_j with B_j = sum_{i >= j} A_i.  Where B_j varies with the labels of the
    later stage ends, a weight variable b_j joins the labels: its values are the distinct values of
    A_j + b_{j+1} (or ``WEIGHT_GRID`` points from their minimum to their maximum), a link table (0 or -inf)
    over (A_j's labels, b_{j+1}, b_j) ties b_j to the smallest of them >= A_j(x) + b_{j+1}, and stage j's
    factors read b_j instead of B_j.  As b_j >= B_j(x), T_j >= 0 and w[E] >= 0, this can only raise the
    maximum (and is exact when every value is kept); the buckets hold one b_j per stage instead of every
    later stage end's labels."""

    def __init__(self, model, exact_depths=True):
        self.model = model
        self.sizes = list(model.sizes)          # the labels, then the weight variables b_j
        self.components: dict[tuple, dict] = {}
        self.constant = {"E": 0.0, "Q": 0.0}
        self.exact = {"E": True, "Q": True}
        self.weights = self._stage_weights()
        for t in model.tables:
            self._add_factor(t)
        self._add_depths(exact_depths)
        self.count_scope = self._add_count()
        self._plans: dict = {}
        self.cells = 0                          # bucket cells computed so far (the work of maximise)
        self.calls = 0

    def _add(self, scope, name, array):
        comp = self.components.setdefault(tuple(scope), {})
        comp[name] = comp[name] + array if name in comp else array

    def _stage_weights(self) -> list:
        """Per stage j: B_j as a float, or (axis, values) of its weight variable b_j.  Built backwards,
        B_j = A_j + B_{j+1}: b_j's link ties it to the smallest of its values >= A_j(x) + b_{j+1} (so
        b_j >= B_j(x) by induction); a constant A_j shifts b_{j+1}'s values instead of adding a variable."""
        model, weights, later = self.model, [0.0] * self.model.m, 0.0
        for j in reversed(range(model.m)):
            end, scale = model.ends[j], model.alpha[j] * model.s
            if not (isinstance(end, Lookup) and end.axes):
                self.exact["E"] &= isinstance(end, Lookup)
                const = scale * end_value(end, model)
                later = (later[0], later[1] + const) if isinstance(later, tuple) else later + const
            else:
                a = scale * np.array(end.values).reshape([model.sizes[ax] for ax in end.axes])
                scope = end.axes + ((later[0],) if isinstance(later, tuple) else ())
                b = a[..., None] + later[1] if isinstance(later, tuple) else a + later
                later = self._weight_variable(scope, b)
            weights[j] = later
        return weights

    def _weight_variable(self, scope, b):
        """A new weight variable over the distinct values of ``b`` (a table over ``scope``), or
        ``WEIGHT_GRID`` points up to its maximum, linked to the smallest value >= b."""
        grid = np.unique(b)
        if len(grid) > WEIGHT_GRID:
            top = grid[-1]
            grid = np.linspace(grid[0], top, WEIGHT_GRID)
            grid[-1] = top
            self.exact["E"] = False
        axis = len(self.sizes)
        self.sizes.append(len(grid))
        link = np.full(b.shape + (len(grid),), -np.inf)
        np.put_along_axis(link, np.searchsorted(grid, b, side="left")[..., None], 0.0, axis=-1)
        self._add(tuple(scope) + (axis,), "L", link)
        return axis, grid

    def _add_factor(self, t):
        model = self.model
        order = tuple(int(i) for i in np.argsort([model.pos[lab] for lab in t.labels]))
        axes = tuple(model.pos[t.labels[i]] for i in order)
        lw = np.transpose(t.log_width, order + (len(order),))
        self._add(axes, "F", np.transpose(t.flops, order))
        self._add(axes, "P", np.transpose(t.params, order))
        self._add(axes, "T", lw.sum(axis=-1))
        self._add(axes, "N", np.transpose(t.layers, order + (len(order),)).sum(axis=-1))
        fixed = np.zeros(lw.shape[:-1])
        for j, weight in enumerate(self.weights):
            if not lw[..., j].any():
                continue
            if isinstance(weight, tuple):
                axis, grid = weight
                self._add(axes + (axis,), "E", lw[..., j][..., None] * grid)
            else:
                fixed = fixed + weight * lw[..., j]
        self._add(axes, "E", fixed)

    def _add_count(self):
        """N(x) as one table ``count`` over the labels it varies with, when they are few (then the rho term
        T - h(N(x)) of the Lagrangian is exact in N); None otherwise."""
        model, parts = self.model, []
        for scope, comp in self.components.items():
            if "N" in comp:
                n = comp["N"]
                varying = tuple(a for i, a in enumerate(scope) if np.ptp(n, axis=i).any())
                parts.append((varying, n[tuple(slice(None) if a in varying else slice(0, 1) for a in scope)]))
        axes = tuple(sorted({a for v, _ in parts for a in v}))
        if math.prod(model.sizes[a] for a in axes) > LOOKUP_LIMIT:
            return None
        total = np.zeros([model.sizes[a] for a in axes])
        for varying, n in parts:
            total = total + n.reshape([model.sizes[a] if a in varying else 1 for a in axes])
        self.components.setdefault(axes, {})["count"] = total
        return axes

    def _add_depths(self, exact_depths):
        """-beta Q: a constant when the depths are; exactly, over the depth labels, when few (and
        ``exact_depths``); else its tangent bound at the first sample's depths where the depths are a
        fixed-length vector of label sums; else -beta (Q >= 1)."""
        model, beta = self.model, self.model.beta
        axes = model.depth_axes
        if model.q_constant is not None:
            self.constant["Q"] = -beta * model.q_constant
            return
        if exact_depths and math.prod(model.sizes[a] for a in axes) <= LOOKUP_LIMIT:
            x = [0] * len(model.sizes)
            flat = []
            for combo in itertools.product(*(range(model.sizes[a]) for a in axes)):
                for a, v in zip(axes, combo):
                    x[a] = v
                flat.append(-beta * depth_penalty(model.depths(x)))
            self._add(tuple(axes), "Q", np.array(flat).reshape([model.sizes[a] for a in axes]))
            return
        linear = depth_tangent(model, model.depths([0] * len(model.sizes)))
        self.exact["Q"] = False
        if linear is None:
            self.constant["Q"] = -beta
            return
        const, parts = linear
        self.constant["Q"] = const
        for scope, array in parts:
            self._add(scope, "Q", array)

    def plan(self, names):
        names = frozenset(names)
        names |= {"L"} if "E" in names else set()
        plan = self._plans.get(names)
        if plan is None:
            keys = names | ({"count"} if "H" in names else set())
            scopes = [s for s, comp in self.components.items() if keys & comp.keys()]
            plan = self._plans[names] = (names, scopes, Eliminator(scopes, self.sizes))
        return plan

    def maximise(self, w: dict, rho=None, fixed=None):
        """(max_x sum_name w[name] name(x), or an upper bound of it (see the class), and a maximiser).
        ``w["H"]`` weighs h(N(x)) = N log(N / rho) (needs ``count_scope``); ``fixed`` ({axis: index}) restricts
        the maximum to the samples with those labels at those values."""
        names, scopes, elim = self.plan(k for k, v in w.items() if v)
        weights = dict(w, L=1.0)
        tables = []
        for s in scopes:
            comp = self.components[s]
            acc = None
            for name in ("E", "L", "Q", "F", "P", "T", "N", "H"):
                key = "count" if name == "H" else name
                if name in names and key in comp:
                    if name == "H":
                        n = comp["count"]
                        term = weights["H"] * np.where(n > 0, n * np.log(np.maximum(n, 1) / rho), 0.0)
                    else:
                        term = comp[name] if weights[name] == 1.0 else weights[name] * comp[name]
                    acc = term if acc is None else acc + term
            tables.append(acc)
        for axis, index in (fixed or {}).items():
            i = next((i for i, s in enumerate(scopes) if axis in s), None)
            if i is not None:
                mask = np.full(self.sizes[axis], -np.inf)
                mask[index] = 0.0
                shape = [self.sizes[a] if a == axis else 1 for a in scopes[i]]
                tables[i] = tables[i] + mask.reshape(shape)
        value, x = elim.maximise(tables)
        self.cells += elim.cells
        self.calls += 1
        value += sum(w.get(k, 0.0) * c for k, c in self.constant.items())
        return value, x[:len(self.model.sizes)]


def end_value(end, model) -> float:
    """A constant stage end's log(r^2 c), or an upper bound of it over the space (a DirectEnd end)."""
    if isinstance(end, Lookup):
        return end.values[0]
    return end.upper


def depth_tangent(model, point):
    """(constant, [(scope, table)]) with -beta Q(D) <= constant + sum of tables, from Q's convexity in the depth
    vector D: Q(D) >= Q(D_0) + g . (D - D_0), g = Q(D_0) (D_0 - mean D_0) / (M std D_0) (g = 0 when std = 0).
    Needs D to be a fixed-length vector of sums of depth-term values: per stage (block counts, or the
    "paper" convention) with every stage's depth >= 1 in every sample, or one entry per unconditional Repeat.
    None when it is not."""
    terms = model.depth_terms
    if not terms:
        return None
    per_term = model.convention == "official" and terms[0][2] == "repeat"
    if per_term:
        if any(None in lk.values for lk, _, _ in terms):
            return None
        slots = list(range(len(terms)))
        slot_of = list(range(len(terms)))
    else:
        slots = sorted({st for _, st, _ in terms})
        slot_of = [slots.index(st) for _, st, _ in terms]
        lows = [0] * len(slots)
        groups: dict[tuple, list] = {}
        for t, (lk, _, _) in enumerate(terms):
            groups.setdefault(lk.axes, []).append(t)
        for axes, members in groups.items():
            for j in range(len(slots)):
                mine = [t for t in members if slot_of[t] == j]
                if mine:
                    lows[j] += min(sum(terms[t][0].values[i] or 0 for t in mine)
                                   for i in range(len(terms[mine[0]][0].values)))
        if min(lows) < 1:
            return None
    d0 = np.asarray(point if point is not None and len(point) == len(slots) else [1] * len(slots), dtype=float)
    std = float(np.std(d0))
    q0 = math.exp(std)
    grad = q0 * (d0 - d0.mean()) / (len(d0) * std) if std > 0 else np.zeros(len(d0))
    beta = model.beta
    parts = []
    for t, (lk, _, _) in enumerate(terms):
        vals = np.array([v or 0 for v in lk.values], dtype=float).reshape([model.sizes[a] for a in lk.axes])
        parts.append((lk.axes, -beta * grad[slot_of[t]] * vals))
    return -beta * (q0 - float(grad @ d0)), parts
