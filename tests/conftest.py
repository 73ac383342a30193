"""Under CI=true, the data the tests read must be there: a missing file fails the run instead of skipping.

NNI 3.0 keeps its experiment registry in ``~/nni-experiments`` (the home directory read when nni is first
imported), and every ``NasExperiment`` a test runs registers there: the tests run with ``HOME`` set to a
temporary folder, set here before anything imports nni, so nothing lands in the user's home.
"""
import glob
import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ["HOME"] = tempfile.mkdtemp(prefix="deepmad-nni-tests-home-")
sys.path.insert(0, str(Path(__file__).parent))   # tests/core_families.py


def pytest_sessionstart(session):
    if not os.environ.get("CI"):
        return
    from deepmad_nni.benchmarks.nas_bench_macro import ENV_VAR, PACKAGED, default_path, packaged_path
    if packaged_path() is None:
        raise pytest.UsageError(f"CI: the packaged NAS-Bench-Macro copy {PACKAGED} is missing")
    path = default_path()
    if not (path.is_file() or path.is_dir()):
        raise pytest.UsageError(f"CI: ${ENV_VAR} names {str(path)!r}, which does not exist")
    if not glob.glob("/usr/share/datasets/fashion-mnist/*-idx*-ubyte.gz"):
        raise pytest.UsageError("CI: Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)")
