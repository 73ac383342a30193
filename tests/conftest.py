"""Under CI=true, the data the tests read must be there: a missing file fails the run instead of skipping."""
import glob
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))   # tests/core_families.py


def pytest_sessionstart(session):
    if not os.environ.get("CI"):
        return
    from deepmad_nni.benchmarks.nas_bench_macro import default_path
    if default_path() is None:
        raise pytest.UsageError("CI: NAS-Bench-Macro not found (../shared/benchmarks/nas-bench-macro beside the "
                                "checkout, or $DEEPMAD_NAS_BENCH_MACRO)")
    if not glob.glob("/usr/share/datasets/fashion-mnist/*-idx*-ubyte.gz"):
        raise pytest.UsageError("CI: Fashion-MNIST not installed (apt-get install -y dataset-fashion-mnist)")
