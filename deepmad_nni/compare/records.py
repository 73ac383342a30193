"""Finished runs as JSON lines (one per (track, strategy, budget, seed, n_max)), and their summary rows.

A run record holds the candidates a strategy had trained, in order, each with its accuracy, FLOPs, params,
GPU-seconds and the cumulative CPU-seconds of the search logic at that point.  Sampling strategies do not
know their budget N in advance (they stop when the engine refuses more models), so the first N candidates
of a run with ``n_max >= N`` are exactly the run with budget N: one run gives every N up to ``n_max``.
The pick after N candidates is the best measured one among them; regret = best accuracy within the
FLOPs/params budget (the reference) minus the pick's accuracy.
"""
from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path

RUNS_FILE = "runs.jsonl"


@dataclass
class Candidate:
    """One fully trained candidate: its id (benchmark key or sample JSON) and measured figures."""

    arch: str
    accuracy: float
    flops: float
    params: float
    gpu_s: float
    search_cpu_s: float = 0.0  # cumulative CPU-seconds of the search logic when this candidate was proposed


@dataclass
class RunRecord:
    track: str
    strategy: str
    budget: str
    seed: int
    n_max: int
    reference_accuracy: float  # best accuracy within the budget (regret's reference)
    candidates: list[Candidate] = field(default_factory=list)
    zero_cost_pick: Candidate | None = None  # a pick made before training anything (DeepMAD top-1)
    search_cpu_s: float = 0.0
    wall_s: float = 0.0
    rejected: int = 0  # proposals rejected by the FLOPs/params filter (never trained, not counted in N)
    device: str = ""
    note: str = ""

    @property
    def key(self) -> tuple:
        return (self.track, self.strategy, self.budget, int(self.seed), int(self.n_max))

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "RunRecord":
        d = dict(d)
        d["candidates"] = [Candidate(**c) for c in d.get("candidates", [])]
        if d.get("zero_cost_pick") is not None:
            d["zero_cost_pick"] = Candidate(**d["zero_cost_pick"])
        return cls(**d)

    def at(self, n: int, reference: float | None = None) -> dict:
        """Figures after the first ``n`` trained candidates (``n = 0``: the zero-cost pick, if any); regret
        against ``reference`` (default: the record's ``reference_accuracy``)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, but got {n!r}.")
        done = self.candidates[:n]
        pick = max(done, key=lambda c: c.accuracy) if done else (self.zero_cost_pick if n == 0 else None)
        cpu = done[-1].search_cpu_s if done else (pick.search_cpu_s if pick else 0.0)
        found = pick.accuracy if pick else math.nan
        return {"n": n, "trained": len(done), "gpu_hours": sum(c.gpu_s for c in done) / 3600.0, "cpu_s": cpu,
                "accuracy": found,
                "regret": (self.reference_accuracy if reference is None else reference) - found,
                "pick": pick.arch if pick else None, "pick_flops": pick.flops if pick else math.nan,
                "pick_params": pick.params if pick else math.nan}


class RunStore:
    """The ``runs.jsonl`` of an output folder: finished runs survive an interruption and are skipped on restart."""

    def __init__(self, out_dir):
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / RUNS_FILE
        self.records: dict[tuple, RunRecord] = {}
        if self.path.exists():
            lines = self.path.read_text().splitlines()
            good = []
            for line in lines:
                try:
                    rec = RunRecord.from_dict(json.loads(line))
                except (json.JSONDecodeError, TypeError, KeyError):
                    continue  # a line cut short by the interruption
                self.records[rec.key] = rec
                good.append(line)
            if len(good) != len(lines) or not self.path.read_text().endswith("\n") and good:
                self.path.write_text("".join(line + "\n" for line in good))  # drop what the interruption cut

    def __contains__(self, key) -> bool:
        return tuple(key) in self.records

    def add(self, record: RunRecord) -> None:
        with self.path.open("a") as f:
            f.write(record.to_json() + "\n")
            f.flush()
        self.records[record.key] = record


def _mean(xs):
    xs = [x for x in xs if not (isinstance(x, float) and math.isnan(x))]
    return statistics.fmean(xs) if xs else math.nan


def _std(xs):
    xs = [x for x in xs if not (isinstance(x, float) and math.isnan(x))]
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def summarize(records, points: dict[str, list[int]]) -> list[dict]:
    """One row per (track, budget, strategy, N): means (and std of accuracy/regret) over seeds.

    ``points[strategy]`` lists the N at which that strategy is read (``0`` for a zero-cost pick).  Runs with
    no known reference (NaN: the training track) take the best accuracy any run measured in that budget."""
    groups: dict[tuple, list[RunRecord]] = {}
    best_seen: dict[tuple, float] = {}
    for r in records:
        groups.setdefault((r.track, r.budget, r.strategy), []).append(r)
        seen = [c.accuracy for c in r.candidates] + ([r.zero_cost_pick.accuracy] if r.zero_cost_pick else [])
        best_seen[(r.track, r.budget)] = max([best_seen.get((r.track, r.budget), -math.inf)] + seen)
    rows = []
    for (track, budget, strategy), runs in sorted(groups.items()):
        ref = {id(r): None if not math.isnan(r.reference_accuracy) else best_seen[(track, budget)] for r in runs}
        for n in points.get(strategy, sorted({r.n_max for r in runs})):
            figs = [r.at(n, ref[id(r)]) for r in runs if r.n_max >= n]
            if not figs:
                continue
            rows.append({
                "track": track, "budget": budget, "strategy": strategy, "N": n,
                "trained": _mean([f["trained"] for f in figs]),
                "gpu_hours": _mean([f["gpu_hours"] for f in figs]),
                "cpu_s": _mean([f["cpu_s"] for f in figs]),
                "accuracy": _mean([f["accuracy"] for f in figs]), "accuracy_std": _std([f["accuracy"] for f in figs]),
                "regret": _mean([f["regret"] for f in figs]), "regret_std": _std([f["regret"] for f in figs]),
                "pick_flops": _mean([f["pick_flops"] for f in figs]),
                "pick_params": _mean([f["pick_params"] for f in figs]),
                "reference": _mean([r.reference_accuracy if ref[id(r)] is None else ref[id(r)] for r in runs]),
                "seeds": len(figs),
            })
    return rows
