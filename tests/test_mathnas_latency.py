"""MathNAS under a latency budget: a synthetic table on NAS-Bench-Macro's space against brute force over all
designs, an infeasible latency, a table on a space no core family describes, and the measured latency of frozen
networks on a tiny space."""
import itertools
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("nni")

from nni.nas.nn.pytorch import LayerChoice, ModelSpace  # noqa: E402
from torch import nn  # noqa: E402

from deepmad_nni import MathNAS  # noqa: E402
from deepmad_nni.core import get_family  # noqa: E402
from deepmad_nni.core.latency import LatencyTable, predicted_latency  # noqa: E402
from deepmad_nni.core.latency_units import family_units  # noqa: E402
from deepmad_nni.nas.mathnas import MathNASInfeasible  # noqa: E402
from deepmad_nni.nas.measured_latency import MeasuredLatency, flushing_denormals  # noqa: E402
from test_nas_mathnas import LookupEvaluator, Toy, _drive, toy_metric  # noqa: E402

warnings.filterwarnings("ignore", message=".*is found to be not a nn.Module.*")

SETTINGS = {"device": "cpu", "device_name": "synthetic", "batch_size": 1, "dtype": "float32", "threads": 1,
            "torch_version": "none", "activation": "relu", "flush_denormal": True}


# -- NAS-Bench-Macro's space with a synthetic table ------------------------------------------------------------
@pytest.fixture(scope="module")
def macro():
    """The space module, a table with an entry for every unit of the family (ms = MACs / 1e6 times a random
    factor + a per-unit overhead) and the table's latency of every one of the 3^8 keys."""
    macro = pytest.importorskip("search_spaces.nas_bench_macro")
    from deepmad_nni.benchmarks.nas_bench_macro import architecture_of_key
    family = get_family("nas-bench-macro")
    rng = np.random.default_rng(0)
    table = LatencyTable(dict(SETTINGS, coverage={family.name: None}),
                         {u.key(): u.macs / 1e6 * rng.uniform(0.5, 2.0) + 0.01 * rng.uniform(0.5, 1.5)
                          for u in family_units(family)})
    keys = ["".join(k) for k in itertools.product("012", repeat=8)]
    latency = {k: predicted_latency(architecture_of_key(k), table) for k in keys}
    return macro, table, latency


# an additive metric that prefers the heavier ops, so the latency budget decides
WEIGHTS = np.column_stack([np.zeros(8), np.random.default_rng(1).uniform(0.5, 1.0, 8),
                           np.random.default_rng(2).uniform(1.0, 2.0, 8)])


def macro_metric(key: str) -> float:
    return float(sum(WEIGHTS[i, int(c)] for i, c in enumerate(key)))


def test_latency_budget_on_nas_bench_macro_equals_brute_force(macro):
    space, table, latency = macro
    budget = float(np.quantile(list(latency.values()), 0.3))
    assert latency[max(latency, key=macro_metric)] > budget         # the budget binds
    strategy = MathNAS(latency=budget, latency_table=table, input_size=(1, 3, 32, 32), seed=0)
    n = 24
    submitted = _drive(strategy, space.NasBenchMacroSpace(), lambda s: macro_metric(space.key_of_sample(s)), n)
    assert len(submitted) == n and len({space.key_of_sample(s) for s in submitted}) == n
    for e in strategy.history:                   # every submitted design meets the latency by the table
        key = space.key_of_sample(e.sample)
        assert e.latency == pytest.approx(latency[key], rel=1e-12) and latency[key] <= budget
    assert strategy.state_dict()["latency_ms"] == [e.latency for e in strategy.history]
    # brute force over all 6561 designs: the ILP's designs are the best within the latency, best first
    estimate = {space.key_of_sample(e.sample) for e in strategy.history if e.phase == "estimate"}
    within = sorted((k for k in latency if latency[k] <= budget), key=macro_metric, reverse=True)
    assert max(e.metric for e in strategy.history) == pytest.approx(macro_metric(within[0]))
    search = [e.metric for e in strategy.history if e.phase == "search"]
    ranked = [macro_metric(k) for k in within if k not in estimate]
    assert search and search == pytest.approx(ranked[:len(search)], abs=1e-9)
    assert strategy.cuts == 0                    # the table's latency is additive over the layers here


def test_table_alone_reports_the_predicted_latency(macro):
    space, table, latency = macro
    strategy = MathNAS(latency_table=table, seed=0)
    _drive(strategy, space.NasBenchMacroSpace(), lambda s: macro_metric(space.key_of_sample(s)), 18)
    assert [e.latency for e in strategy.history] == pytest.approx(
        [latency[space.key_of_sample(e.sample)] for e in strategy.history], rel=1e-12)
    assert max(e.latency for e in strategy.history) > float(np.quantile(list(latency.values()), 0.3))


def test_state_dict_keeps_the_latencies(macro):
    space, table, latency = macro
    budget = float(np.quantile(list(latency.values()), 0.5))
    metric = lambda s: macro_metric(space.key_of_sample(s))  # noqa: E731
    first = MathNAS(latency=budget, latency_table=table, seed=0)
    _drive(first, space.NasBenchMacroSpace(), metric, 19)
    state = first.state_dict()
    resumed = MathNAS(latency=budget, latency_table=table, seed=0)
    resumed.load_state_dict(state)
    _drive(resumed, space.NasBenchMacroSpace(), metric, 17)      # the engine's budget must still cover the estimate
    saved = {tuple(d): ms for (d, _), ms in zip(state["evaluated"], state["latency_ms"])}
    assert len(resumed.history) == 19 + 17 and {e.design: e.latency for e in resumed.history[:19]} == saved
    assert all(latency[space.key_of_sample(e.sample)] <= budget for e in resumed.history[19:])


def test_a_latency_nobody_meets_is_infeasible_naming_it(macro):
    space, table, latency = macro
    strategy = MathNAS(latency=0.5 * min(latency.values()), latency_table=table, seed=0)
    with pytest.raises(MathNASInfeasible, match=r"latency <= [0-9.e+-]+ ms: the cheapest design costs latency ="):
        _drive(strategy, space.NasBenchMacroSpace(), lambda s: 0.0, 20)
    assert strategy.history == []                # nothing evaluated


def test_a_table_on_a_space_without_a_core_family_is_refused(macro):
    _, table, _ = macro
    for kwargs in ({"latency": 1.0, "latency_table": table}, {"latency_table": table}):
        with pytest.raises(ValueError, match="latency_table needs a space that maps to a core family"):
            _drive(MathNAS(**kwargs), Toy(), toy_metric, 10)
    with pytest.raises(ValueError, match=r"input_size must be \(N, 3, 32, 32\)"):
        _drive(MathNAS(latency=1.0, latency_table=table, input_size=(1, 3, 64, 64)), macro[0].NasBenchMacroSpace(),
               lambda s: 0.0, 20)


def test_bad_latency_settings_are_named(macro, tmp_path):
    _, table, _ = macro
    for kwargs, match in [({"latency": -1.0, "input_size": (1, 3, 8, 8)}, "latency must be a positive"),
                          ({"latency": 1.0, "latency_device": "tpu", "input_size": (1, 3, 8, 8)},
                           "latency_device must be one of"),
                          ({"latency": 1.0, "latency_device": None, "input_size": (1, 3, 8, 8)},
                           "latency needs latency_table .* or latency_device"),
                          ({"latency": 1.0}, "input_size must be"),
                          ({"latency": 1.0, "latency_table": 42}, "latency_table must be a LatencyTable"),
                          ({"latency": 1.0, "latency_table": str(tmp_path / "none.json")}, "does not exist"),
                          ({"latency": 1.0, "latency_table": table, "input_size": (8, 3, 32, 32)},
                           "latency_table was measured with batch_size=1, but batch_size=8"),
                          ({"latency": 1.0, "latency_threads": 0, "input_size": (1, 3, 8, 8)},
                           "latency_threads must be")]:
        with pytest.raises(ValueError, match=match):
            MathNAS(**kwargs)
    table.save(tmp_path / "t.json")              # a path is read like the table itself
    assert MathNAS(latency=1.0, latency_table=tmp_path / "t.json").latency_table.entries == table.entries
    assert "latency=1.0, latency_device='cpu'" in repr(MathNAS(latency=1.0, input_size=(1, 3, 8, 8)))


# -- the measured latency of frozen networks ------------------------------------------------------------------
class Tiny(ModelSpace):
    """Three layer choices at 8 x 8 whose latencies differ by several times (identity to a 5x5 conv of 48)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 48, 3, padding=1, bias=False)
        self.pre = LayerChoice([nn.Identity(), nn.Conv2d(48, 48, 1, bias=False)], label="pre")
        self.body = LayerChoice([nn.Identity(), nn.Conv2d(48, 48, 3, padding=1, bias=False),
                                 nn.Conv2d(48, 48, 5, padding=2, bias=False)], label="body")
        self.head = LayerChoice([nn.Conv2d(48, 16, 1, bias=False), nn.Conv2d(48, 16, 3, padding=1, bias=False)],
                                label="head")
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        return self.fc(self.head(self.body(self.pre(self.stem(x)))).mean((2, 3)))


TINY_VALUES = {"pre": [0.0, 0.5], "body": [0.0, 1.0, 2.0], "head": [0.0, 0.7]}   # heavier is better


def tiny_metric(sample):
    return float(sum(TINY_VALUES[k][v] for k, v in sample.items()))


def _tiny_samples():
    return [dict(zip(TINY_VALUES, c)) for c in itertools.product(*(range(len(v)) for v in TINY_VALUES.values()))]


def test_measured_latency_of_frozen_networks_meets_the_budget_as_measured():
    from nni.nas.space import SimplifiedModelSpace
    oracle = MeasuredLatency(SimplifiedModelSpace.from_model(Tiny(), LookupEvaluator(tiny_metric)), (1, 3, 8, 8))
    samples = _tiny_samples()
    ms = [oracle.profile(s) for s in samples]
    assert oracle.profile(samples[-1]) == ms[-1]                  # memoised: measured once
    budget = float(np.median(ms))
    threads, flushing = torch.get_num_threads(), flushing_denormals()
    strategy = MathNAS(latency=budget, input_size=(1, 3, 8, 8), seed=0)
    submitted = _drive(strategy, Tiny(), tiny_metric, len(samples))
    assert (torch.get_num_threads(), flushing_denormals()) == (threads, flushing)   # settings restored
    assert strategy.history and len(submitted) == len(strategy.history) < len(samples)
    for e in strategy.history:
        assert e.latency is not None and e.latency <= budget
        assert e.latency == strategy.cost(e.design)["latency"]      # the memoised figure the check saw
    assert "latency=" in repr(strategy) and strategy.state_dict()["latency_ms"] == [e.latency for e in strategy.history]


def test_measured_latency_nobody_meets_is_infeasible():
    with pytest.raises(MathNASInfeasible, match="latency <= 1e-06 ms.*measured on cpu"):
        _drive(MathNAS(latency=1e-6, input_size=(1, 3, 8, 8)), Tiny(), tiny_metric, 12)
