"""The package's NNI spaces: frozen samples have the core's FLOPs/params; sample <-> architecture round trips."""
import random
import warnings

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nni")

from deepmad_nni.core import score  # noqa: E402
from search_spaces import CONFIGS, SpaceConfig, StageChoices, get_space  # noqa: E402

warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")
FAST = [n for n in CONFIGS if n.endswith("cifar") or n.endswith("small")] + ["mbconv-se-224"]


@pytest.mark.parametrize("name", FAST)
def test_frozen_sample_matches_core_counts(name):
    from nni.nas.profiler.pytorch.flops import FlopsProfiler
    cfg, space = CONFIGS[name], get_space(name)
    x = torch.zeros(1, 3, cfg.resolution, cfg.resolution)
    rng = random.Random(1)
    mutables = space.simplify()
    for _ in range(2):
        sample = {k: rng.choice(m.values) for k, m in mutables.items()}
        arch = cfg.architecture_of_sample(sample)
        assert cfg.sample_of_architecture(arch) == sample
        model = space.freeze(sample)
        s = score(arch)
        assert sum(p.numel() for p in model.parameters()) == s.params
        prof = FlopsProfiler(model, x, count_normalization=False, count_activation=False, count_bias=False)
        assert prof.expression == s.flops
        assert model(x).shape == (1, cfg.num_classes)


def test_family_has_the_space_size():
    cfg = CONFIGS["resnet-bottleneck-cifar-small"]
    size = 1
    for m in get_space(cfg.name).simplify().values():
        size *= len(m.values)
    assert cfg.family().size() == size


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="stages\\[0\\].widths"):
        SpaceConfig("x", "basic", 32, 10, 1, (32,), (StageChoices(1, (16, 32)),))
    with pytest.raises(ValueError, match="block"):
        SpaceConfig("x", "vit", 32, 10, 1, (16,), (StageChoices(1, (32,)),))
    with pytest.raises(ValueError, match="mids"):
        SpaceConfig("x", "bottleneck", 32, 10, 1, (16,), (StageChoices(1, (32,), mids=(64,)),))
    with pytest.raises(ValueError, match="space must be one of"):
        get_space("resnet-1000")


def test_space_names_never_name_a_different_core_family():
    from deepmad_nni.core import FAMILIES
    for name, cfg in CONFIGS.items():
        assert cfg.family().name == name
        assert name not in FAMILIES or cfg.family() == FAMILIES[name], name
    assert "resnet-bottleneck-lite-224" in CONFIGS and "resnet-bottleneck-lite-cifar" in CONFIGS
    from search_spaces import SPACH_CONFIGS  # no core family: its names must be none of the core's
    assert not set(SPACH_CONFIGS) & set(FAMILIES)
