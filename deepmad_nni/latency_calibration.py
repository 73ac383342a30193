"""Calibrating a latency table against whole networks measured end to end on the same device.

A unit timed alone runs with its input and weights hot in the cache; inside a network it reads what the previous
unit wrote and weights untouched since the last forward.  On this package's 2-core test VM that made networks
1.3-1.8x slower than the sum of their units' entries.  :func:`calibrate` measures ``count`` networks of the family
(the solver's designs at FLOPs budgets drawn log-uniformly in [max_macs / 16, max_macs] and rho_0 within
x/÷ e^0.4 of the family's, seeded, so not the designs a user later checks) and stores the fit of
:func:`deepmad_nni.core.latency.fit_calibration` in ``table.settings["calibration"]``.
"""
from __future__ import annotations

import math

import numpy as np

from .core.latency import LatencyTable, calibration_features, fit_calibration
from .core.latency_units import arch_units

CALIBRATION_SPAN = 16.0       # the calibration budgets' range: [max_macs / this, max_macs]
RHO_SPREAD = 0.4              # rho_0 of a calibration design: the family's times e^U(-this, this)


def measure_network(arch, *, device: str = "cpu", batch_size: int = 1, warmup: int = 3, repeats: int = 10,
                    clock: str = "wall") -> float:
    """Milliseconds of one forward of the built module of ``arch`` (eval, inference mode) by ``clock``
    (:func:`deepmad_nni.timing.median_ms`)."""
    import torch

    from .builder import build_model
    from .steady_memory import keep_freed_memory
    from .timing import median_ms
    keep_freed_memory()        # as the table's units were timed
    model = build_model(arch).to(device).eval()
    x = torch.randn(batch_size, arch.in_channels, arch.resolution, arch.resolution, device=device)
    with torch.inference_mode():
        return median_ms(lambda: model(x), device=device, clock=clock, warmup=warmup, repeats=repeats)


def calibration_designs(family, *, count: int, max_macs: float, seed: int = 0) -> list:
    """``count`` distinct designs of ``family`` across [max_macs / CALIBRATION_SPAN, max_macs] (module docstring)."""
    from .core import solve
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    for _ in range(8 * count):
        if len(out) == count:
            break
        flops = float(math.exp(rng.uniform(math.log(max_macs / CALIBRATION_SPAN), math.log(max_macs))))
        rho = family.default_rho * float(math.exp(rng.uniform(-RHO_SPREAD, RHO_SPREAD)))
        r = solve(family, flops=flops, rho=rho, seed=0)
        if r.designs and r.architecture.canonical() not in seen:
            seen.add(r.architecture.canonical())
            out.append(r.architecture)
    return out


def calibrate(table: LatencyTable, family, *, max_macs: float, count: int = 10, seed: int = 0, warmup: int = 3,
              repeats: int = 10, progress=None) -> dict:
    """Measure ``count`` networks of ``family`` on the table's device and settings, fit, store and return the
    calibration (``table.settings["calibration"]``, with the networks' rows)."""
    s = table.settings
    rows = []
    for i, arch in enumerate(calibration_designs(family, count=count, max_macs=max_macs, seed=seed), 1):
        ms = measure_network(arch, device=s["device"], batch_size=s["batch_size"], warmup=warmup, repeats=repeats,
                             clock=s["clock"])
        rows.append((calibration_features(arch_units(arch), table), ms))
        if progress is not None:
            progress(f"  calibration network {i}/{count}: {ms:.4g} ms measured, {rows[-1][0][0]:.4g} ms of entries")
    fit = fit_calibration([f for f, _ in rows], [ms for _, ms in rows])
    fit.update({"family": family.name, "seed": seed, "max_macs": max_macs,
                "rows": [{"entries_ms": f[0], "megabytes": f[1], "units": f[2], "measured_ms": ms} for f, ms in rows]})
    s["calibration"] = fit
    return fit
