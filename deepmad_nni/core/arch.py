"""Architectures of the staged CNN families: stages of repeated blocks, expanded into conv layers.

An :class:`Architecture` is a sequence of :class:`Stage` entries, the same information as one
dict of the official structure format (class, in, out, s, k, L, btn).  ``Stage.layers`` expands a
stage into the conv layers of its main path (the layers DeepMAD counts) and the convs beside it
(residual projections, squeeze-and-excitation), which only cost FLOPs and parameters.

Block types (main path; every conv has no bias and is followed by BatchNorm):

``conv``        one k x k conv (stem, 1x1 head), ReLU.
``basic``       ResNet basic block: k x k (stride) -> k x k; projection shortcut when shape changes.
``bottleneck``  ResNet bottleneck: 1x1 to ``mid`` -> k x k (stride) -> 1x1 to ``out``; projection
                shortcut (1x1 conv, stride) when shape changes.
``mbconv``      MobileNet-V2 inverted residual: 1x1 to ``mid`` -> depthwise k x k (stride) -> 1x1 to
                ``out``; identity shortcut only when stride 1 and in == out.
``mbconv_se``   ``mbconv`` with squeeze-and-excitation on the depthwise output
                (``mid`` -> ``se_width(mid)`` -> ``mid`` 1x1 convs with bias).
``skip``        NAS-Bench-Macro identity: no layer when stride 1 and in == out, else one
                1x1 conv (stride) without activation.

A stage of depth ``L`` repeats its block ``L`` times; the first block takes ``in`` channels and the
stride, the others take ``out`` channels and stride 1.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

BLOCK_TYPES = ("conv", "basic", "bottleneck", "mbconv", "mbconv_se", "skip")
REPEATABLE = ("basic", "bottleneck", "mbconv", "mbconv_se")


def se_width(mid, *, maximum=max):
    """Squeeze-and-excitation hidden width: a quarter of ``mid``, rounded down to 8, at least 8.

    The one rule for every number type: ``maximum`` is that type's two-argument max (``max`` for ints,
    ``np.maximum`` for arrays in ``core/terms.py``, ``MutableExpression.max`` for NNI values in
    ``deepmad_nni/blocks.py``).
    """
    return maximum(8, (mid // 4) // 8 * 8)


@dataclass(frozen=True)
class Conv:
    """One conv layer at a given output resolution (r_out x r_out)."""

    c_in: int
    c_out: int
    kernel: int
    stride: int
    groups: int
    r_out: int
    main_path: bool  # counted by DeepMAD (entropy, rho)
    bias: bool = False
    batch_norm: bool = True

    @property
    def width(self) -> float:
        """The layer's MLP-equivalent width w = c_in * k^2 / g (spec, 'Objects')."""
        return self.c_in * self.kernel**2 / self.groups

    @property
    def macs(self) -> int:
        return self.c_in // self.groups * self.c_out * self.kernel**2 * self.r_out**2

    @property
    def params(self) -> int:
        weights = self.c_in // self.groups * self.c_out * self.kernel**2
        return weights + (self.c_out if self.bias else 0) + (2 * self.c_out if self.batch_norm else 0)


@dataclass(frozen=True)
class Stage:
    """One super-block: ``depth`` repeats of ``block`` (one dict of the official structure format).

    ``mid`` is the bottleneck width (``bottleneck``) or the expanded width (``mbconv*``); unused
    (0) for ``conv``, ``basic`` and ``skip``.
    """

    block: str
    c_in: int
    c_out: int
    stride: int = 1
    kernel: int = 3
    depth: int = 1
    mid: int = 0

    def __post_init__(self):
        if self.block not in BLOCK_TYPES:
            raise ValueError(f"Stage.block must be one of {BLOCK_TYPES}, but got {self.block!r}.")
        for name in ("c_in", "c_out", "kernel", "depth"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"Stage.{name} must be a positive integer, but got {getattr(self, name)!r}.")
        if self.stride not in (1, 2):
            raise ValueError(f"Stage.stride must be 1 or 2, but got {self.stride!r}.")
        if self.block in ("bottleneck", "mbconv", "mbconv_se") and self.mid < 1:
            raise ValueError(f"Stage.mid must be a positive integer for a {self.block} stage, but got {self.mid!r}.")
        if self.block in ("conv", "skip") and self.depth != 1:
            raise ValueError(f"Stage.depth must be 1 for a {self.block} stage, but got {self.depth!r}.")

    def layers(self, r_in: int) -> list[Conv]:
        """All convs of the stage, in order, for input resolution ``r_in``."""
        out: list[Conv] = []
        r = r_in
        for i in range(self.depth):
            c_in, stride = (self.c_in, self.stride) if i == 0 else (self.c_out, 1)
            r_next = -(-r // stride)
            out += _block_layers(self, c_in, stride, r, r_next)
            r = r_next
        return out

    def out_resolution(self, r_in: int) -> int:
        return -(-r_in // self.stride)


def _block_layers(st: Stage, c_in: int, stride: int, r_in: int, r_out: int) -> list[Conv]:
    k, c_out, mid = st.kernel, st.c_out, st.mid
    shape_changes = stride != 1 or c_in != c_out
    if st.block == "conv":
        return [Conv(c_in, c_out, k, stride, 1, r_out, True)]
    if st.block == "skip":
        return [Conv(c_in, c_out, 1, stride, 1, r_out, True)] if shape_changes else []
    if st.block == "basic":
        main = [Conv(c_in, c_out, k, stride, 1, r_out, True), Conv(c_out, c_out, k, 1, 1, r_out, True)]
    elif st.block == "bottleneck":
        main = [Conv(c_in, mid, 1, 1, 1, r_in, True), Conv(mid, mid, k, stride, 1, r_out, True),
                Conv(mid, c_out, 1, 1, 1, r_out, True)]
    else:  # mbconv, mbconv_se
        main = [Conv(c_in, mid, 1, 1, 1, r_in, True), Conv(mid, mid, k, stride, mid, r_out, True)]
        if st.block == "mbconv_se":
            se = se_width(mid)
            main += [Conv(mid, se, 1, 1, 1, 1, False, bias=True, batch_norm=False),
                     Conv(se, mid, 1, 1, 1, 1, False, bias=True, batch_norm=False)]
        main.append(Conv(mid, c_out, 1, 1, 1, r_out, True))
        return main  # MobileNet-V2: no projection shortcut
    if shape_changes:
        main.append(Conv(c_in, c_out, 1, stride, 1, r_out, False))
    return main


@dataclass(frozen=True)
class Architecture:
    """A whole network: stages, input resolution and channels, classifier size (FC after global pool)."""

    stages: tuple[Stage, ...]
    resolution: int = 224
    in_channels: int = 3
    num_classes: int = 1000

    def __post_init__(self):
        object.__setattr__(self, "stages", tuple(self.stages))
        if not self.stages:
            raise ValueError("Architecture.stages must not be empty.")
        if self.stages[0].c_in != self.in_channels:
            raise ValueError(f"The first stage must take in_channels={self.in_channels} channels, "
                             f"but got c_in={self.stages[0].c_in}.")
        for i, (a, b) in enumerate(zip(self.stages, self.stages[1:]), start=1):
            if b.c_in != a.c_out:
                raise ValueError(f"stages[{i}].c_in must equal stages[{i - 1}].c_out={a.c_out}, but got {b.c_in}.")

    @cached_property
    def stage_resolutions(self) -> tuple[int, ...]:
        """Output resolution of every stage entry."""
        res, r = [], self.resolution
        for st in self.stages:
            r = st.out_resolution(r)
            res.append(r)
        return tuple(res)

    @cached_property
    def convs(self) -> tuple[tuple[Conv, ...], ...]:
        """Per stage entry, its convs (main path and beside it)."""
        r_ins = (self.resolution,) + self.stage_resolutions[:-1]
        return tuple(tuple(st.layers(r)) for st, r in zip(self.stages, r_ins))

    @property
    def width(self) -> int:
        return self.stages[-1].c_out

    def canonical(self) -> tuple:
        """A key equal for architectures that compute the same network (identity skips dropped)."""
        kept = tuple(st for st in self.stages if not (st.block == "skip" and st.stride == 1 and st.c_in == st.c_out))
        return (kept, self.resolution, self.in_channels, self.num_classes)

    def replace(self, **changes) -> "Architecture":
        return replace(self, **changes)
