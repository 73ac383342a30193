"""From an NNI model space to DeepMAD designs: the core route (spaces with a core Family) or the reader route."""
from __future__ import annotations

from torch import nn


def raw_space(executable):
    """The ``nn.Module`` model space behind an NNI ``ExecutableModelSpace`` (or the module itself)."""
    if isinstance(executable, nn.Module):
        return executable
    model = getattr(executable, "model", None)
    if isinstance(model, nn.Module):
        return model
    if model is not None and hasattr(model, "trace_symbol") and hasattr(model, "get"):
        cached = getattr(executable, "_deepmad_raw", None)
        if cached is None:
            cached = model.get()   # rebuild the space from its traced constructor call (not a candidate)
            try:
                executable._deepmad_raw = cached
            except AttributeError:
                pass
        return cached
    raise ValueError("DeepMAD needs a PyTorch model space (NNI model_format 'simplified' or 'raw'), but got "
                     f"{type(executable).__name__}.")


def core_mapping(space):
    """(family, sample_of_architecture, architecture_of_sample) when ``space`` maps to a core Family, else None."""
    config = getattr(space, "config", None)
    from search_spaces.staged import SpaceConfig
    if isinstance(config, SpaceConfig):
        return config.family(), config.sample_of_architecture, config.architecture_of_sample
    try:
        from search_spaces.nas_bench_macro import NasBenchMacroSpace, key_of_sample, sample_of_key
    except ImportError:
        return None
    if isinstance(space, NasBenchMacroSpace):
        from deepmad_nni.benchmarks.nas_bench_macro import architecture_of_key, key_of_architecture
        from deepmad_nni.core import get_family
        return (get_family("nas-bench-macro"), lambda arch: sample_of_key(key_of_architecture(arch)),
                lambda sample: architecture_of_key(key_of_sample(sample)))
    return None


def _full(space, sample: dict) -> dict:
    """Every label of ``space`` (NNI's freeze needs them all); labels the sample lacks take their first value."""
    out = {}
    for label, m in space.simplify().items():
        values = getattr(m, "values", None)
        if values is None:
            continue
        out[label] = sample[label] if label in sample else values[0]
    return out


def solve_on_space(space, *, flops=None, params=None, rho=None, alpha=None, beta=10.0, convention="official",
                   top_k=1, seed=None, time_limit=10.0, max_evaluations=None, input_size=None):
    """Solve DeepMAD's program over ``space``; returns (solver result, [DesignRecord]) best first."""
    from .strategy import DesignRecord
    mapping = core_mapping(space)
    records, seen = [], set()
    if mapping is not None:
        from deepmad_nni.core import solve
        family, sample_of_arch, _ = mapping
        result = solve(family, flops=flops, params=params, rho=rho, alpha=alpha, beta=beta, convention=convention,
                       top_k=top_k, time_limit=time_limit)
        for d in result.designs:
            sample = _full(space, sample_of_arch(d.architecture))
            key = tuple(sorted(sample.items()))
            if key in seen:
                continue
            seen.add(key)
            s = d.score
            records.append(DesignRecord(sample, s.entropy, s.effectiveness, s.q, s.objective, s.flops, s.params,
                                        result.status, max(0.0, result.bound - s.objective)))
        return result, records
    from .reader import read_space
    from .solver import solve_space
    desc = read_space(space, input_size)
    result = solve_space(desc, flops=flops, params=params, rho=0.5 if rho is None else rho, alpha=alpha, beta=beta,
                         convention=convention, top_k=top_k, time_limit=time_limit, seed=seed,
                         max_evaluations=max_evaluations)
    for d in result.designs:
        sample = _full(space, d.sample)
        key = tuple(sorted(sample.items()))
        if key in seen:
            continue
        seen.add(key)
        records.append(DesignRecord(sample, d.entropy, d.effectiveness, d.q, d.objective, d.flops, d.params,
                                    result.status, max(0.0, result.bound - d.objective)))
    return result, records
