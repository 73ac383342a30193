"""Bad input gets a clear error naming the argument; the structure format round-trips."""
import math

import pytest

from deepmad_nni.core import (Stage, from_structure, get_family, get_preset, parse_structure_text, solve,
                              to_structure)
from deepmad_nni.core.presets import FAMILIES


@pytest.mark.parametrize("kwargs, name", [
    ({"flops": -1.0}, "flops"), ({"flops": math.nan}, "flops"), ({"params": 0}, "params"),
    ({"params": math.inf}, "params"), ({"rho": 0}, "rho"), ({"rho": -0.3}, "rho"), ({"rho": "x"}, "rho"),
    ({"flops": True}, "flops"), ({"flops": "4.1e9"}, "flops"), ({"beta": "10"}, "beta"), ({"beta": math.nan}, "beta"),
    ({"alpha": "11118"}, "alpha"), ({"alpha": (1, 1, 1, 1, True)}, "alpha"), ({"alpha": 8}, "alpha"),
    ({"alpha": (1, 1, 8)}, "alpha"), ({"alpha": (1, 1, 1, 1, -8)}, "alpha"), ({"beta": -1}, "beta"),
    ({"convention": "mine"}, "convention"), ({"top_k": 0}, "top_k"), ({"time_limit": 0}, "time_limit"),
    ({"method": "milp"}, "method"), ({"node_limit": -2}, "node_limit"),
])
def test_bad_arguments_name_themselves(kwargs, name):
    args = {"flops": 4.1e9, "params": 25.6e6, "rho": 0.3}
    args.update(kwargs)
    with pytest.raises(ValueError, match=rf"^{name} must"):
        solve("resnet-bottleneck-224", **args)


def test_numpy_numbers_are_numbers():
    import numpy as np
    res = solve("resnet-bottleneck-224", flops=np.float64(4.1e9), params=np.int64(25_600_000), rho=np.float32(0.3))
    assert res.success and res.flops <= 4.1e9


def test_unknown_family_and_preset():
    with pytest.raises(ValueError, match="family must be one of"):
        get_family("resnet-9000")
    with pytest.raises(ValueError, match="preset must be one of"):
        get_preset("R101")


def test_stage_validation():
    with pytest.raises(ValueError, match="Stage.block"):
        Stage("attention", 3, 8)
    with pytest.raises(ValueError, match="Stage.mid"):
        Stage("bottleneck", 3, 8)
    with pytest.raises(ValueError, match="Stage.stride"):
        Stage("conv", 3, 8, stride=3)


@pytest.mark.parametrize("family", list(FAMILIES.values()), ids=lambda f: f.name)
def test_structure_round_trip(family):
    if family.name == "nas-bench-macro":   # identity layers have no class in the official format
        with pytest.raises(ValueError, match="no class for block 'skip'"):
            to_structure(next(a for a in family.enumerate() if any(s.block == "skip" for s in a.stages)))
        return
    arch = next(iter(family.enumerate())) if family.size() < 10 else solve(family, time_limit=0.5,
                                                                            node_limit=10).architecture
    again = from_structure(to_structure(arch), resolution=arch.resolution, num_classes=arch.num_classes)
    assert again == arch


def test_parse_published_file_literal():
    text = "{ 'best_structures':[ [ {'class': 'ConvKXBNRELU', 'in': 3, 'k': 3, 'out': 32, 's': 2},\n" \
           " { 'L': 2, 'btn': 64, 'class': 'SuperResK1KXK1', 'in': 32, 'inner_class': 'ResK1KXK1', 'k': 3," \
           " 'out': 128, 's': 2}]], 'space_arch': 'CnnNet'}"
    arch = from_structure(parse_structure_text(text))
    assert arch.stages[1] == Stage("bottleneck", 32, 128, 2, 3, 2, 64)
    with pytest.raises(ValueError, match=r"structure\[0\]\['class'\]"):
        from_structure([{"class": "Transformer", "in": 3, "out": 8, "k": 1}])
    with pytest.raises(ValueError, match="stages\\[1\\].c_in"):
        from_structure([{"class": "ConvKXBNRELU", "in": 3, "out": 8, "k": 3},
                        {"class": "ConvKXBNRELU", "in": 16, "out": 8, "k": 3}])


def test_core_imports_no_adapter_dependency():
    import subprocess
    import sys
    code = ("import sys, deepmad_nni, deepmad_nni.core; deepmad_nni.solve('nas-bench-macro', flops=60e6); "
            "print(sorted(m for m in ('torch', 'nni', 'optuna', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
