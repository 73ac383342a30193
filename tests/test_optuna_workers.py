"""The Optuna loop across processes: a SIGKILLed study resumes with no completed trial lost; two workers on
one storage (SQLite, and a PostgreSQL server started here on loopback) share N trials and evaluate each
design exactly once."""
from __future__ import annotations

import collections
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, default_path, key_of_architecture  # noqa: E402
from deepmad_nni.optuna_loop import make_storage  # noqa: E402
from deepmad_nni.optuna_loop._cache import open_cache  # noqa: E402
from deepmad_nni.optuna_loop._design import architecture_of  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BENCH = default_path()
pytestmark = pytest.mark.skipif(BENCH is None, reason="NAS-Bench-Macro file not found")

HELPER = '''
import os, time
from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, key_of_architecture
_bench = []

def _log(what, key):
    with open(os.environ["DEEPMAD_TEST_LOG"], "a") as f:
        f.write(f"{os.getpid()} {what} {key}\\n")

def evaluate(arch):
    if not _bench:
        _bench.append(NasBenchMacro(os.environ["DEEPMAD_NAS_BENCH_MACRO"]))
    key = key_of_architecture(arch)
    _log("start", key)
    time.sleep(float(os.environ["DEEPMAD_TEST_DELAY"]))
    _log("end", key)
    return _bench[0][key].mean_acc
'''


def _worker(tmp_path, storage, n_trials, *, delay=0.3, seed=0):
    (tmp_path / "optuna_eval_helper.py").write_text(HELPER)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}", "DEEPMAD_TEST_LOG": str(tmp_path / "evals.log"),
           "DEEPMAD_TEST_DELAY": str(delay), "DEEPMAD_NAS_BENCH_MACRO": str(BENCH), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "deepmad_nni.cli", "tune", "--family", "nas-bench-macro", "--flops", "60e6",
           "--params", "1.5e6", "--evaluator", "optuna_eval_helper:evaluate", "--storage", storage,
           "--study-name", "shared", "--n-trials", str(n_trials), "--out", str(tmp_path / "out"),
           "--seed", str(seed), "--heartbeat", "1", "--no-plots"]
    return subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _evaluations(tmp_path):
    counts = collections.Counter()
    for line in (tmp_path / "evals.log").read_text().splitlines():
        _, what, key = line.split()
        counts[what, key] += 1
    return counts


def _bkey(trial):
    a = trial.user_attrs
    return key_of_architecture(architecture_of(a["design"], resolution=a["resolution"], num_classes=10))


def _check_study(study, tmp_path, n_expected):
    bench = NasBenchMacro(BENCH)
    states = collections.Counter(t.state.name for t in study.trials)
    assert states["RUNNING"] == 0, states
    done = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert states["COMPLETE"] + states["PRUNED"] == n_expected, states
    for t in done:  # every completed trial carries its design's true accuracy
        key = _bkey(t)
        assert t.value == pytest.approx(bench[key].mean_acc)
    ends = _evaluations(tmp_path)
    evaluated = {key for (what, key) in ends if what == "end"}
    assert evaluated == {_bkey(t) for t in done}  # none lost
    misses = [_bkey(t) for t in done if t.user_attrs["cache"] == "miss"]
    return ends, misses


def test_sigkilled_study_resumes_without_losing_completed_trials(tmp_path):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    proc = _worker(tmp_path, storage, 60, delay=0.5)
    deadline = time.monotonic() + 180
    try:  # kill it while it evaluates a design it claimed, after 4 completed trials
        while time.monotonic() < deadline:
            time.sleep(0.1)
            try:
                study = optuna.load_study(study_name="shared", storage=storage)
                cache = open_cache(study)
                if len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))) >= 4 and any(
                        (e := cache.get(t.user_attrs.get("design_key", "-"))) is not None and e.state == "running"
                        and e.owner_trial_id == t._trial_id
                        for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))):
                    break
            except Exception:  # noqa: BLE001 (the worker is still creating the database or the study)
                pass
            assert proc.poll() is None, proc.stdout.read()
        else:
            pytest.fail("the worker did not complete 4 trials and claim a new design in 180 s")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    study = optuna.load_study(study_name="shared", storage=storage)
    before = {t.number: t.value for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    (killed,) = study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
    assert proc.returncode == -signal.SIGKILL and len(before) >= 4
    study.enqueue_trial(killed.params)  # the resumed run draws the dead trial's design first

    resumed = _worker(tmp_path, storage, 5)
    out, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out
    study = optuna.load_study(study_name="shared", storage=storage)
    after = {t.number: t for t in study.trials}
    for number, value in before.items():
        assert after[number].state == optuna.trial.TrialState.COMPLETE and after[number].value == value
    assert after[killed.number].state == optuna.trial.TrialState.FAIL  # failed by the heartbeat
    retry = min(n for n in after if n > killed.number and after[n].params == killed.params)
    assert after[retry].state == optuna.trial.TrialState.COMPLETE and after[retry].user_attrs["cache"] == "miss"
    entry = open_cache(study).get(killed.user_attrs["design_key"])  # the dead claim was taken over
    assert entry.state == "done" and entry.evaluations == 2 and entry.value == after[retry].value
    n_failed = sum(t.state == optuna.trial.TrialState.FAIL for t in study.trials)
    ends, _ = _check_study(study, tmp_path, len(study.trials) - n_failed)
    assert sum(t.state.is_finished() and t.state.name != "FAIL" for t in study.trials) - len(before) >= 5
    # each design finished evaluating once; only the design in flight at the kill may have run twice
    assert sum(n - 1 for (what, _), n in ends.items() if what == "end") <= 1


def _two_workers(tmp_path, storage):
    procs = [_worker(tmp_path, storage, 6, seed=0) for _ in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    study = optuna.load_study(study_name="shared", storage=make_storage(storage, None, heartbeat_interval=None)[0])
    assert len(study.trials) == 12
    ends, misses = _check_study(study, tmp_path, 12)
    assert all(n == 1 for n in ends.values()), ends  # no design evaluated twice (start and end once each)
    assert sorted(misses) == sorted(key for (what, key) in ends if what == "end")  # counted once
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2


def test_two_workers_share_a_sqlite_study(tmp_path):
    _two_workers(tmp_path, f"sqlite:///{tmp_path / 'study.db'}")


def _pg_binaries():
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if os.path.exists(f"{bindir}/initdb") and os.path.exists(f"{bindir}/pg_ctl"):
            return bindir
    return None


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgresql_url():
    """A throw-away PostgreSQL server on 127.0.0.1 (Debian package ``postgresql``), run as a non-root user."""
    bindir = _pg_binaries()
    missing = None if bindir else "PostgreSQL binaries not found (apt-get install -y postgresql)"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        missing = missing or "psycopg2 not installed (pip install psycopg2-binary)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI must run the PostgreSQL test")
        pytest.skip(missing)
    base = Path(tempfile.mkdtemp(prefix="deepmad-pg-"))
    data, sock, port = base / "data", base / "sock", _free_port()
    sock.mkdir()
    prefix = []
    if os.geteuid() == 0:  # postgres refuses to run as root
        user = pwd.getpwnam("nobody")
        for p in (base, sock):
            os.chown(p, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "nobody", "--"]
    run = lambda *cmd: subprocess.run(prefix + list(cmd), check=True, capture_output=True, text=True)  # noqa: E731
    try:
        run(f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
        run(f"{bindir}/pg_ctl", "-D", str(data), "-l", str(base / "log"), "-w", "-t", "60", "start", "-o",
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off")
    except subprocess.CalledProcessError as err:
        log = (base / "log").read_text() if (base / "log").exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"PostgreSQL did not start: {err.stderr}{log}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [f"{bindir}/pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_share_a_postgresql_study(tmp_path, postgresql_url):
    _two_workers(tmp_path, postgresql_url)
