"""The DeepMAD program over a space read by :func:`deepmad_nni.nas.reader.read_space` (hub spaces, any labels).

    maximise  E(x) - beta Q(x)   s.t.   F(x) <= F_0,  P(x) <= P_0,  rho(x) <= rho_0

over samples x (one value per label).  The reader writes F (MACs), P and, per stage j, T_j = sum of log w_l
and N_j = number of main-path convs as sums of *label factors* (tables over a few labels each).  The entropy
is E = sum_j B_j T_j with B_j = sum_{i >= j} A_i, A_i = alpha_i s log(r_i^2 c_i) (a table over the labels
of stage i's end, constant on most spaces); Q = exp(std(depths)) is a table over the depth labels.

**Bound.**  With T = sum_j T_j, N = sum_j N_j and h(n) = n log(n / rho_0), every feasible x has
T(x) >= h(N(x)): rho <= rho_0 holds for the whole network (the official rho is the maximum over stage
prefixes, the whole network among them), and rho = N / exp(T / N).  So for multipliers lam_F, lam_P, mu >= 0

    OPT <= G(theta) = max_x [E - beta Q - lam_F F - lam_P P + mu (T - h(N(x)))] + lam_F F_0 + lam_P P_0,

because for a feasible x every added term is >= 0.  Where N spans too many labels to tabulate h(N(x)), a free
nu relaxes n = N(x): G = max_x [... + mu T - nu N] + ... + max_{N_lo <= n <= N_hi} (nu n - mu h(n)) (for
feasible x take n = N(x)).  The inner maximum is a sum of label factors: max-sum variable elimination
computes it exactly (:class:`_Eliminator`; a bucket over more than ``ELIMINATION_CELL_LIMIT`` cells is split in
mini-buckets, which can only raise it: still a bound).  Terms spanning too many labels are bounded above,
never below: B_j by the next of at most ``WEIGHT_GRID`` values >= it (T_j >= 0 as w >= 1), a stage end by
its largest value, -beta Q by its tangent plane (Q is convex in the depth vector) or by -beta (Q >= 1).
G is convex and piecewise linear in theta; a box-step cutting-plane method minimises it.  A best-first branch
and bound then minimises G per node with a prefix of the labels fixed (first those N depends on, the
depths: with them fixed the rho term is exact): the bound is the largest bound of an open node, and when
every node closes on the incumbent, the incumbent is optimal.

**Search.**  From the Lagrangian maximisers met by the dual: a repair to feasibility (the move losing least
objective per unit of excess removed), then best-improvement ascent over feasible single-label moves and pair
moves (an improving over-budget move and the best second move), then restarts (a kick across the budget's
edge, a perturbed incumbent, a maximiser at perturbed multipliers) drawn with ``seed``.  The quick solve
(``time_limit=None``) stops after a fixed amount of work (``QUICK_EVALUATIONS`` samples scored,
``QUICK_BRANCH_EVALUATIONS`` maximisations), so it gives the same design on every run; a ``time_limit``
continues the restarts and the branch and bound, in turn, until it is spent.  Spaces with at most
``enumerate_limit`` samples are enumerated.

**Statuses** (:mod:`deepmad_nni.core.result`): ``optimal`` (enumerated, or the bound within
``OPTIMAL_TOLERANCE`` relative of the best design), ``feasible-with-gap``, ``infeasible`` (proven: a budget
below the smallest network, or a certificate G_0(theta) < 0 of the program without objective),
``limit-reached`` (no design found, none proven impossible).  Without a design, the message gives the range
of rho the space reaches within the budgets (:func:`rho_range`).

Samples are scored from the reader's tables, never frozen; a design's figures are the reader's
:meth:`~deepmad_nni.nas.reader.SpaceDescription.evaluate`.
"""
from __future__ import annotations

import heapq
import itertools
import math
import random
import time
import weakref
from dataclasses import dataclass

import numpy as np

from deepmad_nni.core.result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL, DesignResult
from deepmad_nni.core.score import CONVENTIONS, Score, default_alpha, depth_penalty

__all__ = ["ENUMERATE_LIMIT", "SpaceDesign", "rho_range", "solve_space"]

# -- every setting of the solver (the quick plan and the bound), in one place --------------------------------
ENUMERATE_LIMIT = 20000           # spaces with at most this many samples are enumerated (proven optimal)
ELIMINATION_CELL_LIMIT = 2 ** 21  # largest bucket table of the variable elimination (else mini-buckets)
LOOKUP_LIMIT = 4096               # largest table of a stage end, of Q or of N over their labels (else bounded)
WEIGHT_GRID = 64                  # most values kept of a stage's entropy weight B_j (else rounded up to a grid)
DUAL_ROUNDS = 24                  # cutting-plane rounds of the root Lagrangian dual
NODE_ROUNDS = 8                   # cutting-plane rounds per branch-and-bound node (from the parent's multipliers)
DUAL_TOLERANCE = 1e-4             # the dual stops when no point of the box can gain this much (relative)
DUAL_BOX = 64.0                   # multipliers, in units of objective per whole budget, lie in [0, DUAL_BOX]
DUAL_STEP = 0.5                   # first trust-region radius of the box-step method (same units)
DUAL_MIN_STEP = 1e-6              # ... and its smallest
SERIOUS_STEP = 0.1                # a step moves the center when it gains this share of the predicted gain
STARTS = 6                        # Lagrangian maximisers the search starts from
PAIR_CANDIDATES = 8               # improving over-budget moves tried with a second move
QUICK_EVALUATIONS = 20000         # the quick search restarts until it has scored this many samples
QUICK_BRANCH_EVALUATIONS = 400    # the quick branch and bound takes no step that could pass this many
QUICK_BRANCH_CELLS = 60_000_000   # Lagrangian maximisations, or this many cells of elimination tables
KICK_PENALTIES = (0.3,)           # loose excess penalties (x objective scale) of the kicks across the budget
PERTURBED_LABELS = 4              # labels redrawn per restart from the incumbent
MULTIPLIER_NOISE = 0.1            # log-normal spread of the multipliers per restart from a Lagrangian maximiser
OPTIMAL_TOLERANCE = 1e-9          # bound within this relative distance of the best design: optimal
IMPROVEMENT = 1e-12               # a move must gain this much (relative) to be taken
RANKING_PENALTY = 1e6             # starts over the limits rank by value - this * |objective| * excess


@dataclass(frozen=True)
class SpaceDesign:
    """A sample (every label, inactive ones at their first value) and its DeepMAD figures."""

    sample: dict
    score: Score
    architecture = None     # a hub-space design has no core Architecture (DesignResult reads this)


# -- the compiled space: index samples, factor tables, fast scoring ---------------------------------------------
class _Lookup:
    """A function of a few labels as a flat list over their index combinations (row-major)."""

    __slots__ = ("axes", "strides", "values")

    def __init__(self, axes, sizes, values):
        self.axes = tuple(axes)
        strides, acc = [], 1
        for a in reversed(self.axes):
            strides.append(acc)
            acc *= sizes[a]
        self.strides = tuple(reversed(strides))
        self.values = values

    def index(self, x) -> int:
        return sum(x[a] * s for a, s in zip(self.axes, self.strides))

    def __call__(self, x):
        return self.values[self.index(x)]


def _table_over(fn, labels, model):
    """``fn(sample dict)`` over every combination of ``labels`` (ascending label positions), as a _Lookup."""
    axes = sorted(model.pos[lab] for lab in labels)
    combos = itertools.product(*(model.values[a] for a in axes))
    return _Lookup(axes, model.sizes, [fn({model.labels[a]: v for a, v in zip(axes, c)}) for c in combos])


class _Model:
    """The program over index samples (x[k] = position of label k's value): the reader's factor tables as
    flat lists, the stage-end terms A_i and the depths as lookups, exact scoring in the reader's order."""

    def __init__(self, desc, alpha, beta, convention):
        self.desc, self.alpha, self.beta, self.convention = desc, alpha, beta, convention
        self.s = CONVENTIONS[convention]
        self.labels = list(desc.mutables)
        self.values = [list(desc.mutables[lab].values) for lab in self.labels]
        self.sizes = [len(v) for v in self.values]
        self.pos = {lab: k for k, lab in enumerate(self.labels)}
        self.m = desc.num_stages
        self.tables = desc.factor_tables()
        self.factors = [self._factor(t) for t in self.tables]
        self.of_label = [[] for _ in self.labels]
        for i, f in enumerate(self.factors):
            for a in f[0].axes:
                self.of_label[a].append(i)
        self.ends = [self._end(c, hw) for c, hw in desc.stage_ends]
        self.depth_terms = [self._depth_term(t) for t in desc.depth_terms]
        self.depth_axes = sorted({a for lk, _, _ in self.depth_terms for a in lk.axes})
        self._q: dict = {}
        self._groups = self._depth_groups()
        constant = self._groups is not None and all(len(set(g.values)) == 1 for g in self._groups)
        self._q_constant = depth_penalty(self.depths([0] * len(self.sizes))) if constant else None
        self._end_constant = [e.values[0] if isinstance(e, _Lookup) and not e.axes else None for e in self.ends]

    # -- compilation ------------------------------------------------------------------------------------
    def _factor(self, t):
        """(lookup of (flops, params), its stages, lookup of per-stage (sum log w, count) on those stages)."""
        order = np.argsort([self.pos[lab] for lab in t.labels])
        axes = [self.pos[t.labels[i]] for i in order]
        lw, n = (np.transpose(a, tuple(order) + (len(order),)).reshape(-1, self.m) for a in (t.log_width, t.layers))
        stages = [j for j in range(self.m) if (n[:, j] != 0).any() or (lw[:, j] != 0).any()]
        fp = np.transpose(t.flops, order).ravel(), np.transpose(t.params, order).ravel()
        cost = _Lookup(axes, self.sizes, list(zip(fp[0].tolist(), fp[1].tolist())))
        per_stage = _Lookup(axes, self.sizes, [tuple(zip(r_lw, r_n)) for r_lw, r_n in
                                               zip(lw[:, stages].tolist(), n[:, stages].astype(int).tolist())])
        return cost, tuple(stages), per_stage

    def _end(self, c, hw):
        """log(r_i^2 c_i) of a stage end: a lookup, or a function of the sample when it spans too many labels."""
        labels = sorted(set(c.labels) | set(hw.labels))
        if math.prod(self.sizes[self.pos[lab]] for lab in labels) <= LOOKUP_LIMIT:
            return _table_over(lambda smp: math.log(hw(smp) * c(smp)), labels, self)
        upper = math.log(_largest(hw, self.desc.mutables) * _largest(c, self.desc.mutables))
        return _Direct(lambda smp: math.log(hw(smp) * c(smp)), [self.pos[lab] for lab in labels], self, upper)

    def _depth_term(self, term):
        """(lookup of the depth, or None where inactive; its stage; kind) of one reader depth term."""
        stage, d, conds, kind = term
        labels = sorted(set(d.labels) | {lab for cond in conds for lab in cond.value.labels})
        fn = lambda smp: d(smp) if all(cond(smp) for cond in conds) else None   # noqa: E731
        return _table_over(fn, labels, self), stage, kind

    # -- scoring ----------------------------------------------------------------------------------------
    def totals(self, x):
        """(F, P, per-stage sum log w, per-stage count): the reader's sums, in the reader's order."""
        flops = params = 0.0
        t, n = [0.0] * self.m, [0] * self.m
        for cost, stages, per_stage in self.factors:
            i = cost.index(x)
            fl, pa = cost.values[i]
            flops += fl
            params += pa
            for j, (v, c) in zip(stages, per_stage.values[i]):
                t[j] += v
                n[j] += c
        return flops, params, t, n

    def _depth_groups(self):
        """Per-stage depths (block counts, or the "paper" convention) as sums over groups of depth terms on
        the same labels: one lookup per group of (per-stage sum, per-stage number of active terms); None when
        Q is taken over each Repeat's depth (official convention)."""
        if self.convention == "official" and self.depth_terms and self.depth_terms[0][2] == "repeat":
            return None
        groups: dict[tuple, list] = {}
        for lk, st, _ in self.depth_terms:
            groups.setdefault(lk.axes, []).append((lk, st))
        out = []
        for axes, members in groups.items():
            values = []
            for i in range(len(members[0][0].values)):
                sums, counts = [0] * self.m, [0] * self.m
                for lk, st in members:
                    if lk.values[i] is not None:
                        sums[st] += lk.values[i]
                        counts[st] += 1
                values.append((tuple(sums), tuple(counts)))
            out.append(_Lookup(axes, self.sizes, values))
        return out

    def depths(self, x) -> tuple:
        if self._groups is None:
            return tuple(d for lk, _, _ in self.depth_terms if (d := lk(x)) is not None)
        sums, counts = [0] * self.m, [0] * self.m
        for g in self._groups:
            for j, (a, c) in enumerate(zip(*g(x))):
                sums[j] += a
                counts[j] += c
        return tuple(a for a, c in zip(sums, counts) if c)

    def q(self, x) -> float:
        if self._q_constant is not None:
            return self._q_constant
        key = tuple(x[a] for a in self.depth_axes)
        v = self._q.get(key)
        if v is None:
            v = self._q[key] = depth_penalty(self.depths(x))
        return v

    def figures(self, x, totals=None):
        """(objective, rho, F, P, T, N) of x as :meth:`SpaceDescription.evaluate` computes them."""
        flops, params, t, n = totals if totals is not None else self.totals(x)
        stage_h, rhos, cum, cnt = [], [], 0.0, 0
        for j in range(self.m):
            cum += t[j]
            cnt += n[j]
            end = self._end_constant[j]
            stage_h.append(self.s * (end if end is not None else self.ends[j](x)) * cum)
            if cnt:
                rhos.append(cnt / math.exp(cum / cnt))
        rho = (max(rhos) if self.convention == "official" else rhos[-1]) if rhos else math.inf
        entropy = float(np.dot(self.alpha, stage_h))
        return entropy - self.beta * self.q(x), rho, flops, params, cum, cnt

    def sample(self, x) -> dict:
        return {lab: self.values[k][x[k]] for k, lab in enumerate(self.labels)}


def _largest(term, mutables) -> float:
    """Largest value of a reader Term (or of any entry of a last-active width) over its labels."""
    if hasattr(term, "entries"):
        return max(_largest(t, mutables) for _, t in term.entries)
    return float(np.max(term.table(mutables)))


class _Direct:
    """A stage-end function evaluated on the sample itself (too many labels for a lookup); ``upper`` bounds it
    over the space."""

    def __init__(self, fn, axes, model, upper):
        self.fn, self.axes, self.model, self.upper = fn, tuple(sorted(axes)), model, upper
        self.cache: dict = {}

    def __call__(self, x):
        key = tuple(x[a] for a in self.axes)
        v = self.cache.get(key)
        if v is None:
            v = self.cache[key] = self.fn({self.model.labels[a]: self.model.values[a][x[a]] for a in self.axes})
        return v


# -- max-sum variable elimination -------------------------------------------------------------------------------
class _Eliminator:
    """max_x sum_k f_k(x_{S_k}) for tables f_k over sorted axis tuples S_k, by variable elimination in a
    greedy smallest-bucket order (planned once per set of scopes).  A bucket over more than
    ``ELIMINATION_CELL_LIMIT`` cells is split in mini-buckets, each maximised on its own: the value is then an
    upper bound (max of a sum <= sum of maxima) and ``exact`` is False."""

    def __init__(self, scopes, sizes):
        self.scopes, self.sizes = [tuple(s) for s in scopes], sizes
        self.scope_of = list(self.scopes)          # tables, then messages, by id
        self.steps, self.exact = self._plan()
        self.cells = sum(self._cells(union) for _, groups in self.steps for _, union, _ in groups)

    def _cells(self, axes) -> int:
        return math.prod(self.sizes[a] for a in axes)

    def _plan(self):
        live = {i: s for i, s in enumerate(self.scopes) if s}
        holders: dict[int, set] = {}
        for i, s in live.items():
            for a in s:
                holders.setdefault(a, set()).add(i)
        next_id, steps, exact = len(self.scopes), [], True
        while holders:
            def cost(a):
                return self._cells(set().union(*(live[i] for i in holders[a]))), a
            v = min(holders, key=cost)
            groups = []
            for members in self._split(sorted(holders.pop(v)), live):
                union = tuple(sorted(set().union(*(live[i] for i in members))))
                msg = tuple(a for a in union if a != v)
                for i in members:
                    for a in live.pop(i):
                        if a != v:
                            holders[a].discard(i)
                live[next_id] = msg
                self.scope_of.append(msg)
                for a in msg:
                    holders[a].add(next_id)
                groups.append((members, union, next_id))
                next_id += 1
            exact &= len(groups) == 1
            steps.append((v, groups))
        return steps, exact

    def _split(self, members, live):
        """The bucket, or mini-buckets of at most ELIMINATION_CELL_LIMIT cells (largest scopes first)."""
        if self._cells(set().union(*(live[i] for i in members))) <= ELIMINATION_CELL_LIMIT:
            return [members]
        groups: list[list] = []
        for i in sorted(members, key=lambda i: (-self._cells(live[i]), i)):
            for g in groups:
                if self._cells(set().union(live[i], *(live[j] for j in g))) <= ELIMINATION_CELL_LIMIT:
                    g.append(i)
                    break
            else:
                groups.append([i])
        return [sorted(g) for g in groups]

    def maximise(self, tables):
        """(max value, a maximiser as a list of indices) of the sum of ``tables`` (one per scope; a table has
        one axis per scope axis, in order).  Labels in no scope get index 0."""
        arrays = dict(enumerate(tables))
        kept = []
        for v, groups in self.steps:
            parts = []
            for members, union, msg in groups:
                acc = None
                for i in members:
                    scope = self.scope_of[i]
                    a = arrays.pop(i).reshape([self.sizes[u] if u in scope else 1 for u in union])
                    acc = a if acc is None else acc + a
                arrays[msg] = acc.max(axis=union.index(v))
                parts.append((union, acc))
            kept.append((v, parts))
        value = math.fsum(float(a) for a in arrays.values())
        x = [0] * len(self.sizes)
        for v, parts in reversed(kept):
            total = sum(acc[tuple(slice(None) if u == v else x[u] for u in union)] for union, acc in parts)
            x[v] = int(np.argmax(total))
        return value, x


# -- the Lagrangian: components as label tables -------------------------------------------------------------
class _Lagrangian:
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
            if not (isinstance(end, _Lookup) and end.axes):
                self.exact["E"] &= isinstance(end, _Lookup)
                const = scale * _end_value(end, model)
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
        if model._q_constant is not None:
            self.constant["Q"] = -beta * model._q_constant
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
        linear = _depth_tangent(model, model.depths([0] * len(model.sizes)))
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
            plan = self._plans[names] = (names, scopes, _Eliminator(scopes, self.sizes))
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


def _end_value(end, model) -> float:
    """A constant stage end's log(r^2 c), or an upper bound of it over the space (a _Direct end)."""
    if isinstance(end, _Lookup):
        return end.values[0]
    return end.upper


def _depth_tangent(model, point):
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


# -- Lagrangian duals ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Program:
    """max sum_name objective[name] * name(x)  s.t.  F <= flops, P <= params, rho <= rho (None: no limit)."""

    objective: dict
    flops: float | None
    params: float | None
    rho: float | None


class _Dual:
    """G(theta) of the module docstring for one program, over scaled multipliers u (theta = u * unit), with
    the maximisers met along the way."""

    def __init__(self, lag, program: _Program, layer_range, fixed_mu=None):
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


# -- local search ---------------------------------------------------------------------------------------------
class _State:
    """An index sample with its factor positions, totals and figures (objective, rho, F, P, T, N)."""

    __slots__ = ("x", "idx", "totals", "fig", "value", "excess")


class _Search:
    """Best-improvement search over index samples.  ``key(fig) -> (value, excess)`` says what is maximised
    (``value``) and how far over the limits a sample is (``excess``, 0 when feasible).  Every feasible
    sample met is offered to the pool of the ``top_k`` best distinct networks (by the reader's signature)."""

    def __init__(self, model, key, top_k):
        self.model, self.key, self.top_k = model, key, top_k
        self.touch = [[(f, model.factors[f][0].strides[model.factors[f][0].axes.index(k)])
                       for f in model.of_label[k]] for k in range(len(model.sizes))]
        self.pool: list = []                 # min-heap of (value, -order, x, signature)
        self.signatures: set = set()
        self.evaluated = 0                   # samples scored (a sample met twice counts twice)
        self.order = 0

    def state(self, x) -> _State:
        m, st = self.model, _State()
        st.x = list(x)
        st.idx = [cost.index(st.x) for cost, _, _ in m.factors]
        st.totals = m.totals(st.x)
        st.fig = m.figures(st.x, st.totals)
        st.value, st.excess = self.key(st.fig)
        self._met(st.x, st.value, st.excess)
        return st

    def _moved(self, st, k, v):
        """(sample, totals) of ``st`` with label k at index v, updated through the factors reading k."""
        flops, params, t, n = st.totals
        t, n = list(t), list(n)
        dv = v - st.x[k]
        factors, idx = self.model.factors, st.idx
        for f, stride in self.touch[k]:
            cost, stages, per = factors[f]
            i0 = idx[f]
            i1 = i0 + dv * stride
            (f0, p0), (f1, p1) = cost.values[i0], cost.values[i1]
            flops += f1 - f0
            params += p1 - p0
            for j, (a0, c0), (a1, c1) in zip(stages, per.values[i0], per.values[i1]):
                t[j] += a1 - a0
                n[j] += c1 - c0
        y = list(st.x)
        y[k] = v
        return y, (flops, params, t, n)

    def moves(self, st, score=None):
        """Every single-label move of ``st``: (value, excess, k, v), or (score(figures), 0, k, v)."""
        out = []
        for k, size in enumerate(self.model.sizes):
            for v in range(size):
                if v != st.x[k]:
                    y, totals = self._moved(st, k, v)
                    fig = self.model.figures(y, totals)
                    value, excess = self.key(fig)
                    self._met(y, value, excess)
                    out.append((value, excess, k, v) if score is None else (score(fig), 0.0, k, v))
        return out

    def ascend(self, st, score):
        """Best-improvement ascent on ``score(figures)``, limits ignored (a kick across the budget's edge)."""
        current = score(st.fig)
        while True:
            value, _, k, v = max(self.moves(st, score), key=lambda mv: (mv[0], -mv[2], -mv[3]))
            if value <= current + IMPROVEMENT * abs(current):
                return st
            st, current = self.state(self._apply(st, k, v)), value

    def _met(self, y, value, excess):
        self.evaluated += 1
        if excess <= 0 and (len(self.pool) < self.top_k or value > self.pool[0][0]):
            self._offer(tuple(y))

    def _offer(self, key):
        """Into the pool, checked exactly (the reader's sums) and kept one per network."""
        m = self.model
        value, excess = self.key(m.figures(list(key)))
        if excess > 0 or (len(self.pool) >= self.top_k and value <= self.pool[0][0]):
            return
        signature = m.desc.signature(m.sample(key))
        if signature in self.signatures:
            return
        self.order += 1
        item = (value, -self.order, key, signature)
        self.signatures.add(signature)
        if len(self.pool) < self.top_k:
            heapq.heappush(self.pool, item)
        else:
            self.signatures.discard(heapq.heapreplace(self.pool, item)[3])

    def best(self):
        return sorted(self.pool, reverse=True)

    def repair(self, st):
        """Until feasible: the best move that reaches feasibility, else the move losing least value per unit
        of excess removed (stops when no move reduces the excess)."""
        while st.excess > 0:
            moves = self.moves(st)
            feasible = [mv for mv in moves if mv[1] <= 0]
            if feasible:
                _, _, k, v = max(feasible, key=lambda mv: (mv[0], -mv[2], -mv[3]))
            else:
                better = [mv for mv in moves if mv[1] < st.excess]
                if not better:
                    break
                _, _, k, v = max(better, key=lambda mv: ((mv[0] - st.value) / (st.excess - mv[1]), -mv[2], -mv[3]))
            st = self.state(self._apply(st, k, v))
        return st

    @staticmethod
    def _apply(st, k, v):
        y = list(st.x)
        y[k] = v
        return y

    def climb(self, st):
        """Best feasible single move while one improves, then the best (over-budget move, repair) pair."""
        while st.excess <= 0:
            moves = self.moves(st)
            floor = st.value + IMPROVEMENT * abs(st.value)
            up = [mv for mv in moves if mv[1] <= 0 and mv[0] > floor]
            if up:
                _, _, k, v = max(up, key=lambda mv: (mv[0], -mv[2], -mv[3]))
                nxt = self.state(self._apply(st, k, v))
                if nxt.excess <= 0 and nxt.value > st.value:
                    st = nxt
                    continue
            pair = self._pair(st, moves, floor)
            if pair is None:
                break
            st = pair
        return st

    def _pair(self, st, moves, floor):
        """The best feasible result of an improving over-budget move followed by any single move."""
        over = sorted((mv for mv in moves if mv[1] > 0 and mv[0] > floor), key=lambda mv: (-mv[0], mv[2], mv[3]))
        best = None
        for _, _, k, v in over[:PAIR_CANDIDATES]:
            mid = self.state(self._apply(st, k, v))
            for value, excess, k2, v2 in self.moves(mid):
                if excess <= 0 and value > floor and (best is None or value > best[0]):
                    best = (value, mid, k2, v2)
        if best is None:
            return None
        nxt = self.state(self._apply(best[1], best[2], best[3]))
        return nxt if nxt.excess <= 0 and nxt.value > st.value else None


# -- the solver ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Limits:
    flops: float | None
    params: float | None
    rho: float | None

    def excess(self, rho, flops, params) -> float:
        """Summed relative excess over the limits (0 when within all)."""
        v = max(0.0, rho / self.rho - 1.0) if self.rho is not None else 0.0
        if self.flops is not None:
            v += max(0.0, flops / self.flops - 1.0)
        if self.params is not None:
            v += max(0.0, params / self.params - 1.0)
        return v

    def objective_key(self):
        """Search key: the objective, and the excess over every limit."""
        return lambda fig: (fig[0], self.excess(fig[1], fig[2], fig[3]))

    def rho_key(self):
        """Search key for the smallest rho within the budgets."""
        return lambda fig: (-fig[1], self.excess(0.0, fig[2], fig[3]))

    def describe(self) -> str:
        parts = [f"{_amount(self.flops)} FLOPs" if self.flops is not None else None,
                 f"{_amount(self.params)} params" if self.params is not None else None]
        return " and ".join(p for p in parts if p) or "no budget"


def _amount(v: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(v) >= size:
            return f"{v / size:.4g}{unit}"
    return f"{v:.4g}"


class _Compiled:
    """What solving needs of a description for one (alpha, beta, convention), built once and cached."""

    def __init__(self, desc, alpha, beta, convention):
        self.model = _Model(desc, alpha, beta, convention)
        self._lagrangian = None
        self._ranges: dict = {}

    def lagrangian(self) -> _Lagrangian:
        """Q exactly when its table keeps the elimination within the cell limit, else Q's tangent bound."""
        if self._lagrangian is None:
            lag = _Lagrangian(self.model)
            if lag.exact["Q"] and not lag.plan({"E", "Q", "F", "P", "T", "N", "H"})[2].exact:
                lag = _Lagrangian(self.model, exact_depths=False)
            self._lagrangian = lag
        return self._lagrangian

    def extreme(self, name: str, sign: float) -> tuple:
        """(sign * max_x sign * name(x), its maximiser) for an additive F, P or N: exact."""
        key = (name, sign)
        if key not in self._ranges:
            value, x = self.lagrangian().maximise({name: sign})
            self._ranges[key] = (sign * value, x)
        return self._ranges[key]

    def layer_range(self) -> tuple[int, int]:
        lo, hi = self.extreme("N", -1.0)[0], self.extreme("N", 1.0)[0]
        return max(1, int(round(lo))), max(1, int(round(hi)))


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()   # description -> {program key: _Compiled}


def _compiled(desc, alpha, beta, convention) -> _Compiled:
    per_desc = _CACHE.setdefault(desc, {})
    key = (tuple(alpha), float(beta), convention)
    if key not in per_desc:
        per_desc[key] = _Compiled(desc, tuple(alpha), float(beta), convention)
    return per_desc[key]


def _unique(items) -> list:
    seen, out = set(), []
    for it in items:
        if it not in seen:
            seen.add(it)
            out.append(it)
    return out


def _starts(states, weight, count):
    """The ``count`` best distinct states: feasible ones by value, then the others by penalised value."""
    ranked = sorted(states, key=lambda st: (st.excess > 0, -(st.value - weight * st.excess)))
    out, seen = [], set()
    for st in ranked:
        if tuple(st.x) not in seen:
            seen.add(tuple(st.x))
            out.append(st)
    return out[:count]


def _floor_message(comp, lim) -> str | None:
    """Why no sample meets the FLOPs/params budgets, when the smallest network already breaks one (exact:
    both are sums of label factors, minimised by elimination)."""
    for name, limit, what in (("F", lim.flops, "FLOPs"), ("P", lim.params, "params")):
        if limit is not None:
            smallest = comp.extreme(name, -1.0)[0]
            if smallest > limit:
                return (f"No sample has {what} <= {_amount(limit)}: the smallest network of the space needs "
                        f"{_amount(smallest)} {what}.")
    return None


def _certificate(comp, lim):
    """The program without objective, dual over (lam_F, lam_P, nu) with mu = 1: (proven infeasible, proven
    lower bound of rho within the budgets, the dual's maximisers).  G_0(theta) < 0 proves that no sample
    meets the limits; every theta also gives, for budget-feasible x, T - nu N <= U(theta), hence
    rho >= min_n n exp(-U / n - nu)."""
    dual = _Dual(comp.lagrangian(), _Program({}, lim.flops, lim.params, lim.rho), comp.layer_range(), fixed_mu=1.0)
    value, _ = dual.minimise()
    with np.errstate(over="ignore"):
        lower = max(float(np.min(dual.n * np.exp(-u / dual.n - th["nu"]))) for th, u in dual.history)
    return value < 0, lower, dual.maximisers


def _climbed(search, starts):
    for st in starts:
        search.climb(search.repair(st))


def _reach(comp, lim):
    """(smallest rho found, rho of the best design without the rho limit, proven lower bound of rho) within
    the FLOPs/params budgets; the first two are None when no sample within them is found.  The smallest rho
    comes from a search minimising rho from the smallest networks and from the maximisers of the rho
    certificate's dual (run at the rho of the smallest network), which also gives the proven bound."""
    budgets = _Limits(lim.flops, lim.params, None)
    search = _Search(comp.model, budgets.rho_key(), 1)
    smallest = _unique([tuple(comp.extreme("F", -1.0)[1]), tuple(comp.extreme("P", -1.0)[1])])
    reference = max(comp.model.figures(x)[1] for x in smallest)
    _, proven, maximisers = _certificate(comp, _Limits(lim.flops, lim.params, reference))
    starts = [search.state(x) for x in _unique(smallest + maximisers)]
    _climbed(search, _starts(starts, RANKING_PENALTY, STARTS))
    best = search.best()
    _, _, designs, _, _ = _searched(comp, budgets, 1, None, 0, branch=False)
    low = -best[0][0] if best else None
    return low, designs[0].score.effectiveness if designs else None, proven


def _rho_message(lim, low, high, proven_low=None, certified_low=None, found=None, exact=False) -> str:
    """Why there is no design although the budgets can be met: the rho range the space reaches within them
    (``proven_low``, ``certified_low``: proven lower bounds of rho within them, the larger is given)."""
    budgets = lim.flops is not None or lim.params is not None
    within = f" within {lim.describe()}" if budgets else ""
    head = (f"No sample has rho <= {lim.rho:.4g}{within}" if found is None else
            f"No sample with rho <= {lim.rho:.4g}{within} found ({found} samples scored)")
    if low is None or high is None:
        return f"{head}; no sample{within} was found either."
    proven = max((v for v in (proven_low, certified_low) if v is not None), default=None)
    how = " (exact)" if exact else f" (none below {proven:.4g}, proven)" if proven else ""
    return (f"{head}: the space reaches rho {low:.4g}-{high:.4g}{' within these budgets' if budgets else ''}"
            f"{how}; choose rho_0 >= {low:.4g}.")


def _designs(model, keys) -> list[SpaceDesign]:
    """Index samples as designs: canonical samples (inactive labels at their first value), reader's figures."""
    out = []
    for key in keys:
        sample = model.desc.canonical(model.sample(key))
        out.append(SpaceDesign(sample, model.desc.evaluate(sample, alpha=model.alpha, beta=model.beta,
                                                           convention=model.convention)))
    return out


def _searched(comp, lim, top_k, time_limit, seed, t0=None, max_evaluations=None, branch=True):
    """The quick plan, then (with ``time_limit``) more of it until the time is spent, on a space too large to
    enumerate: (status, message, designs, bound, samples scored).  ``branch=False`` skips the quick plan's
    branch and bound (when only the design is wanted)."""
    floor = _floor_message(comp, lim)
    if floor is not None:
        return INFEASIBLE, floor, [], -math.inf, 0
    run = _Run(comp, lim, top_k, seed, max_evaluations)
    if run.certified is not None and run.certified[0]:
        return run.no_design()
    run.quick(branch)
    if time_limit is not None:
        run.until((t0 if t0 is not None else time.perf_counter()) + time_limit)
    return run.outcome()


class _Run:
    """One solve of the large-space route: the root dual, the search from its maximisers, the branch and
    bound; ``quick`` does the fixed work of the quick plan, ``until`` goes on until a deadline."""

    def __init__(self, comp, lim, top_k, seed, max_evaluations):
        self.comp, self.lim, self.model, self.max_evaluations = comp, lim, comp.model, max_evaluations
        self.lag = comp.lagrangian()
        self.dual = _Dual(self.lag, _Program({"E": 1.0, "Q": 1.0}, lim.flops, lim.params, lim.rho),
                          comp.layer_range())
        self.bound, self.u = self.dual.minimise()
        self.search = _Search(self.model, lim.objective_key(), top_k)
        self.states = [self.search.state(x) for x in _unique(self.dual.maximisers)]
        self.scale = max(abs(self.bound), 1.0)
        self.rng, self.restarts = random.Random(seed), itertools.count()
        counted = list(self.lag.count_scope or ())
        order = counted + [k for k in range(len(self.model.sizes)) if k not in counted]
        self.tree = _BranchAndBound(self.dual, order, self.bound, self.u, self.search)
        # no maximiser within the limits: try to prove that no sample is (before any search)
        feasible = any(st.excess <= 0 for st in self.states)
        self.certified = _certificate(comp, lim) if lim.rho is not None and not feasible else None

    @property
    def nodes(self) -> int:
        return self.search.evaluated + self.dual.evaluations

    def incumbent(self):
        return self.search.best()[0][0] if self.search.pool else None

    def restart(self):
        _climbed(self.search, [_restart(self.search, self.rng, self.dual, self.u, self.states,
                                        next(self.restarts), self.scale)])

    def quick(self, branch=True):
        """The STARTS best maximisers repaired and climbed, restarts until QUICK_EVALUATIONS samples were
        scored (or ``max_evaluations``), then (``branch``) the branch and bound within its quick budget."""
        _climbed(self.search, _starts(self.states, RANKING_PENALTY * self.scale, STARTS))
        quota = min(QUICK_EVALUATIONS, self.max_evaluations if self.max_evaluations is not None else math.inf)
        while self.search.evaluated < quota:
            self.restart()
        evaluations, cells = self.dual.evaluations, self.lag.cells
        while branch and self.search.pool and not self.tree.done:
            calls = (NODE_ROUNDS + 1) * self.tree.children()     # the next step's maximisations, at most
            if (self.dual.evaluations - evaluations + calls > QUICK_BRANCH_EVALUATIONS or
                    self.lag.cells - cells + calls * self.lag.cells / self.lag.calls > QUICK_BRANCH_CELLS):
                break
            self.tree.step(self.incumbent())

    def until(self, deadline):
        """Branch-and-bound steps and restarts, in turn, until ``deadline`` (or ``max_evaluations``)."""
        def more():
            return time.perf_counter() < deadline and (self.max_evaluations is None or
                                                       self.search.evaluated < self.max_evaluations)
        while more():
            if self.search.pool and not self.tree.done:
                self.tree.step(self.incumbent())
            if more():
                self.restart()

    def no_design(self):
        """Infeasible when proven (the certificate), else limit-reached; either way with the rho range."""
        lim = self.lim
        if lim.rho is None:
            return LIMIT_REACHED, f"No feasible sample found ({self.nodes} samples scored).", [], self.bound, self.nodes
        self.certified = self.certified or _certificate(self.comp, lim)
        reach = _reach(self.comp, lim)
        if self.certified[0]:
            return INFEASIBLE, _rho_message(lim, *reach, self.certified[1]), [], -math.inf, self.nodes
        return (LIMIT_REACHED, _rho_message(lim, *reach, self.certified[1], found=self.nodes), [], self.bound,
                self.nodes)

    def outcome(self):
        if not self.search.pool:
            return self.no_design()
        designs = _designs(self.model, [key for _, _, key, _ in self.search.best()])
        best = designs[0].score.objective
        bound = max(self.tree.bound(self.incumbent()), best)
        if bound - best <= OPTIMAL_TOLERANCE * max(abs(bound), 1.0):
            return (OPTIMAL, f"Optimal: the Lagrangian bound closes on the best of {self.nodes} samples.", designs,
                    bound, self.nodes)
        return (FEASIBLE_WITH_GAP, f"Best of {self.nodes} samples scored; the Lagrangian bound is {bound:.6g} "
                f"(gap {100 * (bound - best) / max(abs(bound), 1.0):.3g}%).", designs, bound, self.nodes)


def _restart(search, rng, dual, u, states, k, scale):
    """Restart k, in turn: the incumbent after an ascent on objective - p * scale * excess for each loose
    penalty p of KICK_PENALTIES (it crosses the budget's edge; the repair brings it back), the incumbent with
    PERTURBED_LABELS labels redrawn, the Lagrangian maximiser at u * exp(MULTIPLIER_NOISE * normal draws)."""
    best, turn = search.best(), k % (len(KICK_PENALTIES) + 2)
    if best and turn < len(KICK_PENALTIES):
        weight = KICK_PENALTIES[turn] * scale
        return search.ascend(search.state(best[0][2]), lambda fig: search.key(fig)[0] - weight * search.key(fig)[1])
    if best and turn == len(KICK_PENALTIES):
        return _perturbed(search, rng, states)
    if len(u):
        dual(np.clip(np.asarray(u) * np.exp(MULTIPLIER_NOISE * np.array([rng.gauss(0, 1) for _ in u])),
                     dual.lower, dual.upper))
        return search.state(dual.maximisers[-1])
    return _perturbed(search, rng, states)


class _BranchAndBound:
    """Best-first branch and bound over the labels in the order ``axes`` (those N(x) depends on first: the
    depths, on the hub spaces; fixing them makes the rho term exact): a node fixes a prefix of them; its bound
    is the dual G minimised with those labels fixed (``NODE_ROUNDS`` rounds from the parent's multipliers),
    valid for every sample of the node.  The program's bound is the largest bound of an open node (or the
    incumbent); a node whose bound is at most the incumbent is closed.  It stops when every node is closed
    (the incumbent is optimal) or the best open node fixes every label."""

    def __init__(self, dual, axes, bound, u, search):
        self.dual, self.axes, self.search = dual, list(axes), search
        self.heap = [(-bound, 0, (), np.asarray(u))]
        self.order = itertools.count(1)
        self.done = not self.axes

    def bound(self, incumbent) -> float:
        return max(incumbent, -self.heap[0][0]) if self.heap else incumbent

    def children(self) -> int:
        """Nodes the next step evaluates (the values of the label the best open node fixes next)."""
        if not self.heap or len(self.heap[0][2]) == len(self.axes):
            return 0
        return self.dual.lag.sizes[self.axes[len(self.heap[0][2])]]

    def step(self, incumbent):
        """Expand the open node of largest bound (or close the search)."""
        tolerance = OPTIMAL_TOLERANCE * max(abs(incumbent), 1.0)
        while self.heap and -self.heap[0][0] <= incumbent + tolerance:
            self.heap = []                       # best-first: every open node is at most the incumbent
        if not self.heap or len(self.heap[0][2]) == len(self.axes):
            self.done = True
            return
        _, _, fixed, u = heapq.heappop(self.heap)
        axis = self.axes[len(fixed)]
        for v in range(self.dual.lag.sizes[axis]):
            child = fixed + ((axis, v),)
            self.dual.fixed = dict(child)
            seen = len(self.dual.maximisers)
            bound, cu = self.dual.minimise(rounds=NODE_ROUNDS, start=u)
            for x in _unique(self.dual.maximisers[seen:]):
                self.search.state(x)             # the node's Lagrangian maximisers: candidate designs
            if bound > incumbent + tolerance:
                heapq.heappush(self.heap, (-bound, next(self.order), child, cu))
        self.dual.fixed = None


def _perturbed(search, rng, states):
    """The incumbent (else a Lagrangian maximiser) with PERTURBED_LABELS labels redrawn."""
    best = search.best()
    x = list(best[0][2]) if best else list(states[rng.randrange(len(states))].x)
    for k in rng.sample(range(len(x)), min(PERTURBED_LABELS, len(x))):
        x[k] = rng.randrange(search.model.sizes[k])
    return search.state(x)


def _enumerated(comp, lim, top_k):
    """Every sample scored: (status, message, designs, bound, samples) with the optimum proven."""
    model = comp.model
    budget_fit, count = [], 0
    for x in itertools.product(*(range(size) for size in model.sizes)):
        count += 1
        fig = model.figures(x)
        if lim.excess(0.0, fig[2], fig[3]) <= 0:
            budget_fit.append((fig[0], fig[1], x))
    feasible = [(v, i, x) for i, (v, rho, x) in enumerate(budget_fit) if lim.rho is None or rho <= lim.rho]
    if not feasible:
        if not budget_fit:
            return INFEASIBLE, _floor_message(comp, lim) or f"No sample meets {lim.describe()}.", [], -math.inf, count
        low, high = _enumerated_reach(budget_fit)
        return INFEASIBLE, _rho_message(lim, low, high, exact=True), [], -math.inf, count
    feasible.sort(key=lambda t: (-t[0], t[1]))
    designs, networks = [], set()
    for value, _, x in feasible:
        signature = model.desc.signature(model.sample(x))
        if signature not in networks:
            networks.add(signature)
            designs.append(x)
            if len(designs) == top_k:
                break
    out = _designs(model, designs)
    return OPTIMAL, f"Optimal by enumeration of {count} samples.", out, out[0].score.objective, count


def _enumerated_reach(budget_fit):
    """Exact (smallest rho, rho of the best sample) over the samples within the budgets."""
    low = min(rho for _, rho, _ in budget_fit)
    best = max(range(len(budget_fit)), key=lambda i: (budget_fit[i][0], -i))
    return low, budget_fit[best][1]


# -- public API --------------------------------------------------------------------------------------------------
def _positive(name, v, allow_none=True):
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive number{' or None' if allow_none else ''}, but got {v!r}.")
    return float(v)


def _program(desc, flops, params, rho, alpha, beta, convention, rho_required=True):
    """Checked (limits, alpha, beta): the one place the solver validates its input."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, but got {convention!r}.")
    m = desc.num_stages
    alpha = default_alpha(m) if alpha is None else tuple(alpha)
    if len(alpha) != m:
        raise ValueError(f"alpha must have one weight per stage of the space ({m}), but got {len(alpha)}.")
    if any(isinstance(a, bool) or not isinstance(a, (int, float)) or not a >= 0 for a in alpha):
        raise ValueError(f"alpha must hold non-negative numbers, but got {alpha!r}.")
    if isinstance(beta, bool) or not isinstance(beta, (int, float)) or not beta >= 0:
        raise ValueError(f"beta must be a non-negative number, but got {beta!r}.")
    lim = _Limits(_positive("flops", flops), _positive("params", params),
                  _positive("rho", rho, allow_none=not rho_required))
    return lim, tuple(float(a) for a in alpha), float(beta)


def solve_space(desc, *, flops=None, params=None, rho, alpha=None, beta=10.0, convention="official", top_k=1,
                time_limit=None, seed=0, enumerate_limit=ENUMERATE_LIMIT) -> DesignResult:
    """Solve DeepMAD's program over a :class:`~deepmad_nni.nas.reader.SpaceDescription` (module docstring).

    ``flops`` (MACs) / ``params`` budgets, ``rho`` = rho_0; ``time_limit=None`` is the quick, deterministic
    solve (a fixed amount of work); a ``time_limit`` in seconds adds restarts drawn with ``seed`` and branch
    and bound until it is spent.  Returns a :class:`~deepmad_nni.core.result.DesignResult` whose ``designs``
    are the ``top_k`` best distinct networks met (:class:`SpaceDesign`), ``bound`` a proven upper bound of
    the objective and ``nodes`` the number of samples scored (Lagrangian maximisations included).
    """
    t0 = time.perf_counter()
    lim, alpha, beta = _program(desc, flops, params, rho, alpha, beta, convention)
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"top_k must be a positive integer, but got {top_k!r}.")
    _positive("time_limit", time_limit)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, but got {seed!r}.")
    if isinstance(enumerate_limit, bool) or not isinstance(enumerate_limit, int) or enumerate_limit < 0:
        raise ValueError(f"enumerate_limit must be a non-negative integer, but got {enumerate_limit!r}.")
    comp = _compiled(desc, alpha, beta, convention)
    if desc.size() <= enumerate_limit:
        status, message, designs, bound, nodes = _enumerated(comp, lim, top_k)
    else:
        status, message, designs, bound, nodes = _searched(comp, lim, top_k, time_limit, seed, t0)
    return DesignResult(status, message, designs, bound, time.perf_counter() - t0, nodes,
                        constraints={"flops": flops, "params": params, "rho": rho})


def rho_range(desc, *, flops=None, params=None, alpha=None, beta=10.0, convention="official"
              ) -> tuple[float, float]:
    """(rho_min, rho_max) of the space within the FLOPs/params budgets: rho_min the smallest rho of any sample
    within them, rho_max the rho of the best design with the rho constraint removed (above it the constraint
    no longer changes the optimum).  Exact on spaces of at most ``ENUMERATE_LIMIT`` samples, else from
    deterministic searches.  Raises a ValueError naming the budget when no sample meets it."""
    lim, alpha, beta = _program(desc, flops, params, None, alpha, beta, convention, rho_required=False)
    comp = _compiled(desc, alpha, beta, convention)
    floor = _floor_message(comp, lim)
    if floor is not None:
        raise ValueError(floor)
    if desc.size() <= ENUMERATE_LIMIT:
        model, budget_fit = comp.model, []
        for x in itertools.product(*(range(size) for size in model.sizes)):
            fig = model.figures(x)
            if lim.excess(0.0, fig[2], fig[3]) <= 0:
                budget_fit.append((fig[0], fig[1], x))
        if not budget_fit:
            raise ValueError(f"No sample meets {lim.describe()} together.")
        return _enumerated_reach(budget_fit)
    low, high, _ = _reach(comp, lim)
    if low is None or high is None:
        raise ValueError(f"No sample found within {lim.describe()} together.")
    return low, high
