"""One trial: suggest (rho_0, beta, alpha), solve the DeepMAD program, evaluate the design once per study."""
from __future__ import annotations

import hashlib
import json
import math
import os
import socket
import time

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


class Objective:
    """The Optuna objective (keyword-only settings; see :func:`deepmad_nni.optuna_loop.tune`)."""

    def __init__(self, *, family, flops, params, ranges, evaluator, cache, convention, time_limit,
                 multi_objective):
        self.family, self.flops, self.params, self.ranges = family, flops, params, ranges
        self.evaluator, self.cache, self.convention = evaluator, cache, convention
        self.time_limit, self.multi_objective = time_limit, multi_objective
        self.signature = evaluator.signature()

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

        from ._design import design_structure
        hp = self.ranges.suggest(trial, self.family.num_stages())
        result = self._solve(rho=hp["rho"], alpha=hp["alpha"], beta=hp["beta"])
        attrs["solve"] = {"status": result.status, "time_s": round(result.time_s, 4), "alpha": list(hp["alpha"])}
        if not result.success:
            attrs["pruned_reason"] = f"solver {result.status}: {result.message}"
            raise optuna.TrialPruned(attrs["pruned_reason"])
        arch = result.architecture
        key = design_key(arch, self.signature)
        attrs["solve"].update(entropy=result.entropy, effectiveness=result.effectiveness, q=result.q,
                              objective=result.objective, gap=result.gap)
        trial.set_user_attr("design_key", key)  # visible while the design is evaluated (dashboard, crashes)
        trial.set_user_attr("design", design_structure(arch))
        attrs.update(resolution=arch.resolution, in_channels=arch.in_channels, flops=int(result.flops),
                     params=int(result.params))

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
            accuracy, info = self._evaluate(trial, key, arch, report, attrs)
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
        return (accuracy, float(result.flops)) if self.multi_objective else accuracy

    def _solve(self, *, rho, alpha, beta):
        from ..core import solve
        return solve(self.family, flops=self.flops, params=self.params, rho=rho, alpha=alpha, beta=beta,
                     convention=self.convention, time_limit=self.time_limit)

    def _evaluate(self, trial, key, arch, report, attrs):
        import optuna
        steps: list = []

        def recording_report(step, value):
            steps.append((int(step), float(value)))
            report(step, value)

        te = time.perf_counter()
        base = {"trial_number": trial.number, "device": self.evaluator.device}
        attrs["device"] = self.evaluator.device
        try:
            out = self.evaluator.evaluate(arch, recording_report)
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
