"""A read space compiled for the solver (:class:`SpaceModel`): samples as label indices, the reader's factor
tables as flat lookups, exact scoring in the reader's order."""
from __future__ import annotations

import itertools
import math

import numpy as np

from deepmad_nni.core.score import CONVENTIONS, depth_penalty

from .space_settings import LOOKUP_LIMIT


class Lookup:
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


def table_over(fn, labels, model):
    """``fn(sample dict)`` over every combination of ``labels`` (ascending label positions), as a Lookup."""
    axes = sorted(model.pos[lab] for lab in labels)
    combos = itertools.product(*(model.values[a] for a in axes))
    return Lookup(axes, model.sizes, [fn({model.labels[a]: v for a, v in zip(axes, c)}) for c in combos])


class SpaceModel:
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
        self.q_constant = depth_penalty(self.depths([0] * len(self.sizes))) if constant else None
        self._end_constant = [e.values[0] if isinstance(e, Lookup) and not e.axes else None for e in self.ends]

    # -- compilation ------------------------------------------------------------------------------------
    def _factor(self, t):
        """(lookup of (flops, params), its stages, lookup of per-stage (sum log w, count) on those stages)."""
        order = np.argsort([self.pos[lab] for lab in t.labels])
        axes = [self.pos[t.labels[i]] for i in order]
        lw, n = (np.transpose(a, tuple(order) + (len(order),)).reshape(-1, self.m) for a in (t.log_width, t.layers))
        stages = [j for j in range(self.m) if (n[:, j] != 0).any() or (lw[:, j] != 0).any()]
        fp = np.transpose(t.flops, order).ravel(), np.transpose(t.params, order).ravel()
        cost = Lookup(axes, self.sizes, list(zip(fp[0].tolist(), fp[1].tolist())))
        per_stage = Lookup(axes, self.sizes, [tuple(zip(r_lw, r_n)) for r_lw, r_n in
                                               zip(lw[:, stages].tolist(), n[:, stages].astype(int).tolist())])
        return cost, tuple(stages), per_stage

    def _end(self, c, hw):
        """log(r_i^2 c_i) of a stage end: a lookup, or a function of the sample when it spans too many labels."""
        labels = sorted(set(c.labels) | set(hw.labels))
        if math.prod(self.sizes[self.pos[lab]] for lab in labels) <= LOOKUP_LIMIT:
            return table_over(lambda smp: math.log(hw(smp) * c(smp)), labels, self)
        upper = math.log(largest(hw, self.desc.mutables) * largest(c, self.desc.mutables))
        return DirectEnd(lambda smp: math.log(hw(smp) * c(smp)), [self.pos[lab] for lab in labels], self, upper)

    def _depth_term(self, term):
        """(lookup of the depth, or None where inactive; its stage; kind) of one reader depth term."""
        stage, d, conds, kind = term
        labels = sorted(set(d.labels) | {lab for cond in conds for lab in cond.value.labels})
        fn = lambda smp: d(smp) if all(cond(smp) for cond in conds) else None   # noqa: E731
        return table_over(fn, labels, self), stage, kind

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
            out.append(Lookup(axes, self.sizes, values))
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
        if self.q_constant is not None:
            return self.q_constant
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


def largest(term, mutables) -> float:
    """Largest value of a reader Term (or of any entry of a last-active width) over its labels."""
    if hasattr(term, "entries"):
        return max(largest(t, mutables) for _, t in term.entries)
    return float(np.max(term.table(mutables)))


class DirectEnd:
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
