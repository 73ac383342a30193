"""One trial: suggest (rho_0, beta, alpha), solve the DeepMAD program, evaluate the design once per study.

What the program is solved over is a *designer*: :class:`FamilyDesigner` (a core ``Family``; the evaluator
receives the design's ``Architecture``; cache key :func:`design_key`) or :class:`SpaceDesigner` (an NNI
model space through :func:`deepmad_nni.nas.route.route_of`; the evaluator receives the frozen NNI model,
built only when the design is not in the cache; cache key the route's ``network(sample)``).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from ._cache import DONE, FAILED, PRUNED


def design_key(architecture, signature: dict) -> str:
    """Hash of the design (structure, resolution, channels, classes) and of the evaluator's signature."""
    from ._design import design_structure
    material = {"structure": design_structure(architecture), "resolution": architecture.resolution,
                "in_channels": architecture.in_channels, "num_classes": architecture.num_classes,
                "evaluator": signature}
    return hashlib.sha1(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()[:20]


def _split(out) -> tuple[float, dict]:
    if isinstance(out, dict):
        if "accuracy" not in out:
            raise ValueError(f"An evaluator's dict must hold 'accuracy', but got keys {sorted(out)}.")
        extra = {k: v for k, v in out.items() if k != "accuracy"}
        out = out["accuracy"]
    else:
        extra = {}
    try:
        value = float(out)
    except (TypeError, ValueError):
        raise ValueError(f"An evaluator must return a number (accuracy), but got {out!r}.") from None
    if not math.isfinite(value):
        raise ValueError(f"An evaluator must return a finite accuracy, but got {value!r}.")
    return value, json.loads(json.dumps(extra, default=str))


@dataclass
class Design:
    """A solved trial: its cache key, what the evaluator gets (``build()``), what the trial records."""

    key: str
    build: Callable[[], object]            # the evaluator's input, built on a cache miss only
    visible: dict                          # user attributes set before the evaluation (design / sample)
    attrs: dict                            # user attributes set at the end (flops, params, ...)
    figures: dict                          # DeepMAD's figures of the design (entropy, rho, q, objective, gap)
    flops: float
    evaluate: Callable | None = None       # evaluate(evaluator, target, report); None: evaluator.evaluate


@dataclass
class Solved:
    """The outcome of one program: a :class:`Design`, or the reason there is none."""

    status: str
    time_s: float
    design: Design | None = None
    reason: str = ""
    extra: dict = field(default_factory=dict)


class FamilyDesigner:
    """The program over a core ``Family`` (:func:`deepmad_nni.core.solve`); evaluators get the Architecture."""

    def __init__(self, family, signature: dict, time_limit, budgets=None):
        self.family, self.signature, self.time_limit = family, signature, time_limit
        self.budgets = budgets        # a core DeviceBudgets (latency / feature map) or None
        self.num_stages = family.num_stages()

    def solve(self, *, flops, params, rho, alpha, beta, convention) -> Solved:
        from ..core import solve

        from ._design import design_structure
        extra = self.budgets.solve_kwargs() if self.budgets is not None else None
        result = solve(self.family, flops=flops, params=params, rho=rho, alpha=alpha, beta=beta,
                       convention=convention, time_limit=self.time_limit, **(extra or {}))
        if not result.success:
            return Solved(result.status, result.time_s, reason=f"solver {result.status}: {result.message}")
        arch = result.architecture
        design = Design(
            key=design_key(arch, self.signature), build=lambda: arch,
            visible={"design": design_structure(arch)},
            attrs={"resolution": arch.resolution, "in_channels": arch.in_channels, "flops": int(result.flops),
                   "params": int(result.params), **_device_attrs(result)},
            figures={"entropy": result.entropy, "effectiveness": result.effectiveness, "q": result.q,
                     "objective": result.objective, "gap": result.gap},
            flops=float(result.flops))
        return Solved(result.status, result.time_s, design)


class SpaceDesigner:
    """The program over an NNI model space (:func:`deepmad_nni.nas.route.route_of`, ``solve(top_k=1)``).

    The evaluator gets the frozen NNI model of the design (``space.freeze(sample)``, a freshly initialised
    ``nn.Module``): a callable ``f(model)`` / ``f(model, report)``, an :class:`Evaluator`'s
    ``evaluate(model, report)``, or an ``nni.nas.evaluator.Evaluator`` run in this process (its
    ``nni.get_current_parameter()`` is the sample).  The cache key is the route's ``network(sample)``:
    samples that build the same network are one design."""

    def __init__(self, route, time_limit, budgets=None):
        self.route, self.time_limit = route, time_limit
        self.budgets = budgets        # a core DeviceBudgets (latency / feature map) or None
        self.num_stages = route.num_stages

    def solve(self, *, flops, params, rho, alpha, beta, convention) -> Solved:
        t0 = time.perf_counter()
        result, records = self.route.solve(flops=flops, params=params, rho=rho, alpha=alpha, beta=beta,
                                           convention=convention, top_k=1, time_limit=self.time_limit,
                                           budgets=self.budgets.solve_kwargs() if self.budgets is not None else None)
        time_s = getattr(result, "time_s", None) or time.perf_counter() - t0
        if not records:
            return Solved(result.status, time_s, reason=f"solver {result.status}: {result.message}")
        rec = records[0]
        sample = json.loads(json.dumps(rec.sample, default=str))
        key = self.route.network(rec.sample)
        s = rec.score
        design = Design(
            key=key, build=lambda: self.route.space.freeze(rec.sample),
            visible={"sample": sample, "network": key},
            attrs={"flops": int(s.flops), "params": int(s.params), **rec.device},
            figures={"entropy": s.entropy, "effectiveness": s.effectiveness, "q": s.q, "objective": s.objective,
                     "gap": rec.gap},
            flops=float(s.flops), evaluate=lambda ev, model, report: _evaluate_model(ev, model, report, sample))
        return Solved(result.status, time_s, design)


def _device_attrs(result) -> dict:
    """The best design's predicted latency / largest feature map of a budgeted core result (else nothing)."""
    out = {}
    if getattr(result, "latencies", None) and result.latencies[0] is not None:
        out["latency_ms"] = float(result.latencies[0])
    if getattr(result, "feature_maps", None):
        out["max_feature_map"] = int(result.feature_maps[0])
    return out


def _evaluate_model(evaluator, model, report, sample):
    from ._nni import NNIEvaluator
    if isinstance(evaluator, NNIEvaluator):
        return evaluator.evaluate_model(model, report, dict(sample))
    return evaluator.evaluate(model, report)


class Objective:
    """The Optuna objective (keyword-only settings; see :func:`deepmad_nni.optuna_loop.tune`).  ``designer``
    (a :class:`FamilyDesigner` or :class:`SpaceDesigner`) defaults to the ``family``'s."""

    def __init__(self, *, family=None, flops, params, ranges, evaluator, cache, convention, time_limit,
                 multi_objective, designer=None):
        self.family, self.flops, self.params, self.ranges = family, flops, params, ranges
        self.evaluator, self.cache, self.convention = evaluator, cache, convention
        self.time_limit, self.multi_objective = time_limit, multi_objective
        self.signature = evaluator.signature()
        if designer is None:
            if family is None:
                raise ValueError("Objective needs a family or a designer, but got neither.")
            designer = FamilyDesigner(family, self.signature, time_limit)
        self.designer = designer

    def __call__(self, trial):
        attrs: dict = {}  # written once at the end: every attribute is a storage round trip
        t0 = time.perf_counter()
        try:
            return self._run(trial, attrs)
        finally:
            attrs["wall_time_s"] = round(time.perf_counter() - t0, 4)
            attrs["worker"] = f"{socket.gethostname()}:{os.getpid()}"
            for name, value in attrs.items():
                trial.set_user_attr(name, value)

    def _run(self, trial, attrs):
        import optuna

        hp = self.ranges.suggest(trial, self.designer.num_stages)
        solved = self.designer.solve(flops=self.flops, params=self.params, rho=hp["rho"], alpha=hp["alpha"],
                                     beta=hp["beta"], convention=self.convention)
        attrs["solve"] = {"status": solved.status, "time_s": round(solved.time_s, 4), "alpha": list(hp["alpha"])}
        if solved.design is None:
            attrs["pruned_reason"] = solved.reason
            raise optuna.TrialPruned(attrs["pruned_reason"])
        design = solved.design
        key = design.key
        attrs["solve"].update(design.figures)
        trial.set_user_attr("design_key", key)  # visible while the design is evaluated (dashboard, crashes)
        for name, value in design.visible.items():
            trial.set_user_attr(name, value)
        attrs.update(design.attrs)

        def report(step, value):
            if self.multi_objective:  # Optuna cannot prune multi-objective trials
                return
            trial.report(float(value), int(step))
            if trial.should_prune():
                raise optuna.TrialPruned(f"pruned at step {step} (value {float(value):.4g})")

        entry, waited_s = self.cache.acquire(key, trial._trial_id, trial.study)
        if waited_s > 0.1:  # another trial was evaluating the same design
            attrs["cache_wait_s"] = round(waited_s, 3)
        if entry is None:
            attrs["cache"] = "miss"
            accuracy, info = self._evaluate(trial, key, design, report, attrs)
        else:
            attrs["cache"] = "hit"
            if not self.multi_objective:
                for step, value in entry.payload.get("intermediate", []):
                    trial.report(value, step)
            info = entry.payload
            attrs["evaluation"] = {k: v for k, v in info.items() if k != "intermediate"}
            attrs["device"] = info.get("device", self.evaluator.device)
            if entry.state == PRUNED:
                attrs["pruned_reason"] = f"the same design was pruned in trial {info.get('trial_number')}"
                raise optuna.TrialPruned(attrs["pruned_reason"])
            accuracy = entry.value
        attrs["accuracy"] = accuracy
        return (accuracy, design.flops) if self.multi_objective else accuracy

    def _evaluate(self, trial, key, design: Design, report, attrs):
        import optuna
        steps: list = []

        def recording_report(step, value):
            steps.append((int(step), float(value)))
            report(step, value)

        te = time.perf_counter()
        base = {"trial_number": trial.number, "device": self.evaluator.device}
        attrs["device"] = self.evaluator.device
        try:
            target = design.build()
            if design.evaluate is None:
                out = self.evaluator.evaluate(target, recording_report)
            else:
                out = design.evaluate(self.evaluator, target, recording_report)
            accuracy, extra = _split(out)
        except optuna.TrialPruned as err:
            info = {**base, "intermediate": steps, "eval_time_s": round(time.perf_counter() - te, 4)}
            self.cache.finish(key, trial._trial_id, PRUNED, payload=info)
            attrs["pruned_reason"] = str(err)
            attrs["evaluation"] = {k: v for k, v in info.items() if k != "intermediate"}
            raise
        except BaseException as err:
            self.cache.finish(key, trial._trial_id, FAILED, payload={**base, "error": repr(err)[:1000]})
            raise
        info = {**extra, **base, "intermediate": steps, "eval_time_s": round(time.perf_counter() - te, 4)}
        self.cache.finish(key, trial._trial_id, DONE, value=accuracy, payload=info)
        attrs["evaluation"] = {k: v for k, v in info.items() if k != "intermediate"}
        return accuracy, info
