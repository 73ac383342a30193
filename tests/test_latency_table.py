"""Latency tables: files, settings checks, and the resumable profile (timing replaced by a counter)."""
import json

import pytest

from core_families import TINY_MBSE
from deepmad_nni.core.latency import IDENTITY, LatencyTable, predicted_latency
from deepmad_nni.core.latency_units import arch_units, family_units
from deepmad_nni.latency_profile import profile

SETTINGS = {"device": "cpu", "device_name": "test-cpu", "batch_size": 1, "dtype": "float32", "threads": 1,
            "torch_version": "0", "activation": "relu", "flush_denormal": True, "clock": "wall"}


class Interrupt(Exception):
    pass


def counting_measure(calls, fail_after=None):
    def measure(unit):
        if fail_after is not None and len(calls) >= fail_after:
            raise Interrupt()
        calls.append(unit.key())
        return 0.001 * (1 + unit.macs / 1e6)
    return measure


def test_interrupted_profile_resumes_without_remeasuring(tmp_path):
    out = tmp_path / "table.json"
    units = family_units(TINY_MBSE)
    first = []
    with pytest.raises(Interrupt):
        profile(units, out, settings=SETTINGS, save_every=5, progress=lambda line: None,
                measure=counting_measure(first, fail_after=17))
    saved = LatencyTable.load(out)
    assert set(saved.entries) == set(first) and len(first) == 17   # saved on the way out, nothing lost
    second = []
    lines = []
    table = profile(units, out, settings=SETTINGS, save_every=5, progress=lines.append,
                    measure=counting_measure(second))
    assert not set(first) & set(second)                              # no entry measured twice
    assert set(first) | set(second) == {u.key() for u in units} and len(table) == len(units)
    assert f"{len(first)} already in" in lines[0]
    third = []
    profile(units, out, settings=SETTINGS, progress=lambda line: None, measure=counting_measure(third))
    assert third == []
    arch = next(iter(TINY_MBSE.enumerate()))
    assert predicted_latency(arch, LatencyTable.load(out)) == pytest.approx(
        sum(0.001 * (1 + u.macs / 1e6) for u in arch_units(arch)))


@pytest.mark.parametrize("name,value", [("device", "cuda"), ("batch_size", 8), ("threads", 4),
                                        ("device_name", "other-cpu"), ("torch_version", "9")])
def test_profile_refuses_a_table_of_other_settings(tmp_path, name, value):
    out = tmp_path / "table.json"
    units = family_units(TINY_MBSE)[:3]
    profile(units, out, settings=SETTINGS, progress=lambda line: None, measure=counting_measure([]))
    with pytest.raises(ValueError, match=f"measured with {name}=.*but {name}={value!r} was asked"):
        profile(units, out, settings={**SETTINGS, name: value}, progress=lambda line: None,
                measure=counting_measure([]))


def test_load_checks_expected_settings_and_format(tmp_path):
    out = tmp_path / "t.json"
    LatencyTable(dict(SETTINGS), {"conv 3 8 3 2 1 64 1": 0.5}).save(out)
    assert len(LatencyTable.load(out, expect={"device": "cpu", "batch_size": 1})) == 1
    with pytest.raises(ValueError, match="batch_size=1, but batch_size=4 was asked"):
        LatencyTable.load(out, expect={"batch_size": 4})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="format"):
        LatencyTable.load(bad)
    with pytest.raises(ValueError, match="does not exist"):
        LatencyTable.load(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not readable JSON"):
        LatencyTable.load(tmp_path / "broken.json")


def test_table_validates_settings_and_entries():
    with pytest.raises(ValueError, match="must name"):
        LatencyTable({"device": "cpu"})
    with pytest.raises(ValueError, match="non-negative number of ms"):
        LatencyTable(dict(SETTINGS), {"conv 3 8 3 2 1 64 1": -1.0})
    assert set(IDENTITY) <= set(SETTINGS)


def test_profile_checks_its_counts(tmp_path):
    with pytest.raises(ValueError, match="repeats must be a positive integer, but got 0"):
        profile([], tmp_path / "t.json", settings=SETTINGS, repeats=0, measure=lambda u: 0.0)


def test_real_timing_of_a_few_units(tmp_path):
    """The torch timing itself, on three tiny units (CPU, one thread)."""
    from deepmad_nni.latency_profile import settings_of
    units = [u for u in family_units(TINY_MBSE) if u.macs < 2e5][:3]
    table = profile(units, tmp_path / "t.json", settings=settings_of(device="cpu", batch_size=1, threads=1),
                    warmup=1, repeats=2, progress=lambda line: None)
    assert len(table) == 3 and all(v > 0 for v in table.entries.values())
    assert table.settings["threads"] == 1 and table.settings["torch_version"]


def test_a_table_of_another_clock_is_refused_and_old_tables_read_as_wall(tmp_path):
    """One CPU thread is timed by the thread's CPU time, more threads by the wall clock; a table records which,
    and a profile under the other clock refuses it.  A table written before the clock was recorded reads 'wall'."""
    from deepmad_nni.latency_profile import settings_of
    assert settings_of(device="cpu", batch_size=1, threads=1)["clock"] == "thread"
    assert settings_of(device="cpu", batch_size=1, threads=2)["clock"] == "wall"
    out = tmp_path / "t.json"
    profile([], out, settings=dict(SETTINGS, clock="thread"), measure=lambda u: 0.0, progress=lambda _: None)
    with pytest.raises(ValueError, match="clock='thread', but clock='wall' was asked"):
        profile([], out, settings=SETTINGS, measure=lambda u: 0.0, progress=lambda _: None)
    old = {k: v for k, v in SETTINGS.items() if k != "clock"}
    assert LatencyTable(old).settings["clock"] == "wall"


def test_thread_clock_ignores_time_spent_waiting():
    """A call that sleeps 2 ms costs 2 ms of wall time and almost no CPU time: the thread clock counts only the
    work (the reason it times one-thread CPU tables, deepmad_nni/timing.py)."""
    import time as _time

    from deepmad_nni.timing import median_ms
    wall = median_ms(lambda: _time.sleep(0.002), device="cpu", clock="wall", warmup=0, repeats=3)
    cpu = median_ms(lambda: _time.sleep(0.002), device="cpu", clock="thread", warmup=0, repeats=3)
    assert wall >= 1.9 and cpu < 0.5
    with pytest.raises(ValueError, match="clock must be one of"):
        median_ms(lambda: None, device="cpu", clock="sundial")
