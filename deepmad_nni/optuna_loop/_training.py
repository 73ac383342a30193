"""Real short training as the evaluator: Fashion-MNIST by default, scikit-learn digits for tests.

The design is trained as a proxy: its stem takes the dataset's channels, its classifier the dataset's
classes, the input is the dataset's resolution, and ``width_multiplier`` scales every width (rounded to
a multiple of 8, at least 8) so that CPU runs stay short.  The validation accuracy (%) after every
epoch is an Optuna intermediate value, so median / Hyperband pruners stop poor designs early.
"""
from __future__ import annotations

import math

from ._design import proxy_architecture
from ._evaluators import Evaluator


class TrainingEvaluator(Evaluator):
    """Train the design for ``epochs`` epochs (SGD, cosine; :mod:`deepmad_nni.training`) and return the
    validation accuracy in %.  ``dataset``: ``"fashion-mnist"`` (Debian ``dataset-fashion-mnist``) or
    ``"digits"``; ``train_size`` / ``test_size`` / ``resolution`` / ``val_fraction`` as in
    :func:`deepmad_nni.data.load_dataset`."""

    name = "training"

    def __init__(self, *, dataset: str = "fashion-mnist", epochs: int = 5, batch_size: int = 128, lr: float = 0.05,
                 width_multiplier: float = 0.25, train_size: int | None = 10000, test_size: int | None = 2000,
                 resolution: int | None = 14, val_fraction: float = 0.1, data_dir=None, device=None, seed: int = 0):
        from ..data import DATASETS
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {list(DATASETS)}, but got {dataset!r}.")
        if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 1:
            raise ValueError(f"epochs must be a positive integer, but got {epochs!r}.")
        if not (isinstance(width_multiplier, (int, float)) and math.isfinite(width_multiplier)
                and width_multiplier > 0):
            raise ValueError(f"width_multiplier must be a positive number, but got {width_multiplier!r}.")
        if dataset == "digits":
            train_size, test_size = None, None
            resolution = 8 if resolution == 14 else resolution
        self.dataset, self.epochs, self.batch_size, self.lr = dataset, epochs, batch_size, lr
        self.width_multiplier, self.seed, self.device_request = float(width_multiplier), seed, device
        self.data_options = dict(train_size=train_size, test_size=test_size, resolution=resolution,
                                 val_fraction=val_fraction, seed=seed)
        self.data_dir = data_dir
        self._data = None
        from ..training import resolve_device
        self.device = str(resolve_device(device))
        self.epochs_run: list[int] = []  # epochs trained by each evaluation in this process

    @property
    def data(self):
        if self._data is None:
            from ..data import load_dataset
            self._data = load_dataset(self.dataset, data_dir=self.data_dir, **self.data_options)
        return self._data

    def signature(self) -> dict:
        return {"evaluator": self.name, "dataset": self.dataset, "epochs": self.epochs, "batch_size": self.batch_size,
                "lr": self.lr, "width_multiplier": self.width_multiplier, "seed": self.seed, **self.data_options}

    def evaluate(self, architecture, report):
        from ..builder import build_model
        from ..training import seed_everything, train_and_evaluate
        data = self.data
        proxy = proxy_architecture(architecture, in_channels=data.in_channels, num_classes=data.num_classes,
                                   resolution=data.resolution, width_multiplier=self.width_multiplier)
        seed_everything(self.seed)
        model = build_model(proxy)
        epochs_done = []

        def per_epoch(epoch: int, accuracy: float) -> None:
            epochs_done.append(epoch)
            report(epoch, 100.0 * accuracy)

        try:
            out = train_and_evaluate(model, data, epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                                     device=self.device_request, report=per_epoch, seed=self.seed)
        finally:
            self.epochs_run.append(len(epochs_done))
        return {"accuracy": 100.0 * out["accuracy"], "test_accuracy": 100.0 * out["test_accuracy"],
                "epochs": out["epochs"], "device_name": out["device_name"], "eval_split": out["eval_split"],
                "proxy_params": sum(p.numel() for p in model.parameters())}
