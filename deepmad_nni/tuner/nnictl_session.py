"""Drive real ``nnictl`` experiments from Python with everything NNI writes kept under one folder.

``NnictlSession(workdir)`` runs every ``nnictl`` command with ``HOME=<workdir>/home`` (NNI 3.0 keeps its
experiment registry in ``~/nni-experiments``), ``NNI_CONFIG_DIR=<workdir>/nni-config`` (registered
algorithms) and the repository on ``PYTHONPATH`` (so the registered tuner and the trial code import).
``prepare_config`` writes a copy of an experiment config with absolute paths and
``experimentWorkingDirectory`` inside ``workdir``.  Leaving the ``with`` block stops every experiment of
the session and kills, by process id, any process still running with the session's ``HOME``.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FINISHED = ("DONE", "ERROR", "STOPPED")


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_config(template, out_path, *, workdir, max_trials=None, trial_args="", experiment_name=None) -> Path:
    """Copy the config ``template`` to ``out_path`` with absolute paths, working directory under ``workdir``,
    optional ``maxTrialNumber`` and extra trial-command arguments (appended: later options win)."""
    import yaml
    template = Path(template).resolve()
    with open(template) as f:
        config = yaml.safe_load(f)
    base = template.parent
    for key in ("searchSpaceFile", "trialCodeDirectory"):
        if key in config and not Path(config[key]).is_absolute():
            config[key] = str((base / config[key]).resolve())
    config["experimentWorkingDirectory"] = str(Path(workdir, "experiments").resolve())
    if max_trials is not None:
        config["maxTrialNumber"] = int(max_trials)
    if trial_args:
        config["trialCommand"] = f"{config['trialCommand']} {trial_args}"
    if experiment_name:
        config["experimentName"] = experiment_name
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return out_path


class NnictlSession:
    """``nnictl`` in an isolated HOME / NNI_CONFIG_DIR under ``workdir`` (see the module docstring)."""

    def __init__(self, workdir, *, python=None):
        self.workdir = Path(workdir).resolve()
        self.home = self.workdir / "home"
        self.config_dir = self.workdir / "nni-config"
        for d in (self.home, self.config_dir):
            d.mkdir(parents=True, exist_ok=True)
        bindir = str(Path(python or sys.executable).parent)
        env = dict(os.environ)
        env.update(HOME=str(self.home), NNI_CONFIG_DIR=str(self.config_dir), OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
                   PATH=bindir + os.pathsep + env.get("PATH", ""),
                   PYTHONPATH=os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p),
                   PYTHONWARNINGS="ignore::UserWarning")
        self.env = env
        nnictl = Path(bindir) / "nnictl"
        self.nnictl_cmd = [str(nnictl)] if nnictl.exists() else [sys.executable, "-m", "nni.tools.nnictl.nnictl"]
        self.experiments: dict[str, int] = {}  # id -> port

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def nnictl(self, *args, check=True, timeout=120) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.nnictl_cmd + [str(a) for a in args], env=self.env, cwd=self.workdir,
                              capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeError(f"nnictl {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def register(self, meta=None) -> None:
        from . import META_FILE
        self.nnictl("algo", "register", "--meta", meta or META_FILE)

    def create(self, config, *, port=None) -> str:
        """``nnictl create``; returns the experiment id."""
        port = port or free_port()
        self.nnictl("create", "--config", config, "--port", port)
        exp_id = self._rest(port, "experiment")["id"]
        self.experiments[exp_id] = port
        return exp_id

    def _rest(self, port, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nni/{path}", timeout=20) as r:
            return json.loads(r.read().decode())

    def status(self, exp_id) -> dict:
        return self._rest(self.experiments[exp_id], "check-status")

    def wait(self, exp_id, *, timeout=3600.0, poll=2.0) -> dict:
        """Poll until the experiment is DONE, ERROR or STOPPED (TimeoutError after ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status(exp_id)
            if st["status"] in FINISHED:
                return st
            if time.monotonic() > deadline:
                raise TimeoutError(f"experiment {exp_id} still {st['status']} after {timeout} s")
            time.sleep(poll)

    def trials(self, exp_id) -> list[dict]:
        return self._rest(self.experiments[exp_id], "trial-jobs")

    def export(self, exp_id, path) -> list[dict]:
        """``nnictl experiment export --type json``; records with ``parameter`` and the decoded ``value``."""
        self.nnictl("experiment", "export", exp_id, "--type", "json", "--filename", path)
        with open(path) as f:
            records = json.load(f)
        for r in records:
            r["value"] = json.loads(r["value"]) if isinstance(r.get("value"), str) else r.get("value")
        return records

    def log_dir(self, exp_id) -> Path:
        return self.workdir / "experiments" / exp_id / "log"

    def stop(self, exp_id) -> None:
        self.nnictl("stop", exp_id, check=False)

    def close(self) -> None:
        """Stop the session's experiments, then kill what still runs with the session's HOME (by pid)."""
        for args in [(exp_id,) for exp_id in self.experiments] + [("--all",)]:  # --all: this HOME's registry only
            try:
                self.nnictl("stop", *args, check=False)
            except Exception:  # noqa: BLE001 - keep cleaning up
                pass
        deadline = time.monotonic() + 10
        while self.leftover_pids() and time.monotonic() < deadline:
            time.sleep(0.5)
        for pid in self.leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def leftover_pids(self) -> list[int]:
        """Processes (other than this one) whose environment has this session's HOME."""
        marker = f"HOME={self.home}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                environ = (entry / "environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0"):
                pids.append(int(entry.name))
        return pids
