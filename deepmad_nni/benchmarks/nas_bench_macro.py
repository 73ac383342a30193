"""NAS-Bench-Macro (CIFAR-10): lookups of fully trained accuracies, and its keys <-> family designs.

The benchmark file is read from a path the user gives; ``default_path()`` finds the copy under
``../shared/benchmarks/nas-bench-macro/`` beside a checkout, or ``$DEEPMAD_NAS_BENCH_MACRO``.
A key is 8 characters, one per searchable layer: 0 identity, 1 inverted residual k3e3, 2 k5e6.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FILENAME = "nas-bench-macro_cifar10.json"
ENV_VAR = "DEEPMAD_NAS_BENCH_MACRO"
NUM_LAYERS = 8


def default_path() -> Path | None:
    """The benchmark file from ``$DEEPMAD_NAS_BENCH_MACRO`` or ``../shared`` beside the checkout, if any."""
    env = os.environ.get(ENV_VAR)
    candidates = [Path(env)] if env else []
    here = Path(__file__).resolve()
    for parent in list(here.parents)[:5] + [Path.cwd(), Path.cwd().parent]:
        candidates.append(parent.parent / "shared" / "benchmarks" / "nas-bench-macro" / FILENAME)
        candidates.append(parent / "shared" / "benchmarks" / "nas-bench-macro" / FILENAME)
    for c in candidates:
        if c.is_dir():
            c = c / FILENAME
        if c.is_file():
            return c
    return None


@dataclass(frozen=True)
class Entry:
    key: str
    mean_acc: float
    test_acc: tuple[float, ...]
    params: int
    flops: int


class NasBenchMacro:
    """The table: ``bench[key]`` -> :class:`Entry`; ``best(flops=, params=)`` the best key within a budget."""

    def __init__(self, path):
        path = Path(path)
        if path.is_dir():
            path = path / FILENAME
        if not path.is_file():
            raise FileNotFoundError(f"benchmark_path must point to {FILENAME} (or its folder), but {str(path)!r} "
                                    "does not exist.")
        self.path = path
        raw = _load(str(path))
        self.entries = {k: Entry(k, float(v["mean_acc"]), tuple(v["test_acc"]), int(v["params"]), int(v["flops"]))
                        for k, v in raw.items()}

    def __getitem__(self, key: str) -> Entry:
        if key not in self.entries:
            raise KeyError(f"NAS-Bench-Macro has no architecture {key!r} (8 characters of 0/1/2).")
        return self.entries[key]

    def __len__(self) -> int:
        return len(self.entries)

    def within(self, flops=None, params=None) -> list[Entry]:
        return [e for e in self.entries.values()
                if (flops is None or e.flops <= flops) and (params is None or e.params <= params)]

    def best(self, flops=None, params=None) -> Entry:
        cands = self.within(flops, params)
        if not cands:
            raise ValueError(f"No NAS-Bench-Macro architecture fits flops<={flops} and params<={params}.")
        return max(cands, key=lambda e: e.mean_acc)


@lru_cache(maxsize=4)
def _load(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def key_of_architecture(arch) -> str:
    """The benchmark key of an architecture of the ``nas-bench-macro`` family."""
    layers = arch.stages[1:1 + NUM_LAYERS]
    if len(arch.stages) != NUM_LAYERS + 2:
        raise ValueError(f"A NAS-Bench-Macro architecture has {NUM_LAYERS + 2} stages, but got {len(arch.stages)}.")
    chars = []
    for st in layers:
        if st.block == "skip":
            chars.append("0")
        elif st.block == "mbconv" and st.kernel == 3:
            chars.append("1")
        elif st.block == "mbconv" and st.kernel == 5:
            chars.append("2")
        else:
            raise ValueError(f"Not a NAS-Bench-Macro layer: {st}.")
    return "".join(chars)


def choices_of_key(key: str):
    """The family choices (one per slot) of a benchmark key."""
    from ..core.presets import get_family
    fam = get_family("nas-bench-macro")
    if len(key) != NUM_LAYERS or set(key) - set("012"):
        raise ValueError(f"key must be {NUM_LAYERS} characters of 0/1/2, but got {key!r}.")
    choices, c_in = [], fam.in_channels
    for j, slot in enumerate(fam.slots):
        op = slot.ops[int(key[j - 1])] if 1 <= j <= NUM_LAYERS else slot.ops[0]
        c_out = slot.widths[0]
        choices.append((c_out, op, 1, op.mid(c_in, c_out)))
        c_in = c_out
    return tuple(choices)


def architecture_of_key(key: str):
    from ..core.presets import get_family
    return get_family("nas-bench-macro").architecture(choices_of_key(key))
