"""Run one strategy on one problem (model space + evaluator + FLOPs/params budget) and record what it trained.

Every NNI strategy runs as shipped through NNI's ``SequentialExecutionEngine(max_model_count=N)`` on a
``SimplifiedModelSpace`` of the problem's NNI ModelSpace, chained with ``Filter`` that rejects samples over
the FLOPs/params budget (NNI's FlopsProfiler/NumParamsProfiler expressions).  Rejected samples are never
trained and do NOT count in N; they cost CPU time only, which the CPU-seconds column includes.
The evaluator is the problem's: a benchmark lookup or real training, the same for every strategy.
"""
from __future__ import annotations

import contextlib
import json
import logging
import time
import warnings
from dataclasses import dataclass

from ..log_levels import loggers_at
from ..nas.trial_info import design_sample
from .records import Candidate, RunRecord


@dataclass(frozen=True)
class Budget:
    """A FLOPs (multiply-accumulates) and/or params budget with a short name for tables."""

    name: str
    flops: float | None = None
    params: float | None = None

    def __post_init__(self):
        if self.flops is None and self.params is None:
            raise ValueError(f"budget {self.name!r} needs flops and/or params, but got neither.")
        for field in ("flops", "params"):
            v = getattr(self, field)
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"budget {field} must be a positive number, but got {v!r}.")

    def admits(self, flops: float, params: float) -> bool:
        return (self.flops is None or flops <= self.flops) and (self.params is None or params <= self.params)


# NNI 3.0 wraps every class of torch.nn when ``nni.nas.nn.pytorch`` is first imported, and warns once for each
# class of newer torch versions that is not a module (Buffer, ...): harmless here; only this message is hidden.
NOT_A_MODULE_WARNING = r".* is found to be not a nn\.Module, which is unexpected\."


@contextlib.contextmanager
def ignore_not_a_module_warning():
    """Hide NNI's RuntimeWarning "<class ...> is found to be not a nn.Module ..." meanwhile (nothing else)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=NOT_A_MODULE_WARNING, category=RuntimeWarning)
        yield


@contextlib.contextmanager
def quiet_nni():
    """NNI logs every filtered sample, every model and every tuner seed at INFO: keep only errors meanwhile
    (and hide its "is found to be not a nn.Module" import-time warning, see :data:`NOT_A_MODULE_WARNING`)."""
    with loggers_at(("nni",), logging.ERROR), ignore_not_a_module_warning():
        yield


class _Clock:
    """CPU-seconds of the search logic: process CPU time minus the time spent inside evaluations."""

    def __init__(self):
        self.start = time.process_time()
        self.in_eval = 0.0

    def search_cpu(self) -> float:
        return time.process_time() - self.start - self.in_eval


def _evaluate(problem, sample, clock: _Clock, out: list) -> Candidate:
    t = time.process_time()
    cand = problem.evaluate(sample)
    clock.in_eval += time.process_time() - t
    cand.search_cpu_s = clock.search_cpu()
    out.append(cand)
    return cand


def _harness_evaluator(problem, clock, out):
    import nni
    from nni.nas.evaluator import Evaluator

    class HarnessEvaluator(Evaluator):
        """Evaluates a frozen sample with the problem's evaluator and reports its accuracy to NNI."""

        def _execute(self, model):
            cand = _evaluate(problem, design_sample(model.sample), clock, out)
            nni.report_final_result(cand.accuracy)
            return cand.accuracy

        def evaluate(self, model):  # pragma: no cover - _execute never instantiates the model
            raise NotImplementedError

    return HarnessEvaluator()


def run_nni_strategy(problem, name: str, strategy, *, n_max: int, seed: int) -> RunRecord:
    """Run an NNI strategy until ``n_max`` candidates within budget have been trained (or it stops)."""
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import SimplifiedModelSpace
    from nni.nas.strategy.middleware import Chain, Filter

    clock, trained, rejected = _Clock(), [], [0]
    t0 = time.perf_counter()

    def within_budget(model) -> bool:
        ok = problem.within_budget(design_sample(model.sample))
        rejected[0] += not ok
        return ok

    space = SimplifiedModelSpace.from_model(problem.space, _harness_evaluator(problem, clock, trained))
    engine = SequentialExecutionEngine(max_model_count=n_max)
    note = ""
    with quiet_nni():
        try:
            Chain(strategy, Filter(within_budget))(space, engine)
        except Exception as err:  # a strategy that breaks is reported with what it trained before, not hidden
            note = f"stopped by {type(err).__name__}: {err}"
    if len(trained) < n_max and not note:
        note = f"strategy stopped after {len(trained)} trained candidates"
    return RunRecord(problem.track, name, problem.budget.name, seed, n_max, problem.reference_accuracy,
                     candidates=trained[:n_max], search_cpu_s=clock.search_cpu(), wall_s=time.perf_counter() - t0,
                     rejected=rejected[0], device=problem.device, note=note)


def run_deepmad(problem, *, n_max: int, seed: int = 0, rho=None, beta=None, name: str = "deepmad") -> RunRecord:
    """DeepMAD: its top-1 design is the pick at N = 0 (nothing trained); its top-k distinct networks, best
    objective first, are the N = k candidates (trained, the best measured is the pick)."""
    clock, trained = _Clock(), []
    t0 = time.perf_counter()
    samples, info = problem.deepmad_samples(max(n_max, 1), rho=rho, beta=beta)
    solve_cpu = clock.search_cpu()
    for s in samples[:max(n_max, 1)]:
        _evaluate(problem, s, clock, trained)
    zero = None
    if trained:  # the top-1 design; its own (final) training is not a search cost
        zero = Candidate(**{**trained[0].__dict__, "search_cpu_s": solve_cpu})
    trained = trained[:n_max]
    return RunRecord(problem.track, name, problem.budget.name, seed, n_max, problem.reference_accuracy,
                     candidates=trained, zero_cost_pick=zero, search_cpu_s=solve_cpu,
                     wall_s=time.perf_counter() - t0, device=problem.device, note=json.dumps(info))
