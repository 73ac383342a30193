"""Latency tables and the latency a table predicts for an architecture.

A :class:`LatencyTable` maps :class:`~deepmad_nni.core.latency_units.Unit` keys to milliseconds measured on one
device under one set of settings (``settings``: device, device name, batch size, dtype, torch threads, torch
version, activation, denormals flushed, warm-up and repeats).  ``deepmad-nni latency profile`` writes one
(:mod:`deepmad_nni.latency_profile`); this module only reads, checks and sums it.

    predicted_latency(arch, table) = sum over arch_units(arch) of table.unit_ms(u)            (milliseconds)
    unit_ms(u) = scale * entry(u) + ms_per_mb * megabytes(u) + ms_per_unit

An entry is the unit timed alone, with its input and weights hot in the cache.  Inside a network every unit
reads tensors another unit wrote and weights no unit touched since the last forward, so it runs slower; the
table's ``calibration`` (:func:`fit_calibration`: non-negative least squares of end-to-end measured networks on
their summed entries, summed megabytes moved and unit count) carries that in three coefficients.  A table
without one (synthetic tables, tables profiled with ``calibrate=0``) predicts the plain sum of its entries.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .arch import Architecture
from .latency_units import Unit, arch_units

FORMAT = "deepmad-nni latency table"
VERSION = 1
# the settings a table belongs to: a table measured under other values of these is another table
IDENTITY = ("device", "device_name", "batch_size", "dtype", "threads", "torch_version", "activation", "flush_denormal",
            "clock")


@dataclass
class LatencyTable:
    """Milliseconds per unit key (``entries``) and the settings they were measured under (``settings``)."""

    settings: dict
    entries: dict[str, float] = field(default_factory=dict)

    def __post_init__(self):
        self.settings.setdefault("clock", "wall")       # tables from before deepmad_nni.timing were wall-clock
        missing = [k for k in IDENTITY if k not in self.settings]
        if missing:
            raise ValueError(f"LatencyTable.settings must name {list(IDENTITY)}, but {missing} are missing.")
        for key, ms in self.entries.items():
            if not (isinstance(ms, (int, float)) and math.isfinite(ms) and ms >= 0):
                raise ValueError(f"latency-table entry {key!r} must be a non-negative number of ms, but got {ms!r}.")

    def __contains__(self, unit: Unit) -> bool:
        return unit.key() in self.entries

    def __len__(self) -> int:
        return len(self.entries)

    def ms(self, unit: Unit) -> float:
        """The unit's measured milliseconds; a ValueError naming the unit when the table lacks it."""
        try:
            return self.entries[unit.key()]
        except KeyError:
            coverage = self.settings.get("coverage", {})
            raise ValueError(f"the latency table has no entry for unit {unit.key()!r} ({len(self.entries)} entries; "
                             f"profiled families and their MACs bounds: {coverage}); profile the family of this "
                             "design with deepmad-nni latency profile.") from None

    @property
    def calibration(self) -> dict:
        """``scale``, ``ms_per_mb``, ``ms_per_unit`` (and how they were fitted); the identity (1, 0, 0) without one."""
        return self.settings.get("calibration") or {"scale": 1.0, "ms_per_mb": 0.0, "ms_per_unit": 0.0}

    def unit_ms(self, unit: Unit) -> float:
        """The unit's predicted milliseconds inside a network (module docstring)."""
        c = self.calibration
        return (c["scale"] * self.ms(unit) + c["ms_per_mb"] * unit.megabytes(self.settings["batch_size"])
                + c["ms_per_unit"])

    @property
    def margin(self) -> float:
        """The relative safety margin of a budget: the largest under-prediction among the calibration networks
        (``calibration["margin"]``), 0 without a calibration."""
        return float(self.calibration.get("margin", 0.0))

    def guarded(self, predicted_ms: float) -> float:
        """The prediction raised by :attr:`margin`: what a latency budget is checked against."""
        return predicted_ms * (1.0 + self.margin)

    def within(self, predicted_ms: float, budget_ms: float) -> bool:
        """Whether a design predicted at ``predicted_ms`` meets ``budget_ms`` (:meth:`guarded` within it)."""
        return self.guarded(predicted_ms) <= budget_ms

    def max_macs(self, family: str):
        """The MACs bound ``family`` was profiled under (``--flops``; None: every unit), or None when unprofiled."""
        return self.settings.get("coverage", {}).get(family)

    def describe(self) -> str:
        s = self.settings
        return (f"{s['device']} ({s['device_name']}), batch {s['batch_size']}, {s['dtype']}, {s['threads']} "
                f"thread(s), torch {s['torch_version']}, {s['clock']} clock")

    def check(self, expected: dict | None, *, source: str = "the latency table") -> None:
        """A ValueError naming the first setting of ``expected`` the table was not measured under."""
        for name, want in (expected or {}).items():
            have = self.settings.get(name)
            if have != want:
                raise ValueError(f"{source} was measured with {name}={have!r}, but {name}={want!r} was asked "
                                 f"(table settings: {self.describe()}); profile a table for these settings.")

    # -- files -------------------------------------------------------------------------------------------
    def to_json(self) -> dict:
        return {"format": FORMAT, "version": VERSION, "settings": self.settings, "entries": self.entries}

    def save(self, path) -> None:
        """Write atomically (a temporary file beside ``path``, then a rename): an interrupted write leaves the
        previous file intact."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                json.dump(self.to_json(), fh, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    @classmethod
    def load(cls, path, *, expect: dict | None = None) -> "LatencyTable":
        """Read a table; ``expect`` (settings, e.g. ``{"device": "cpu", "batch_size": 1}``) must match its own."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise ValueError(f"latency table {str(path)!r} does not exist.") from None
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"latency table {str(path)!r} is not readable JSON: {err}.") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"{str(path)!r} must be a {FORMAT!r} file (format field), but got "
                             f"{data.get('format') if isinstance(data, dict) else type(data).__name__!r}.")
        if data.get("version") != VERSION:
            raise ValueError(f"latency table {str(path)!r} must have version {VERSION}, but got {data.get('version')!r}.")
        table = cls(dict(data.get("settings", {})), {str(k): float(v) for k, v in data.get("entries", {}).items()})
        table.check(expect, source=f"latency table {str(path)!r}")
        return table


def as_table(table) -> LatencyTable:
    """A :class:`LatencyTable` from a table or the path of one; a ValueError naming ``latency_table`` otherwise."""
    if isinstance(table, LatencyTable):
        return table
    if isinstance(table, (str, os.PathLike)):
        return LatencyTable.load(table)
    raise ValueError(f"latency_table must be a LatencyTable or the path of a table file, but got "
                     f"{type(table).__name__}.")


def predicted_latency(arch: Architecture, table: LatencyTable) -> float:
    """Milliseconds ``table`` predicts for ``arch``: :meth:`LatencyTable.unit_ms` summed over :func:`arch_units`."""
    return float(sum(table.unit_ms(u) for u in arch_units(arch)))


def calibration_features(units, table: LatencyTable) -> tuple[float, float, int]:
    """(summed entries ms, summed megabytes, unit count) of a network's units: the regressors of the fit."""
    batch = table.settings["batch_size"]
    return (float(sum(table.ms(u) for u in units)), float(sum(u.megabytes(batch) for u in units)), len(units))


def fit_calibration(features, measured_ms) -> dict:
    """The coefficients (scale >= 1, ms_per_mb >= 0, ms_per_unit >= 0) minimising the squared *relative* error of
    ``scale * entries + ms_per_mb * megabytes + ms_per_unit * units`` against ``measured_ms`` (one row of
    :func:`calibration_features` per measured network; at least 3), and ``margin``: the largest relative
    under-prediction among them (measured / predicted - 1, at least 0), by which budgets are guarded."""
    import numpy as np
    from scipy.optimize import nnls
    x, y = np.asarray(features, dtype=float), np.asarray(measured_ms, dtype=float)
    if x.ndim != 2 or x.shape[1] != 3 or len(x) < 3 or len(y) != len(x):
        raise ValueError(f"fit_calibration needs at least 3 networks with 3 features each and one measured time "
                         f"each, but got features of shape {x.shape} and {y.shape[0] if y.ndim else 0} times.")
    if not (np.all(np.isfinite(y)) and np.all(y > 0)):
        raise ValueError(f"measured_ms must be positive finite times, but got {y.tolist()!r}.")
    # scale = 1 + s with s >= 0: a unit inside a network is never faster than timed alone (cache-hot); without
    # this floor, entries and megabytes (nearly collinear over networks) can trade off to scale 0
    extra, _ = nnls(x / y[:, None], 1.0 - x[:, 0] / y)
    coef = extra + np.array([1.0, 0.0, 0.0])
    pred = x @ coef
    rel = np.abs(pred - y) / y
    return {"scale": float(coef[0]), "ms_per_mb": float(coef[1]), "ms_per_unit": float(coef[2]),
            "margin": float(max(0.0, (y / pred).max() - 1.0)), "networks": int(len(y)),
            "fit_median_rel_error": float(np.median(rel)), "fit_max_rel_error": float(rel.max())}
