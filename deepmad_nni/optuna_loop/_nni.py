"""Run an ``nni.nas.evaluator.Evaluator`` (Lightning ``Classification``, ``FunctionalEvaluator``, ...) on the
torch model of a design, in this process, routing NNI's metric reports to the Optuna trial."""
from __future__ import annotations

import math
from contextlib import contextmanager

from ._evaluators import Evaluator


def _scalar(metric) -> float:
    if isinstance(metric, dict):
        if "default" not in metric:
            raise ValueError(f"An NNI metric dict must hold 'default', but got keys {sorted(metric)}.")
        metric = metric["default"]
    value = float(metric)
    if not math.isfinite(value):
        raise ValueError(f"The NNI evaluator reported a non-finite metric {metric!r}.")
    return value


class NNIEvaluator(Evaluator):
    """Evaluate with an NNI 3.0 evaluator; its intermediate results become Optuna intermediate values.

    The model is :func:`deepmad_nni.builder.build_model` of the design (``activation`` as there), adapted
    to the data when ``in_channels`` / ``num_classes`` / ``resolution`` / ``width_multiplier`` are given
    (:func:`proxy_architecture`).  ``scale`` multiplies NNI's metric (e.g. 100 to record a 0..1 accuracy in %).
    """

    def __init__(self, nni_evaluator, *, in_channels: int | None = None, num_classes: int | None = None,
                 resolution: int | None = None, width_multiplier: float = 1.0, activation=None, scale: float = 1.0):
        from nni.nas.evaluator import Evaluator as NNIBase
        if not isinstance(nni_evaluator, NNIBase):
            raise ValueError(f"nni_evaluator must be an nni.nas.evaluator.Evaluator, but got "
                             f"{type(nni_evaluator).__name__}.")
        self.nni_evaluator, self.activation, self.scale = nni_evaluator, activation, float(scale)
        self.name = f"nni:{type(nni_evaluator).__name__}"
        self.proxy = {"in_channels": in_channels, "num_classes": num_classes, "resolution": resolution,
                      "width_multiplier": float(width_multiplier)}
        import torch
        self.device = "cuda" if torch.cuda.is_available() else "cpu"

    def signature(self) -> dict:
        return {"evaluator": self.name, "scale": self.scale, **self.proxy}

    def evaluate(self, architecture, report):
        from ..builder import build_model
        from ._design import design_structure, proxy_architecture
        p = self.proxy
        if p["in_channels"] or p["num_classes"] or p["resolution"] or p["width_multiplier"] != 1.0:
            architecture = proxy_architecture(
                architecture, in_channels=p["in_channels"] or architecture.in_channels,
                num_classes=p["num_classes"] or architecture.num_classes,
                resolution=p["resolution"] or architecture.resolution, width_multiplier=p["width_multiplier"])
        model = build_model(architecture, activation=self.activation)
        return self.evaluate_model(model, report, {"structure": design_structure(architecture)})

    def evaluate_model(self, model, report, parameters: dict):
        """Evaluate a built torch model (``tune(space=...)``: the frozen NNI sample); ``parameters`` is what
        ``nni.get_current_parameter()`` returns meanwhile."""
        channel = _Recorder(report, self.scale)
        with _nni_runtime(channel, parameters):
            returned = self.nni_evaluator.evaluate(model)
        if channel.final is not None:
            return channel.final
        if returned is not None:
            return _scalar(returned) * self.scale
        if channel.last is not None:
            return channel.last
        raise ValueError(f"The NNI evaluator {self.name} reported no metric (call nni.report_final_result).")


class _Recorder:
    """Receives NNI's metric reports: intermediate ones go to ``report``, the final one is kept."""

    def __init__(self, report, scale):
        self.report, self.scale = report, scale
        self.step, self.final, self.last = 0, None, None

    def send(self, kind: str, value) -> None:
        value = _scalar(value) * self.scale
        if kind == "FINAL":
            self.final = value
        else:
            self.last = value
            self.report(self.step, value)
            self.step += 1


@contextmanager
def _nni_runtime(recorder, parameters: dict):
    """Make ``nni.get_current_parameter()`` return ``parameters`` and route ``nni.report_*`` to ``recorder``."""
    import nni.trial
    from nni.runtime.trial_command_channel import (get_default_trial_command_channel,
                                                   set_default_trial_command_channel)
    from nni.runtime.trial_command_channel.base import TrialCommandChannel

    class Channel(TrialCommandChannel):
        def receive_parameter(self):
            return None

        def send_metric(self, type, parameter_id, trial_job_id, sequence, value):  # noqa: A002 (NNI's name)
            recorder.send(type, value)

    saved = (get_default_trial_command_channel(), nni.trial._params, nni.trial._intermediate_seq)
    set_default_trial_command_channel(Channel())
    nni.trial._params = {"parameter_id": 0, "parameters": parameters}
    nni.trial._intermediate_seq = 0
    try:
        yield
    finally:
        set_default_trial_command_channel(saved[0])
        nni.trial._params, nni.trial._intermediate_seq = saved[1], saved[2]
