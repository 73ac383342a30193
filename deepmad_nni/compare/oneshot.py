"""NNI 3.0's one-shot strategies (DARTS, GumbelDARTS, RandomOneShot) on the training track.

A run trains one weight-sharing supernet of the problem's NNI space (NNI's ``Classification`` Lightning
evaluator: Adam, lr 1e-3, ``problem.epochs`` epochs, ``problem.batch_size``, on the problem's training
images; validation images for DARTS's architecture step), exports the strategy's architecture, and trains
that network from scratch with the problem's evaluator, like any other strategy's pick.

Cost convention: the search cost is the measured wall time of the supernet training (counted as the one
"trained candidate" of the run, N = 1); the final training of the exported network is not a search cost (as
for DeepMAD's top-1), its time is in the run's note.  RandomOneShot samples paths within the FLOPs/params
budget (its ``filter``); DARTS and GumbelDARTS have no budget: an exported network over it is reported so.
Grey images are repeated to 3 channels for a supernet whose stem takes 3 (the package spaces).
"""
from __future__ import annotations

import json
import logging
import tempfile
import time

from ..log_levels import loggers_at
from .harness import _Clock, quiet_nni
from .records import Candidate, RunRecord

ONESHOT = ("darts", "gumbel-darts", "random-oneshot")
SETTINGS = {
    "darts": "DARTS() (NNI defaults: arc lr 3e-4), supernet trained problem.epochs epochs, Adam lr 1e-3",
    "gumbel-darts": "GumbelDARTS() (temperature 1 -> 0.33), supernet trained as for darts",
    "random-oneshot": "RandomOneShot(filter=FLOPs/params budget), uniform path sampling; the export is one "
                      "more filtered draw (NNI's own export ignores the filter)",
}


def make_strategy(name: str, problem):
    from nni.nas.strategy import DARTS, GumbelDARTS, RandomOneShot
    if name == "darts":
        return DARTS()
    if name == "gumbel-darts":
        return GumbelDARTS()
    if name == "random-oneshot":
        return RandomOneShot(filter=lambda sample: problem.within_budget(dict(sample)))
    raise ValueError(f"name must be one of {list(ONESHOT)}, but got {name!r}.")


def oneshot_unavailable(name: str, problem) -> str:
    """Why a one-shot strategy cannot run on this problem ("" when it can): it must be a training problem
    and the strategy must be able to turn the space into a supernet."""
    if not hasattr(problem, "fresh_space"):
        return f"{name} skipped: one-shot strategies train a supernet; the {problem.track} track trains nothing."
    try:
        with quiet_nni():
            make_strategy(name, problem).mutate_model(problem.fresh_space())
    except Exception as err:  # the strategy's own refusal, named
        return (f"{name} skipped: it cannot build a supernet of space {problem.space_name!r} "
                f"({type(err).__name__}: {err}).")
    return ""


def _loaders(problem):
    import torch
    from nni.nas.evaluator.pytorch import DataLoader
    from torch.utils.data import TensorDataset

    def dataset(x, y):
        x = torch.as_tensor(x)
        if x.shape[1] != problem.space_in_channels:
            x = x.repeat(1, problem.space_in_channels // x.shape[1], 1, 1)
        return TensorDataset(x, torch.as_tensor(y))

    d = problem.data
    train = DataLoader(dataset(d.x_train, d.y_train), batch_size=problem.batch_size, shuffle=True, drop_last=True)
    val = DataLoader(dataset(d.x_eval, d.y_eval), batch_size=problem.batch_size, drop_last=True)
    return train, val


def _quiet_lightning():
    """Lightning prints its device summary and tips at INFO on every fit: keep warnings only meanwhile."""
    return loggers_at(("pytorch_lightning", "lightning.pytorch", "lightning_fabric"), logging.WARNING)


def _export(strategy, name: str) -> dict:
    if name == "random-oneshot":  # NNI's export ignores the filter: draw through the filtered resample instead
        module = strategy.oneshot_module
        module.set_model(strategy.supernet)
        return {k: v for k, v in module.resample().items()}
    return dict(next(strategy.list_models()).sample)


def run_oneshot(problem, name: str, *, n_max: int, seed: int) -> RunRecord:
    """Train the supernet, export, train the export; the record's one candidate is the supernet's cost with the
    exported network's figures."""
    import pytorch_lightning as pl
    from nni.nas.evaluator.pytorch import Classification
    from nni.nas.execution import SequentialExecutionEngine
    from nni.nas.space import RawFormatModelSpace

    clock = _Clock()
    t0 = time.perf_counter()
    pl.seed_everything(seed, verbose=False)
    accelerator = "gpu" if problem._device.type == "cuda" else "cpu"
    train, val = _loaders(problem)
    with tempfile.TemporaryDirectory() as root, quiet_nni(), _quiet_lightning():
        evaluator = Classification(train_dataloaders=train, val_dataloaders=val, max_epochs=problem.epochs,
                                   num_classes=problem.data.num_classes, accelerator=accelerator, devices=1,
                                   logger=False, enable_checkpointing=False, enable_progress_bar=False,
                                   enable_model_summary=False, default_root_dir=root)
        strategy = make_strategy(name, problem)
        space = RawFormatModelSpace(problem.fresh_space(), evaluator)
        s0, c0 = time.perf_counter(), time.process_time()
        strategy(space, SequentialExecutionEngine())
        if accelerator == "gpu":
            import torch
            torch.cuda.synchronize()
        supernet_s = time.perf_counter() - s0
        clock.in_eval += time.process_time() - c0  # supernet training is the GPU cost, not search logic
        sample = _export(strategy, name)
    c1 = time.process_time()
    final = problem.evaluate(sample)
    clock.in_eval += time.process_time() - c1
    within = problem.within_budget(sample)
    cand = Candidate(final.arch, final.accuracy, final.flops, final.params, supernet_s, clock.search_cpu())
    note = {"supernet_s": round(supernet_s, 3), "final_training_s": round(final.gpu_s, 3), "within_budget": within}
    if not within:
        note["warning"] = f"{name} has no FLOPs/params budget: its export is over budget {problem.budget.name}"
    return RunRecord(problem.track, name, problem.budget.name, seed, n_max, problem.reference_accuracy,
                     candidates=[cand], search_cpu_s=clock.search_cpu(), wall_s=time.perf_counter() - t0,
                     device=problem.device, note=json.dumps(note))
