"""Latency and feature-map budgets: the solver against brute force with a synthetic table (no torch)."""
import math
from functools import lru_cache

import numpy as np
import pytest

from core_families import SMALL_FAMILIES, TINY_MBSE, TINY_RESNET
from deepmad_nni.core import Program, get_family, solve
from deepmad_nni.core.latency import LatencyTable, predicted_latency
from deepmad_nni.core.latency_fastest import fastest_design
from deepmad_nni.core.latency_solve import restrict_feature_map
from deepmad_nni.core.latency_units import arch_units, family_units, feature_map
from deepmad_nni.core.result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL

SETTINGS = {"device": "cpu", "device_name": "synthetic", "batch_size": 1, "dtype": "float32", "threads": 1,
            "torch_version": "none", "activation": "relu", "flush_denormal": True}


def synthetic_table(family, seed=0, max_macs=None) -> LatencyTable:
    """ms = MACs / 1e6 * a random factor + a per-unit overhead: correlated with FLOPs but not monotone in them."""
    rng = np.random.default_rng(seed)
    units = family_units(family, max_macs=max_macs)
    entries = {u.key(): u.macs / 1e6 * rng.uniform(0.5, 2.0) + 0.01 * rng.uniform(0.5, 1.5) for u in units}
    return LatencyTable(dict(SETTINGS, coverage={family.name: max_macs}), entries)


@lru_cache(maxsize=None)
def scored(family):
    """Every architecture of the family, scored one by one, best first (the oracle's input)."""
    prog = Program.create(family)
    return sorted(((prog.score(a), a) for a in family.enumerate()), key=lambda t: -t[0].objective)


def brute_force(family, table, *, latency=None, max_fm=None, top_k=3):
    prog = Program.create(family)
    seen, out = set(), []
    for s, a in scored(family):
        if not prog.feasible(s) or a.canonical() in seen:
            continue
        if latency is not None and predicted_latency(a, table) > latency:
            continue
        if max_fm is not None and feature_map(a) > max_fm:
            continue
        seen.add(a.canonical())
        out.append(s.objective)
        if len(out) == top_k:
            break
    return out


FAMILIES = list(SMALL_FAMILIES) + [get_family("nas-bench-macro")]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_latency_budget_equals_brute_force(family):
    table = synthetic_table(family)
    lats = np.array([predicted_latency(a, table) for _, a in scored(family)])
    for q in (0.05, 0.3, 0.7):
        latency = float(np.quantile(lats, q))
        expected = brute_force(family, table, latency=latency)
        res = solve(family, latency=latency, latency_table=table, top_k=3)
        assert [d.score.objective for d in res.designs] == pytest.approx(expected, rel=1e-9)
        assert res.status == (OPTIMAL if expected else INFEASIBLE)
        for d, ms in zip(res.designs, res.latencies):
            assert ms == pytest.approx(predicted_latency(d.architecture, table)) and ms <= latency
        if res.designs:
            assert res.latency == res.latencies[0]


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.name)
def test_feature_map_budget_equals_brute_force(family):
    fms = sorted({feature_map(a) for _, a in scored(family)})
    for max_fm in (fms[0], fms[len(fms) // 2]):
        expected = brute_force(family, None, max_fm=max_fm)
        res = solve(family, max_feature_map=max_fm, top_k=3)
        assert [d.score.objective for d in res.designs] == pytest.approx(expected, rel=1e-9)
        assert all(fm <= max_fm for fm in res.feature_maps)


def test_feature_map_below_the_input_is_infeasible():
    res = solve(TINY_RESNET, max_feature_map=100)
    assert res.status == INFEASIBLE and "max_feature_map" in res.message
    assert restrict_feature_map(TINY_RESNET, 100) is None


def test_fastest_design_is_the_minimum():
    for family in FAMILIES:
        table = synthetic_table(family, seed=3)
        ms, arch = fastest_design(family, table)
        assert ms == pytest.approx(min(predicted_latency(a, table) for _, a in scored(family)))
        assert predicted_latency(arch, table) == pytest.approx(ms)


@pytest.mark.parametrize("name,flops", [("mbv2-se-cifar", 60e6), ("resnet-bottleneck-cifar", 300e6)])
def test_large_family_search_is_sound(name, flops):
    """Not enumerable: the returned design meets the budgets, the status is not 'optimal', the bound is the
    latency-relaxed one."""
    family = get_family(name)
    table = synthetic_table(family, max_macs=flops)
    relaxed = solve(family, flops=flops)
    relaxed_ms = predicted_latency(relaxed.architecture, table)
    latency = 0.5 * relaxed_ms
    res = solve(family, flops=flops, latency=latency, latency_table=table)
    assert res.status in (FEASIBLE_WITH_GAP, LIMIT_REACHED)
    assert res.bound == pytest.approx(relaxed.bound)
    for d in res.designs:
        prog = Program.create(family, flops=flops)
        assert prog.feasible(prog.score(d.architecture))
        assert predicted_latency(d.architecture, table) <= latency
        assert d.score.objective <= res.bound
    assert res.designs, res.message


def test_large_family_latency_below_the_fastest_is_infeasible():
    family = get_family("mbv2-se-cifar")
    table = synthetic_table(family, max_macs=60e6)
    ms, _ = fastest_design(family, table, max_macs=60e6)
    res = solve(family, flops=60e6, latency=0.9 * ms, latency_table=table)
    assert res.status == INFEASIBLE and f"{ms:.4g}" in res.message


def test_table_coverage_needs_a_flops_budget():
    family = get_family("mbv2-se-cifar")
    table = synthetic_table(family, max_macs=60e6)
    with pytest.raises(ValueError, match="flops must be given"):
        solve(family, latency=1.0, latency_table=table)
    with pytest.raises(ValueError, match="at most 6e\\+07"):
        solve(family, flops=100e6, latency=1.0, latency_table=table)


def test_table_of_another_family_names_the_missing_unit():
    table = synthetic_table(TINY_RESNET)
    with pytest.raises(ValueError, match="no entry for unit"):
        solve(TINY_MBSE, latency=1.0, latency_table=table)


def test_bad_latency_inputs_are_named():
    table = synthetic_table(TINY_RESNET)
    with pytest.raises(ValueError, match="latency must be a positive finite number"):
        solve(TINY_RESNET, latency=-1.0, latency_table=table)
    with pytest.raises(ValueError, match="latency needs latency_table"):
        solve(TINY_RESNET, latency=1.0)
    with pytest.raises(ValueError, match="latency_table must be a LatencyTable"):
        solve(TINY_RESNET, latency=1.0, latency_table=42)
    with pytest.raises(ValueError, match="max_feature_map must be"):
        solve(TINY_RESNET, max_feature_map=0)


def test_table_alone_reports_latency_and_keeps_the_solution():
    table = synthetic_table(TINY_RESNET)
    plain = solve(TINY_RESNET, top_k=2)
    res = solve(TINY_RESNET, latency_table=table, top_k=2)
    assert [d.score.objective for d in res.designs] == [d.score.objective for d in plain.designs]
    assert res.latencies == [pytest.approx(predicted_latency(d.architecture, table)) for d in res.designs]
    assert math.isclose(sum(table.ms(u) for u in arch_units(res.architecture)), res.latency)
    d = res.to_dict()
    assert d["latency_ms"] == res.latency and d["alternatives"][0]["latency_ms"] == res.latencies[1]
    assert d["max_feature_map"] == feature_map(res.architecture)
