"""The latency of a frozen NNI network, measured on this machine: MathNAS's latency where no table predicts it.

:class:`MeasuredLatency` ``.profile(sample)`` (the interface of NNI's profilers) builds the network of ``sample``
the way a trial gets it (``model_space.freeze(sample).executable_model()``), puts it in eval mode on ``device``
and times it under ``torch.inference_mode()`` on a fixed random input of ``input_size`` as a latency table's
units are timed (:func:`deepmad_nni.timing.median_ms`: warm-up, median of repeats, the thread's CPU time with
one CPU thread, else the wall clock).  While it measures, torch's intra-op threads are pinned to ``threads`` and
denormals are flushed (:func:`pinned`, the settings of ``latency_profile``); both are restored afterwards, so
training in the same process (NNI's sequential engine) keeps its own settings.

Each sample is measured once and memoised: a design keeps the figure its budget check saw.  A measurement is
noisy (other processes, frequency scaling, caches), so a budget checked with it holds **as measured at check
time**; the same network measured again can differ by a few percent, and by up to 2x on a busy machine.
"""
from __future__ import annotations

from contextlib import contextmanager

from deepmad_nni.latency_profile import settings_of
from deepmad_nni.timing import median_ms

WARMUP = 3      # latency_profile.profile's defaults
REPEATS = 10


def flushing_denormals() -> bool:
    """Whether torch flushes denormal floats now (torch has no getter: a denormal reads back as 0 when it does)."""
    import torch
    return float(torch.tensor([1e-320], dtype=torch.float64).mul(1.0).item()) == 0.0


@contextmanager
def pinned(threads: int, *, flush_denormal: bool = True):
    """torch's intra-op threads set to ``threads`` and denormal flushing to ``flush_denormal`` inside the block;
    the previous values after it."""
    import torch
    threads_before, flush_before = torch.get_num_threads(), flushing_denormals()
    torch.set_num_threads(threads)
    torch.set_flush_denormal(flush_denormal)
    try:
        yield
    finally:
        torch.set_num_threads(threads_before)
        torch.set_flush_denormal(flush_before)


class MeasuredLatency:
    """Milliseconds of the frozen network of a sample of ``model_space`` (an NNI ExecutableModelSpace) on an input
    of ``input_size`` (N, C, H, W) on ``device`` ("cpu" | "cuda"), ``threads`` torch threads; memoised."""

    def __init__(self, model_space, input_size, *, device: str = "cpu", threads: int = 1, warmup: int = WARMUP,
                 repeats: int = REPEATS):
        self.settings = settings_of(device=device, batch_size=int(input_size[0]), threads=threads)
        self.model_space = model_space
        self.input_size = tuple(int(n) for n in input_size)
        self.warmup, self.repeats = warmup, repeats
        self.measured: dict = {}      # repr of the sorted sample -> ms

    def profile(self, sample: dict) -> float:
        key = repr(sorted(sample.items()))
        if key not in self.measured:
            self.measured[key] = self._measure(sample)
        return self.measured[key]

    def _measure(self, sample: dict) -> float:
        import torch

        from deepmad_nni.steady_memory import keep_freed_memory
        keep_freed_memory()        # no page faults in the timings, as latency tables are measured
        device = self.settings["device"]
        model = self.model_space.freeze(sample).executable_model().to(device).eval()
        x = torch.randn(*self.input_size, generator=torch.Generator().manual_seed(0)).to(device)
        with pinned(self.settings["threads"], flush_denormal=self.settings["flush_denormal"]), torch.inference_mode():
            return float(median_ms(lambda: model(x), device=device, clock=self.settings["clock"], warmup=self.warmup,
                                   repeats=self.repeats))

    def describe(self) -> str:
        s = self.settings
        return (f"measured on {s['device']} ({s['device_name']}), input {self.input_size}, {s['threads']} thread(s), "
                f"median of {self.repeats} after {self.warmup} warm-up, as measured at check time")
