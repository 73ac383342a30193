"""The ``tinynas`` convention: the official code's scores of its released designs, SE resolution quirk included."""
import math

import numpy as np
import pytest

from deepmad_nni.core import from_structure, solve
from deepmad_nni.core.presets import get_family, get_preset
from deepmad_nni.core.program import Program
from deepmad_nni.core.score import CONVENTIONS, entropy_resolutions, score
from deepmad_nni.core.slots import BatchScorer, build_slot_tables, sample_designs

CONV, MBSE, BTN = "ConvKXBNRELU", "SuperResK1DWSEK1", "SuperResK1KXK1"


def structure(rows):
    """Stage dicts of the official structure format from (class, in, out, s, k, L, btn) rows."""
    out = []
    for cls, c_in, c_out, s, k, depth, btn in rows:
        d = {"class": cls, "in": c_in, "out": c_out, "s": s, "k": k}
        if cls != CONV:
            d.update(L=depth, btn=btn)
        out.append(d)
    return out


# The released DeepMAD designs (configs/classification/models/*.txt of the official repository) and the
# input resolution each was searched at.
RELEASED = {
    "29M-224": (224, [(CONV, 3, 40, 2, 3, 1, 0), (MBSE, 40, 40, 1, 5, 2, 240), (MBSE, 40, 85, 2, 5, 4, 512),
                      (MBSE, 85, 134, 2, 5, 6, 800), (MBSE, 134, 201, 2, 5, 6, 1208),
                      (MBSE, 201, 312, 2, 5, 5, 1872), (CONV, 312, 1792, 1, 1, 1, 0)]),
    "29M-288": (288, [(CONV, 3, 40, 2, 3, 1, 0), (MBSE, 40, 61, 2, 5, 4, 368), (MBSE, 61, 96, 2, 5, 4, 576),
                      (MBSE, 96, 145, 2, 5, 5, 872), (MBSE, 145, 217, 1, 5, 6, 1304),
                      (MBSE, 217, 328, 2, 5, 4, 1968), (CONV, 328, 1792, 1, 1, 1, 0)]),
    "50M": (224, [(CONV, 3, 48, 2, 3, 1, 0), (MBSE, 48, 112, 2, 5, 7, 672), (MBSE, 112, 168, 2, 5, 9, 1008),
                  (MBSE, 168, 252, 2, 5, 7, 1512), (MBSE, 252, 378, 2, 5, 3, 2272),
                  (MBSE, 378, 576, 1, 3, 1, 3456), (CONV, 576, 2048, 1, 1, 1, 0)]),
    "89M": (224, [(CONV, 3, 56, 2, 3, 1, 0), (MBSE, 56, 136, 2, 5, 10, 816), (MBSE, 136, 204, 2, 5, 9, 1224),
                  (MBSE, 204, 326, 2, 5, 7, 1952), (MBSE, 326, 490, 2, 5, 4, 2944),
                  (MBSE, 490, 744, 1, 3, 1, 4464), (CONV, 744, 2560, 1, 1, 1, 0)]),
    "R50": (224, [(CONV, 3, 32, 2, 3, 1, 0), (BTN, 32, 128, 2, 5, 1, 40), (BTN, 128, 512, 2, 5, 11, 48),
                  (BTN, 512, 872, 2, 5, 12, 88), (BTN, 872, 1024, 1, 5, 13, 104),
                  (BTN, 1024, 1232, 2, 5, 15, 120)]),
}


def oracle_entropy(rows, resolution, alpha=(1, 1, 1, 1, 8)):
    """The official code's multi-scale entropy, written from its description (spec, "Facts measured since"):
    per block the sum of log(sqrt(w)) of its main-path convs; a stage ends before every stride-2 entry after
    the first; its size is the feature-map size after its last entry, floor-divided by each stride, and an
    SE block reports 1."""
    stage_sums, stage_c, stage_r = [], [], []
    total, r = 0.0, resolution
    for i, (cls, c_in, c_out, s, k, depth, btn) in enumerate(rows):
        if i > 0 and s == 2:
            stage_sums.append(total)
            stage_c.append(rows[i - 1][2])
            stage_r.append(r)
        if cls == CONV:
            total += 0.5 * math.log(c_in * k * k)
            r //= s
            continue
        for j in range(depth):
            cin, stride = (c_in, s) if j == 0 else (c_out, 1)
            if cls == MBSE:   # 1x1 (w = in), depthwise k x k (w = k^2), 1x1 (w = btn)
                total += 0.5 * (math.log(cin) + math.log(k * k) + math.log(btn))
                r = 1             # conv1 keeps r, the depthwise conv divides it, the SE block reports 1
            else:             # bottleneck: 1x1 (w = in), k x k (w = btn k^2), 1x1 (w = btn)
                total += 0.5 * (math.log(cin) + math.log(btn * k * k) + math.log(btn))
                r //= stride
    stage_sums.append(total)
    stage_c.append(rows[-1][2])
    stage_r.append(r)
    return sum(a * t * math.log(rr * rr * c) for a, t, rr, c in zip(alpha, stage_sums, stage_r, stage_c))


def released(name):
    resolution, rows = RELEASED[name]
    return from_structure(structure(rows), resolution=resolution), rows, resolution


def test_tinynas_is_a_convention():
    assert CONVENTIONS["tinynas"] == CONVENTIONS["official"] == 0.5


def test_official_score_of_the_released_29m_224():
    arch, _, _ = released("29M-224")
    assert round(score(arch, convention="tinynas").entropy, 2) == 11915.37
    assert score(arch, convention="official").entropy == pytest.approx(19135.93, abs=0.01)


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_tinynas_scores_of_the_released_designs_match_the_oracle(name):
    arch, rows, resolution = released(name)
    tiny, official = score(arch, convention="tinynas"), score(arch, convention="official")
    assert tiny.entropy == pytest.approx(oracle_entropy(rows, resolution), rel=1e-12)
    # only the entropy's resolution term changes: rho, Q, FLOPs and params are those of "official"
    assert (tiny.effectiveness, tiny.q, tiny.flops, tiny.params, tiny.depths) == (
        official.effectiveness, official.q, official.flops, official.params, official.depths)
    if name == "R50":
        assert tiny == official
    else:
        assert tiny.entropy < official.entropy


def test_29m_288_keeps_the_stem_stage_resolution():
    """The stem (stride 2) is a stage of its own there, before any SE block: its r = 144 still counts."""
    arch, _, _ = released("29M-288")
    tiny = score(arch, convention="tinynas")
    official = score(arch, convention="official")
    assert tiny.stage_entropy[0] == official.stage_entropy[0]
    assert all(t < o for t, o in zip(tiny.stage_entropy[1:], official.stage_entropy[1:]))


def test_entropy_resolutions():
    assert entropy_resolutions((112, 56, 28), (False, True, False), "official") == (112, 56, 28)
    assert entropy_resolutions((112, 56, 28), (False, True, False), "tinynas") == (112, 1, 1)
    assert entropy_resolutions((112, 56), (False, None), "official") == (112, 56)
    with pytest.raises(ValueError, match="mix SE and non-SE"):
        entropy_resolutions((112, 56), (False, None), "tinynas")
    with pytest.raises(ValueError, match="convention must be one of"):
        entropy_resolutions((112,), (False,), "tiny")


@pytest.mark.parametrize("family", ["resnet-bottleneck-224", "nas-bench-macro"])
def test_tinynas_equals_official_without_se(family):
    """Families without SE blocks: the same figures for random designs (batch scorer and core.score)."""
    fam = get_family(family)
    figures = {}
    for convention in ("official", "tinynas"):
        program = Program.create(fam, flops=None, params=None, rho=0.5, convention=convention)
        slots = build_slot_tables(program)
        combos, depths = sample_designs(slots, 64, np.random.default_rng(0))
        figures[convention] = BatchScorer(program, slots)(combos, depths)
    for key in ("objective", "entropy", "rho", "q", "flops", "params"):
        np.testing.assert_array_equal(figures["official"][key], figures["tinynas"][key])


def test_tinynas_solve_equals_official_on_r50():
    p = get_preset("R50")
    a = solve(p.family, flops=p.flops, params=p.params, rho=p.rho, convention="official")
    b = solve(p.family, flops=p.flops, params=p.params, rho=p.rho, convention="tinynas")
    assert b.objective == a.objective and b.bound == a.bound


def test_tinynas_solve_on_mbconv_se_scores_its_design_under_tinynas():
    """The solver's own figures (slot tables, relaxation, bound) read the SE quirk: its design's objective is
    the exact tinynas score, below the bound, and the design meets the budgets."""
    p = get_preset("B0")
    result = solve(p.family, flops=p.flops, params=p.params, rho=p.rho, convention="tinynas")
    design = result.designs[0]
    s = score(design.architecture, convention="tinynas")
    assert s.objective == pytest.approx(result.objective, rel=1e-12)
    assert result.bound >= result.objective
    assert s.flops <= p.flops and s.params <= p.params and s.effectiveness <= p.rho * (1 + 1e-9)
    official = solve(p.family, flops=p.flops, params=p.params, rho=p.rho, convention="official")
    assert result.objective < official.objective   # log(r^2) = 0 from the first SE stage on


def test_cli_score_accepts_tinynas(tmp_path, capsys):
    import json

    from deepmad_nni.cli import main
    path = tmp_path / "29m.json"
    path.write_text(json.dumps({"best_structures": [structure(RELEASED["29M-224"][1])]}))
    assert main(["score", str(path), "--convention", "tinynas", "--json"]) == 0
    assert round(json.loads(capsys.readouterr().out)["entropy"], 2) == 11915.37
