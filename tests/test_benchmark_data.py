"""The NAS-Bench-Macro table packaged with deepmad-nni: its content, which file is read, and a fresh install."""
import gzip
import itertools
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from deepmad_nni.benchmarks import nas_bench_macro as nbm
from deepmad_nni.benchmarks.nas_bench_macro import ENV_VAR, FILENAME, NasBenchMacro

ROOT = Path(__file__).resolve().parents[1]
SHARED = next((p for p in (ROOT.parent / "shared" / "benchmarks" / "nas-bench-macro" / FILENAME,
                           ROOT / "shared" / "benchmarks" / "nas-bench-macro" / FILENAME) if p.is_file()), None)
DATA_FILES = ("nas-bench-macro_cifar10.json.gz", "LICENSE", "NOTICE")


def test_packaged_copy_loads():
    assert nbm.packaged_path() == nbm.PACKAGED and nbm.PACKAGED.name == FILENAME + ".gz"
    for name in DATA_FILES:
        assert (nbm.PACKAGED.parent / name).is_file()
    assert "Apache License" in (nbm.PACKAGED.parent / "LICENSE").read_text()
    assert "xiusu/NAS-Bench-Macro" in (nbm.PACKAGED.parent / "NOTICE").read_text()
    bench = NasBenchMacro(nbm.PACKAGED)
    assert len(bench) == 6561 and set(bench.entries) == {"".join(k) for k in itertools.product("012", repeat=8)}
    assert bench.best().mean_acc > 90 and all(e.flops > 0 and e.params > 0 for e in bench.entries.values())
    assert NasBenchMacro(nbm.PACKAGED.parent).path == nbm.PACKAGED  # a folder holding only the .gz


@pytest.mark.skipif(SHARED is None, reason="../shared/benchmarks/nas-bench-macro not beside this checkout")
def test_packaged_copy_equals_the_shared_file():
    with gzip.open(nbm.PACKAGED, "rb") as f:
        assert f.read() == SHARED.read_bytes()  # byte for byte, hence all 6561 entries
    packaged, shared = NasBenchMacro(nbm.PACKAGED), NasBenchMacro(SHARED)
    assert len(shared) == len(packaged) == 6561 and packaged.entries == shared.entries


def _tiny(path: Path, acc: float, gz: bool) -> Path:
    table = {"11111111": {"test_acc": [acc] * 3, "mean_acc": acc, "std": 0.0, "params": 1, "flops": 2}}
    data = json.dumps(table).encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def test_json_and_json_gz_are_read(tmp_path):
    plain = _tiny(tmp_path / "plain.json", 50.0, gz=False)
    packed = _tiny(tmp_path / "packed.json.gz", 60.0, gz=True)
    assert NasBenchMacro(plain)["11111111"].mean_acc == 50.0
    assert NasBenchMacro(packed)["11111111"].mean_acc == 60.0
    (tmp_path / "dir").mkdir()
    _tiny(tmp_path / "dir" / (FILENAME + ".gz"), 70.0, gz=True)
    assert NasBenchMacro(tmp_path / "dir")["11111111"].mean_acc == 70.0


def test_precedence_explicit_then_env_then_packaged(tmp_path, monkeypatch):
    from deepmad_nni.optuna_loop._evaluators import NasBenchMacroEvaluator
    explicit = _tiny(tmp_path / "explicit.json", 11.0, gz=False)
    env = _tiny(tmp_path / "env.json.gz", 22.0, gz=True)
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert nbm.default_path() == nbm.resolve_path() == nbm.PACKAGED
    assert nbm.resolve_path(explicit) == explicit
    monkeypatch.setenv(ENV_VAR, str(env))
    assert nbm.default_path() == nbm.resolve_path() == env
    assert nbm.resolve_path(explicit) == explicit
    assert NasBenchMacroEvaluator().bench["11111111"].mean_acc == 22.0
    assert NasBenchMacroEvaluator(benchmark_path=explicit).bench["11111111"].mean_acc == 11.0
    # a wrong setting fails loudly instead of falling back on the packaged copy
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match="missing.json"):
        NasBenchMacroEvaluator()
    from deepmad_nni.compare.runner import _problems
    with pytest.raises(ValueError, match="missing.json"):
        _problems("nas-bench-macro", None, benchmark_path=None, cost_model=None, training=None)
    # no packaged copy and nothing set: the message says so
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setattr(nbm, "PACKAGED", tmp_path / "not-installed.json.gz")
    assert nbm.default_path() is None
    with pytest.raises(ValueError, match="packaged copy .*not-installed.json.gz.* is missing"):
        NasBenchMacroEvaluator()


def _wheel(tmp: Path) -> Path:
    """Build a wheel from a copy of the sources (no ../shared near it) and unpack it: a non-editable install."""
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("deepmad_nni", "search_spaces"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (tmp / "build-home").mkdir()
    env = {**os.environ, "HOME": str(tmp / "build-home"), "PIP_NO_CACHE_DIR": "1", "PIP_NO_INPUT": "1"}
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                            "-q", "-w", str(tmp / "dist"), str(src)], env=env, capture_output=True, text=True,
                           timeout=120)
    assert built.returncode == 0, built.stderr
    wheel, = (tmp / "dist").glob("deepmad_nni-*.whl")
    site = tmp / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {f"deepmad_nni/benchmarks/data/{n}" for n in DATA_FILES} <= names  # declared package data
        z.extractall(site)
    shutil.rmtree(src)
    return site


def test_fresh_install_runs_compare_and_tune_without_shared(tmp_path):
    pytest.importorskip("nni")
    pytest.importorskip("optuna")
    site = _wheel(tmp_path)
    home, cwd, out, mpl = (tmp_path / n for n in ("home", "cwd", "out", "mpl"))
    for d in (home, cwd, mpl):
        d.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in (ENV_VAR, "PYTHONPATH", "PYTHONWARNINGS")}
    env.update(HOME=str(home), PYTHONPATH=str(site), MPLCONFIGDIR=str(mpl), OMP_NUM_THREADS="1")

    def run(*code_or_args):
        done = subprocess.run([sys.executable, *code_or_args], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        return done

    where = run("-c", "import deepmad_nni, search_spaces; from deepmad_nni.benchmarks.nas_bench_macro import "
                      "default_path; print(deepmad_nni.__file__, search_spaces.__file__, default_path())")
    where = where.stdout.split()
    assert all(Path(p).is_relative_to(site) for p in where)  # the unpacked wheel, its own packaged copy
    assert Path(where[2]).name == FILENAME + ".gz"
    cmp = run("-m", "deepmad_nni.cli", "compare", "--track", "nas-bench-macro", "--strategies", "deepmad,random",
              "--seeds", "1", "--ns", "5", "--flops", "55e6", "--out", str(out / "cmp"))
    assert "is found to be not a nn.Module" not in cmp.stderr + cmp.stdout
    for name in ("runs.jsonl", "compare.csv", "compare.md", "regret_vs_gpu_hours.png", "settings.json"):
        assert (out / "cmp" / name).is_file()
    rows = (out / "cmp" / "compare.csv").read_text()
    assert "deepmad" in rows and "random" in rows
    run("-m", "deepmad_nni.cli", "tune", "--evaluator", "nas-bench-macro", "--flops", "60e6", "--params", "1.5e6",
        "--n-trials", "3", "--seed", "0", "--quiet", "--out", str(out / "tune"))
    summary = json.loads((out / "tune" / "summary.json").read_text())
    assert summary["trials"] == {"COMPLETE": 3} and 80 < summary["best"]["accuracy"] < 100
    assert (out / "tune" / "study.db").is_file()
    # everything went under --out: nothing in HOME, nothing in the working directory
    assert list(home.iterdir()) == [] and list(cwd.iterdir()) == []
