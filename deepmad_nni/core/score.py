"""DeepMAD's figures of an architecture: multi-scale entropy, effectiveness rho, depth penalty Q, cost.

Conventions (see the package README, "Conventions"):

* three conventions (:data:`CONVENTION_RULES`): ``"official"`` (the TinyNAS code's formulas at the real
  feature-map sizes), ``"paper"`` (the paper's Eq. 4) and ``"tinynas"`` (``"official"`` with the TinyNAS
  code's SE quirk, to reproduce its published scores exactly);
* entropy of the prefix network ending at stage i (paper Eq. 4 and guideline 1):
  ``H_i = s * log(r_i^2 * c_i) * sum_{l <= end of stage i} log(w_l)``, with ``s = 1/2`` under
  ``"official"`` and ``"tinynas"`` and ``s = 1`` under ``"paper"``.  ``r_i`` is stage i's output
  resolution, except under ``"tinynas"``: the TinyNAS code's SE block reports an output resolution of 1
  (``SE.get_output_resolution``), so from the first ``mbconv_se`` stage entry on every ``r_i`` is 1 and
  ``log(r_i^2) = 0`` (the score of the released deepmad-29M-224 structure: 11915.37 under ``"tinynas"``,
  19135.93 under ``"official"``); families without SE score the same under both;
* effectiveness (Proposition 1): ``rho = L / exp(mean log w_l)``; ``"official"`` and ``"tinynas"`` take
  the maximum over the stage prefixes, ``"paper"`` the whole network;
* depth penalty (guideline 2): ``Q = exp(std(depths))``; ``"official"`` and ``"tinynas"`` use the depth
  ``L`` of every repeated stage entry and, like the TinyNAS code, drop the first two when the first is a
  bottleneck; ``"paper"`` uses per-stage depths in blocks;
* objective: ``sum_i alpha_i H_i - beta * Q``;
* FLOPs are multiply-accumulates of every conv and of the classifier at the input resolution (no
  BatchNorm, activation or bias terms); params are conv weights, conv biases, BatchNorm affine
  weights (2 per channel) and the classifier's weights and bias, i.e. ``sum(p.numel())`` of the
  module built by :mod:`deepmad_nni.builder`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .arch import REPEATABLE, Architecture
from .rules import CONVENTION_RULES, CONVENTIONS, Convention, convention_rules  # noqa: F401 (re-exported)
from .rules import penalised_depth_arrays, stage_ends, stage_index


def entropy_resolutions(resolutions, se, convention: str) -> tuple[int, ...]:
    """The resolutions the entropy reads, per stage entry (or family slot): ``resolutions`` (the entries'
    output resolutions) unchanged, or under a convention with ``se_resolution_one`` 1 from the first entry
    with ``se`` true on.  An ``se`` of None (a slot that may or may not be SE) is a ValueError there."""
    if not convention_rules(convention).se_resolution_one:
        return tuple(resolutions)
    out, seen = [], False
    for j, (r, flag) in enumerate(zip(resolutions, se)):
        if flag is None and not seen:
            raise ValueError(f"The {convention!r} convention needs to know whether entry {j} has SE blocks, "
                             "but its options mix SE and non-SE blocks.")
        seen = seen or bool(flag)
        out.append(1 if seen else r)
    return tuple(out)


def family_entropy_resolutions(family, convention: str) -> tuple[int, ...]:
    """:func:`entropy_resolutions` of a :class:`~deepmad_nni.core.family.Family`'s slots (output resolution of
    each slot; SE when all of a slot's ops are ``mbconv_se``, None when only some are)."""
    res, r = [], family.resolution
    for slot in family.slots:
        r = -(-r // slot.stride)
        res.append(r)
    flags = [{op.block == "mbconv_se" for op in slot.ops} for slot in family.slots]
    return entropy_resolutions(res, [f.pop() if len(f) == 1 else None for f in flags], convention)


@dataclass(frozen=True)
class StageSplit:
    """DeepMAD stages: a new stage starts at every stride-2 entry after the first entry."""

    ends: tuple[int, ...]            # index of the last stage entry of each stage
    channels: tuple[int, ...]        # c_i, output channels of stage i
    resolutions: tuple[int, ...]     # r_i, output resolution of stage i


def stage_split(arch: Architecture, convention: str = "official") -> StageSplit:
    """The stages of ``arch``; their resolutions are the ones ``convention``'s entropy reads."""
    ends = tuple(stage_ends(arch.stages))
    res = entropy_resolutions(arch.stage_resolutions, [st.block == "mbconv_se" for st in arch.stages], convention)
    return StageSplit(ends, tuple(arch.stages[e].c_out for e in ends), tuple(res[e] for e in ends))


def default_alpha(num_stages: int) -> tuple[float, ...]:
    """Stage weights alpha: 1 for every stage but the last, 8 for the last (paper and code for M = 5)."""
    return (1.0,) * (num_stages - 1) + (8.0,)


@dataclass(frozen=True)
class Score:
    """DeepMAD's figures of one architecture (``entropy`` is ``sum_i alpha_i H_i``)."""

    entropy: float
    stage_entropy: tuple[float, ...]
    effectiveness: float
    q: float
    objective: float
    flops: int
    params: int
    num_layers: int
    depths: tuple[int, ...] = field(default=())


def main_log_widths(arch: Architecture) -> list[np.ndarray]:
    """Per stage entry, log(w_l) of its main-path convs."""
    return [np.array([math.log(c.width) for c in convs if c.main_path]) for convs in arch.convs]


def count_flops(arch: Architecture) -> int:
    return sum(c.macs for convs in arch.convs for c in convs) + arch.width * arch.num_classes


def count_params(arch: Architecture) -> int:
    fc = arch.width * arch.num_classes + arch.num_classes
    return sum(c.params for convs in arch.convs for c in convs) + fc


def penalised_depths(arch: Architecture, convention: str) -> tuple[int, ...]:
    """The depths Q is taken over (see the module docstring; the rule is core/rules.py's)."""
    st = arch.stages
    values, mask = penalised_depth_arrays([[s.depth for s in st]], [[s.block in REPEATABLE for s in st]],
                                          [[s.block == "bottleneck" for s in st]], stage_index(st),
                                          convention_rules(convention).entry_depths)
    return tuple(int(v) for v in values[0][mask[0]])


def depth_penalty(depths) -> float:
    """Q = exp(population std of the depths) (guideline 2); 1 for fewer than two depths."""
    return float(math.exp(np.std(depths))) if len(depths) > 1 else 1.0


def score(arch: Architecture, *, alpha=None, beta: float = 10.0, convention: str = "official") -> Score:
    """Entropy, effectiveness rho, Q, objective, FLOPs and params of ``arch`` (see module docstring)."""
    rules = convention_rules(convention)
    split = stage_split(arch, convention)
    alpha = default_alpha(len(split.ends)) if alpha is None else tuple(float(a) for a in alpha)
    if len(alpha) != len(split.ends):
        raise ValueError(f"alpha must have one weight per stage ({len(split.ends)}), but got {len(alpha)}.")
    logw = main_log_widths(arch)
    s = rules.s
    stage_h, rhos = [], []
    for end, c, r in zip(split.ends, split.channels, split.resolutions):
        lw = np.concatenate(logw[:end + 1])
        stage_h.append(s * math.log(r * r * c) * float(lw.sum()))
        rhos.append(len(lw) / math.exp(float(lw.mean())))
    rho = max(rhos) if rules.prefix_rho else rhos[-1]
    entropy = float(np.dot(alpha, stage_h))
    depths = penalised_depths(arch, convention)
    q = depth_penalty(depths)
    return Score(entropy, tuple(stage_h), rho, q, entropy - beta * q, count_flops(arch), count_params(arch),
                 sum(len(lw) for lw in logw), depths)
