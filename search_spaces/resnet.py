"""ResNet model spaces (basic and bottleneck blocks) at ImageNet (224) and CIFAR (32) scale.

Each preset is a :class:`~search_spaces.staged.SpaceConfig`; ``resnet_space(name)`` builds its NNI
ModelSpace and ``RESNET_CONFIGS[name].family()`` the equivalent ``deepmad_nni.core`` Family.  The layouts
follow the core's ResNet families: 3x3 stem, five super-blocks (strides 2, 2, 2, 1, 2 at 224 with a
stride-2 stem; 1, 2, 2, 1, 2 at 32), no max-pool.  Choice lists are short so spaces build fast.

Names: a space's family is its own (``family().name`` is the space's name), so no space takes the name of a
different core family (``deepmad_nni.core.FAMILIES``).  The bottleneck spaces once called
``resnet-bottleneck-224`` / ``resnet-bottleneck-cifar`` (the core's full families of those names: log-spaced
width grids, depths up to 16 / 12) are ``resnet-bottleneck-lite-224`` / ``resnet-bottleneck-lite-cifar``: two
widths per stage, depths up to 4 / 3.
"""
from __future__ import annotations

from .staged import SpaceConfig, StageChoices, StagedSpace

K = (3, 5)


def _bottleneck(name, resolution, num_classes, stem_stride, stem_widths, strides, widths, mids, depths):
    stages = tuple(StageChoices(s, w, K, d, m) for s, w, m, d in zip(strides, widths, mids, depths))
    return SpaceConfig(name, "bottleneck", resolution, num_classes, stem_stride, stem_widths, stages, (), 0.3,
                       "ResNet bottleneck super-blocks (1x1, kxk, 1x1) after a 3x3 stem")


def _basic(name, resolution, num_classes, stem_stride, stem_widths, strides, widths, depths):
    stages = tuple(StageChoices(s, w, K, d) for s, w, d in zip(strides, widths, depths))
    return SpaceConfig(name, "basic", resolution, num_classes, stem_stride, stem_widths, stages, (), 0.3,
                       "ResNet basic super-blocks (kxk, kxk) after a 3x3 stem")


_W224 = ((64, 96), (128, 192), (256, 384), (512, 640), (768, 1024))
_M224 = ((16, 32), (32, 64), (64, 128), (128, 256), (192, 384))
_W32 = ((32, 48), (64, 96), (128, 192), (256, 320), (384, 512))
_M32 = ((8, 16), (16, 32), (32, 64), (64, 128), (96, 192))
_D = ((1, 2, 3), (1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4), (1, 2, 3, 4))
_D32 = ((1, 2, 3),) * 5

RESNET_CONFIGS = {c.name: c for c in (
    _bottleneck("resnet-bottleneck-lite-224", 224, 1000, 2, (32, 48), (2, 2, 2, 1, 2), _W224, _M224, _D),
    _basic("resnet-basic-224", 224, 1000, 2, (32, 48), (2, 2, 2, 1, 2),
           ((64, 96), (128, 160), (192, 256), (320, 384), (448, 512)), _D),
    _bottleneck("resnet-bottleneck-lite-cifar", 32, 10, 1, (16, 24), (1, 2, 2, 1, 2), _W32, _M32, _D32),
    _basic("resnet-basic-cifar", 32, 10, 1, (16, 24), (1, 2, 2, 1, 2), _W32, _D32),
    # small enough to enumerate (tests, examples)
    _basic("resnet-basic-cifar-small", 32, 10, 1, (16,), (1, 2, 2), ((32, 48), (64, 96), (128, 160)),
           ((1, 2), (1, 2), (1, 2))),
    _bottleneck("resnet-bottleneck-cifar-small", 32, 10, 1, (16,), (1, 2, 2), ((32, 48), (64, 96), (128, 160)),
                ((8, 16), (16, 32), (32,)), ((1, 2), (1, 2), (1, 2))),
)}


def resnet_space(name: str = "resnet-bottleneck-lite-cifar") -> StagedSpace:
    """The NNI ModelSpace of a ResNet preset (see ``RESNET_CONFIGS``)."""
    if name not in RESNET_CONFIGS:
        raise ValueError(f"name must be one of {sorted(RESNET_CONFIGS)}, but got {name!r}.")
    return StagedSpace(RESNET_CONFIGS[name])
