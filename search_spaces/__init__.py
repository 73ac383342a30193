"""NNI 3.0 model spaces of the package's families (ResNet, MBConv), the NAS-Bench-Macro space and SPACH."""
from .mbconv import MBCONV_CONFIGS, mbconv_space
from .resnet import RESNET_CONFIGS, resnet_space
from .spach import SPACH_CONFIGS, SpachConfig, SpachSpace, SpachStage, spach_space
from .staged import SpaceConfig, StageChoices, StagedSpace

CONFIGS = {**RESNET_CONFIGS, **MBCONV_CONFIGS}


def get_space(name: str) -> StagedSpace:
    """The NNI ModelSpace of a preset of ``CONFIGS`` (ResNet and MBConv families)."""
    if name not in CONFIGS:
        raise ValueError(f"space must be one of {sorted(CONFIGS)}, but got {name!r}.")
    return StagedSpace(CONFIGS[name])


__all__ = ["CONFIGS", "MBCONV_CONFIGS", "RESNET_CONFIGS", "SPACH_CONFIGS", "SpaceConfig", "SpachConfig",
           "SpachSpace", "SpachStage", "StageChoices", "StagedSpace", "get_space", "mbconv_space", "resnet_space",
           "spach_space"]
