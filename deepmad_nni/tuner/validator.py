"""The DeepMAD tuner's classArgs: one checking function (pure) and NNI's ClassArgsValidator hook.

classArgs (``tuner: {name: DeepMAD, classArgs: {...}}``):

``family``        a family name (``deepmad-nni`` FAMILIES), or
``structure``     a design in the official structure format, whose stages give strides and block types
``flops``         MACs budget (at least one of ``flops`` / ``params`` is required)
``params``        parameter budget
``rho``           effectiveness bound rho_0 (> 0), or a list of them: a rho sweep (default: the family's)
``alpha``         per-stage entropy weights (default 1, ..., 1, 8); ``beta`` depth-penalty weight (10)
``convention``    ``official`` (default), ``paper`` or ``tinynas``
``top_k``         designs to propose, best first (default 8); after them the tuner reports no more trials
``resolution``, ``in_channels``, ``num_classes``: the trials' input and classes (default: the family's)
``time_limit``    solver time limit in seconds (default 10)
``latency``       latency budget in ms, predicted by ``latency_table`` (docs/latency.md)
``latency_table`` absolute path of a table from ``deepmad-nni latency profile`` (alone: each proposal's predicted
                  latency; NNI does not resolve relative paths in classArgs)
``max_feature_map`` elements per sample of the largest block input/output tensor
"""
from __future__ import annotations

import math

KNOWN = ("family", "structure", "flops", "params", "rho", "alpha", "beta", "convention", "top_k", "resolution",
         "in_channels", "num_classes", "time_limit", "latency", "latency_table", "max_feature_map")


def _number(name, value, *, minimum=0.0, strict=True):
    try:
        v = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        v = float("nan")
    if not math.isfinite(v) or (v <= minimum if strict else v < minimum):
        raise ValueError(f"classArgs.{name} must be a {'positive' if strict else 'non-negative'} finite number, "
                         f"but got {value!r}.")
    return v


def _integer(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"classArgs.{name} must be a positive integer, but got {value!r}.")
    return value


def check_class_args(**kwargs) -> dict:
    """Check the classArgs and return them normalised (numbers as floats / ints); ValueError names the argument."""
    from ..core import FAMILIES, from_structure
    from ..core.score import CONVENTIONS
    unknown = sorted(set(kwargs) - set(KNOWN))
    if unknown:
        raise ValueError(f"classArgs has unknown arguments {unknown}; expected some of {list(KNOWN)}.")
    out = dict(kwargs)
    family, structure = kwargs.get("family"), kwargs.get("structure")
    if (family is None) == (structure is None):
        raise ValueError(f"classArgs.family (one of {sorted(FAMILIES)}) or classArgs.structure must be given, exactly "
                         f"one of them, but got family={family!r}, structure={'given' if structure else None}.")
    if family is not None and family not in FAMILIES:
        raise ValueError(f"classArgs.family must be one of {sorted(FAMILIES)}, but got {family!r}.")
    if structure is not None:
        try:
            from_structure(structure)
        except (ValueError, TypeError, AttributeError, KeyError) as err:
            raise ValueError(f"classArgs.structure must be a design in the structure format: {err}") from None
    if kwargs.get("flops") is None and kwargs.get("params") is None:
        raise ValueError("classArgs.flops or classArgs.params (a budget) must be given, but got neither.")
    for name in ("flops", "params"):
        if kwargs.get(name) is not None:
            out[name] = _number(name, kwargs[name])
    rho = kwargs.get("rho")
    if rho is not None:
        rhos = rho if isinstance(rho, (list, tuple)) else [rho]
        if not rhos:
            raise ValueError("classArgs.rho must be a positive number or a non-empty list of them, but got [].")
        out["rho"] = [_number("rho", r) for r in rhos] if isinstance(rho, (list, tuple)) else _number("rho", rho)
    if kwargs.get("alpha") is not None:
        alpha = kwargs["alpha"]
        if not isinstance(alpha, (list, tuple)):
            raise ValueError(f"classArgs.alpha must be a list of non-negative numbers, but got {alpha!r}.")
        out["alpha"] = [_number("alpha", a, strict=False) for a in alpha]
    if kwargs.get("beta") is not None:
        out["beta"] = _number("beta", kwargs["beta"], strict=False)
    convention = kwargs.get("convention", "official")
    if convention not in CONVENTIONS:
        raise ValueError(f"classArgs.convention must be one of {sorted(CONVENTIONS)}, but got {convention!r}.")
    for name in ("top_k", "resolution", "in_channels", "num_classes"):
        if kwargs.get(name) is not None:
            out[name] = _integer(name, kwargs[name])
    if kwargs.get("time_limit") is not None:
        out["time_limit"] = _number("time_limit", kwargs["time_limit"])
    for name in ("latency", "max_feature_map"):
        if kwargs.get(name) is not None:
            out[name] = _number(name, kwargs[name])
    table = kwargs.get("latency_table")
    if out.get("latency") is not None and table is None:
        raise ValueError("classArgs.latency needs classArgs.latency_table (the path of a table from deepmad-nni "
                         f"latency profile), but got latency={kwargs['latency']!r} alone.")
    if table is not None:
        from ..core.latency import LatencyTable
        if not isinstance(table, str):
            raise ValueError(f"classArgs.latency_table must be the path of a latency-table file, but got {table!r}.")
        try:
            out["latency_table"] = LatencyTable.load(table)
        except ValueError as err:
            raise ValueError(f"classArgs.latency_table: {err}") from None
    return out


def _validator_base():
    try:
        from nni.utils import ClassArgsValidator
    except ImportError:  # the check itself needs no NNI
        return object
    return ClassArgsValidator


class DeepMADClassArgsValidator(_validator_base()):
    """NNI's classArgs hook (meta file ``classArgsValidator``): runs :func:`check_class_args`."""

    def validate_class_args(self, **kwargs):
        check_class_args(**kwargs)


def check_config(path) -> dict | None:
    """Check the DeepMAD classArgs of an experiment config file (YAML); None when its tuner is not DeepMAD.

    NNI 3.0's ``nnictl create`` never calls a registered classArgsValidator for v2 configs (only its legacy
    v1 launcher does), so run this before ``nnictl create``:
    ``python -m deepmad_nni.tuner.check config.yml``.
    """
    import yaml
    with open(path) as f:
        config = yaml.safe_load(f)
    tuner = (config or {}).get("tuner") or {}
    if tuner.get("name") != "DeepMAD" and not str(tuner.get("className", "")).endswith("DeepMADTuner"):
        return None
    return check_class_args(**(tuner.get("classArgs") or {}))

