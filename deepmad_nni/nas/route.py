"""One design route for every NNI model space: the DeepMAD program over a space, whatever reads it.

:func:`route_of` picks how a space is read:

* :class:`CoreRoute`: the package's spaces (``search_spaces``) and NAS-Bench-Macro map to a core ``Family``;
  :func:`deepmad_nni.core.solve` solves the program with its proven status;
* :class:`ReaderRoute`: any other space of 2-d convolutions (``nni.nas.hub.pytorch`` spaces, a user's) is
  read by :func:`deepmad_nni.nas.reader.read_space` and solved by :func:`deepmad_nni.nas.solver.solve_space`.

Both give the same things: ``solve`` (a core ``DesignResult`` and one :class:`DesignRecord` per distinct
network, best first), ``score`` (a core ``Score`` of any sample, without freezing it), ``network`` (a key
that is equal for samples building the same network), ``rho_range`` and ``default_rho``.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, field

from deepmad_nni.core.rho_range import RhoRange
from deepmad_nni.core.score import Score

PAPER_RHO = 0.5   # the paper's rho_0 for MobileNet-style blocks: the default where the space reaches it


class DeepMADInfeasible(ValueError):
    """The program has no design: the message names the limits and the range the space reaches."""


@dataclass
class DesignRecord:
    """A design as submitted: the full sample, its DeepMAD figures, the solver status and gap, the metric."""

    sample: dict
    score: Score
    status: str
    gap: float
    metric: float | None = None
    device: dict = field(default_factory=dict)   # latency_ms / max_feature_map under device budgets (core/device_budgets.py)

    entropy = property(lambda self: self.score.entropy)
    effectiveness = property(lambda self: self.score.effectiveness)
    rho = effectiveness
    q = property(lambda self: self.score.q)
    objective = property(lambda self: self.score.objective)
    flops = property(lambda self: self.score.flops)
    params = property(lambda self: self.score.params)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "DesignRecord":
        s = dict(d["score"])
        s["stage_entropy"], s["depths"] = tuple(s["stage_entropy"]), tuple(s.get("depths", ()))
        return cls(dict(d["sample"]), Score(**s), d["status"], d["gap"], d.get("metric"), dict(d.get("device", {})))


def raw_space(executable):
    """The ``nn.Module`` model space behind an NNI ``ExecutableModelSpace`` (or the module itself)."""
    from torch import nn
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
    from search_spaces.nas_bench_macro import NasBenchMacroSpace, key_of_sample, sample_of_key
    if isinstance(space, NasBenchMacroSpace):
        from deepmad_nni.benchmarks.nas_bench_macro import architecture_of_key, key_of_architecture
        from deepmad_nni.core import get_family
        return (get_family("nas-bench-macro"), lambda arch: sample_of_key(key_of_architecture(arch)),
                lambda sample: architecture_of_key(key_of_sample(sample)))
    return None


def full_sample(space, sample: dict) -> dict:
    """Every label of ``space`` (NNI's freeze needs them all); labels the sample lacks take their first value."""
    out = {}
    for label, m in space.simplify().items():
        values = getattr(m, "values", None)
        if values is None:
            continue
        out[label] = sample[label] if label in sample else values[0]
    return out


def _digest(material) -> str:
    return hashlib.sha1(repr(material).encode()).hexdigest()[:20]


class _Route:
    """What both routes share: the space, its labels, full samples and records."""

    family_rho: float | None = None

    def __init__(self, space):
        self.space = space
        self.mutables = {k: m for k, m in space.simplify().items() if getattr(m, "values", None) is not None}

    def full(self, sample: dict) -> dict:
        return {k: sample.get(k, m.values[0]) for k, m in self.mutables.items()}

    def default_rho(self, rho_range=None) -> float:
        """rho_0 when the user gives none: the family's (the package's spaces); else the paper's 0.5 when the
        space reaches it within the budgets, else the geometric middle of the range it reaches (``rho_range``)."""
        if self.family_rho is not None:
            return self.family_rho
        if rho_range is None or rho_range.low <= PAPER_RHO:
            return PAPER_RHO
        return math.sqrt(rho_range.low * rho_range.high)

    def resolve_rho(self, rho, *, flops=None, params=None, alpha=None, beta=10.0, convention="official") -> float:
        """``rho`` when given, else :meth:`default_rho` (the rho range is computed only where it decides)."""
        if rho is not None:
            return rho
        if self.family_rho is not None:
            return self.family_rho
        return self.default_rho(self.rho_range(flops=flops, params=params, alpha=alpha, beta=beta,
                                               convention=convention))

    def rho_range(self, *, flops=None, params=None, alpha=None, beta=10.0, convention="official") -> RhoRange:
        """The :class:`RhoRange` of the space within the budgets; :class:`DeepMADInfeasible` when no sample
        meets them."""
        try:
            return self._rho_range(flops=flops, params=params, alpha=alpha, beta=beta, convention=convention)
        except DeepMADInfeasible:
            raise
        except ValueError as err:
            raise DeepMADInfeasible(f"DeepMAD found no design: {err}") from err

    def predicted_latency(self, sample: dict, table) -> float:
        """Milliseconds ``table`` (a core LatencyTable) predicts for the network of ``sample``."""
        raise ValueError(f"latency budgets need a space whose units a latency table can hold, but got "
                         f"{type(self.space).__name__}.")

    def feature_map(self, sample: dict) -> float:
        """Elements per sample of the largest block input/output tensor of the network of ``sample``."""
        raise ValueError(f"max_feature_map needs a space that maps to a core family (the package's search_spaces, "
                         f"NAS-Bench-Macro), but got {type(self.space).__name__}.")

    def records(self, result, designs_and_samples) -> list[DesignRecord]:
        out, seen = [], set()
        for sample, score in designs_and_samples:
            full = self.full(sample)
            key = self.network(full)
            if key in seen:
                continue
            seen.add(key)
            out.append(DesignRecord(full, score, result.status, max(0.0, result.bound - score.objective)))
        return out


class CoreRoute(_Route):
    """A space that maps to a core Family (see :func:`core_mapping`)."""

    def __init__(self, space, mapping):
        super().__init__(space)
        self.family, self.sample_of_architecture, self.architecture_of_sample = mapping
        self.family_rho = self.family.default_rho
        self.num_stages = self.family.num_stages()

    def solve(self, *, flops=None, params=None, rho, alpha=None, beta=10.0, convention="official", top_k=1,
              time_limit=None, budgets=None):
        """``budgets``: latency / latency_table / max_feature_map of :func:`deepmad_nni.core.solve`."""
        from deepmad_nni.core import solve
        result = solve(self.family, flops=flops, params=params, rho=rho, alpha=alpha, beta=beta,
                       convention=convention, top_k=top_k, time_limit=time_limit, **(budgets or {}))
        pairs = [(self.sample_of_architecture(d.architecture), d.score) for d in result.designs]
        records = self.records(result, pairs)
        if budgets:
            from deepmad_nni.core.device_budgets import DeviceBudgets
            device = DeviceBudgets(budgets.get("latency"), budgets.get("latency_table"), budgets.get("max_feature_map"))
            for record in records:
                record.device = device.figures(self, record.sample)
        return result, records

    def predicted_latency(self, sample: dict, table) -> float:
        from deepmad_nni.core.latency import predicted_latency
        return predicted_latency(self.architecture_of_sample(self.full(sample)), table)

    def feature_map(self, sample: dict) -> float:
        from deepmad_nni.core.latency_units import feature_map
        return float(feature_map(self.architecture_of_sample(self.full(sample))))

    def score(self, sample, *, alpha=None, beta=10.0, convention="official") -> Score:
        from deepmad_nni.core import score
        return score(self.architecture_of_sample(self.full(sample)), alpha=alpha, beta=beta, convention=convention)

    def network(self, sample) -> str:
        return _digest(self.architecture_of_sample(self.full(sample)).canonical())

    def _rho_range(self, *, flops=None, params=None, alpha=None, beta=10.0, convention="official") -> RhoRange:
        from deepmad_nni.core.rho_range import rho_range
        return rho_range(self.family, flops=flops, params=params, alpha=alpha, beta=beta, convention=convention)


class ReaderRoute(_Route):
    """Any other space of convolutions, read by :func:`deepmad_nni.nas.reader.read_space`."""

    def __init__(self, space, input_size=None):
        super().__init__(space)
        from .reader import read_space
        self.desc = read_space(space, input_size)
        self.num_stages = self.desc.num_stages

    def solve(self, *, flops=None, params=None, rho, alpha=None, beta=10.0, convention="official", top_k=1,
              time_limit=None, budgets=None):
        """``budgets``: latency / latency_table (:mod:`deepmad_nni.nas.space_latency`); max_feature_map is refused."""
        from deepmad_nni.core.device_budgets import DeviceBudgets
        device = DeviceBudgets.create(**(budgets or {}))
        if device.max_feature_map is not None:
            raise ValueError(f"max_feature_map needs a space that maps to a core family (the package's "
                             f"search_spaces, NAS-Bench-Macro), but got {type(self.space).__name__}: the reader does "
                             "not delimit blocks, whose largest input/output it bounds (latency works here).")
        program = dict(flops=flops, params=params, rho=rho, alpha=alpha, beta=beta, convention=convention,
                       top_k=top_k, time_limit=time_limit, seed=0)
        if device.active:
            from .space_latency import solve_with_latency
            result = solve_with_latency(self.desc, self.units(), latency=device.latency,
                                        latency_table=device.latency_table, **program)
        else:
            from .solver import solve_space
            result = solve_space(self.desc, **program)
        records = self.records(result, [(d.sample, d.score) for d in result.designs])
        if device.active:
            for record in records:
                record.device = device.figures(self, record.sample)
        return result, records

    def units(self):
        """The space's latency units (:class:`~deepmad_nni.nas.space_units.SpaceUnits`, built once)."""
        if getattr(self, "_units", None) is None:
            from .space_units import SpaceUnits
            self._units = SpaceUnits(self.space, self.desc)
        return self._units

    def predicted_latency(self, sample: dict, table) -> float:
        from deepmad_nni.core.latency import as_table
        return self.units().predicted_latency(self.full(sample), as_table(table))

    def score(self, sample, *, alpha=None, beta=10.0, convention="official") -> Score:
        return self.desc.evaluate(self.desc.canonical(self.full(sample)), alpha=alpha, beta=beta,
                                  convention=convention)

    def network(self, sample) -> str:
        return _digest(self.desc.signature(self.desc.canonical(self.full(sample))))

    def _rho_range(self, *, flops=None, params=None, alpha=None, beta=10.0, convention="official") -> RhoRange:
        from .solver import ENUMERATE_LIMIT, rho_range
        low, high = rho_range(self.desc, flops=flops, params=params, alpha=alpha, beta=beta, convention=convention)
        return RhoRange(low, high, exact=self.desc.size() <= ENUMERATE_LIMIT)


def route_of(space, input_size=None):
    """The route of ``space`` (a raw NNI ModelSpace or an ExecutableModelSpace)."""
    space = raw_space(space)
    mapping = core_mapping(space)
    if mapping is None:
        return ReaderRoute(space, input_size)
    fam = mapping[0]
    if input_size is not None and (int(input_size[1]), int(input_size[2]), int(input_size[3])) != \
            (fam.in_channels, fam.resolution, fam.resolution):
        raise ValueError(f"input_size must be (N, {fam.in_channels}, {fam.resolution}, {fam.resolution}) on this space "
                         f"(its family {fam.name!r} is defined at that input), but got {tuple(input_size)!r}; for "
                         "another input, build the space for it or set the strategy's route (CoreRoute) yourself.")
    return CoreRoute(space, mapping)


def infeasible_message(route, result, *, flops, params, rho, alpha, beta, convention) -> str:
    """Why the program has no design, with the range of rho the space reaches within the budgets."""
    if "the space reaches rho" in result.message:     # the reader route's solver proves and states the range itself
        return f"DeepMAD found no design with rho_0={rho:.4g}: {result.message}"
    try:
        rr = route.rho_range(flops=flops, params=params, alpha=alpha, beta=beta, convention=convention)
    except DeepMADInfeasible as err:       # no sample meets FLOPs/params at all
        return str(err)
    hint = (f"within flops={flops} and params={params} the space reaches {rr}; choose rho_0 >= {rr.low:.4g}"
            if rho < rr.low else f"the space reaches {rr} within flops={flops} and params={params}")
    return f"DeepMAD found no design with rho_0={rho:.4g} ({result.status}: {result.message}); {hint}."
