"""NNI HPO search spaces <-> DeepMAD families (pure Python; no NNI import).

A search space for a family template (a :class:`~deepmad_nni.core.Family` giving strides and block types)
names its parameters per slot ``j`` (0 = stem, last = head for families with a 1x1 head)::

    s{j}_width      output channels                  every slot
    s{j}_depth      blocks in the super-block        repeatable blocks (basic, bottleneck, mbconv*)
    s{j}_kernel     k of the k x k / depthwise conv  every slot
    s{j}_expansion  mid = round8(expansion * width)  mbconv* (the template's base width)
    s{j}_mid        bottleneck width                 bottleneck

each ``{"_type": "choice", "_value": [...]}``.  A parameter may be left out when the template has one value
for it (e.g. the head's kernel 1).  :func:`family_from_search_space` builds the family whose slot choices are
exactly those lists (the template's width rules apply: monotone widths, width ratio, mid range);
:func:`architecture_from_parameters` builds the network of one parameter dict (a trial's), and
:func:`parameters_from_architecture` does the reverse for a design the solver returns.
"""
from __future__ import annotations

import re
from dataclasses import replace

from ..core.arch import Architecture, Stage
from ..core.family import Family, Op, Slot, round8

DIMENSIONS = ("width", "depth", "kernel", "expansion", "mid")
_KEY = re.compile(r"^s(\d+)_(" + "|".join(DIMENSIONS) + r")$")


class SearchSpaceError(ValueError):
    """The search space cannot be mapped onto the family template."""


def slot_block(template: Family, j: int) -> str:
    blocks = {op.block for op in template.slots[j].ops}
    if len(blocks) != 1:
        raise SearchSpaceError(f"family {template.name!r} slot {j} mixes the blocks {sorted(blocks)}; the search-space "
                               "mapping needs one block type per slot.")
    return blocks.pop()


def slot_dimensions(template: Family, j: int) -> dict[str, tuple]:
    """The template's values of each dimension that slot ``j`` has."""
    slot, block = template.slots[j], slot_block(template, j)
    dims = {"width": tuple(slot.widths), "kernel": tuple(sorted({op.kernel for op in slot.ops}))}
    if block not in ("conv", "skip"):
        dims["depth"] = tuple(slot.depths)
    if any(op.mid_from_grid for op in slot.ops):
        dims["mid"] = tuple(slot.mids)
    elif any(op.expansion for op in slot.ops):
        dims["expansion"] = tuple(sorted({op.expansion for op in slot.ops}))
    return dims


def _choice_values(name: str, spec) -> tuple:
    if not isinstance(spec, dict) or spec.get("_type") != "choice":
        raise SearchSpaceError(f"search space parameter {name!r} must be {{'_type': 'choice', '_value': [...]}}, "
                               f"but got {spec!r}.")
    values = spec.get("_value")
    if not isinstance(values, list) or not values:
        raise SearchSpaceError(f"search space parameter {name!r} must have a non-empty _value list, but got {values!r}.")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise SearchSpaceError(f"search space parameter {name!r} must list positive numbers, but got {v!r}.")
    if not name.endswith("_expansion"):
        bad = [v for v in values if int(v) != v]
        if bad:
            raise SearchSpaceError(f"search space parameter {name!r} must list integers, but got {bad}.")
        values = [int(v) for v in values]
    return tuple(dict.fromkeys(values))


def _parse(search_space: dict, template: Family) -> dict[int, dict[str, tuple]]:
    if not isinstance(search_space, dict) or not search_space:
        raise SearchSpaceError(f"The search space must be a non-empty dict of choice parameters, but got {search_space!r}.")
    per_slot: dict[int, dict[str, tuple]] = {j: {} for j in range(len(template.slots))}
    unknown = []
    for name, spec in search_space.items():
        m = _KEY.match(name)
        if not m or int(m.group(1)) >= len(template.slots):
            unknown.append(name)
            continue
        j, dim = int(m.group(1)), m.group(2)
        if dim not in slot_dimensions(template, j):
            unknown.append(name)
            continue
        per_slot[j][dim] = _choice_values(name, spec)
    if unknown:
        raise SearchSpaceError(
            f"The search space has parameters {sorted(unknown)} that family {template.name!r} "
            f"({len(template.slots)} slots) cannot map; expected names s<slot>_<{'|'.join(DIMENSIONS)}> "
            f"with these dimensions: {describe_template(template)}.")
    for j in per_slot:
        for dim, values in slot_dimensions(template, j).items():
            if dim not in per_slot[j]:
                if len(values) != 1:
                    raise SearchSpaceError(f"The search space must define s{j}_{dim}: family {template.name!r} "
                                           f"slot {j} has {len(values)} values for it.")
                per_slot[j][dim] = values
    return per_slot


def describe_template(template: Family) -> str:
    return "; ".join(f"s{j}: {','.join(slot_dimensions(template, j))}" for j in range(len(template.slots)))


def _ops(template: Family, j: int, dims: dict) -> tuple[Op, ...]:
    block = slot_block(template, j)
    base = next((op.base for op in template.slots[j].ops), "out")
    if "mid" in dims:
        return tuple(Op(block, k, mid_from_grid=True) for k in dims["kernel"])
    if "expansion" in dims:
        return tuple(Op(block, k, float(e), base) for k in dims["kernel"] for e in dims["expansion"])
    return tuple(Op(block, k) for k in dims["kernel"])


def family_from_search_space(search_space: dict, template: Family, **overrides) -> Family:
    """The family over exactly the search space's choice lists (``overrides``: resolution, in_channels, ...)."""
    per_slot = _parse(search_space, template)
    slots = []
    for j, slot in enumerate(template.slots):
        d = per_slot[j]
        slots.append(Slot(slot.stride, d["width"], _ops(template, j, d), d.get("depth", (1,)), d.get("mid", ())))
    return replace(template, name=f"{template.name}/search-space", slots=tuple(slots), **overrides)


def architecture_from_parameters(parameters: dict, template: Family, **overrides) -> Architecture:
    """The network of one trial's parameters (missing ones take the template's single value)."""
    fam = replace(template, **overrides) if overrides else template
    stages, c_in = [], fam.in_channels
    for j, slot in enumerate(fam.slots):
        dims = slot_dimensions(fam, j)
        value = {}
        for dim, values in dims.items():
            key = f"s{j}_{dim}"
            if key in parameters:
                value[dim] = parameters[key]
            elif len(values) == 1:
                value[dim] = values[0]
            else:
                raise SearchSpaceError(f"parameters must hold {key!r} (family {fam.name!r} slot {j} has "
                                       f"{len(values)} values), but got keys {sorted(parameters)}.")
        block, width = slot_block(fam, j), int(value["width"])
        if "mid" in value:
            mid = int(value["mid"])
        elif "expansion" in value:
            base = next(op.base for op in slot.ops)
            mid = round8(float(value["expansion"]) * (c_in if base == "in" else width))
        else:
            mid = 0
        stages.append(Stage(block, c_in, width, slot.stride, int(value["kernel"]), int(value.get("depth", 1)), mid))
        c_in = width
    return Architecture(tuple(stages), fam.resolution, fam.in_channels, fam.num_classes)


def parameters_from_architecture(arch: Architecture, family: Family) -> dict:
    """The search-space parameters of a design of ``family`` (a family from :func:`family_from_search_space`)."""
    params = {}
    for j, (stage, slot) in enumerate(zip(arch.stages, family.slots)):
        dims = slot_dimensions(family, j)
        params[f"s{j}_width"] = stage.c_out
        params[f"s{j}_kernel"] = stage.kernel
        if "depth" in dims:
            params[f"s{j}_depth"] = stage.depth
        if "mid" in dims:
            params[f"s{j}_mid"] = stage.mid
        elif "expansion" in dims:
            base = next(op.base for op in slot.ops)
            ref = stage.c_in if base == "in" else stage.c_out
            matches = [e for e in dims["expansion"] if round8(e * ref) == stage.mid]
            if not matches:
                raise SearchSpaceError(f"stage {j} has mid {stage.mid}, which no expansion in {dims['expansion']} gives.")
            params[f"s{j}_expansion"] = matches[0]
    return params
