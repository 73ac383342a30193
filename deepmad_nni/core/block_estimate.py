"""MathNAS's estimate: per-(block, choice) contributions to a network's metric from a few evaluated designs.

The model (MathNAS, Wang et al., NeurIPS 2023: a network's accuracy is the base network's plus the change
each block brings) is additive::

    metric(d) ~= b + sum_i s_i[d_i]        with s_i[r_i] = 0 at a reference choice r_i of each block

Two ways to choose the designs to evaluate, both fitted by :func:`fit_contributions` (least squares, the
minimum-norm solution):

* :func:`swap_designs`: the MathNAS scheme.  A base design, then the base with one block swapped to each of
  its other choices: ``1 + sum_i (n_i - 1)`` evaluations, the least that determines the model; the fit is
  then exact (s_i[j] = metric(base with i -> j) - metric(base)).  The contributions are measured at one
  point of the space.
* :func:`sampled_designs`: distinct seeded random designs (at least the model's free parameters; drawn so
  that the design matrix reaches full rank), fitted by least squares: the contributions are averaged over
  the space instead of measured at one base.

Cardinality groups (an NNI ``InputChoice`` / ``CategoricalMultiple`` with ``n_chosen``, read as one binary
block per input) fix how many of their binary blocks are "present": a swap there exchanges one present and
one absent input, and one parameter per group is not identified (the group's total is constant, so the
intercept absorbs it).  :func:`free_parameters` counts what the designs must determine.

numpy only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class BlockSpace:
    """``n_choices[i]`` choices per block; ``groups``: ``(blocks, n)`` = exactly ``n`` of these binary
    blocks take choice 1 ("present")."""

    n_choices: tuple
    groups: tuple = ()

    def __post_init__(self):
        n = tuple(int(v) for v in self.n_choices)
        if not n or min(n) < 1:
            raise ValueError(f"n_choices must be a non-empty list of positive integers, but got {self.n_choices!r}.")
        object.__setattr__(self, "n_choices", n)
        seen, groups = set(), []
        for blocks, k in self.groups:
            blocks = tuple(int(b) for b in blocks)
            if seen & set(blocks) or any(not 0 <= b < len(n) or n[b] != 2 for b in blocks):
                raise ValueError(f"groups must hold disjoint binary blocks of {len(n)}, but got {self.groups!r}.")
            if not 0 <= int(k) <= len(blocks):
                raise ValueError(f"a group's count must be in [0, {len(blocks)}], but got {k!r}.")
            seen |= set(blocks)
            groups.append((blocks, int(k)))
        object.__setattr__(self, "groups", tuple(groups))

    @property
    def grouped(self) -> set:
        return {b for blocks, _ in self.groups for b in blocks}

    def feasible(self, design, allowed=None) -> bool:
        if len(design) != len(self.n_choices) or any(not 0 <= j < n for j, n in zip(design, self.n_choices)):
            return False
        if allowed is not None and not all(allowed[i][j] for i, j in enumerate(design)):
            return False
        return all(sum(design[b] for b in blocks) == k for blocks, k in self.groups)


def _allowed(space: BlockSpace, allowed):
    if allowed is None:
        return [np.ones(n, dtype=bool) for n in space.n_choices]
    allowed = [np.asarray(a, dtype=bool).reshape(-1) for a in allowed]
    if [a.size for a in allowed] != list(space.n_choices) or not all(a.any() for a in allowed):
        raise ValueError(f"allowed must give each block at least one allowed choice, shaped {space.n_choices}.")
    return allowed


def _group_parts(space, allowed, blocks, k):
    """(free members, forced-present members, how many of the free ones are present)."""
    present = [b for b in blocks if not allowed[b][0]]
    free = [b for b in blocks if allowed[b][0] and allowed[b][1]]
    need = k - len(present)
    if need < 0 or need > len(free):
        raise ValueError(f"a group of blocks {list(blocks)} must have {k} present, but its allowed choices admit "
                         f"{len(present)} to {len(present) + len(free)}.")
    return free, present, need


def free_parameters(space: BlockSpace, allowed=None) -> int:
    """The number of parameters of the additive model the designs must determine (the least number of
    evaluations): 1 + sum over free blocks of (allowed choices - 1) + sum over groups of (free members - 1)
    where a group's choice is not forced."""
    allowed = _allowed(space, allowed)
    grouped = space.grouped
    count = 1 + sum(int(a.sum()) - 1 for i, a in enumerate(allowed) if i not in grouped)
    for blocks, k in space.groups:
        free, _, need = _group_parts(space, allowed, blocks, k)
        count += len(free) - 1 if 0 < need < len(free) else 0
    return count


def random_design(space: BlockSpace, rng: np.random.Generator, allowed=None) -> tuple:
    """A uniformly drawn allowed design (uniform per block; a uniform subset within each group)."""
    allowed = _allowed(space, allowed)
    design = [int(rng.choice(np.flatnonzero(a))) for a in allowed]
    for blocks, k in space.groups:
        free, present, need = _group_parts(space, allowed, blocks, k)
        chosen = set(present) | {free[int(i)] for i in rng.choice(len(free), size=need, replace=False)}
        for b in blocks:
            design[b] = int(b in chosen)
    return tuple(design)


def swap_designs(space: BlockSpace, base, allowed=None) -> list:
    """The MathNAS scheme: ``base``, then ``base`` with one block swapped to each other allowed choice (in a
    group: one present input exchanged with one absent input).  ``free_parameters`` designs in all."""
    allowed = _allowed(space, allowed)
    base = tuple(int(j) for j in base)
    if not space.feasible(base, allowed):
        raise ValueError(f"base must be an allowed design of the space, but got {base!r}.")
    out, grouped = [base], space.grouped
    for i, a in enumerate(allowed):
        if i in grouped:
            continue
        for j in np.flatnonzero(a):
            if j != base[i]:
                out.append(base[:i] + (int(j),) + base[i + 1:])
    for blocks, k in space.groups:
        free, _, need = _group_parts(space, allowed, blocks, k)
        if not 0 < need < len(free):
            continue
        on = [b for b in free if base[b] == 1]
        off = [b for b in free if base[b] == 0]

        def exchange(b_out, b_in):
            d = list(base)
            d[b_out], d[b_in] = 0, 1
            return tuple(d)

        out += [exchange(on[0], b) for b in off] + [exchange(b, off[0]) for b in on[1:]]
    return out


def one_hot(space: BlockSpace, designs) -> np.ndarray:
    """The full one-hot matrix (one row per design, one column per (block, choice))."""
    offsets = np.concatenate([[0], np.cumsum(space.n_choices)]).astype(int)
    x = np.zeros((len(designs), int(offsets[-1])))
    for r, d in enumerate(designs):
        x[r, offsets[:-1] + np.asarray(d, dtype=int)] = 1.0
    return x


def sampled_designs(space: BlockSpace, count: int, rng: np.random.Generator, allowed=None, *,
                    accept=None, exclude=(), max_draws: int | None = None) -> list:
    """``count`` distinct seeded random allowed designs (``accept(design)`` true, none in ``exclude``),
    drawn so that their one-hot matrix reaches the model's full rank: a draw that adds no rank is kept only
    while enough places remain for the rank still missing.  May return fewer when draws run out."""
    allowed = _allowed(space, allowed)
    need = free_parameters(space, allowed)
    max_draws = max_draws or 200 * count + 1000
    seen, out, rank = set(map(tuple, exclude)), [], 0
    for _ in range(max_draws):
        if len(out) == count:
            break
        d = random_design(space, rng, allowed)
        if d in seen or (accept is not None and not accept(d)):
            continue
        seen.add(d)
        new_rank = int(np.linalg.matrix_rank(one_hot(space, out + [d]))) if rank < need else rank
        if new_rank > rank or count - len(out) > need - rank:
            out.append(d)
            rank = new_rank
    return out


@dataclass
class Contributions:
    """The fitted additive model: ``intercept`` + ``values[i][d_i]``; ``identified[i][j]``: whether the
    evaluations determine that choice's contribution (the reference choice always is)."""

    intercept: float
    values: list
    identified: list
    reference: tuple
    rank: int
    parameters: int
    rows: int
    rms_residual: float
    extra: dict = field(default_factory=dict)

    def predict(self, design) -> float:
        return self.intercept + float(sum(v[j] for v, j in zip(self.values, design)))

    @property
    def determined(self) -> bool:
        return self.rank >= self.parameters


def fit_contributions(space: BlockSpace, designs, metrics, *, reference=None, allowed=None) -> Contributions:
    """Least-squares (minimum-norm) fit of the additive model to ``metrics`` of ``designs``.

    Rows whose metric is None or not finite (failed evaluations) are dropped.  ``reference``: the choice of
    each block whose contribution is 0 (default: its most frequent choice among the rows, so that it is one
    the rows contain).  A choice is identified when its column lies in the row space of the design matrix
    (counting the constant total of each group as known)."""
    rows = [(tuple(int(j) for j in d), float(y)) for d, y in zip(designs, metrics)
            if y is not None and math.isfinite(float(y))]
    n = space.n_choices
    if reference is None:
        reference = []
        for i, k in enumerate(n):
            counts = np.bincount([d[i] for d, _ in rows], minlength=k) if rows else np.zeros(k)
            reference.append(int(np.argmax(counts)))
    reference = tuple(int(r) for r in reference)
    cols = [(i, j) for i, k in enumerate(n) for j in range(k) if j != reference[i]]
    index = {c: 1 + c_i for c_i, c in enumerate(cols)}
    x = np.zeros((len(rows), 1 + len(cols)))
    x[:, 0] = 1.0
    for r, (d, _) in enumerate(rows):
        for i, j in enumerate(d):
            if j != reference[i]:
                x[r, index[(i, j)]] = 1.0
    y = np.array([v for _, v in rows])
    if rows:
        theta, _, rank, _ = np.linalg.lstsq(x, y, rcond=None)
        residual = float(np.sqrt(np.mean((x @ theta - y) ** 2)))
    else:
        theta, rank, residual = np.zeros(x.shape[1]), 0, 0.0
    # identification: e_c in rowspace(X) + span(group directions), the directions no design can move
    gauge = []
    for blocks, k in space.groups:
        w = np.zeros(x.shape[1])
        w[0] = sum(1 for b in blocks if reference[b] == 1) - k     # sum of present indicators == k
        for b in blocks:
            other = 1 - reference[b]
            w[index[(b, other)]] = 1.0 if other == 1 else -1.0
        gauge.append(w)
    aug = np.vstack([x] + [g[None, :] for g in gauge]) if gauge else x
    if aug.shape[0]:
        _, sv, vt = np.linalg.svd(aug, full_matrices=False)
        basis = vt[sv > 1e-9 * max(1.0, sv.max())]
    else:
        basis = np.zeros((0, x.shape[1]))
    inside = np.linalg.norm(basis.T @ basis - np.eye(x.shape[1]), axis=0) < 1e-7
    values, identified = [], []
    for i, k in enumerate(n):
        v, ok = np.zeros(k), np.ones(k, dtype=bool)
        for j in range(k):
            if j != reference[i]:
                v[j] = theta[index[(i, j)]]
                ok[j] = bool(inside[index[(i, j)]])
        values.append(v)
        identified.append(ok)
    params = free_parameters(space, allowed)
    return Contributions(float(theta[0]), values, identified, reference, int(rank), params, len(rows), residual)
