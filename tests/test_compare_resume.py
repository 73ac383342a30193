"""An interrupted comparison resumes without redoing finished runs; the CLI writes its outputs."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
pytest.importorskip("nni")

from deepmad_nni.benchmarks.nas_bench_macro import default_path  # noqa: E402
from deepmad_nni.compare.runner import compare  # noqa: E402

pytestmark = pytest.mark.skipif(default_path() is None, reason="NAS-Bench-Macro file not found")
ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(track="nas-bench-macro", strategies=["deepmad", "random", "evolution"], seeds=2, ns=(3,))


def _lines(out):
    return (Path(out) / "runs.jsonl").read_text().splitlines()


def test_rerun_skips_everything_finished(tmp_path):
    msgs = []
    first = compare(out_dir=tmp_path, progress=msgs.append, **SMALL)
    n_jobs = 3 * (1 + 2 + 2)  # 3 budgets x (deepmad once + 2 seeds x 2 sampling strategies)
    assert len(_lines(tmp_path)) == n_jobs and sum("skipped" in m for m in msgs) == 0
    msgs.clear()
    second = compare(out_dir=tmp_path, progress=msgs.append, **SMALL)
    assert sum("done before, skipped" in m for m in msgs) == n_jobs and len(_lines(tmp_path)) == n_jobs
    assert first["rows"] == second["rows"]
    for name in ("compare.csv", "compare.md", "regret_vs_gpu_hours.png"):
        assert (tmp_path / name).stat().st_size > 0


def test_partial_results_resume_only_the_missing_runs(tmp_path):
    compare(out_dir=tmp_path, progress=lambda m: None, **SMALL)
    lines = _lines(tmp_path)
    kept, lost = lines[:6], lines[6:]
    # simulate a kill: 6 runs finished, the 7th cut short mid-line
    (tmp_path / "runs.jsonl").write_text("\n".join(kept) + "\n" + lost[0][:40])
    msgs = []
    compare(out_dir=tmp_path, progress=msgs.append, **SMALL)
    assert sum("done before, skipped" in m for m in msgs) == 6
    redone = [json.loads(line) for line in _lines(tmp_path)[6:]]  # the cut line is dropped
    keys = lambda rs: sorted((r["strategy"], r["budget"], r["seed"]) for r in rs)  # noqa: E731
    assert keys(redone) == keys(json.loads(line) for line in lost)


def test_other_settings_refused(tmp_path):
    from deepmad_nni.compare import CostModel
    compare(out_dir=tmp_path, progress=lambda m: None, **{**SMALL, "strategies": ["deepmad"]})
    with pytest.raises(ValueError, match="other settings"):
        compare(out_dir=tmp_path, progress=lambda m: None, cost_model=CostModel(gpu_flops=2e12),
                **{**SMALL, "strategies": ["deepmad"]})


def test_killed_subprocess_resumes(tmp_path):
    cmd = [sys.executable, str(ROOT / "experiments" / "compare.py"), "--track", "nas-bench-macro",
           "--strategies", "random,deepmad", "--seeds", "12", "--ns", "10", "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    runs = tmp_path / "runs.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not runs.exists() or len(runs.read_text().splitlines()) < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = [json.loads(line) for line in runs.read_text().splitlines() if line.endswith("}")]
    assert 5 <= len(done) < 3 * 13, "the run was not interrupted mid-way"
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr.count("done before, skipped") >= len(done)
    final = [json.loads(line) for line in runs.read_text().splitlines() if line.endswith("}")]
    key = lambda r: (r["strategy"], r["budget"], r["seed"])  # noqa: E731
    assert len(final) == 3 * 13 and len({key(r) for r in final}) == 3 * 13  # nothing finished was redone


def test_cli_writes_outputs(tmp_path, capsys):
    from deepmad_nni.cli import main
    code = main(["compare", "--track", "nas-bench-macro", "--strategies", "deepmad,tpe", "--seeds", "1",
                 "--ns", "2", "--flops", "50e6", "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "| nas-bench-macro | 50M | deepmad | 0 |" in out and "| nas-bench-macro | 50M | tpe | 2 |" in out
    assert main(["compare", "--ns", "0", "--out", str(tmp_path / "x")]) == 2  # bad input: clear error, exit 2
