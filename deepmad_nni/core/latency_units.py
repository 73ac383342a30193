"""Latency units: the torch modules a built network runs, as hashable keys (the rows of a latency table).

A network built by :mod:`deepmad_nni.builder` runs, per block, the modules of :mod:`deepmad_nni.blocks`.  Each
of them is one :class:`Unit`, identified by the shapes it sees (batch size aside):

``conv``  ``ConvBN``: k x k conv (``groups``, no bias, padding k // 2) + BatchNorm, then ReLU when ``act``; input
          ``c_in x r_in x r_in``.
``se``    ``SqueezeExcite`` on ``c_in x r_in x r_in`` (mean, 1x1 conv, act, 1x1 conv, sigmoid gate, multiply).
``add``   the residual sum of two ``c_in x r_in x r_in`` tensors, then ReLU when ``act`` (``Residual``: basic and
          bottleneck blocks) or not (``InvertedResidual``).
``head``  global mean pool of ``c_in x r_in x r_in`` + ``Linear(c_in, c_out)`` (the classifier).

Identity shortcuts run nothing.  A block's latency is the sum of its units' (``block_units``), a network's the
sum over its blocks and its head (``arch_units``).  This per-layer granularity is what keeps tables small: the
number of distinct units of a family grows with its (width, width) pairs, not with its (width, width, mid,
kernel) blocks (see docs/latency.md for the counts).

The unit lists follow the layout documented in :mod:`deepmad_nni.builder`; ``tests/test_latency_units.py``
checks them against the built torch blocks and against the MACs of :meth:`deepmad_nni.core.arch.Stage.layers`.
"""
from __future__ import annotations

from dataclasses import dataclass

from .arch import Architecture, Stage

UNIT_KINDS = ("conv", "se", "add", "head")
_FIELDS = ("kind", "c_in", "c_out", "kernel", "stride", "groups", "r_in", "act")


@dataclass(frozen=True, order=True)
class Unit:
    """One module run by a built network, at one input shape (``r_in``: input resolution)."""

    kind: str
    c_in: int
    c_out: int
    kernel: int = 1
    stride: int = 1
    groups: int = 1
    r_in: int = 1
    act: bool = False

    def __post_init__(self):
        if self.kind not in UNIT_KINDS:
            raise ValueError(f"Unit.kind must be one of {UNIT_KINDS}, but got {self.kind!r}.")

    @property
    def r_out(self) -> int:
        return -(-self.r_in // self.stride)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the unit's conv or linear layer (0 for ``add``; SE: its two 1x1 convs)."""
        if self.kind == "conv":
            return self.c_in // self.groups * self.c_out * self.kernel ** 2 * self.r_out ** 2
        if self.kind == "head":
            return self.c_in * self.c_out
        if self.kind == "se":
            from .arch import se_width
            return 2 * self.c_in * se_width(self.c_in)
        return 0

    @property
    def activation_elements(self) -> int:
        """Elements per sample the unit reads and writes: its input(s) and its output."""
        inputs = 2 if self.kind == "add" else 1
        out = self.c_out if self.kind == "head" else self.c_out * self.r_out ** 2
        return inputs * self.c_in * self.r_in ** 2 + out

    @property
    def weight_elements(self) -> int:
        """Elements of the unit's weights (conv/linear, and BatchNorm's folded scale and shift)."""
        if self.kind == "conv":
            return self.c_in // self.groups * self.c_out * self.kernel ** 2 + 2 * self.c_out
        if self.kind == "head":
            return (self.c_in + 1) * self.c_out
        if self.kind == "se":
            from .arch import se_width
            return 2 * self.c_in * se_width(self.c_in) + self.c_in + se_width(self.c_in)
        return 0

    def megabytes(self, batch_size: int) -> float:
        """float32 megabytes the unit moves at ``batch_size``: activations per sample times the batch, weights once."""
        return 4e-6 * (batch_size * self.activation_elements + self.weight_elements)

    def key(self) -> str:
        """The unit as a table key: ``"conv 3 16 3 2 1 224 1"`` (fields in the order of :data:`_FIELDS`)."""
        return " ".join([self.kind] + [str(int(getattr(self, f))) for f in _FIELDS[1:]])

    @classmethod
    def from_key(cls, key: str) -> "Unit":
        parts = str(key).split()
        if len(parts) != len(_FIELDS):
            raise ValueError(f"a latency-table key must have {len(_FIELDS)} fields {_FIELDS}, but got {key!r}.")
        try:
            values = [int(p) for p in parts[1:]]
        except ValueError:
            raise ValueError(f"a latency-table key must hold integers after its kind, but got {key!r}.") from None
        return cls(parts[0], *values[:-1], act=bool(values[-1]))


def _conv(c_in, c_out, kernel, stride, r_in, act, groups=1) -> Unit:
    return Unit("conv", c_in, c_out, kernel, stride, groups, r_in, act)


def block_units(stage: Stage, c_in: int, stride: int, r_in: int) -> list[Unit]:
    """The units of one block of ``stage`` taking ``c_in`` channels at ``r_in`` with ``stride`` (the stage's
    first block: its ``c_in`` and stride; a repeat: ``c_out`` and 1)."""
    k, c_out, mid = stage.kernel, stage.c_out, stage.mid
    r_out = -(-r_in // stride)
    keeps = stride == 1 and c_in == c_out
    if stage.block == "conv":
        return [_conv(c_in, c_out, k, stride, r_in, True)]
    if stage.block == "skip":
        return [] if keeps else [_conv(c_in, c_out, 1, stride, r_in, False)]
    if stage.block in ("basic", "bottleneck"):
        if stage.block == "basic":
            body = [_conv(c_in, c_out, k, stride, r_in, True), _conv(c_out, c_out, k, 1, r_out, False)]
        else:
            body = [_conv(c_in, mid, 1, 1, r_in, True), _conv(mid, mid, k, stride, r_in, True),
                    _conv(mid, c_out, 1, 1, r_out, False)]
        proj = [] if keeps else [_conv(c_in, c_out, 1, stride, r_in, False)]
        return body + proj + [Unit("add", c_out, c_out, r_in=r_out, act=True)]
    # mbconv, mbconv_se: no projection shortcut
    units = [_conv(c_in, mid, 1, 1, r_in, True), _conv(mid, mid, k, stride, r_in, True, groups=mid)]
    if stage.block == "mbconv_se":
        units.append(Unit("se", mid, mid, r_in=r_out))
    units.append(_conv(mid, c_out, 1, 1, r_out, False))
    if keeps:
        units.append(Unit("add", c_out, c_out, r_in=r_out, act=False))
    return units


def stage_units(stage: Stage, r_in: int) -> tuple[list[Unit], list[Unit]]:
    """(units of the first block, units of each repeated block) of ``stage`` at input resolution ``r_in``."""
    first = block_units(stage, stage.c_in, stage.stride, r_in)
    rep = block_units(stage, stage.c_out, 1, stage.out_resolution(r_in)) if stage.depth > 1 else []
    return first, rep


def head_unit(arch: Architecture) -> Unit:
    return Unit("head", arch.width, arch.num_classes, r_in=arch.stage_resolutions[-1])


def arch_units(arch: Architecture) -> list[Unit]:
    """Every unit ``arch``'s built network runs, in order (repeats listed once per block)."""
    out, r = [], arch.resolution
    for st in arch.stages:
        first, rep = stage_units(st, r)
        out += first + rep * (st.depth - 1)
        r = st.out_resolution(r)
    return out + [head_unit(arch)]


def feature_map(arch: Architecture) -> int:
    """Elements (per sample) of the largest block input or output tensor: the input image or a block output
    ``c_out x r_out x r_out``.  Tensors inside a block (an inverted residual's expanded width) are not counted."""
    sizes = [arch.in_channels * arch.resolution ** 2]
    sizes += [st.c_out * r * r for st, r in zip(arch.stages, arch.stage_resolutions)]
    return max(sizes)


def family_units(family, *, max_macs: float | None = None) -> list[Unit]:
    """Every distinct unit a design of ``family`` (a :class:`~deepmad_nni.core.family.Family`) can run, sorted.

    Per slot, every allowed (c_in, c_out, op, mid) of :meth:`Slot.combos` gives its first block's units and,
    when the op repeats, its repeated block's; the last slot's widths give the heads.  With ``max_macs`` a
    unit whose own MACs exceed it is left out: no design within a FLOPs budget of ``max_macs`` runs it.
    """
    units: set[Unit] = set()
    prev, r = [family.in_channels], family.resolution
    for j, slot in enumerate(family.slots):
        cb = slot.combos(prev, **family.slot_rules(j))
        r_out = -(-r // slot.stride)
        seen = set()
        for c_in, c_out, o, mid in zip(*(cb[k].tolist() for k in ("c_in", "c_out", "op", "mid"))):
            op = slot.ops[o]
            if (c_in, c_out, o, mid) in seen:
                continue
            seen.add((c_in, c_out, o, mid))
            stage = Stage(op.block, c_in, c_out, slot.stride, op.kernel, max(slot.depths_of(op)), max(mid, 1)
                          if op.block in ("bottleneck", "mbconv", "mbconv_se") else 0)
            first, rep = stage_units(stage, r)
            units.update(first)
            units.update(rep)
        prev, r = sorted(set(slot.widths)), r_out
    units.update(Unit("head", c, family.num_classes, r_in=r) for c in prev)
    if max_macs is not None:
        units = {u for u in units if u.macs <= max_macs}
    return sorted(units)
