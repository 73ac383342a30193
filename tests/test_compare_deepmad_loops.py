"""``compare`` with DeepMAD's evaluation-spending NNI strategies (deepmad-optuna = DeepMADOptuna, deepmad-evolution =
DeepMADEvolution) on both tracks: N distinct trained networks, through NNI's engine like the built-ins."""
import json
import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
pytest.importorskip("nni")
pytest.importorskip("optuna")

from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, default_path  # noqa: E402
from deepmad_nni.compare import Budget, run_deepmad  # noqa: E402
from deepmad_nni.compare import strategies as S  # noqa: E402
from deepmad_nni.compare.bench_track import network_of_key  # noqa: E402
from deepmad_nni.compare.runner import compare  # noqa: E402

LOOPS = ["deepmad-optuna", "deepmad-evolution"]


def test_names_settings_and_default_list():
    assert set(LOOPS) <= set(S.ALL) and set(LOOPS) <= set(S.SETTINGS) and tuple(LOOPS) == S.DEEPMAD_LOOPS
    assert "DeepMADOptuna" in S.SETTINGS["deepmad-optuna"] and "DeepMADEvolution" in S.SETTINGS["deepmad-evolution"]
    assert S.check_strategies(LOOPS) == LOOPS


@pytest.mark.skipif(default_path() is None, reason="NAS-Bench-Macro file not found")
def test_compare_trains_five_distinct_networks_each(tmp_path):
    bench = NasBenchMacro(default_path())
    budget = Budget("55M", flops=55e6)
    result = compare(track="nas-bench-macro", out_dir=tmp_path, strategies=LOOPS, budgets=[budget], seeds=1, ns=(5,),
                     progress=lambda m: None)
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert sorted(r["strategy"] for r in runs) == sorted(LOOPS)
    for r in runs:
        keys = [c["arch"] for c in r["candidates"]]
        assert len(keys) == 5 and len({network_of_key(k) for k in keys}) == 5, r["note"]
        assert r["rejected"] == 0 and all(bench[k].flops <= budget.flops for k in keys)
    optuna_run = next(r for r in runs if r["strategy"] == "deepmad-optuna")
    assert optuna_run["note"].startswith("5 Optuna trials")
    rows = {(row["strategy"], row["N"]) for row in result["rows"]}
    assert rows == {(name, 5) for name in LOOPS}
    assert result["plot"].stat().st_size > 0


def test_training_track_designs_at_the_dataset_input():
    """On the training track the strategies solve the family at the dataset's input (1 channel, 16x16), not the
    space's 3x32x32: their first designs are DeepMAD's own top-k there, within the budget the filter checks."""
    pytest.importorskip("sklearn")
    from deepmad_nni.compare.optuna_track import run_deepmad_loop
    from deepmad_nni.compare.train_track import TrainingProblem
    from deepmad_nni.data import load_dataset
    data = load_dataset("digits", train_size=128, test_size=64, resolution=16, val_fraction=0.25)
    problem = TrainingProblem(Budget("12M", flops=12e6), data=data, epochs=1, batch_size=32, device="cpu")
    route = problem.deepmad_route()
    assert (route.family.resolution, route.family.in_channels) == (16, 1)
    top = [c.arch for c in run_deepmad(problem, n_max=2).candidates]
    for name in LOOPS:
        rec = run_deepmad_loop(problem, name, n_max=2, seed=0)
        assert [c.arch for c in rec.candidates] == top and rec.rejected == 0, rec.note
        assert all(c.flops <= 12e6 and 0 <= c.accuracy <= 100 and c.gpu_s > 0 for c in rec.candidates)
