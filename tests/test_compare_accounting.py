"""Regret and cost accounting of the comparison, checked on hand-made tables."""
import math
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")

from deepmad_nni.compare import Budget, Candidate, CostModel, RunRecord, RunStore, summarize  # noqa: E402
from deepmad_nni.compare.report import markdown_table, plot_regret, write_csv  # noqa: E402


def test_cost_model_formula_by_hand():
    cm = CostModel(epochs=2, train_images=10, test_images=5, gpu_flops=1e3, overhead_s=1.0)
    # per epoch: 2 FLOPs/MAC * 4 MACs * (3 * 10 + 5) = 280 FLOPs -> 0.28 s, plus 1 s overhead; 2 epochs
    assert cm.gpu_seconds(4) == pytest.approx(2 * (1.0 + 0.28))
    assert cm.gpu_hours(4) == pytest.approx(2.56 / 3600)
    default = CostModel()
    # a 55M-MAC NAS-Bench-Macro network under the documented assumption: 50 * (5 + 8.8e14/50/1e12) s
    assert default.gpu_seconds(55e6) == pytest.approx(50 * 5 + 2 * 55e6 * (3 * 50000 + 10000) * 50 / 1e12)


@pytest.mark.parametrize("kwargs", [{"epochs": 0}, {"gpu_flops": -1}, {"overhead_s": -2}, {"batch_size": "x"}])
def test_cost_model_rejects_bad_input(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CostModel(**kwargs)


def test_budget_checks():
    with pytest.raises(ValueError, match="flops and/or params"):
        Budget("b")
    with pytest.raises(ValueError, match="flops"):
        Budget("b", flops=-3)
    b = Budget("b", flops=10, params=5)
    assert b.admits(10, 5) and not b.admits(11, 5) and not b.admits(10, 6)


def _run(strategy, seed, accs, *, ref=95.0, zero=None, n_max=4):
    cands = [Candidate(f"a{i}", a, 100 + i, 10 + i, 3600.0 * (i + 1), search_cpu_s=0.5 * (i + 1))
             for i, a in enumerate(accs)]
    return RunRecord("t", strategy, "B", seed, n_max, ref, candidates=cands, zero_cost_pick=zero, search_cpu_s=9.0)


def test_record_at_n_prefix_pick_regret_and_cost():
    r = _run("random", 0, [90.0, 93.0, 91.0, 94.0])
    a1, a3 = r.at(1), r.at(3)
    assert (a1["accuracy"], a1["regret"], a1["gpu_hours"], a1["cpu_s"]) == (90.0, 5.0, 1.0, 0.5)
    # best of the first three is a1 (93%), cost 1 + 2 + 3 GPU-hours
    assert (a3["pick"], a3["accuracy"], a3["regret"], a3["gpu_hours"], a3["trained"]) == ("a1", 93.0, 2.0, 6.0, 3)
    assert (a3["pick_flops"], a3["pick_params"], a3["cpu_s"]) == (101, 11, 1.5)
    assert math.isnan(r.at(0)["accuracy"])  # nothing trained, no zero-cost pick


def test_summary_means_over_seeds_and_zero_cost_pick():
    zero = Candidate("z", 92.0, 50, 5, 7200.0, search_cpu_s=2.0)
    records = [_run("random", 0, [90.0, 93.0]), _run("random", 1, [94.0, 80.0]),
               _run("deepmad", 0, [92.0, 94.5], zero=zero)]
    rows = summarize(records, {"random": [1, 2], "deepmad": [0, 2]})
    by = {(r["strategy"], r["N"]): r for r in rows}
    assert by[("random", 1)]["accuracy"] == pytest.approx(92.0) and by[("random", 1)]["regret"] == pytest.approx(3.0)
    assert by[("random", 2)]["accuracy"] == pytest.approx(93.5) and by[("random", 2)]["seeds"] == 2
    assert by[("random", 2)]["regret_std"] == pytest.approx(math.sqrt(0.5))
    assert by[("random", 2)]["gpu_hours"] == pytest.approx(3.0)
    d0 = by[("deepmad", 0)]
    assert (d0["trained"], d0["gpu_hours"], d0["accuracy"], d0["regret"], d0["cpu_s"]) == (0, 0.0, 92.0, 3.0, 2.0)
    assert by[("deepmad", 2)]["accuracy"] == 94.5 and by[("deepmad", 2)]["gpu_hours"] == pytest.approx(3.0)


def test_unknown_reference_uses_best_seen():
    records = [_run("random", 0, [90.0, 93.0], ref=math.nan), _run("tpe", 0, [96.0, 80.0], ref=math.nan)]
    rows = summarize(records, {"random": [2], "tpe": [1]})
    by = {r["strategy"]: r for r in rows}
    assert by["random"]["regret"] == pytest.approx(3.0) and by["tpe"]["regret"] == 0.0
    assert by["random"]["reference"] == 96.0


def test_store_round_trip_and_reports(tmp_path):
    store = RunStore(tmp_path)
    rec = _run("random", 3, [90.0, 93.0], zero=Candidate("z", 1.0, 2, 3, 4.0))
    store.add(rec)
    again = RunStore(tmp_path)
    assert rec.key in again and again.records[rec.key] == rec
    rows = summarize(again.records.values(), {"random": [1, 2]})
    csv_text = write_csv(rows, tmp_path / "c.csv").read_text().splitlines()
    assert csv_text[0].startswith("track,budget,strategy,N,trained,gpu_hours") and len(csv_text) == 3
    md = markdown_table(rows)
    assert "| t | B | random | 2 | 2.0 | 3.00 |" in md
    assert plot_regret(rows, tmp_path / "p.png").stat().st_size > 1000


def test_calibrate_fits_positive_constants_from_real_steps():
    pytest.importorskip("nni")
    from deepmad_nni.compare.calibrate import calibrate
    cm = calibrate(device="cpu", keys=("00000000", "01000000"), steps=1, warmup=0, base=CostModel(batch_size=2))
    assert cm.gpu_flops > 0 and cm.overhead_s >= 0 and "calibrated on" in cm.source and cm.batch_size == 2
    with pytest.raises(ValueError, match="steps"):
        calibrate(steps=0)
