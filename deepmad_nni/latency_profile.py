"""Measuring a latency table on this machine: every unit of a family or of a read space, timed with torch.

:func:`profile` times each :class:`~deepmad_nni.core.latency_units.Unit` the way the built network runs it (the
modules of :mod:`deepmad_nni.blocks`), and each unit of a space read by the reader
(:class:`~deepmad_nni.nas.space_units.SpaceUnit`) the way that space runs it; in eval mode under
``torch.inference_mode``, on a random input of the unit's shape at the given batch size: ``warmup`` untimed
calls, then the median of ``repeats`` timings (:mod:`deepmad_nni.timing`: each timing the mean of enough
back-to-back calls to last 1 ms; the thread's CPU time with one CPU thread, else the wall clock).  torch's intra-op threads are pinned (``torch.set_num_threads``) for the run and
recorded, and denormal floats are flushed to zero (``torch.set_flush_denormal``): activations of untrained
random networks shrink layer after layer into the denormal range, where CPU arithmetic is many times slower
than on a trained network's values.

The table is written as it grows (atomically, every ``save_every`` entries, and on any exit), so an interrupted
profile keeps what it measured; a rerun with the same ``out`` and settings measures only the missing units, and
a file measured under other settings (:data:`deepmad_nni.core.latency.IDENTITY`) is refused with a ValueError.
"""
from __future__ import annotations

import platform
import sys
import time
from pathlib import Path

from .core.latency import IDENTITY, LatencyTable
from .core.latency_units import Unit, family_units
from .timing import clock_for, median_ms

DEVICES = ("cpu", "cuda")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def settings_of(*, device: str, batch_size: int, threads: int, activation: str = "relu") -> dict:
    """The identity settings of a table measured here now (device name and torch version read from the machine)."""
    import torch
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, but got {device!r}.")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked, but torch.cuda.is_available() is False on this machine.")
    for name, value in (("batch_size", batch_size), ("threads", threads)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, but got {value!r}.")
    name = torch.cuda.get_device_name() if device == "cuda" else _cpu_name()
    return {"device": device, "device_name": name, "batch_size": batch_size, "dtype": "float32", "threads": threads,
            "torch_version": torch.__version__, "activation": activation, "flush_denormal": True,
            "clock": clock_for(device, threads)}


def unit_callable(unit: Unit, *, batch_size: int, device: str):
    """A no-argument callable running ``unit`` once on a fixed random input (eval mode); a read space's unit
    (:class:`~deepmad_nni.nas.space_units.SpaceUnit`) the way that space runs it."""
    import torch
    from torch import nn

    if unit.kind.startswith("space-"):
        from .nas.space_units import unit_callable as space_unit_callable
        return space_unit_callable(unit, batch_size=batch_size, device=device)
    from .blocks import ConvBN, SqueezeExcite
    x = torch.randn(batch_size, unit.c_in, unit.r_in, unit.r_in, device=device)
    if unit.kind == "conv":
        module = ConvBN(unit.c_in, unit.c_out, unit.kernel, unit.stride, groups=unit.groups,
                        act=nn.ReLU if unit.act else None)
    elif unit.kind == "se":
        module = SqueezeExcite(unit.c_in, act=nn.ReLU)
    elif unit.kind == "head":
        linear = nn.Linear(unit.c_in, unit.c_out).to(device).eval()
        return lambda: linear(x.mean((2, 3)))
    else:   # add: the residual sum (+ ReLU for basic / bottleneck blocks)
        y, act = torch.randn_like(x), nn.ReLU() if unit.act else None
        return (lambda: act(x + y)) if act is not None else (lambda: x + y)
    module = module.to(device).eval()
    return lambda: module(x)


def time_unit(unit: Unit, *, batch_size: int, device: str, warmup: int, repeats: int, clock: str = "wall") -> float:
    """Milliseconds of one call of ``unit`` by ``clock`` (:func:`deepmad_nni.timing.median_ms`)."""
    import torch
    with torch.inference_mode():
        fn = unit_callable(unit, batch_size=batch_size, device=device)
        return median_ms(fn, device=device, clock=clock, warmup=warmup, repeats=repeats)


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def profile(units, out, *, settings: dict, warmup: int = 3, repeats: int = 10, coverage: dict | None = None,
            save_every: int = 20, report_every: int = 50, progress=_stderr, measure=None) -> LatencyTable:
    """Measure every unit of ``units`` missing from the table at ``out`` (created when absent) and return it.

    ``settings``: :func:`settings_of`; an existing ``out`` measured under other identity settings is a
    ValueError.  ``coverage``: {family name or space id: MACs bound or None} recorded with the table.  ``measure``
    (unit -> ms) replaces the torch timing (tests).  The table is saved every ``save_every`` new entries and on
    any exit, interruption included; ``progress`` gets a line every ``report_every`` entries."""
    for name, value in (("warmup", warmup), ("repeats", repeats), ("save_every", save_every),
                        ("report_every", report_every)):
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if name == "warmup" else 1):
            raise ValueError(f"{name} must be a {'non-negative' if name == 'warmup' else 'positive'} integer, "
                             f"but got {value!r}.")
    out = Path(out)
    settings = {"clock": "wall", **settings}      # settings from before deepmad_nni.timing: the wall clock
    identity = {k: settings[k] for k in IDENTITY}
    if out.exists():
        table = LatencyTable.load(out, expect=identity)
    else:
        table = LatencyTable(dict(identity), {})
    table.settings.update({"warmup": warmup, "repeats": repeats})
    table.settings.setdefault("coverage", {})
    cov = table.settings["coverage"]
    for fam, bound in (coverage or {}).items():   # None: every unit; a number: units of at most that many MACs
        cov[fam] = None if bound is None or (fam in cov and cov[fam] is None) else max(bound, cov.get(fam) or 0)
    todo = [u for u in units if u.key() not in table.entries]
    skipped = len(units) - len(todo)
    if measure is None:
        import torch
        torch.set_num_threads(settings["threads"])
        torch.set_flush_denormal(settings["flush_denormal"])
        from .steady_memory import keep_freed_memory
        table.settings["allocator"] = keep_freed_memory()      # no page faults in the timings (steady_memory.py)

        def measure(u):
            return time_unit(u, batch_size=settings["batch_size"], device=settings["device"], warmup=warmup,
                             repeats=repeats, clock=settings["clock"])
    progress(f"latency profile: {len(units)} units, {skipped} already in {out}, {len(todo)} to measure "
             f"({table.describe()})")
    t0, done, measured_s = time.perf_counter(), 0, table.settings.get("measured_s", 0.0)
    try:
        for done, unit in enumerate(todo, start=1):
            table.entries[unit.key()] = float(measure(unit))
            if done % save_every == 0:
                table.settings["measured_s"] = measured_s + time.perf_counter() - t0
                table.save(out)
            if done % report_every == 0 or done == len(todo):
                el = time.perf_counter() - t0
                left = el / done * (len(todo) - done)
                progress(f"  {done}/{len(todo)} units ({100 * done / len(todo):.1f}%), {el:.1f} s elapsed, "
                         f"~{left:.0f} s left")
    finally:
        table.settings["measured_s"] = measured_s + time.perf_counter() - t0
        table.save(out)
    return table


def profile_family(family, out, *, device: str = "cpu", batch_size: int = 1, threads: int = 1, warmup: int = 3,
                   repeats: int = 10, max_macs: float | None = None, calibrate: int = 10, **kwargs) -> LatencyTable:
    """:func:`profile` of every unit of ``family`` (:func:`~deepmad_nni.core.latency_units.family_units`; with
    ``max_macs``, those of at most that many MACs), then, with ``max_macs``, the table's calibration against
    ``calibrate`` networks measured end to end (:mod:`deepmad_nni.latency_calibration`; 0: none)."""
    settings = settings_of(device=device, batch_size=batch_size, threads=threads)
    units = family_units(family, max_macs=max_macs)
    table = profile(units, out, settings=settings, warmup=warmup, repeats=repeats, coverage={family.name: max_macs},
                    **kwargs)
    done = table.settings.get("calibration") or {}
    if calibrate and max_macs is not None and (done.get("family"), done.get("max_macs")) != (family.name, max_macs):
        from .latency_calibration import calibrate as fit
        report = kwargs.get("progress", _stderr)
        report(f"latency calibration: {calibrate} networks of {family.name} measured end to end")
        c = fit(table, family, max_macs=max_macs, count=calibrate, warmup=warmup, repeats=repeats, progress=report)
        report(f"  unit_ms = {c['scale']:.3g} x entry + {c['ms_per_mb']:.3g} ms/MB + {c['ms_per_unit']:.3g} ms; "
               f"fit median error {100 * c['fit_median_rel_error']:.1f}%")
        table.save(out)
    return table


def profile_space(units, out, *, space=None, device: str = "cpu", batch_size: int = 1, threads: int = 1,
                  warmup: int = 3, repeats: int = 10, calibrate: int = 10, **kwargs) -> LatencyTable:
    """:func:`profile` of every unit of a read space (``units``: its
    :class:`~deepmad_nni.nas.space_units.SpaceUnits`), recorded in the table's coverage under its ``space_id``;
    then, given the ``space`` itself, the table's calibration against ``calibrate`` networks of it frozen and
    measured end to end (:mod:`deepmad_nni.nas.space_calibration`; 0: none; kept when already fitted on it)."""
    settings = settings_of(device=device, batch_size=batch_size, threads=threads)
    if calibrate and space is not None and Path(out).exists():
        units.check_calibration(LatencyTable.load(out))       # before measuring anything into it
    table = profile(units.units(), out, settings=settings, warmup=warmup, repeats=repeats,
                    coverage={units.space_id: None}, **kwargs)
    done = table.settings.get("calibration") or {}
    if calibrate and space is not None and done.get("space") != units.space_id:
        from .nas.space_calibration import calibrate_space
        report = kwargs.get("progress", _stderr)
        report(f"latency calibration: {calibrate} networks of the space measured end to end")
        c = calibrate_space(table, units, space, count=calibrate, warmup=warmup, repeats=repeats, progress=report)
        report(f"  unit_ms = {c['scale']:.3g} x entry + {c['ms_per_mb']:.3g} ms/MB + {c['ms_per_unit']:.3g} ms; "
               f"fit median error {100 * c['fit_median_rel_error']:.1f}%, margin {100 * c['margin']:.1f}%")
        table.save(out)
    return table
