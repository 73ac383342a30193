"""NAS-Bench-Macro (CIFAR-10): lookups of fully trained accuracies, and its keys <-> family designs.

The table (Apache-2.0, by Su et al.; see ``data/NOTICE``) ships inside the package, gzip-compressed, as
``deepmad_nni/benchmarks/data/nas-bench-macro_cifar10.json.gz``.  Which file is read: an explicit
``benchmark_path`` argument (``--benchmark-path``), else ``$DEEPMAD_NAS_BENCH_MACRO``, else the packaged
copy (:func:`resolve_path`).  ``.json`` and ``.json.gz`` files (or a folder holding one) are both read.
A key is 8 characters, one per searchable layer: 0 identity, 1 inverted residual k3e3, 2 k5e6.
"""
from __future__ import annotations

import gzip
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

FILENAME = "nas-bench-macro_cifar10.json"
ENV_VAR = "DEEPMAD_NAS_BENCH_MACRO"
NUM_LAYERS = 8
PACKAGED = Path(__file__).resolve().parent / "data" / (FILENAME + ".gz")


def packaged_path() -> Path | None:
    """The copy shipped inside the package, or None when the installation lacks it."""
    return PACKAGED if PACKAGED.is_file() else None


def default_path() -> Path | None:
    """The file read when no path is given: ``$DEEPMAD_NAS_BENCH_MACRO`` when set, else the packaged copy.

    A set variable is returned as it is, even when nothing is there, so that a wrong setting fails when the
    file is read instead of silently falling back on the packaged copy.  None only when the variable is unset
    and the installation lacks the packaged copy.
    """
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return packaged_path()


def resolve_path(benchmark_path=None) -> Path:
    """``benchmark_path`` when given, else :func:`default_path`; ValueError when there is neither."""
    if benchmark_path is not None:
        return Path(benchmark_path)
    path = default_path()
    if path is None:
        raise ValueError(f"benchmark_path must point to {FILENAME} (or its .gz, or their folder), but got None, "
                         f"${ENV_VAR} is unset and the packaged copy {str(PACKAGED)!r} is missing "
                         "(reinstall deepmad-nni, or give the file's path).")
    return path


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
            path = next((p for p in (path / FILENAME, path / (FILENAME + ".gz")) if p.is_file()), path / FILENAME)
        if not path.is_file():
            raise FileNotFoundError(f"benchmark_path must point to {FILENAME} (or its .gz, or their folder), but "
                                    f"{str(path)!r} does not exist.")
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
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"  # gzip's magic number, whatever the file's name
    with (gzip.open(path, "rt", encoding="utf-8") if gzipped else open(path, encoding="utf-8")) as f:
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
