"""The search families (official DeepMAD spaces, CIFAR-scale variants, NAS-Bench-Macro) and the paper's presets."""
from __future__ import annotations

from dataclasses import dataclass

from .family import Family, Op, Slot, log_grid

RESNET_WIDTHS = log_grid(32, 2048, 1.25)
RESNET_MIDS = log_grid(8, 1024, 1.25)
MB_WIDTHS = log_grid(16, 1024, 1.25)
MB_EXPANSIONS = (1.0, 2.0, 3.0, 4.0, 6.0)


def _resnet(name: str, resolution: int, stem_stride: int, strides, num_classes: int, max_depth: int) -> Family:
    stem = Slot(stem_stride, (16, 24, 32, 48, 64), (Op("conv", 3),))
    ops = tuple(Op("bottleneck", k, mid_from_grid=True) for k in (3, 5))
    slots = [stem] + [Slot(s, RESNET_WIDTHS, ops, tuple(range(1, (3 if i == 0 else max_depth) + 1)), RESNET_MIDS)
                      for i, s in enumerate(strides)]
    return Family(name, tuple(slots), resolution, 3, num_classes, description=(
        "ResNet bottleneck (1x1, kxk, 1x1) super-blocks after a 3x3 stem; kernel {3,5}, depth, output "
        "and bottleneck widths (multiples of 8); the first super-block has at most 3 blocks"), default_rho=0.3)


def _mobilenet(name: str, resolution: int, stem_stride: int, strides, num_classes: int, max_depth: int) -> Family:
    stem = Slot(stem_stride, (16, 24, 32, 40, 48, 56, 64), (Op("conv", 3),))
    ops = tuple(Op("mbconv_se", k, e) for k in (3, 5, 7) for e in MB_EXPANSIONS)
    slots = [stem] + [Slot(s, MB_WIDTHS, ops, tuple(range(1, max_depth + 1))) for s in strides]
    head = Slot(1, (1024, 1280, 1536, 1792, 2048, 2560), (Op("conv", 1),))
    return Family(name, tuple(slots) + (head,), resolution, 3, num_classes, description=(
        "MobileNet-V2 inverted residual + SE super-blocks after a 3x3 stem, 1x1 head; kernel {3,5,7}, "
        "expansion {1,2,3,4,6} of the output width, depth, output width (multiples of 8)"), default_rho=0.5)


def _nas_bench_macro() -> Family:
    ops = (Op("skip", 1), Op("mbconv", 3, 3.0, "in"), Op("mbconv", 5, 6.0, "in"))
    widths = (64, 64, 128, 128, 128, 256, 256, 256)
    strides = (2, 1, 2, 1, 1, 2, 1, 1)
    slots = (Slot(1, (32,), (Op("conv", 3),)),) + tuple(Slot(s, (w,), ops) for s, w in zip(strides, widths)) + (
        Slot(1, (1280,), (Op("conv", 1),)),)
    return Family("nas-bench-macro", slots, 32, 3, 10, max_width_ratio=None, description=(
        "NAS-Bench-Macro (CIFAR-10): 8 layers in stages of 2, 3, 3; each identity, inverted residual k3e3 "
        "or k5e6; fixed widths 32-64-128-256, 1x1 head to 1280"), default_rho=0.5)


FAMILIES: dict[str, Family] = {f.name: f for f in (
    _resnet("resnet-bottleneck-224", 224, 2, (2, 2, 2, 1, 2), 1000, 16),
    _mobilenet("mbv2-se-224", 224, 2, (1, 2, 2, 2, 2), 1000, 10),
    _resnet("resnet-bottleneck-cifar", 32, 1, (1, 2, 2, 1, 2), 10, 12),
    _mobilenet("mbv2-se-cifar", 32, 1, (1, 2, 2, 1, 2), 10, 8),
    _nas_bench_macro(),
)}


@dataclass(frozen=True)
class Preset:
    """A paper design target (Section 5 / official configs): family, budgets and rho_0."""

    name: str
    family: str
    flops: float
    params: float
    rho: float


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("R18", "resnet-bottleneck-224", 1.8e9, 11.7e6, 0.3),
    Preset("R34", "resnet-bottleneck-224", 3.6e9, 21.8e6, 0.3),
    Preset("R50", "resnet-bottleneck-224", 4.1e9, 25.6e6, 0.3),
    Preset("B0", "mbv2-se-224", 390e6, 5.3e6, 0.5),
    Preset("MB", "mbv2-se-224", 320e6, 3.5e6, 0.5),
    Preset("29M", "mbv2-se-224", 4.5e9, 29e6, 0.5),
    Preset("50M", "mbv2-se-224", 8.7e9, 50e6, 0.5),
    Preset("89M", "mbv2-se-224", 15.4e9, 89e6, 0.5),
)}


def get_family(name: str) -> Family:
    if name not in FAMILIES:
        raise ValueError(f"family must be one of {sorted(FAMILIES)}, but got {name!r}.")
    return FAMILIES[name]


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise ValueError(f"preset must be one of {sorted(PRESETS)}, but got {name!r}.")
    return PRESETS[name]
