"""Mutants of evaluated designs, ranked by DeepMAD's objective before any of them is evaluated.

A mutant changes one label of a parent (every other value of every label), or two labels when
``pairs`` is set; mutants that build the parent's network again, or one already evaluated, are dropped.
Ranking: the feasible mutants (within FLOPs/params and rho <= rho_0) by objective, best first; when none
is feasible, those within FLOPs/params by objective (rho_0 is a soft target there).
"""
from __future__ import annotations

import itertools


def mutants(route, parent: dict, *, pairs: bool = False):
    """Full samples one (or two) label changes away from ``parent``."""
    labels = list(route.mutables)
    singles = [(label, v) for label in labels for v in route.mutables[label].values if v != parent.get(label)]
    for label, v in singles:
        yield {**parent, label: v}
    if pairs:
        for (la, va), (lb, vb) in itertools.combinations(singles, 2):
            if la != lb:
                yield {**parent, la: va, lb: vb}


def ranked_mutants(route, parents, exclude: set, *, flops, params, rho, alpha, beta, convention,
                   pairs: bool = False) -> list:
    """(score, sample, network) of the distinct mutants of ``parents`` not in ``exclude``, best first."""
    seen, feasible, soft = set(exclude), [], []
    for parent in parents:
        for sample in mutants(route, parent, pairs=pairs):
            key = route.network(sample)
            if key in seen:
                continue
            seen.add(key)
            s = route.score(sample, alpha=alpha, beta=beta, convention=convention)
            if (flops is not None and s.flops > flops) or (params is not None and s.params > params):
                continue
            (feasible if s.effectiveness <= rho else soft).append((s, sample, key))
    order = sorted(feasible, key=lambda t: -t[0].objective) + sorted(soft, key=lambda t: -t[0].objective)
    return order
