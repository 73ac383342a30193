"""Cost of a fully trained candidate in GPU-seconds: a documented model for the benchmark track.

A candidate's training is ``epochs`` passes over ``train_images`` (forward + backward = 3x the forward
FLOPs) plus one evaluation pass over ``test_images`` per epoch, at 2 FLOPs per multiply-accumulate, run at
an effective ``gpu_flops`` per second, plus a fixed ``overhead_s`` per epoch (data loading, kernel launches,
evaluation bookkeeping, which dominate for such small networks):

    gpu_s(macs) = epochs * (overhead_s + 2 * macs * (3 * train_images + test_images) / gpu_flops)

The defaults are NAS-Bench-Macro's recorded recipe (CIFAR-10, 50 epochs, 50k train / 10k test, batch 256)
and ASSUMED hardware constants (1 TFLOP/s effective, 5 s per epoch of overhead), not a measurement: no GPU
was available where they were set.  Small depthwise-separable CIFAR networks run far below a GPU's peak
(tiny per-layer matrices, memory-bound depthwise convolutions), so ~1 TFLOP/s effective and a few seconds of
data pipeline per epoch are the order of magnitude commonly seen for MobileNet-V2-sized CIFAR training in
fp32 on a V100-class GPU.  ``calibrate`` measures both constants on the device at hand (see
``deepmad_nni.compare.calibrate``); pass the measured values to ``CostModel`` to replace the assumption.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..core.program import positive_number


@dataclass(frozen=True)
class CostModel:
    """GPU-seconds to fully train one candidate from its MACs (multiply-accumulates per image)."""

    epochs: int = 50
    train_images: int = 50_000
    test_images: int = 10_000
    batch_size: int = 256
    gpu_flops: float = 1.0e12
    overhead_s: float = 5.0
    source: str = "assumed (no GPU measured): 1 TFLOP/s effective, 5 s/epoch overhead"

    def __post_init__(self):
        for name in ("epochs", "train_images", "test_images", "batch_size", "gpu_flops"):
            positive_number(name, getattr(self, name), allow_none=False)
        if not (isinstance(self.overhead_s, (int, float)) and self.overhead_s >= 0):
            raise ValueError(f"overhead_s must be a non-negative number of seconds, but got {self.overhead_s!r}.")

    def flops_per_epoch(self, macs: float) -> float:
        """Training + evaluation FLOPs of one epoch (2 FLOPs per MAC; backward = 2x forward)."""
        return 2.0 * positive_number("macs", macs, allow_none=False) * (3 * self.train_images + self.test_images)

    def gpu_seconds(self, macs: float) -> float:
        return self.epochs * (self.overhead_s + self.flops_per_epoch(macs) / self.gpu_flops)

    def gpu_hours(self, macs: float) -> float:
        return self.gpu_seconds(macs) / 3600.0

    def to_dict(self) -> dict:
        return asdict(self)
