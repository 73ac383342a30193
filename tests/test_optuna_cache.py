"""The design cache's claim protocol in an RDB storage: one evaluator per design, waiters get its value,
a claim whose owner trial died is taken over, and finished entries survive a new connection."""
from __future__ import annotations

import threading

import pytest

optuna = pytest.importorskip("optuna")

from deepmad_nni.optuna_loop import make_storage  # noqa: E402
from deepmad_nni.optuna_loop._cache import DONE, FAILED, SqlDesignCache, open_cache  # noqa: E402


@pytest.fixture
def study(tmp_path):
    storage, _ = make_storage(f"sqlite:///{tmp_path / 'c.db'}", None, heartbeat_interval=None)
    return optuna.create_study(storage=storage, study_name="c")


def test_a_waiter_gets_the_owners_value(study):
    cache = open_cache(study)
    assert isinstance(cache, SqlDesignCache)
    owner, waiter = study.ask(), study.ask()
    assert cache.acquire("k", owner._trial_id, study) == (None, pytest.approx(0, abs=1))
    got = {}
    thread = threading.Thread(target=lambda: got.update(r=cache.acquire("k", waiter._trial_id, study)))
    thread.start()
    thread.join(0.6)
    assert thread.is_alive()  # waits while the owner evaluates
    cache.finish("k", owner._trial_id, DONE, value=91.5, payload={"trial_number": owner.number})
    thread.join(10)
    entry, waited = got["r"]
    assert entry.state == DONE and entry.value == 91.5 and entry.evaluations == 1 and waited > 0.5
    reopened = SqlDesignCache(cache.engine, study._study_id)  # another process sees the same row
    assert reopened.get("k").value == 91.5


def test_a_dead_owners_claim_is_taken_over_once(study):
    cache = open_cache(study)
    owner, second, third = study.ask(), study.ask(), study.ask()
    assert cache.acquire("k", owner._trial_id, study)[0] is None
    study.tell(owner, state=optuna.trial.TrialState.FAIL)  # e.g. failed by the heartbeat after a SIGKILL
    assert cache.acquire("k", second._trial_id, study)[0] is None  # takes over and evaluates
    assert cache.get("k").owner_trial_id == second._trial_id and cache.get("k").evaluations == 2
    cache.finish("k", second._trial_id, FAILED, payload={"error": "boom"})
    assert cache.acquire("k", third._trial_id, study)[0] is None  # a failed evaluation is retried
    cache.finish("k", third._trial_id, DONE, value=1.0)
    assert cache.get("k").evaluations == 3 and cache.get("k").state == DONE


def test_in_memory_storage_keeps_the_cache_in_study_attributes():
    study = optuna.create_study()
    cache = open_cache(study)
    trial = study.ask()
    assert cache.acquire("k", trial._trial_id, study)[0] is None
    cache.finish("k", trial._trial_id, DONE, value=3.0)
    assert cache.acquire("k", study.ask()._trial_id, study)[0].value == 3.0
