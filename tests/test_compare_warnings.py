"""``deepmad-nni compare`` hides NNI's import-time "... is found to be not a nn.Module ..." warnings, and only those.

The warning fires once per process, when ``nni.nas.nn.pytorch`` is first imported, so it is checked in fresh
subprocesses (pytest's own filter in pyproject.toml does not reach them)."""
import glob
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MESSAGE = "is found to be not a nn.Module"


def test_quiet_nni_hides_exactly_that_warning():
    from deepmad_nni.compare.harness import quiet_nni
    nni_like = "<class 'torch.nn.parameter.Buffer'> is found to be not a nn.Module, which is unexpected. It means..."
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_nni():
            warnings.warn(nni_like, RuntimeWarning)
            warnings.warn("another RuntimeWarning", RuntimeWarning)
            warnings.warn(nni_like, UserWarning)  # same text, other category: kept
        warnings.warn(nni_like, RuntimeWarning)  # outside: shown again
    assert [(str(w.message)[:20], w.category) for w in seen] == [
        ("another RuntimeWarni", RuntimeWarning), (nni_like[:20], UserWarning), (nni_like[:20], RuntimeWarning)]


def _python(code, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "DEEPMAD_NAS_BENCH_MACRO")}
    env.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HOME=str(tmp_path), MPLCONFIGDIR=str(tmp_path / "mpl"))
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=180)


def test_fashion_mnist_compare_prints_no_not_a_module_warning(tmp_path):
    pytest.importorskip("nni")
    if not glob.glob("/usr/share/datasets/fashion-mnist/*-idx*-ubyte.gz"):
        pytest.skip("Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)")
    control = _python("import nni.nas.nn.pytorch", tmp_path)
    if MESSAGE not in control.stderr:
        pytest.skip("this torch version gives NNI no such warning to hide")
    out = tmp_path / "cmp"
    run = _python(
        "import sys\n"
        "from deepmad_nni.cli import main\n"
        f"rc = main(['compare', '--track', 'fashion-mnist', '--strategies', 'deepmad', '--seeds', '1', '--ns', '1',"
        f" '--train-size', '100', '--epochs', '1', '--flops', '12e6', '--device', 'cpu', '--out', {str(out)!r}])\n"
        "assert 'nni.nas.nn.pytorch.layers' in sys.modules  # the warning's source was imported during the run\n"
        "sys.exit(rc)\n", tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    assert (out / "compare.md").is_file() and "deepmad" in run.stdout
    assert MESSAGE not in run.stdout + run.stderr
