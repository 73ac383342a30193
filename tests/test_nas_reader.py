"""The model-space reader: exact on the package's spaces (core oracle), correct on NNI hub spaces (hooks oracle)."""
import functools
import random
import warnings
from collections import Counter

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nni")

from deepmad_nni.core import score  # noqa: E402
from deepmad_nni.nas.reader import UnsupportedModuleError, read_space  # noqa: E402
from search_spaces import CONFIGS, get_space  # noqa: E402

warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")


def _samples(desc, n, seed=0):
    rng = random.Random(seed)
    return [{k: rng.choice(m.values) for k, m in desc.mutables.items()} for _ in range(n)]


@pytest.mark.parametrize("name", ["resnet-bottleneck-lite-cifar", "mbconv-se-224", "resnet-basic-cifar-small"])
def test_reader_equals_core_score(name):
    cfg = CONFIGS[name]
    desc = read_space(get_space(name))
    for sample in _samples(desc, 3):
        for convention in ("official", "paper"):
            e = desc.evaluate(sample, convention=convention)
            s = score(cfg.architecture_of_sample(sample), convention=convention)
            assert e.entropy == pytest.approx(s.entropy, rel=1e-9)
            assert e.effectiveness == pytest.approx(s.effectiveness, rel=1e-9)
            assert (e.flops, e.params, e.num_layers) == (s.flops, s.params, s.num_layers)
            if convention == "paper" or cfg.block != "bottleneck":
                assert e.q == pytest.approx(s.q)


def _hooked_convs(model, x):
    """(c_in, c_out, k, groups, H*W) of every conv run by the frozen model, and conv+linear MACs."""
    seen, macs = [], [0]

    def hook(mod, inp, out):
        if isinstance(mod, torch.nn.Conv2d):
            seen.append((mod.in_channels, mod.out_channels, mod.kernel_size[0], mod.groups,
                         out.shape[-1] * out.shape[-2]))
            macs[0] += mod.in_channels // mod.groups * mod.out_channels * mod.kernel_size[0] ** 2 * out.shape[-1] * \
                out.shape[-2]
        elif isinstance(mod, torch.nn.Linear):
            macs[0] += mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    with torch.no_grad():
        model.eval()(x)
    for h in handles:
        h.remove()
    return Counter(seen), macs[0]


@functools.lru_cache(maxsize=None)
def load_hub(name):
    """A hub space and its reading, built once per test session."""
    import nni.nas.hub.pytorch as hub
    space = getattr(hub, name)()
    return name, space, read_space(space, (1, 3, 224, 224))


@pytest.fixture(scope="module", params=["MobileNetV3Space", "ProxylessNAS", "ShuffleNetSpace"])
def hub(request):
    return load_hub(request.param)


def test_hub_space_read_matches_hooks(hub):
    name, space, desc = hub
    x = torch.zeros(1, 3, 224, 224)
    for sample in _samples(desc, 2, seed=3):
        model = space.freeze(sample)
        hooked, macs = _hooked_convs(model, x)
        read = Counter((lay.c_in(sample), lay.c_out(sample), lay.kernel(sample), lay.groups(sample),
                        lay.out_hw(sample)) for lay in desc.layers if lay.active(sample))
        assert read == hooked
        flops, params = desc.cost(sample)
        assert flops == macs
        assert params == sum(p.numel() for p in model.parameters())
        e = desc.evaluate(sample)
        assert 0 < e.effectiveness < 10 and e.entropy > 0 and desc.num_stages == 5


def test_hub_roles_from_dataflow(hub):
    name, space, desc = hub
    sample = _samples(desc, 1, seed=5)[0]
    roles = Counter(lay.role for lay in desc.layers if lay.active(sample))
    if name == "MobileNetV3Space":
        se_on = sum(1 for k, v in sample.items() if k.endswith("_se") and v == "se" and
                    any(lay.active(sample) for lay in desc.layers if lay.name.startswith(_block_of_label(desc, k))))
        assert roles["gate"] == 2 * se_on and roles["classifier"] == 1
    elif name == "ShuffleNetSpace":  # stride-2 blocks: the 2-conv proj branch beside the main branch
        assert roles["projection"] == 2 * 4
    else:
        assert set(roles) == {"main"}


def _block_of_label(desc, label):
    for lay in desc.layers:
        for c in lay.conditions:
            if label in c.value.labels:
                return lay.name.rsplit(".6.", 1)[0] if ".6." in lay.name else lay.name
    return "<none>"


def test_unsupported_modules_are_named():
    from nni.nas.nn.pytorch import LayerChoice, ModelSpace
    from torch import nn

    class Attn(nn.Module):
        def forward(self, x):
            t = x.flatten(2)
            return (t @ t.transpose(1, 2)).softmax(-1) @ t

    class Space(ModelSpace):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.mix = LayerChoice([nn.Identity(), Attn()], label="mixer")

        def forward(self, x):
            return self.mix(self.conv(x)).mean()

    with pytest.raises(UnsupportedModuleError, match="mix.1.*mixer"):
        read_space(Space(), (1, 3, 8, 8))

    class MHA(ModelSpace):
        def __init__(self):
            super().__init__()
            self.attn = nn.MultiheadAttention(8, 2)

        def forward(self, x):
            return x

    with pytest.raises(UnsupportedModuleError, match="attn"):
        read_space(MHA(), (1, 3, 8, 8))
    with pytest.raises(ValueError, match="input_size"):
        read_space(get_space("resnet-basic-cifar-small"), (1, 3, 32))


def test_inactive_labels_are_canonicalised_and_top_k_distinct():
    from deepmad_nni.nas.solver import solve_space
    name, space, desc = load_hub("MobileNetV3Space")
    base = {k: m.values[0] for k, m in desc.mutables.items()}
    base["s1_depth"] = 1
    other = dict(base, s1_i3_ks=7, s1_i2_exp=6.0)          # blocks 3 and 4 of stage 1 are not built
    assert desc.canonical(base) == desc.canonical(other)
    assert desc.canonical(dict(base, s1_depth=4)) != desc.canonical(dict(other, s1_depth=4))
    result = solve_space(desc, flops=200e6, rho=0.5, top_k=3)
    again = solve_space(desc, flops=200e6, rho=0.5, top_k=3)
    assert [d.sample for d in again.designs] == [d.sample for d in result.designs]   # the quick solve: same result
    assert result.nodes == again.nodes
    networks = {repr(space.freeze(d.sample)) for d in result.designs}   # distinct networks, not just samples
    assert len(result.designs) == 3 and len(networks) == 3
    assert all(d.score.flops <= 200e6 and d.score.effectiveness <= 0.5 for d in result.designs)
    assert result.bound >= result.designs[0].score.objective


def test_sample_dependent_sizes_use_nni_symbolic_shapes():
    """A kernel choice without 'same' padding changes every later size: NNI's shape inference path."""
    import nni
    from nni.nas.nn.pytorch import ModelSpace, MutableBatchNorm2d, MutableConv2d, MutableLinear
    from torch import nn

    class Valid(ModelSpace):
        def __init__(self):
            super().__init__()
            w, k = nni.choice("w", [8, 16]), nni.choice("k", [3, 5])
            self.conv1 = MutableConv2d(3, w, k, 1, 0, bias=False)
            self.bn1 = MutableBatchNorm2d(w)
            self.conv2 = MutableConv2d(w, 24, 3, 2, 1, bias=False)
            self.fc = MutableLinear(24, 10)

        def forward(self, x):
            return self.fc(self.conv2(nn.functional.relu(self.bn1(self.conv1(x)))).mean((2, 3)))

    space = Valid()
    desc = read_space(space, (1, 3, 16, 16))
    x = torch.zeros(1, 3, 16, 16)
    for sample in ({"w": 8, "k": 3}, {"w": 16, "k": 5}):
        hooked, macs = _hooked_convs(space.freeze(sample), x)
        read = Counter((lay.c_in(sample), lay.c_out(sample), lay.kernel(sample), lay.groups(sample),
                        lay.out_hw(sample)) for lay in desc.layers if lay.active(sample))
        assert read == hooked and desc.cost(sample)[0] == macs
        assert desc.evaluate(sample).num_layers == 2 and desc.num_stages == 2


def test_tiny_time_limit_still_returns_a_checked_design():
    from deepmad_nni.nas.solver import solve_space
    name, space, desc = load_hub("ProxylessNAS")
    result = solve_space(desc, flops=400e6, rho=0.6, time_limit=1e-3, seed=0)
    assert result.status == "feasible-with-gap" and result.designs
    d = result.designs[0]
    e = desc.evaluate(d.sample)        # re-check what the solver returns
    assert e.flops == d.score.flops <= 400e6 and e.effectiveness == d.score.effectiveness <= 0.6
    with pytest.raises(ValueError, match="alpha"):
        solve_space(desc, rho=0.5, alpha=(1, 8), time_limit=1e-3)


def test_hub_costs_equal_nni_profilers_on_the_space():
    from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler
    name, space, desc = load_hub("MobileNetV3Space")
    x = torch.zeros(1, 3, 224, 224)
    flops = FlopsProfiler(space, x, count_normalization=False, count_activation=False, count_bias=False)
    params = NumParamsProfiler(space, x)
    for sample in _samples(desc, 3, seed=7):
        assert desc.cost(sample) == (flops.profile(sample), params.profile(sample))
