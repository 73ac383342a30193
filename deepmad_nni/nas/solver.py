"""The DeepMAD program over a space read by :func:`deepmad_nni.nas.reader.read_space` (hub spaces, per-block labels).

* Spaces with at most ``enumerate_limit`` label combinations are enumerated: status ``"optimal"`` (or
  ``"infeasible"``) is then proven.
* Larger spaces get an iterated local search.  First round: the cheapest network, made feasible, then grown to
  the budget's edge one label step at a time (best objective gain per added relative cost).  Then coordinate
  ascent over labels on the objective minus a penalty on the relative excess over the limits, alternating
  loose penalties (to cross the budget's edge) and exact ones (back to feasible), from the incumbent,
  perturbations of it and random starts, until ``time_limit``.  Its status is ``"feasible-with-gap"`` (a
  feasible design; ``bound`` is a proven upper bound of the objective, ``gap = bound - objective``), ``"limit-reached"``
  (no feasible design found) or ``"infeasible"`` when the smallest FLOPs/params any sample can reach
  (a proven lower bound, per-term minima) already break the budget.  The bound relaxes rho, FLOPs and
  params: each main-path layer contributes at most ``s * log(w_l) * sum_{i >= its stage} alpha_i *
  max log(r_i^2 c_i)`` (of a LayerChoice, only its best candidate's layers count) and Q >= 1; it is proven
  but loose, so the gap says how far the search *could* be from the optimum, not how far it is.

Samples are scored with the reader (memoised per label subset), never frozen.
"""
from __future__ import annotations

import heapq
import itertools
import math
import random
import time
from dataclasses import dataclass, field

from deepmad_nni.core.result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL
from deepmad_nni.core.score import CONVENTIONS, default_alpha


@dataclass(frozen=True)
class SpaceDesign:
    """A sample (every label) and its DeepMAD figures."""

    sample: dict
    entropy: float
    effectiveness: float
    q: float
    objective: float
    flops: float
    params: float


@dataclass
class SpaceResult:
    """Outcome of :func:`solve_space`; statuses as in :class:`deepmad_nni.core.DesignResult`."""

    status: str
    message: str
    designs: list = field(default_factory=list)
    bound: float = float("nan")
    time_s: float = 0.0
    evaluations: int = 0

    @property
    def gap(self) -> float:
        if not self.designs:
            return float("inf")
        return max(0.0, self.bound - self.designs[0].objective)


def _product(values) -> float:
    return math.prod(len(v) for v in values)


def _max_over(terms, mutables, fn):
    """max of fn(sample) over every combination of the labels ``terms`` depend on."""
    labels = sorted({label for t in terms for label in t.labels})
    best = -math.inf
    for combo in itertools.product(*(mutables[lab].values for lab in labels)):
        best = max(best, fn(dict(zip(labels, combo))))
    return best


def objective_bound(desc, alpha, beta, convention) -> float:
    """Proven upper bound of the objective over the whole space (constraints relaxed)."""
    s = CONVENTIONS[convention]
    ends = []
    for c, hw in desc.stage_ends:
        widths = [t for _, t in c.entries] if hasattr(c, "entries") else [c]  # last stage: any of its convs
        ends.append(max(_max_over([t, hw], desc.mutables, lambda smp, t=t, hw=hw: math.log(t(smp) * hw(smp)))
                        for t in widths))
    a_max = [sum(a * e for a, e in zip(alpha[j:], ends[j:])) for j in range(len(ends))]
    total = 0.0
    exclusive: dict = {}   # LayerChoice label -> candidate -> bound of its layers (one candidate is active)
    for layer in desc.main:
        lw = _max_over([layer.c_in, layer.kernel, layer.groups], desc.mutables, layer.log_width)
        contribution = s * max(0.0, a_max[layer.stage]) * max(0.0, lw)
        choice = [c for c in layer.conditions if c.op == "=="]
        if choice:
            key = (choice[-1].value.labels, repr(choice[:-1]))
            per = exclusive.setdefault(key, {})
            per[choice[-1].threshold] = per.get(choice[-1].threshold, 0.0) + contribution
        else:
            total += contribution
    total += sum(max(per.values()) for per in exclusive.values())
    return total - beta * 1.0


def cost_lower_bound(desc) -> tuple[float, float]:
    """Proven lower bounds of FLOPs and params over the space: a term under a condition may be inactive
    (counts 0, every term is >= 0); an unconditional term counts its minimum over its own labels."""
    lo_f = lo_p = 0.0
    for c in desc.costs:
        if c.conditions:
            continue
        labels = sorted(set(c.flops.labels) | set(c.params.labels))
        if _product(desc.mutables[lab].values for lab in labels) > 4096:
            continue
        mf = mp = math.inf
        for combo in itertools.product(*(desc.mutables[lab].values for lab in labels)):
            smp = dict(zip(labels, combo))
            mf, mp = min(mf, c.flops(smp)), min(mp, c.params(smp))
        lo_f, lo_p = lo_f + mf, lo_p + mp
    return lo_f, lo_p


class _Scorer:
    def __init__(self, desc, flops, params, rho, alpha, beta, convention, top_k):
        self.desc, self.flops, self.params, self.rho = desc, flops, params, rho
        self.alpha, self.beta, self.convention, self.top_k = alpha, beta, convention, top_k
        self.seen: dict = {}
        self.heap: list = []
        self.networks: set = set()   # signatures of the networks in the heap (samples may coincide as networks)
        self.n = 0

    def __call__(self, sample: dict):
        """(objective, violation) of a canonical sample; violation = summed relative excess over the limits."""
        key = tuple(sample[k] for k in self.desc.mutables)
        if key in self.seen:
            return self.seen[key]
        self.n += 1
        e = self.desc.evaluate(sample, alpha=self.alpha, beta=self.beta, convention=self.convention)
        excess = max(0.0, e.effectiveness / self.rho - 1)
        if self.flops is not None:
            excess += max(0.0, e.flops / self.flops - 1)
        if self.params is not None:
            excess += max(0.0, e.params / self.params - 1)
        feasible = excess <= 1e-12
        out = (e.objective, 0.0 if feasible else excess)
        self.seen[key] = out
        if feasible and (len(self.heap) < self.top_k or (e.objective, -self.n) > self.heap[0][:2]):
            signature = self.desc.signature(sample)
            if signature not in self.networks:
                item = (e.objective, -self.n, SpaceDesign(dict(sample), e.entropy, e.effectiveness, e.q,
                                                          e.objective, e.flops, e.params), signature)
                self.networks.add(signature)
                if len(self.heap) < self.top_k:
                    heapq.heappush(self.heap, item)
                else:
                    self.networks.discard(heapq.heapreplace(self.heap, item)[3])
        return out

    def designs(self):
        return [t[2] for t in sorted(self.heap, key=lambda t: (-t[0], -t[1]))]


def solve_space(desc, *, flops=None, params=None, rho=0.5, alpha=None, beta=10.0, convention="official",
                top_k=1, time_limit=10.0, seed=None, enumerate_limit=20000, max_evaluations=None) -> SpaceResult:
    """Solve the DeepMAD program over a :class:`~deepmad_nni.nas.reader.SpaceDescription` (see module doc).

    The local search stops at ``time_limit`` seconds or after ``max_evaluations`` scored samples (a
    machine-independent limit: same seed, same result).
    """
    t0 = time.perf_counter()
    alpha = default_alpha(desc.num_stages) if alpha is None else tuple(alpha)
    if len(alpha) != desc.num_stages:
        raise ValueError(f"alpha must have one weight per stage of the space ({desc.num_stages}), "
                         f"but got {len(alpha)}.")
    score = _Scorer(desc, flops, params, rho, alpha, beta, convention, top_k)
    labels = list(desc.mutables)
    values = [desc.mutables[k].values for k in labels]
    if _product(values) <= enumerate_limit:
        for combo in itertools.product(*values):
            score(desc.canonical(dict(zip(labels, combo))))
        designs = score.designs()
        elapsed = time.perf_counter() - t0
        if not designs:
            return SpaceResult(INFEASIBLE, f"No sample of the {int(_product(values))} meets the constraints.", [],
                               -math.inf, elapsed, score.n)
        return SpaceResult(OPTIMAL, f"Optimal by enumeration of {int(_product(values))} samples.", designs,
                           designs[0].objective, elapsed, score.n)
    lo_f, lo_p = cost_lower_bound(desc)
    if (flops is not None and lo_f > flops) or (params is not None and lo_p > params):
        return SpaceResult(INFEASIBLE, f"Every sample needs at least {lo_f:.4g} FLOPs and {lo_p:.4g} params.", [],
                           -math.inf, time.perf_counter() - t0, 0)
    bound = objective_bound(desc, alpha, beta, convention)
    rng = random.Random(seed)
    deadline = t0 + time_limit

    def stop():
        return time.perf_counter() >= deadline or (max_evaluations is not None and score.n >= max_evaluations)

    scale = max(abs(bound), 1.0)

    def descend(sample, penalty):
        """Coordinate ascent on objective - penalty * scale * violation (exact for a large penalty)."""
        def value(smp):
            objective, excess = score(smp)
            return objective - penalty * scale * excess if excess else objective
        val = value(sample)
        improved = True
        while improved and not stop():
            improved = False
            for label in rng.sample(labels, len(labels)):
                for v in desc.mutables[label].values:
                    if v == sample[label] or stop():
                        continue
                    cand = desc.canonical({**sample, label: v})
                    cv = value(cand)
                    if cv > val:
                        sample, val, improved = cand, cv, True
        return sample

    def smallest():
        """Greedy: every label, in turn, at the value with the least FLOPs (then params) given the others."""
        sample = desc.canonical({k: v[0] for k, v in zip(labels, values)})
        for label in labels:
            options = [desc.canonical({**sample, label: v}) for v in desc.mutables[label].values]
            sample = min(options, key=lambda smp: desc.cost(smp))
        return sample

    def grow(sample):
        """Budget-greedy: repeatedly take the feasible +-1 step of one label with the best objective gain per
        unit of added (relative) cost, until no step improves."""
        obj, excess = score(sample)
        if excess:
            return sample
        cost = desc.cost(sample)
        while not stop():
            best_step = None
            for label in labels:
                vals = desc.mutables[label].values
                i = vals.index(sample[label])
                for j in (i - 1, i + 1):
                    if not 0 <= j < len(vals):
                        continue
                    cand = desc.canonical({**sample, label: vals[j]})
                    c_obj, c_excess = score(cand)
                    if c_excess or c_obj <= obj:
                        continue
                    c_cost = desc.cost(cand)
                    added = sum((c - b) / lim for c, b, lim in zip(c_cost, cost, (flops, params)) if lim)
                    ratio = (c_obj - obj) / max(added, 1e-9)
                    if best_step is None or ratio > best_step[0]:
                        best_step = (ratio, cand, c_obj, c_cost)
            if best_step is None:
                break
            _, sample, obj, cost = best_step
        return sample

    # Penalties from loose to exact: a loose one lets the ascent cross the budget's edge, an exact one
    # brings it back feasible; every sample visited is scored, and the best feasible ones are kept.
    penalties = (1e3, 0.3, 1e3, 0.1, 1e3, 1.0, 1e3)
    starts = 0
    while starts == 0 or not stop():   # the first round (from the cheapest network) always runs
        designs = score.designs()
        if starts == 0:
            # from the cheapest network: feasible first (rho), then to the budget's edge by best gain per cost
            sample = grow(descend(smallest(), 1e3))
        elif not designs or starts % 3 == 0:
            sample = desc.canonical({k: rng.choice(v) for k, v in zip(labels, values)})
        else:  # perturb the incumbent
            sample = dict(designs[0].sample)
            for label in rng.sample(labels, min(3, len(labels))):
                sample[label] = rng.choice(desc.mutables[label].values)
            sample = desc.canonical(sample)
        starts += 1
        for penalty in penalties:
            sample = descend(sample, penalty)
    designs = score.designs()
    elapsed = time.perf_counter() - t0
    if not designs:
        return SpaceResult(LIMIT_REACHED, f"No feasible sample found in {time_limit:g} s ({score.n} evaluated).",
                           [], bound, elapsed, score.n)
    return SpaceResult(FEASIBLE_WITH_GAP, f"Local search, {starts} descents, {score.n} samples evaluated; the bound "
                       "relaxes rho, FLOPs and params.", designs, bound, elapsed, score.n)
