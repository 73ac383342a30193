"""Real training and evaluation of a built network on an :class:`~deepmad_nni.data.ImageData`.

Stable API::

    result = train_and_evaluate(model, data, epochs=5, batch_size=128, lr=0.05, device=None,
                                report=None, seed=0)
    result["accuracy"]     # top-1 accuracy on data.x_eval after the last epoch (fraction in [0, 1])
    result["accuracies"]   # one per epoch; result["best_accuracy"] their maximum
    result["eval_split"]   # "val" or "test"; result["test_accuracy"] on data.x_test
    result["wall_time_s"], result["device"] ("cpu" / "cuda:0"), result["device_name"] (CPU or GPU model),
    result["epochs"]       # epochs run; result["train_loss"] mean loss per epoch

SGD with Nesterov momentum 0.9, weight decay 5e-4 (not on BatchNorm and bias), cosine learning rate from
``lr`` to 0 over all steps, cross-entropy with ``label_smoothing``.  ``report(epoch, accuracy)`` is called
after every epoch (epoch counts from 1); an exception it raises (e.g. ``optuna.TrialPruned``) stops the
training and propagates.  ``seed`` fixes the batch order; the weights are initialised when the model is
built, so call :func:`seed_everything` before :func:`deepmad_nni.builder.build_model` for reproducible runs.
"""
from __future__ import annotations

import math
import platform
import time

import numpy as np
import torch
from torch import nn


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and numpy's global generator."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def resolve_device(device=None) -> torch.device:
    """``None`` -> CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be None, 'cpu', 'cuda' or 'cuda:N', but got {device!r}.") from None


def device_name(device: torch.device) -> str:
    """The GPU's or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _check(name, value, kind, minimum):
    if not isinstance(value, kind) or isinstance(value, bool) or not value >= minimum or \
            (isinstance(value, float) and not math.isfinite(value)):
        raise ValueError(f"{name} must be a {'positive integer' if kind is int else 'positive number'}, "
                         f"but got {value!r}.")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    """Top-1 accuracy of ``model`` in eval mode."""
    model.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        correct += (model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum().item()
    return correct / max(1, len(y))


def _param_groups(model: nn.Module, weight_decay: float):
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def train_and_evaluate(model: nn.Module, data, *, epochs: int, batch_size: int = 128, lr: float = 0.05,
                       momentum: float = 0.9, weight_decay: float = 5e-4, label_smoothing: float = 0.0,
                       device=None, report=None, seed: int = 0) -> dict:
    """Train ``model`` on ``data.x_train`` and evaluate on ``data.x_eval`` every epoch (module docstring)."""
    _check("epochs", epochs, int, 1)
    _check("batch_size", batch_size, int, 1)
    _check("lr", lr, (int, float), 1e-12)
    if report is not None and not callable(report):
        raise ValueError(f"report must be a callable (epoch, accuracy) or None, but got {report!r}.")
    dev = resolve_device(device)
    t0 = time.perf_counter()
    model = model.to(dev)
    x_train = torch.as_tensor(data.x_train, device=dev)
    y_train = torch.as_tensor(data.y_train, device=dev)
    x_eval, y_eval = torch.as_tensor(data.x_eval, device=dev), torch.as_tensor(data.y_eval, device=dev)
    n = len(y_train)
    steps_per_epoch = max(1, n // batch_size) if n >= batch_size else 1
    optimizer = torch.optim.SGD(_param_groups(model, weight_decay), lr=lr, momentum=momentum, nesterov=momentum > 0)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    generator = torch.Generator().manual_seed(seed)
    accuracies, losses = [], []
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(n, generator=generator).to(dev)
        total, count = 0.0, 0
        for step in range(steps_per_epoch):
            idx = perm[step * batch_size:(step + 1) * batch_size]  # full batches; BatchNorm needs > 1 image
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.item() * len(idx)
            count += len(idx)
        losses.append(total / max(1, count))
        accuracies.append(evaluate(model, x_eval, y_eval))
        if report is not None:
            report(epoch, accuracies[-1])
    test_accuracy = (accuracies[-1] if data.eval_split == "test" else
                     evaluate(model, torch.as_tensor(data.x_test, device=dev), torch.as_tensor(data.y_test, device=dev)))
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return {"accuracy": accuracies[-1], "accuracies": accuracies, "best_accuracy": max(accuracies),
            "eval_split": data.eval_split, "test_accuracy": test_accuracy, "train_loss": losses,
            "wall_time_s": time.perf_counter() - t0, "device": str(dev), "device_name": device_name(dev),
            "epochs": len(accuracies), "train_images": n}
