"""Measure the :class:`CostModel` constants on the device at hand by timing real training steps.

Trains NAS-Bench-Macro networks of different sizes for a few SGD steps at the recipe's batch size on
synthetic 32x32 images, and fits ``epoch_time = overhead_s + flops_per_epoch(macs) / gpu_flops`` by
least squares.  The intercept covers per-step costs only (kernel launches, optimizer); a real data
pipeline adds to it.  On a CPU the fitted figures are CPU-seconds, not GPU-seconds.
"""
from __future__ import annotations

import math
import time

from .cost import CostModel

KEYS = ("00000000", "10101010", "11111111", "22222222")


def calibrate(*, device=None, keys=KEYS, steps: int = 5, warmup: int = 2, base: CostModel | None = None) -> CostModel:
    import numpy as np
    import torch
    from nni.nas.space import model_context

    from search_spaces.nas_bench_macro import NasBenchMacroSpace, sample_of_key

    from ..training import device_name, resolve_device
    from .bench_track import _space_and_profilers
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, but got {steps!r}.")
    base = base or CostModel()
    dev = resolve_device(device)
    _, flops_prof, _ = _space_and_profilers()
    x = torch.randn(base.batch_size, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (base.batch_size,), device=dev)
    steps_per_epoch = math.ceil(base.train_images / base.batch_size)
    eval_batches = math.ceil(base.test_images / base.batch_size)
    macs, epoch_s = [], []
    for key in keys:
        with model_context(sample_of_key(key)):
            model = NasBenchMacroSpace().to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        loss_fn = torch.nn.CrossEntropyLoss()

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            opt.step()

        for _ in range(warmup):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        per_step = (time.perf_counter() - t0) / steps
        epoch_s.append(per_step * (steps_per_epoch + eval_batches / 3.0))  # eval ~ forward only, 1/3 of a step
        macs.append(float(flops_prof.profile(sample_of_key(key))))
    a = np.stack([np.ones(len(macs)), [base.flops_per_epoch(m) for m in macs]], axis=1)
    (overhead, inv_rate), *_ = np.linalg.lstsq(a, np.array(epoch_s), rcond=None)
    if inv_rate <= 0:  # timing noise on a busy machine: fall back to a pure-throughput fit
        overhead, inv_rate = 0.0, float(np.sum(epoch_s) / np.sum(a[:, 1]))
    return CostModel(epochs=base.epochs, train_images=base.train_images, test_images=base.test_images,
                     batch_size=base.batch_size, gpu_flops=float(1.0 / inv_rate), overhead_s=max(0.0, float(overhead)),
                     source=f"calibrated on {device_name(dev)} ({dev.type}) with {steps} timed steps per network, "
                            f"synthetic data; epoch seconds {[round(s, 2) for s in epoch_s]}")
