"""Evaluators: what a trial's design is worth (an accuracy, higher is better).

An evaluator has ``evaluate(architecture, report) -> float`` (or a dict holding ``"accuracy"`` and any
other figures to record); ``report(step, value)`` passes an intermediate value to Optuna and raises
``optuna.TrialPruned`` when the pruner stops the trial.  ``signature()`` identifies the evaluations, so
the design cache never mixes the results of two different evaluators.
"""
from __future__ import annotations

import importlib
import inspect
from pathlib import Path

EVALUATOR_NAMES = ("nas-bench-macro", "training")


class Evaluator:
    """Base class: override :meth:`evaluate`; ``device`` is recorded with every trial."""

    name = "evaluator"
    device = "cpu"

    def evaluate(self, architecture, report):
        raise NotImplementedError

    def signature(self) -> dict:
        return {"evaluator": self.name}

    def check_family(self, family) -> None:
        """Raise ValueError when this evaluator cannot evaluate designs of ``family``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.signature().items())})"


class NasBenchMacroEvaluator(Evaluator):
    """Lookup of the mean test accuracy (%, CIFAR-10, 3 seeds) of a ``nas-bench-macro`` design."""

    name = "nas-bench-macro"
    device = "lookup"

    def __init__(self, *, benchmark_path=None):
        from ..benchmarks.nas_bench_macro import NasBenchMacro, resolve_path
        try:  # benchmark_path, else $DEEPMAD_NAS_BENCH_MACRO, else the copy packaged with deepmad-nni
            self.bench = NasBenchMacro(resolve_path(benchmark_path))
        except FileNotFoundError as err:
            raise ValueError(str(err)) from None
        self.path = Path(self.bench.path)

    def check_family(self, family) -> None:
        if family.name != "nas-bench-macro":
            raise ValueError(f"evaluator 'nas-bench-macro' needs family 'nas-bench-macro', but got {family.name!r}.")

    def evaluate(self, architecture, report):
        from ..benchmarks.nas_bench_macro import key_of_architecture
        entry = self.bench[key_of_architecture(architecture)]
        return {"accuracy": entry.mean_acc, "benchmark_key": entry.key, "accuracy_std": _std(entry.test_acc)}

    def signature(self) -> dict:
        return {"evaluator": self.name, "file": self.path.name}


def _std(values) -> float:
    m = sum(values) / len(values)
    return (sum((v - m) ** 2 for v in values) / len(values)) ** 0.5


class CallableEvaluator(Evaluator):
    """Any ``fn(architecture) -> accuracy`` (or ``fn(architecture, report)`` to report intermediate values)."""

    device = "user"

    def __init__(self, fn, *, name: str | None = None):
        if not callable(fn):
            raise ValueError(f"evaluator must be callable, but got {type(fn).__name__}.")
        self.fn = fn
        self.name = name or f"{getattr(fn, '__module__', '?')}:{getattr(fn, '__qualname__', type(fn).__name__)}"
        try:
            n = sum(1 for p in inspect.signature(fn).parameters.values()
                    if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) or p.kind == p.VAR_POSITIONAL)
        except (TypeError, ValueError):
            n = 1
        self.takes_report = n >= 2

    def evaluate(self, architecture, report):
        return self.fn(architecture, report) if self.takes_report else self.fn(architecture)


def resolve_object(spec: str, *, argument: str = "evaluator", expected: str | None = None):
    """``"package.module:attribute"`` -> the attribute; a ValueError naming ``argument`` otherwise (``expected``
    says what the argument must be when ``spec`` is not of that form)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        expected = expected or f"one of {list(EVALUATOR_NAMES)} or 'module:attribute'"
        raise ValueError(f"{argument} must be {expected}, but got {spec!r}.")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"{argument} {spec!r}: cannot import module {module_name!r} ({err}).") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{argument} {spec!r}: module {module_name!r} has no attribute {attr!r}.")
        obj = getattr(obj, part)
    return obj


def make_evaluator(evaluator, *, benchmark_path=None, **options) -> Evaluator:
    """An :class:`Evaluator` from a name (``"nas-bench-macro"``, ``"training"``), ``"module:attribute"``,
    an :class:`Evaluator`, an ``nni.nas.evaluator.Evaluator`` or a callable.  ``options`` go to the
    training / NNI evaluators."""
    if isinstance(evaluator, Evaluator):
        return evaluator
    if isinstance(evaluator, str):
        if evaluator == "nas-bench-macro":
            return NasBenchMacroEvaluator(benchmark_path=benchmark_path)
        if evaluator == "training":
            from ._training import TrainingEvaluator
            return TrainingEvaluator(**options)
        if ":" not in evaluator:
            raise ValueError(f"evaluator must be one of {list(EVALUATOR_NAMES)} or 'module:attribute', "
                             f"but got {evaluator!r}.")
        spec, evaluator = evaluator, resolve_object(evaluator)
        if isinstance(evaluator, type) and issubclass(evaluator, Evaluator):
            return evaluator()
        return make_evaluator(evaluator, **options) if not callable(evaluator) or _is_nni(evaluator) or \
            isinstance(evaluator, Evaluator) else CallableEvaluator(evaluator, name=spec)
    if _is_nni(evaluator):
        from ._nni import NNIEvaluator
        return NNIEvaluator(evaluator, **options)
    if callable(evaluator):
        return CallableEvaluator(evaluator)
    raise ValueError(f"evaluator must be one of {list(EVALUATOR_NAMES)}, 'module:attribute', an Evaluator, an "
                     f"nni.nas.evaluator.Evaluator or a callable, but got {type(evaluator).__name__}.")


def _is_nni(obj) -> bool:
    import sys
    if "nni" not in sys.modules and not type(obj).__module__.startswith("nni"):
        return False
    try:
        from nni.nas.evaluator import Evaluator as NNIBase
    except ImportError:
        return False
    return isinstance(obj, NNIBase)
