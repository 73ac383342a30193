"""Latency units, tables and budgets on spaces read by the reader (deepmad_nni.nas.space_units / space_latency).

The toy space ``TinySpace``: a stem conv (width, kernel), a Repeat of 1-2 residual blocks (a k x k conv, an
optional squeeze-and-excite as a LayerChoice, a 1x1 projection, the skip add on the repeat), a global pool and a
linear classifier at 16x16 inputs: 256 samples, so every oracle is brute force over all of them.
"""
import functools
import hashlib
import itertools
import json
import warnings
from collections import Counter

import pytest

torch = pytest.importorskip("torch")
nni = pytest.importorskip("nni")

from nni.nas.nn.pytorch import (LayerChoice, ModelSpace, MutableBatchNorm2d, MutableConv2d,  # noqa: E402
                                MutableLinear, Repeat)
from torch import nn  # noqa: E402

from deepmad_nni.cli import main  # noqa: E402
from deepmad_nni.core.latency import LatencyTable  # noqa: E402
from deepmad_nni.core.result import FEASIBLE_WITH_GAP, INFEASIBLE, LIMIT_REACHED, OPTIMAL  # noqa: E402
from deepmad_nni.latency_profile import profile  # noqa: E402
from deepmad_nni.nas.route import ReaderRoute  # noqa: E402
from deepmad_nni.nas.space_latency import fastest, solve_with_latency  # noqa: E402
from deepmad_nni.nas.space_units import SpaceUnit  # noqa: E402

warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")

INPUT = (1, 3, 16, 16)
SETTINGS = {"device": "cpu", "device_name": "test-cpu", "batch_size": 1, "dtype": "float32", "threads": 1,
            "torch_version": "0", "activation": "relu", "flush_denormal": True}


class _ConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, kernel, stride=1, act=True):
        layers = [MutableConv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False), MutableBatchNorm2d(c_out)]
        super().__init__(*(layers + [nn.ReLU(inplace=True)] if act else layers))


class _SE(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.reduce = MutableConv2d(channels, 8, 1)
        self.expand = MutableConv2d(8, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.expand(torch.relu(self.reduce(x.mean((2, 3), keepdim=True)))))


class _Block(nn.Module):
    def __init__(self, c_in, c_out, stride, kernel, label):
        super().__init__()
        self.body = _ConvBN(c_in, c_out, kernel, stride)
        self.se = LayerChoice({"none": nn.Identity(), "se": _SE(c_out)}, label=label)
        self.proj = _ConvBN(c_out, c_out, 1, act=False)
        self.skip = stride == 1 and c_in is c_out

    def forward(self, x):
        y = self.proj(self.se(self.body(x)))
        return x + y if self.skip else y


class TinySpace(ModelSpace):
    def __init__(self, widths=(16, 24)):
        super().__init__()
        w1, w2 = nni.choice("w1", [8, 16]), nni.choice("w2", list(widths))
        self.stem = _ConvBN(3, w1, nni.choice("k1", [3, 5]))
        self.stage = Repeat(lambda i: _Block(w1 if i == 0 else w2, w2, 2 if i == 0 else 1,
                                             nni.choice(f"k2_{i}", [3, 5]), f"se{i}"), nni.choice("d", [1, 2]))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = MutableLinear(w2, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.stage(self.stem(x))), 1))


def synthetic_ms(unit) -> float:
    """A made-up but unit-specific latency: MACs plus a hash-drawn jitter (so no two units tie by accident)."""
    jitter = int(hashlib.md5(unit.key().encode()).hexdigest(), 16) % 1000
    return 0.002 + unit.macs * 1e-6 + jitter * 1e-5


@functools.lru_cache(maxsize=None)
def tiny():
    """(space, route, synthetic table, every sample with its Score and predicted ms), built once."""
    space = TinySpace()
    route = ReaderRoute(space, INPUT)
    units = route.units()
    table = LatencyTable(dict(SETTINGS, coverage={units.space_id: None}),
                         {u.key(): synthetic_ms(u) for u in units.units()})
    labels = list(route.desc.mutables)
    rows = []
    for combo in itertools.product(*(route.desc.mutables[k].values for k in labels)):
        sample = dict(zip(labels, combo))
        rows.append((sample, route.desc.evaluate(sample), units.predicted_latency(sample, table)))
    return space, route, table, rows


def brute_force(latency, flops=None, rho=None):
    """The best objective of a sample within the budgets by enumeration (None if none)."""
    ok = [s.objective for _, s, ms in tiny()[3] if ms <= latency and (flops is None or s.flops <= flops)
          and (rho is None or s.effectiveness <= rho)]
    return max(ok) if ok else None


# -- units -----------------------------------------------------------------------------------------------------
def test_units_are_what_the_frozen_network_runs():
    """Hooks on the frozen network: every conv and linear it runs is a unit of the sample (channels, kernel,
    stride, groups, input size, bias), and every unit of a sample is among the enumerated units."""
    space, route, _, rows = tiny()
    units = route.units()
    every = set(units.units())
    for sample, _, _ in rows[::17]:
        seen = []

        def hook(mod, inp, out):
            x = inp[0]
            if isinstance(mod, nn.Conv2d):
                seen.append(("space-conv", mod.in_channels, mod.out_channels, mod.kernel_size[0], mod.stride[0],
                             mod.groups, x.shape[2], x.shape[3], mod.bias is not None))
            elif isinstance(mod, nn.Linear):
                seen.append(("space-linear", mod.in_features, mod.out_features, 1, 1, 1, 1, 1, mod.bias is not None))

        model = space.freeze(sample).eval()
        handles = [m.register_forward_hook(hook) for m in model.modules()]
        with torch.no_grad():
            model(torch.zeros(*INPUT))
        for h in handles:
            h.remove()
        of = units.of(sample)
        assert Counter(seen) == Counter((u.kind, u.c_in, u.c_out, u.kernel, u.stride, u.groups, u.h, u.w, u.bias)
                                        for u in of)
        assert set(of) <= every


def test_tails_fold_what_follows_each_conv():
    """The dataflow folds BN + ReLU, the residual add, SE's pool and its gate into the convs' units."""
    _, route, _, _ = tiny()
    sample = {"w1": 8, "w2": 16, "k1": 3, "d": 2, "k2_0": 3, "k2_1": 5, "se0": "se", "se1": "se"}
    got = {(u.tail, u.pool_hw, u.gate_hw, u.h) for u in route.units().of(sample) if u.kind == "space-conv"}
    assert got == {("bn+relu", 0, 0, 16),          # stem; block 0's k x k conv at 16 (stride 2)
                   ("bn+relu", 0, 0, 8),           # block 1's k x k conv
                   ("relu", 64, 0, 1),             # SE reduce: reads the mean over 8x8
                   ("sigmoid+mul", 0, 64, 1),      # SE expand: gates the 8x8 tensor
                   ("bn", 0, 0, 8),                # block 0's projection (no skip)
                   ("bn+add", 0, 0, 8)}            # block 1's projection + the skip add


def test_unit_keys_round_trip_and_differ_from_core_keys():
    _, route, _, _ = tiny()
    for u in route.units().units():
        assert SpaceUnit.from_key(u.key()) == u and u.key().startswith("space-")
    with pytest.raises(ValueError, match="kind"):
        SpaceUnit.from_key("conv 3 16 3 2 1 224 1")


# -- budgets -----------------------------------------------------------------------------------------------------
def _budgets(rows):
    ms = sorted(r[2] for r in rows)
    return [ms[0] * 0.99, ms[0], ms[len(ms) // 5], ms[len(ms) // 2], ms[-1]]


@pytest.mark.parametrize("flops,rho", [(None, None), ("median", None), (None, "median")])
def test_budgeted_solve_equals_brute_force(flops, rho):
    space, route, table, rows = tiny()
    flops = sorted(s.flops for _, s, _ in rows)[len(rows) // 2] if flops else None
    rho = sorted(s.effectiveness for _, s, _ in rows)[len(rows) // 2] if rho else 1e6
    for latency in _budgets(rows):
        result, records = route.solve(flops=flops, rho=rho, top_k=2,
                                      budgets={"latency": latency, "latency_table": table})
        best = brute_force(latency, flops, rho)
        if best is None:
            assert result.status == INFEASIBLE and not records
            continue
        assert result.status == OPTIMAL and result.objective == pytest.approx(best)
        for d, ms, record in zip(result.designs, result.latencies, records):
            assert ms <= latency and record.device["latency_ms"] == pytest.approx(ms)
            assert ms == pytest.approx(route.units().predicted_latency(d.sample, table))


def test_sound_search_on_the_same_space_is_checked_by_brute_force(monkeypatch):
    """``enumerate_limit=0`` sends the toy space through the large-space path (3 bisection steps, for time): never
    optimal unless it is, every design within every budget, infeasible below the fastest network."""
    from deepmad_nni.nas import space_latency
    monkeypatch.setattr(space_latency, "BISECTION_STEPS", 3)
    _, route, table, rows = tiny()
    rho = sorted(s.effectiveness for _, s, _ in rows)[len(rows) // 2]
    ms = sorted(r[2] for r in rows)
    statuses = []
    for latency in (ms[0] * 0.99, ms[len(ms) // 2], ms[-1]):
        r = solve_with_latency(route.desc, route.units(), latency=latency, latency_table=table, rho=rho, top_k=2,
                               enumerate_limit=0)
        statuses.append(r.status)
        best = brute_force(latency, None, rho)
        if r.status == INFEASIBLE:
            assert best is None and not r.designs
        for d, got in zip(r.designs, r.latencies):
            assert got <= latency and d.score.effectiveness <= rho and d.score.objective <= best + 1e-9
        if r.status == OPTIMAL:
            assert r.objective == pytest.approx(best)
        if r.designs:
            assert r.bound >= best - 1e-9
    assert statuses[0] == INFEASIBLE and statuses[1] in (FEASIBLE_WITH_GAP, LIMIT_REACHED, OPTIMAL)
    assert statuses[2] == OPTIMAL     # every network fits: the relaxed program's proven optimum


def test_fastest_is_the_brute_force_minimum():
    _, route, table, rows = tiny()
    ms, sample, exact = fastest(route.units(), table)
    assert exact and ms == pytest.approx(min(r[2] for r in rows))
    assert route.units().predicted_latency(sample, table) == pytest.approx(ms)


def test_deepmad_strategy_with_a_latency_budget(tmp_path):
    from deepmad_nni.nas.strategy import DeepMAD
    space, route, table, rows = tiny()
    path = tmp_path / "tiny.json"
    table.save(path)
    latency = sorted(r[2] for r in rows)[len(rows) // 3]
    strategy = DeepMAD(rho=1e6, latency=latency, latency_table=str(path), input_size=INPUT)
    records = strategy.solve(space)
    assert records[0].device["latency_ms"] <= latency
    assert records[0].objective == pytest.approx(brute_force(latency))
    assert strategy.result.latency == pytest.approx(records[0].device["latency_ms"])


def test_max_feature_map_is_refused_on_read_spaces():
    _, route, table, _ = tiny()
    with pytest.raises(ValueError, match="max_feature_map needs a space that maps to a core family"):
        route.solve(rho=1.0, budgets={"max_feature_map": 1e4})


def test_a_table_of_another_space_or_settings_is_refused(tmp_path):
    _, route, table, _ = tiny()
    other = ReaderRoute(TinySpace(widths=(16, 32)), INPUT)
    with pytest.raises(ValueError, match="the latency table does not cover space .*TinySpace 3x16x16.*missing"):
        other.solve(rho=1e6, budgets={"latency": 1.0, "latency_table": table})
    with pytest.raises(ValueError, match="does not cover"):
        other.predicted_latency({}, table)
    out = tmp_path / "t.json"
    units = route.units().units()
    profile(units, out, settings=SETTINGS, progress=lambda line: None, measure=synthetic_ms)
    with pytest.raises(ValueError, match="measured with batch_size=1, but batch_size=8 was asked"):
        profile(units, out, settings={**SETTINGS, "batch_size": 8}, progress=lambda line: None,
                measure=synthetic_ms)
    with pytest.raises(ValueError, match="measured with device='cpu', but device='cuda'"):
        LatencyTable.load(out, expect={"device": "cuda"})


# -- the command ---------------------------------------------------------------------------------------------------
SPACE = ["latency", "profile", "--space", "test_space_latency:TinySpace", "--input-size", "1", "3", "16", "16"]


def test_profile_space_writes_a_table_the_solver_uses(tmp_path, capsys):
    out = tmp_path / "tiny.json"
    assert main(SPACE + ["--out", str(out), "--dry-run"]) == 0
    count = len(tiny()[1].units().units())
    assert f"{count} units" in capsys.readouterr().out and not out.exists()
    assert main(SPACE + ["--out", str(out), "--repeats", "1", "--warmup", "0", "--calibrate", "3"]) == 0
    assert "calibrated on 3 networks" in capsys.readouterr().out
    data = json.loads(out.read_text())
    route = tiny()[1]
    units = route.units()
    assert set(data["entries"]) == {u.key() for u in units.units()}
    assert data["settings"]["coverage"] == {units.space_id: None} and data["settings"]["threads"] == 1
    fitted = data["settings"]["calibration"]
    assert fitted["space"] == units.space_id and len(fitted["rows"]) == 3
    assert min(fitted["scale"], fitted["ms_per_mb"], fitted["ms_per_unit"], fitted["margin"]) >= 0
    table = LatencyTable.load(out)
    sample = tiny()[3][0][0]
    assert route.predicted_latency(sample, table) == pytest.approx(sum(
        fitted["scale"] * data["entries"][u.key()] + fitted["ms_per_mb"] * u.megabytes(1) + fitted["ms_per_unit"]
        for u in units.of(sample)))
    result, records = route.solve(rho=1e6, budgets={"latency": 1e3, "latency_table": table})
    assert result.status == OPTIMAL and records[0].device["latency_ms"] > 0
    assert main(SPACE + ["--out", str(out), "--repeats", "1", "--warmup", "0"]) == 0     # complete: nothing to do
    assert "0 to measure" in capsys.readouterr().err
    assert json.loads(out.read_text())["settings"]["calibration"] == fitted         # kept, not refitted


def test_a_table_calibrated_on_something_else_is_refused(tmp_path):
    _, route, table, _ = tiny()
    calibrated = LatencyTable(dict(table.settings, calibration={"family": "nas-bench-macro", "scale": 1.0,
                                                                "ms_per_mb": 0.0, "ms_per_unit": 0.0}), table.entries)
    with pytest.raises(ValueError, match="calibration was fitted on 'nas-bench-macro'"):
        route.predicted_latency({}, calibrated)
    out = tmp_path / "family.json"
    calibrated.save(out)
    assert main(SPACE + ["--out", str(out), "--repeats", "1", "--warmup", "0"]) == 2


def test_megabytes_count_what_a_unit_reads_and_writes():
    conv = SpaceUnit("space-conv", 16, 32, 3, 2, 1, 8, 8, tail="bn+relu")
    assert conv.megabytes(2) == pytest.approx(4e-6 * (2 * (16 * 64 + 32 * 16) + 16 * 32 * 9 + 2 * 32))
    gate = SpaceUnit("space-conv", 8, 24, bias=True, gate_hw=49, tail="sigmoid+mul")
    assert gate.megabytes(1) == pytest.approx(4e-6 * (8 + 24 + 2 * 24 * 49 + 8 * 24 + 24))
    residual = SpaceUnit("space-conv", 24, 24, h=7, w=7, pool_hw=0, tail="bn+add")
    assert residual.activation_elements == 3 * 24 * 49
    assert SpaceUnit("space-linear", 64, 10, bias=True).megabytes(1) == pytest.approx(4e-6 * (74 + 65 * 10))


def test_interrupted_profile_space_resumes(tmp_path, capsys, monkeypatch):
    import deepmad_nni.latency_profile as lp
    out, real, calls = tmp_path / "tiny.json", lp.time_unit, []

    def timed(unit, **kw):
        if len(calls) == 7 and not (tmp_path / "resumed").exists():
            raise KeyboardInterrupt
        calls.append(unit.key())
        return real(unit, **kw)

    monkeypatch.setattr(lp, "time_unit", timed)
    argv = SPACE + ["--out", str(out), "--repeats", "1", "--warmup", "0", "--calibrate", "0"]
    assert main(argv) == 130
    assert "rerun the same command to resume" in capsys.readouterr().err
    assert set(json.loads(out.read_text())["entries"]) == set(calls) and len(calls) == 7
    (tmp_path / "resumed").touch()
    assert main(argv) == 0
    assert "7 already in" in capsys.readouterr().err
    assert len(calls) == len(set(calls)) == len(tiny()[1].units().units())     # none measured twice


@pytest.mark.parametrize("argv,option", [
    (["--flops", "1e6"], "--flops"), (["--batch-size", "4"], "--batch-size"), (["--calibrate", "-1"], "--calibrate"),
    (["--input-size", "1", "3", "0", "16"], "--input-size"),
])
def test_profile_space_bad_input_names_the_option(tmp_path, capsys, argv, option):
    base = ["latency", "profile", "--space", "test_space_latency:TinySpace", "--out", str(tmp_path / "t.json")]
    if option != "--input-size":
        base += ["--input-size", "1", "3", "16", "16"]
    assert main(base + argv) == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err


def test_space_and_family_options(tmp_path, capsys):
    out = str(tmp_path / "t.json")
    with pytest.raises(SystemExit):
        main(["latency", "profile", "--family", "nas-bench-macro", "--space", "x:y", "--out", out])
    assert "not allowed with argument" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["latency", "profile", "--out", out])
    assert "--family" in capsys.readouterr().err
    assert main(["latency", "profile", "--family", "nas-bench-macro", "--input-size", "1", "3", "32", "32",
                 "--out", out]) == 2
    assert "--input-size applies to --space only" in capsys.readouterr().err
    assert main(["latency", "profile", "--space", "nosuchmodule_xyz:x", "--out", out]) == 2
    assert "--space" in capsys.readouterr().err
