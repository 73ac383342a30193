"""DeepMADTuner without the NNI manager: search-space mapping, proposals against brute force, classArgs."""
import heapq

import pytest

pytest.importorskip("nni")

from nni import NoMoreTrialError  # noqa: E402

from deepmad_nni.core import get_family, score, solve, to_structure  # noqa: E402
from deepmad_nni.tuner import (DeepMADClassArgsValidator, SearchSpaceError, architecture_from_parameters,  # noqa: E402
                               check_class_args, family_from_search_space)
from deepmad_nni.tuner.space import parameters_from_architecture  # noqa: E402
from deepmad_nni.tuner.tuner import DeepMADTuner  # noqa: E402


def choice(*values):
    return {"_type": "choice", "_value": list(values)}


# mbv2-se-cifar: stem s0, five inverted-residual slots s1..s5, 1x1 head s6; 1 input channel at 8x8
SPACE = {"s0_width": choice(8, 16), "s6_width": choice(64, 96)}
for j, widths in zip(range(1, 6), [(8, 16), (16, 24), (24,), (24, 32), (32, 48)]):
    SPACE.update({f"s{j}_width": choice(*widths), f"s{j}_depth": choice(1, 2), f"s{j}_kernel": choice(3, 5),
                  f"s{j}_expansion": choice(2, 4) if j % 2 else choice(3)})
OVERRIDES = {"resolution": 8, "in_channels": 1, "num_classes": 10}
TEMPLATE = get_family("mbv2-se-cifar")


def small_space():
    s = dict(SPACE)
    for j in range(1, 6):
        s[f"s{j}_depth"], s[f"s{j}_kernel"] = choice(1), choice(3)
    s["s2_depth"], s["s4_kernel"] = choice(1, 2), choice(3, 5)
    return s


def test_family_has_exactly_the_search_space_choices():
    fam = family_from_search_space(small_space(), TEMPLATE, **OVERRIDES)
    assert (fam.resolution, fam.in_channels, fam.num_classes) == (8, 1, 10)
    for j, slot in enumerate(fam.slots):
        assert list(slot.widths) == small_space()[f"s{j}_width"]["_value"]
    assert sorted({op.kernel for op in fam.slots[4].ops}) == [3, 5]
    assert sorted({op.expansion for op in fam.slots[1].ops}) == [2.0, 4.0] and fam.slots[2].depths == (1, 2)
    archs = list(fam.enumerate())
    assert len(archs) == fam.size() > 10
    for arch in archs[:50]:  # parameters <-> architecture round trip
        params = parameters_from_architecture(arch, fam)
        assert set(small_space()) <= set(params)  # plus the fixed s0_kernel, s6_kernel
        assert all(v in small_space()[k]["_value"] for k, v in params.items() if k in small_space())
        assert architecture_from_parameters(params, TEMPLATE, **OVERRIDES) == arch


def test_proposals_are_the_brute_force_top_k_in_order():
    flops, rho, k = 300_000, 0.9, 5
    fam = family_from_search_space(small_space(), TEMPLATE, **OVERRIDES)
    feasible = [(s.objective, a) for a in fam.enumerate()
                for s in [score(a)] if s.flops <= flops and s.effectiveness <= rho]
    oracle = heapq.nlargest(k, feasible, key=lambda t: t[0])
    tuner = DeepMADTuner(family="mbv2-se-cifar", flops=flops, rho=rho, top_k=k, **OVERRIDES)
    tuner.update_search_space(small_space())
    proposals = [tuner.generate_parameters(i) for i in range(k)]
    with pytest.raises(NoMoreTrialError):
        tuner.generate_parameters(k)
    got = [score(architecture_from_parameters(p, TEMPLATE, **OVERRIDES)) for p in proposals]
    assert [s.objective for s in got] == pytest.approx([o for o, _ in oracle])
    assert all(s.flops <= flops and s.effectiveness <= rho for s in got)
    assert len({tuple(sorted(p.items())) for p in proposals}) == k
    tuner.receive_trial_result(0, proposals[0], {"default": 0.5})
    assert tuner.results == {0: 0.5}


def test_rho_sweep_proposes_each_optimum_first():
    tuner = DeepMADTuner(family="mbv2-se-cifar", params=40_000, rho=[0.75, 1.0], top_k=4, **OVERRIDES)
    tuner.update_search_space(small_space())
    assert [f["rho0"] for f in tuner.figures[:2]] == [0.75, 1.0] and [f["rank"] for f in tuner.figures[:2]] == [0, 0]
    fam = family_from_search_space(small_space(), TEMPLATE, **OVERRIDES)
    for figures, rho in zip(tuner.figures, (0.75, 1.0)):
        assert figures["objective"] == pytest.approx(solve(fam, params=40_000, rho=rho).objective)
        assert figures["rho"] <= rho and figures["params"] <= 40_000
    assert len(tuner.proposals) == 4


def test_structure_template():
    structure = [{"class": "ConvKXBNRELU", "in": 1, "out": 8, "s": 1, "k": 3},
                 {"class": "SuperResK1KXK1", "in": 8, "out": 16, "s": 2, "k": 3, "L": 1, "btn": 8},
                 {"class": "SuperResK1KXK1", "in": 16, "out": 32, "s": 2, "k": 3, "L": 1, "btn": 8}]
    space = {"s1_width": choice(16, 24), "s1_mid": choice(8, 16), "s2_depth": choice(1, 2), "s2_kernel": choice(3, 5)}
    tuner = DeepMADTuner(structure=structure, params=30_000, rho=5.0, top_k=3, resolution=8, num_classes=10)
    tuner.update_search_space(space)
    p = tuner.generate_parameters(0)
    assert set(p) == set(space)
    arch = architecture_from_parameters(p, tuner.template, resolution=8, num_classes=10)
    assert to_structure(arch)[1]["btn"] == p["s1_mid"] and score(arch).params <= 30_000


@pytest.mark.parametrize("space, message", [
    ({**SPACE, "s9_width": choice(8)}, "s9_width"),
    ({**SPACE, "s1_stride": choice(1)}, "s1_stride"),
    ({**SPACE, "s1_width": {"_type": "uniform", "_value": [8, 16]}}, "s1_width"),
    ({k: v for k, v in SPACE.items() if k != "s3_kernel"}, "s3_kernel"),
    ({**SPACE, "s2_depth": choice(1.5)}, "s2_depth"),
    ({}, "non-empty"),
])
def test_unmappable_search_spaces_get_clear_errors(space, message):
    tuner = DeepMADTuner(family="mbv2-se-cifar", flops=1e6, **OVERRIDES)
    with pytest.raises(SearchSpaceError, match=message):
        tuner.update_search_space(space)


def test_family_with_mixed_blocks_per_slot_cannot_be_mapped():
    with pytest.raises(SearchSpaceError, match="one block type per slot"):
        family_from_search_space({"s1_width": choice(64)}, get_family("nas-bench-macro"))


def test_infeasible_budget_is_an_error_naming_the_budget():
    tuner = DeepMADTuner(family="mbv2-se-cifar", flops=1000, rho=1.0, **OVERRIDES)
    with pytest.raises(ValueError, match="flops <= 1000"):
        tuner.update_search_space(small_space())


@pytest.mark.parametrize("kwargs, name", [
    ({"family": "mbv2-se-cifar"}, "flops"),                                   # missing budget
    ({"family": "mbv2-se-cifar", "flops": 1e6, "rho": 0}, "rho"),
    ({"family": "mbv2-se-cifar", "flops": 1e6, "rho": -0.5}, "rho"),
    ({"family": "mbv2-se-cifar", "flops": 1e6, "rho": [0.3, -1]}, "rho"),
    ({"family": "resnet-9000", "flops": 1e6}, "family"),
    ({"flops": 1e6}, "family"),
    ({"family": "mbv2-se-cifar", "flops": "lots"}, "flops"),
    ({"family": "mbv2-se-cifar", "params": 1e5, "top_k": 0}, "top_k"),
    ({"family": "mbv2-se-cifar", "params": 1e5, "convention": "mine"}, "convention"),
    ({"family": "mbv2-se-cifar", "params": 1e5, "budget": 3}, "budget"),
])
def test_bad_class_args(kwargs, name):
    with pytest.raises(ValueError, match=name):
        check_class_args(**kwargs)
    with pytest.raises(ValueError, match=name):
        DeepMADClassArgsValidator().validate_class_args(**kwargs)
    with pytest.raises(ValueError, match=name):
        DeepMADTuner(**kwargs)


def test_class_args_accept_yaml_number_strings():
    assert check_class_args(family="mbv2-se-cifar", flops="2e6")["flops"] == 2e6


def test_comparison_summary_picks_best_by_validation_and_splits_device_hours():
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "experiments" / "nnictl" / "run_comparison.py"
    spec = importlib.util.spec_from_file_location("run_comparison", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    value = {"test_accuracy": 0.5, "flops": 10, "params": 20}
    records = [{"value": {**value, "default": 0.7, "device": "cpu", "wall_time_s": 1800}},
               {"value": {**value, "default": 0.9, "device": "cuda:0", "wall_time_s": 3600, "flops": 99}},
               {"value": 0.3}]  # a trial without the dict metric is not counted
    trials = [{"status": "SUCCEEDED"}, {"status": "SUCCEEDED"}, {"status": "FAILED"}]
    row = mod.summarise("tpe", "x", "DONE", records, trials, 2.0)
    assert row["best_accuracy"] == 0.9 and row["best_flops"] == 99 and row["cpu_hours"] == 0.5
    assert row["gpu_hours"] == 1.0 and row["trials"] == 3 and row["succeeded"] == 2 and row["tuner"] == "TPE"
    assert "| TPE | DONE | 3 | 2 | 0.9 |" in mod.markdown([row], "note")


def test_unregistered_use_through_code_directory_and_class_name():
    from pathlib import Path
    from nni.tools.package_utils import create_customized_class_instance
    tuner = create_customized_class_instance({
        "codeDirectory": str(Path(__file__).resolve().parents[1]), "className": "deepmad_nni.tuner.DeepMADTuner",
        "classArgs": {"family": "mbv2-se-cifar", "flops": 300_000, "rho": 0.9, "top_k": 2, **OVERRIDES}})
    assert isinstance(tuner, DeepMADTuner)
    tuner.update_search_space(small_space())
    assert set(tuner.generate_parameters(0)) == set(small_space())
