"""Calibrating a read space's latency table against networks of the space frozen by NNI and measured end to end.

As for the families (:mod:`deepmad_nni.latency_calibration`, whose docstring says why units alone under-predict):
``count`` distinct random networks of the space, spread from its smallest to its largest
(:func:`calibration_samples`, drawn with ``seed``; not the networks anyone checks later), are frozen
(``space.freeze``) and timed on the table's device and settings, and
:func:`~deepmad_nni.core.latency.fit_calibration` of their summed entries, megabytes and unit counts is stored in
``table.settings["calibration"]``, with ``"space"`` the space's id (:attr:`SpaceUnits.space_id`): a table holds
one calibration, so it predicts for that space only (:meth:`SpaceUnits.check`).
"""
from __future__ import annotations

import random

from deepmad_nni.core.latency import LatencyTable, calibration_features, fit_calibration

JITTER = 0.15       # spread of a calibration network's labels around its size quantile (share of each range)


def measure_frozen(model, input_size, *, device: str = "cpu", warmup: int = 3, repeats: int = 10,
                   clock: str = "wall") -> float:
    """Milliseconds of one forward of ``model`` (a frozen network, eval, inference mode) on ``input_size`` by
    ``clock`` (:func:`deepmad_nni.timing.median_ms`)."""
    import torch

    from deepmad_nni.steady_memory import keep_freed_memory
    from deepmad_nni.timing import median_ms
    keep_freed_memory()        # as the table's units were timed
    model = model.to(device).eval()
    x = torch.randn(*input_size, device=device)
    with torch.inference_mode():
        return median_ms(lambda: model(x), device=device, clock=clock, warmup=warmup, repeats=repeats)


def calibration_samples(units, *, count: int, seed: int = 0) -> list[dict]:
    """``count`` samples of distinct networks (distinct unit lists) spread from small to large: the i-th draws
    each numeric label near the quantile (i + 1/2) / count of its sorted values (a normal jitter of ``JITTER``
    of the range), the others uniformly, with ``seed``.  A fit on networks of one size extrapolates badly."""
    rng = random.Random(f"calibration {seed}")

    def draw(values, t):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return rng.choice(values)
        ordered = sorted(values)
        at = round((t + rng.gauss(0.0, JITTER)) * (len(ordered) - 1))
        return ordered[min(max(at, 0), len(ordered) - 1)]

    out, seen = [], set()
    for _ in range(50 * count):
        if len(out) == count:
            break
        t = (len(out) + 0.5) / count
        sample = {k: draw(m.values, t) for k, m in units.mutables.items()}
        key = tuple(units.of(sample))
        if key not in seen:
            seen.add(key)
            out.append(sample)
    return out


def calibrate_space(table: LatencyTable, units, space, *, count: int = 10, seed: int = 0, warmup: int = 3,
                    repeats: int = 10, progress=None) -> dict:
    """Measure ``count`` networks of ``space`` (whose units are ``units``) on the table's settings, fit, store in
    ``table.settings["calibration"]`` and return the calibration; a ValueError when the table is calibrated on
    something else."""
    units.check_calibration(table)
    s = table.settings
    size = (s["batch_size"],) + tuple(units.input_size[1:])
    rows = []
    for i, sample in enumerate(calibration_samples(units, count=count, seed=seed), 1):
        ms = measure_frozen(space.freeze(sample), size, device=s["device"], warmup=warmup, repeats=repeats,
                            clock=s["clock"])
        rows.append((calibration_features(units.of(sample), table), ms))
        if progress is not None:
            progress(f"  calibration network {i}/{count}: {ms:.4g} ms measured, {rows[-1][0][0]:.4g} ms of entries")
    fit = fit_calibration([f for f, _ in rows], [ms for _, ms in rows])
    fit.update({"space": units.space_id, "seed": seed,
                "rows": [{"entries_ms": f[0], "megabytes": f[1], "units": f[2], "measured_ms": ms} for f, ms in rows]})
    s["calibration"] = fit
    return fit
