"""The calibrated latency model: megabytes against built modules, the fit against known coefficients, the solver
and the fastest design under a calibrated table, a real calibration of a small family."""
import numpy as np
import pytest
import torch
from torch import nn

from core_families import TINY_MBSE
from deepmad_nni.core import get_family, solve
from deepmad_nni.core.latency import LatencyTable, calibration_features, fit_calibration, predicted_latency
from deepmad_nni.core.latency_fastest import fastest_design
from deepmad_nni.core.latency_units import Unit, arch_units
from deepmad_nni.blocks import ConvBN, SqueezeExcite
from deepmad_nni.builder import build_block
from test_latency_solve import brute_force, scored, synthetic_table
from test_latency_units import BLOCKS, torch_units


@pytest.mark.parametrize("stage", BLOCKS, ids=lambda s: f"{s.block}-{s.c_in}-{s.c_out}-s{s.stride}")
def test_weight_and_activation_elements_match_the_built_modules(stage):
    """weight_elements = the parameters of the ConvBN / SE module (BatchNorm's scale and shift included);
    activation_elements = its input plus its output elements, by forward hooks."""
    block = build_block(stage, stage.c_in, stage.stride, nn.ReLU).eval()
    modules = len(torch_units(block, 16, stage.c_in))
    seen = []

    def hook(mod, inputs, out):
        seen.append((sum(p.numel() for p in mod.parameters()), inputs[0][0].numel() + out[0].numel()))
    for m in block.modules():
        if isinstance(m, (ConvBN, SqueezeExcite)):
            m.register_forward_hook(hook)
    with torch.no_grad():
        block(torch.randn(1, stage.c_in, 16, 16))
    from deepmad_nni.core.latency_units import block_units
    units = [u for u in block_units(stage, stage.c_in, stage.stride, 16) if u.kind in ("conv", "se")]
    assert len(units) == len(seen) == modules
    assert sorted((u.weight_elements, u.activation_elements) for u in units) == sorted(seen)
    add = Unit("add", 16, 16, r_in=8)
    assert add.activation_elements == 3 * 16 * 64 and add.weight_elements == 0
    assert add.megabytes(2) == pytest.approx(4e-6 * 2 * 3 * 16 * 64)


def test_fit_recovers_known_coefficients_and_rejects_bad_input():
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.uniform(5, 50, 12), rng.uniform(1, 40, 12), rng.integers(20, 120, 12)])
    truth = np.array([1.3, 0.15, 0.02])
    fit = fit_calibration(x, x @ truth)
    assert [fit["scale"], fit["ms_per_mb"], fit["ms_per_unit"]] == pytest.approx(truth, rel=1e-6)
    assert fit["fit_max_rel_error"] < 1e-9 and fit["networks"] == 12 and fit["margin"] == pytest.approx(0, abs=1e-9)
    noisy = fit_calibration(x, x @ np.array([1.0, 0.0, 0.0]) * rng.uniform(0.9, 1.1, 12))
    assert noisy["scale"] >= 1 and min(noisy["ms_per_mb"], noisy["ms_per_unit"]) >= 0
    bytes_only = fit_calibration(x, x @ np.array([0.2, 0.5, 0.0]))      # faster than its entries: scale stays 1
    assert bytes_only["scale"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least 3 networks"):
        fit_calibration(x[:2], [1.0, 2.0])
    with pytest.raises(ValueError, match="measured_ms must be positive"):
        fit_calibration(x[:3], [1.0, -2.0, 3.0])


def calibrated(table: LatencyTable, scale=1.4, ms_per_mb=0.2, ms_per_unit=0.01) -> LatencyTable:
    settings = dict(table.settings, calibration={"scale": scale, "ms_per_mb": ms_per_mb, "ms_per_unit": ms_per_unit})
    return LatencyTable(settings, dict(table.entries))


def test_prediction_is_the_calibrated_unit_sum():
    family = TINY_MBSE
    plain = synthetic_table(family)
    table = calibrated(plain)
    for _, arch in scored(family)[:20]:
        units = arch_units(arch)
        entries, mb, n = calibration_features(units, table)
        assert predicted_latency(arch, plain) == pytest.approx(entries)          # no calibration: the plain sum
        assert predicted_latency(arch, table) == pytest.approx(1.4 * entries + 0.2 * mb + 0.01 * n)


def test_solver_and_fastest_design_use_the_calibrated_cost():
    """Brute force (which predicts through predicted_latency) agrees with the solver under a calibrated table;
    the fastest design's latency is the minimum over the family."""
    family = TINY_MBSE
    table = calibrated(synthetic_table(family, seed=2), scale=0.7, ms_per_mb=0.5, ms_per_unit=0.05)
    lats = np.array([predicted_latency(a, table) for _, a in scored(family)])
    for q in (0.1, 0.5):
        latency = float(np.quantile(lats, q))
        res = solve(family, latency=latency, latency_table=table, top_k=3)
        assert [d.score.objective for d in res.designs] == pytest.approx(brute_force(family, table, latency=latency))
    ms, arch = fastest_design(family, table)
    assert ms == pytest.approx(lats.min()) and predicted_latency(arch, table) == pytest.approx(ms)


def test_real_calibration_of_nas_bench_macro(tmp_path):
    """Profile and calibrate NAS-Bench-Macro's 38 units on this CPU (a few seconds): the fit is stored with its
    networks, the table reloads with it, and the calibrated prediction of a measured network is finite and
    positive.  (Accuracy is measured by experiments/bench_latency.py, not asserted on a shared machine.)"""
    from deepmad_nni.latency_profile import profile_family
    family = get_family("nas-bench-macro")
    out = tmp_path / "t.json"
    table = profile_family(family, out, repeats=2, warmup=1, max_macs=120e6, calibrate=4, progress=lambda _: None)
    c = table.settings["calibration"]
    assert c["family"] == "nas-bench-macro" and c["networks"] == 4 and len(c["rows"]) == 4
    assert table.settings["allocator"] in ("glibc-keep", "default")
    again = LatencyTable.load(out)
    assert again.calibration == c
    arch = solve(family, flops=60e6).architecture
    assert predicted_latency(arch, again) > 0
    profile_family(family, out, repeats=2, warmup=1, max_macs=120e6, calibrate=4, progress=lambda _: None)
    assert LatencyTable.load(out).calibration["rows"] == c["rows"]      # reused, not measured again


def test_budgets_are_guarded_by_the_calibration_margin():
    """A table whose calibration under-predicted a network by 10 % meets a budget L only with designs predicted
    within L / 1.1: the same optimum as brute force at L / 1.1."""
    family = TINY_MBSE
    table = calibrated(synthetic_table(family, seed=4))
    table.settings["calibration"]["margin"] = 0.1
    lats = np.array([predicted_latency(a, table) for _, a in scored(family)])
    latency = float(np.quantile(lats, 0.4))
    res = solve(family, latency=latency, latency_table=table, top_k=3)
    assert [d.score.objective for d in res.designs] == pytest.approx(brute_force(family, table, latency=latency / 1.1))
    assert all(ms * 1.1 <= latency for ms in res.latencies)
    assert table.within(latency / 1.1, latency) and not table.within(latency / 1.05, latency)
