"""A staged CNN space (stem, super-blocks, optional 1x1 head) as an NNI ModelSpace, and its core Family.

The space and :meth:`SpaceConfig.family` describe the same set of networks: every sample of the space is an
architecture of the family and back (``architecture_of_sample`` / ``sample_of_architecture``), and a frozen
sample has the FLOPs and parameter counts ``deepmad_nni.core.score`` gives its architecture.  Consecutive
width lists are disjoint and increasing, so guideline 3 (non-decreasing widths) holds for every sample and
the family needs no width-ratio or bottleneck-ratio filter.  The blocks are :mod:`deepmad_nni.blocks`'s; the
disjoint lists also make their shortcut rule (identity only for the same width value or the same ``nni.choice``)
exact for every sample.

Labels: ``stem_width``, ``s{i}_width``, ``s{i}_depth``, ``s{i}_kernel``, ``s{i}_mid`` (bottleneck width),
``s{i}_expansion`` (MBConv expansion of the output width), ``head_width``; i = 1..number of super-blocks.
A list with one value is a constant, not a label.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import nni
from nni.nas.nn.pytorch import ModelSpace, MutableLinear, Repeat
from torch import nn

from deepmad_nni.blocks import Basic, Bottleneck, ConvBN, InvertedResidual
from deepmad_nni.core import Architecture, Family, Op, Slot, Stage

BLOCKS = ("basic", "bottleneck", "mbconv", "mbconv_se")


@dataclass(frozen=True)
class StageChoices:
    """Choices of one super-block: stride, widths, kernels, depths, bottleneck widths or expansions."""

    stride: int
    widths: tuple[int, ...]
    kernels: tuple[int, ...] = (3,)
    depths: tuple[int, ...] = (1,)
    mids: tuple[int, ...] = ()          # bottleneck widths (bottleneck blocks)
    expansions: tuple[int, ...] = ()    # expansion of the output width (MBConv blocks)


@dataclass(frozen=True)
class SpaceConfig:
    """A staged space: block type, input, stem, super-blocks and optional 1x1 head."""

    name: str
    block: str
    resolution: int
    num_classes: int
    stem_stride: int
    stem_widths: tuple[int, ...]
    stages: tuple[StageChoices, ...]
    head_widths: tuple[int, ...] = ()
    default_rho: float = 0.3
    description: str = field(default="", compare=False)

    def __post_init__(self):
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, but got {self.block!r}.")
        prev = ("stem_widths", self.stem_widths)
        lists = [(f"stages[{i}].widths", s.widths) for i, s in enumerate(self.stages)]
        lists += [("head_widths", self.head_widths)] if self.head_widths else []
        for name, widths in lists:
            if not widths or min(widths) <= max(prev[1]):
                raise ValueError(f"{name} must be non-empty and above every value of {prev[0]} "
                                 f"(max {max(prev[1])}), but got {widths}.")
            prev = (name, widths)
        for i, s in enumerate(self.stages):
            if s.stride not in (1, 2) or not s.kernels or not s.depths or min(s.depths) < 1:
                raise ValueError(f"stages[{i}] needs stride 1 or 2, kernels and positive depths, but got {s}.")
            if self.block == "bottleneck" and (not s.mids or max(s.mids) > min(s.widths)):
                raise ValueError(f"stages[{i}].mids must be non-empty and at most min(widths)={min(s.widths)}, "
                                 f"but got {s.mids}.")
            if self.block.startswith("mbconv") and (not s.expansions or any(
                    not isinstance(e, int) or e < 1 for e in s.expansions)):
                raise ValueError(f"stages[{i}].expansions must be positive integers, but got {s.expansions}.")
            if any(w % 8 for w in s.widths):
                raise ValueError(f"stages[{i}].widths must be multiples of 8, but got {s.widths}.")

    # -- the equivalent core family ------------------------------------------------------------------
    def ops(self, s: StageChoices) -> tuple[Op, ...]:
        if self.block == "bottleneck":
            return tuple(Op("bottleneck", k, mid_from_grid=True) for k in s.kernels)
        if self.block == "basic":
            return tuple(Op("basic", k) for k in s.kernels)
        return tuple(Op(self.block, k, float(e), "out") for k in s.kernels for e in s.expansions)

    def family(self) -> Family:
        slots = [Slot(self.stem_stride, self.stem_widths, (Op("conv", 3),))]
        slots += [Slot(s.stride, s.widths, self.ops(s), s.depths, s.mids) for s in self.stages]
        if self.head_widths:
            slots.append(Slot(1, self.head_widths, (Op("conv", 1),)))
        return Family(self.name, tuple(slots), self.resolution, 3, self.num_classes, max_width_ratio=None,
                      mid_min_ratio=0.0, description=self.description, default_rho=self.default_rho)

    # -- samples <-> architectures -------------------------------------------------------------------
    def architecture_of_sample(self, sample: dict) -> Architecture:
        def get(label, values):
            if len(values) == 1:
                return values[0]
            if label not in sample:
                raise ValueError(f"sample lacks the label {label!r} of space {self.name!r}.")
            if sample[label] not in values:
                raise ValueError(f"sample[{label!r}] must be one of {values}, but got {sample[label]!r}.")
            return sample[label]

        c_in = get("stem_width", self.stem_widths)
        stages = [Stage("conv", 3, c_in, self.stem_stride, 3)]
        for i, s in enumerate(self.stages, start=1):
            c_out, k, depth = get(f"s{i}_width", s.widths), get(f"s{i}_kernel", s.kernels), get(f"s{i}_depth", s.depths)
            mid = 0
            if self.block == "bottleneck":
                mid = get(f"s{i}_mid", s.mids)
            elif self.block.startswith("mbconv"):
                mid = c_out * get(f"s{i}_expansion", s.expansions)
            stages.append(Stage(self.block, c_in, c_out, s.stride, k, depth, mid))
            c_in = c_out
        if self.head_widths:
            stages.append(Stage("conv", c_in, get("head_width", self.head_widths), 1, 1))
        return Architecture(tuple(stages), self.resolution, 3, self.num_classes)

    def sample_of_architecture(self, arch: Architecture) -> dict:
        """The sample (label -> value) of an architecture of :meth:`family`."""
        sample = {}

        def put(label, values, value):
            if value not in values:
                raise ValueError(f"{label} must be one of {values}, but the architecture has {value!r}.")
            if len(values) > 1:
                sample[label] = value

        expected = 1 + len(self.stages) + bool(self.head_widths)
        if len(arch.stages) != expected:
            raise ValueError(f"The architecture must have {expected} stage entries for space {self.name!r}, "
                             f"but got {len(arch.stages)}.")
        put("stem_width", self.stem_widths, arch.stages[0].c_out)
        for i, (s, st) in enumerate(zip(self.stages, arch.stages[1:]), start=1):
            put(f"s{i}_width", s.widths, st.c_out)
            put(f"s{i}_kernel", s.kernels, st.kernel)
            put(f"s{i}_depth", s.depths, st.depth)
            if self.block == "bottleneck":
                put(f"s{i}_mid", s.mids, st.mid)
            elif self.block.startswith("mbconv"):
                put(f"s{i}_expansion", s.expansions, st.mid // st.c_out)
        if self.head_widths:
            put("head_width", self.head_widths, arch.stages[-1].c_out)
        return sample


def _value(label: str, values):
    return values[0] if len(values) == 1 else nni.choice(label, list(values))


class StagedSpace(ModelSpace):
    """NNI ModelSpace of a :class:`SpaceConfig` (stem, super-blocks as ``Repeat``, head, mean pool, Linear)."""

    def __init__(self, config: SpaceConfig):
        super().__init__()
        self.config = config
        c_in = _value("stem_width", config.stem_widths)
        self.stem = ConvBN(3, c_in, 3, config.stem_stride, act=nn.ReLU)
        stages = []
        for i, s in enumerate(config.stages, start=1):
            c_out = _value(f"s{i}_width", s.widths)
            kernel = _value(f"s{i}_kernel", s.kernels)
            if config.block == "bottleneck":
                mid = _value(f"s{i}_mid", s.mids)
            elif config.block.startswith("mbconv"):
                mid = c_out * _value(f"s{i}_expansion", s.expansions)
            else:
                mid = None
            depth = _value(f"s{i}_depth", s.depths)
            stages.append(Repeat(_builder(config.block, c_in, c_out, kernel, s.stride, mid), depth))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.head = None
        if config.head_widths:
            head = _value("head_width", config.head_widths)
            self.head = ConvBN(c_in, head, 1, act=nn.ReLU)
            c_in = head
        self.fc = MutableLinear(c_in, config.num_classes)

    def forward(self, x):
        x = self.stages(self.stem(x))
        if self.head is not None:
            x = self.head(x)
        return self.fc(x.mean((2, 3)))  # not adaptive_avg_pool2d: NNI shape inference has no formula for it

    # convenience: the config's mappings
    def family(self) -> Family:
        return self.config.family()

    def architecture_of_sample(self, sample: dict) -> Architecture:
        return self.config.architecture_of_sample(sample)

    def sample_of_architecture(self, arch: Architecture) -> dict:
        return self.config.sample_of_architecture(arch)


def _builder(block, c_in, c_out, kernel, stride, mid):
    def build(index: int) -> nn.Module:
        first = index == 0
        cin, st = (c_in, stride) if first else (c_out, 1)
        if block == "basic":
            return Basic(cin, c_out, kernel, st)
        if block == "bottleneck":
            return Bottleneck(cin, c_out, kernel, st, mid=mid)
        return InvertedResidual(cin, c_out, kernel, st, mid=mid, se=block == "mbconv_se")
    return build
