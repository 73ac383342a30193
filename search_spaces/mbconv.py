"""MobileNet-V2 inverted-residual model spaces, with or without squeeze-and-excitation, at 224 and 32.

Layout of the core's MBConv families: 3x3 stem, five super-blocks of inverted residuals (expansion of the
output width, depthwise k x k), 1x1 head conv.  ``mbconv_space(name)`` builds the NNI ModelSpace,
``MBCONV_CONFIGS[name].family()`` the equivalent core Family.
"""
from __future__ import annotations

from .staged import SpaceConfig, StageChoices, StagedSpace

K = (3, 5)
_E = ((1, 3), (3, 6), (3, 6), (3, 6), (3, 6))
_D = ((1, 2), (1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4))
_W224 = ((24, 32), (40, 48), (64, 80), (96, 128), (160, 192))
_W32 = ((24, 32), (40, 48), (64, 80), (96, 128), (160, 192))


def _mb(name, block, resolution, num_classes, stem_stride, strides, widths, head):
    stages = tuple(StageChoices(s, w, K, d, (), e) for s, w, d, e in zip(strides, widths, _D, _E))
    return SpaceConfig(name, block, resolution, num_classes, stem_stride, (16,), stages, head, 0.5,
                       "MobileNet-V2 inverted residual super-blocks" + (" + SE" if block == "mbconv_se" else "")
                       + " after a 3x3 stem, 1x1 head")


MBCONV_CONFIGS = {c.name: c for c in (
    _mb("mbconv-se-224", "mbconv_se", 224, 1000, 2, (1, 2, 2, 2, 2), _W224, (1024, 1280)),
    _mb("mbconv-224", "mbconv", 224, 1000, 2, (1, 2, 2, 2, 2), _W224, (1024, 1280)),
    _mb("mbconv-se-cifar", "mbconv_se", 32, 10, 1, (1, 2, 2, 1, 2), _W32, (512, 640)),
    _mb("mbconv-cifar", "mbconv", 32, 10, 1, (1, 2, 2, 1, 2), _W32, (512, 640)),
    SpaceConfig("mbconv-se-cifar-small", "mbconv_se", 32, 10, 1, (16,), (
        StageChoices(1, (24,), (3,), (1, 2), (), (1, 3)),
        StageChoices(2, (40, 48), (3, 5), (1, 2), (), (3, 6)),
        StageChoices(2, (64, 80), (3,), (1, 2), (), (3, 6))), (256,), 0.5, "small MBConv+SE space (tests)"),
)}


def mbconv_space(name: str = "mbconv-se-cifar") -> StagedSpace:
    """The NNI ModelSpace of an MBConv preset (see ``MBCONV_CONFIGS``)."""
    if name not in MBCONV_CONFIGS:
        raise ValueError(f"name must be one of {sorted(MBCONV_CONFIGS)}, but got {name!r}.")
    return StagedSpace(MBCONV_CONFIGS[name])
