"""Latency units against the built torch blocks and against the MACs of the core's conv layers."""
import pytest
import torch
from torch import nn

from core_families import SMALL_FAMILIES
from deepmad_nni.blocks import ConvBN, SqueezeExcite
from deepmad_nni.builder import build_block, build_model
from deepmad_nni.core import Architecture, Stage, get_family
from deepmad_nni.core.latency_units import Unit, arch_units, block_units, family_units, feature_map

BLOCKS = [Stage("conv", 8, 16, 2, 3), Stage("skip", 16, 16, 1, 1), Stage("skip", 8, 16, 2, 1),
          Stage("basic", 8, 16, 2, 3), Stage("basic", 16, 16, 1, 5), Stage("bottleneck", 8, 32, 2, 5, mid=16),
          Stage("bottleneck", 32, 32, 1, 3, mid=8), Stage("mbconv", 16, 16, 1, 3, mid=48),
          Stage("mbconv", 8, 24, 2, 5, mid=32), Stage("mbconv_se", 16, 16, 1, 7, mid=64),
          Stage("mbconv_se", 16, 40, 2, 3, mid=96)]


def torch_units(module, r_in, c_in):
    """The (kind, c_in, c_out, kernel, stride, groups, act) of the ConvBN / SE modules a block runs, in order,
    found with forward hooks on a real input."""
    seen = []

    def hook(mod, inputs, _out):
        x = inputs[0]
        if isinstance(mod, ConvBN):
            conv = mod.conv
            seen.append(("conv", conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0],
                         conv.groups, x.shape[-1], mod.act is not None))
        elif isinstance(mod, SqueezeExcite):
            seen.append(("se", x.shape[1], x.shape[1], 1, 1, 1, x.shape[-1], False))
    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (ConvBN, SqueezeExcite))]
    with torch.no_grad():
        module.eval()(torch.randn(1, c_in, r_in, r_in))
    for h in handles:
        h.remove()
    return seen


@pytest.mark.parametrize("stage", BLOCKS, ids=lambda s: f"{s.block}-{s.c_in}-{s.c_out}-s{s.stride}")
@pytest.mark.parametrize("r_in", [7, 16])
def test_block_units_match_the_torch_block(stage, r_in):
    units = block_units(stage, stage.c_in, stage.stride, r_in)
    expected = [(u.kind, u.c_in, u.c_out, u.kernel, u.stride, u.groups, u.r_in, u.act) for u in units
                if u.kind in ("conv", "se")]
    got = torch_units(build_block(stage, stage.c_in, stage.stride, nn.ReLU), r_in, stage.c_in)
    assert sorted(got) == sorted(expected)
    # the adds: residual blocks always sum; inverted residuals only when the shape is kept
    adds = [u for u in units if u.kind == "add"]
    residual = stage.block in ("basic", "bottleneck")
    keeps = stage.stride == 1 and stage.c_in == stage.c_out
    assert len(adds) == (1 if residual or (stage.block.startswith("mbconv") and keeps) else 0)
    # the MACs of the conv units are those of the core's conv layers (SE convs aside)
    core_macs = sum(c.macs for c in stage.layers(r_in) if c.batch_norm)     # depth 1: one block
    assert sum(u.macs for u in units if u.kind == "conv") == core_macs


def test_arch_units_count_blocks_and_head():
    arch = Architecture((Stage("conv", 3, 16, 2, 3), Stage("bottleneck", 16, 32, 2, 3, depth=3, mid=8)),
                        resolution=32, num_classes=10)
    units = arch_units(arch)
    assert units[-1] == Unit("head", 32, 10, r_in=8)
    first = block_units(arch.stages[1], 16, 2, 16)
    rep = block_units(arch.stages[1], 32, 1, 8)
    assert units == block_units(arch.stages[0], 3, 2, 32) + first + rep + rep + [units[-1]]
    assert feature_map(arch) == max(3 * 32 * 32, 16 * 16 * 16, 32 * 8 * 8)


@pytest.mark.parametrize("family", list(SMALL_FAMILIES) + [get_family("nas-bench-macro")], ids=lambda f: f.name)
def test_family_units_cover_every_design(family):
    units = {u.key() for u in family_units(family)}
    for arch in family.enumerate():
        assert {u.key() for u in arch_units(arch)} <= units


def test_max_macs_leaves_out_only_bigger_units():
    family = SMALL_FAMILIES[0]
    all_units = family_units(family)
    bound = sorted(u.macs for u in all_units)[len(all_units) // 2]
    kept = family_units(family, max_macs=bound)
    assert set(kept) == {u for u in all_units if u.macs <= bound}


def test_key_round_trip_and_bad_keys():
    u = Unit("conv", 3, 16, 3, 2, 1, 224, True)
    assert Unit.from_key(u.key()) == u and u.key() == "conv 3 16 3 2 1 224 1"
    with pytest.raises(ValueError, match="must have 8 fields"):
        Unit.from_key("conv 3 16")
    with pytest.raises(ValueError, match="Unit.kind must be one of"):
        Unit("pool", 1, 1)


def test_built_model_runs_the_listed_convs():
    arch = next(iter(SMALL_FAMILIES[1].enumerate()))
    model = build_model(arch)
    convs = [m for m in model.modules() if isinstance(m, ConvBN)]
    assert len(convs) == sum(1 for u in arch_units(arch) if u.kind == "conv")
