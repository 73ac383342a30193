"""DeepMAD's figures against independent oracles: hand-written formulas, the benchmark's counts, the scorer."""
import math
import os

import numpy as np
import pytest

from core_families import SMALL_FAMILIES
from deepmad_nni.benchmarks.nas_bench_macro import NasBenchMacro, architecture_of_key, default_path
from deepmad_nni.core import FAMILIES, Architecture, Program, Stage, score
from deepmad_nni.core.arch import se_width
from deepmad_nni.core.slots import BatchScorer, build_slot_tables, sample_designs
from deepmad_nni.core.terms import block_terms

# DeepMAD-R50 as published (official structure file): a fact to check our counts against.
R50 = Architecture((
    Stage("conv", 3, 32, 2, 3), Stage("bottleneck", 32, 128, 2, 5, 1, 40), Stage("bottleneck", 128, 512, 2, 5, 11, 48),
    Stage("bottleneck", 512, 872, 2, 5, 12, 88), Stage("bottleneck", 872, 1024, 1, 5, 13, 104),
    Stage("bottleneck", 1024, 1232, 2, 5, 15, 120)))


def test_entropy_rho_q_by_hand_on_a_two_stage_net():
    arch = Architecture((Stage("conv", 3, 16, 2, 3), Stage("mbconv", 16, 24, 2, 5, 2, 48)), resolution=32,
                        num_classes=10)
    # main-path widths: stem 3*9; block 1: 16, 25 (depthwise), 48; block 2: 24, 25, 48
    stage1 = [math.log(27)]
    stage2 = stage1 + [math.log(16), math.log(25), math.log(48), math.log(24), math.log(25), math.log(48)]
    h1 = math.log(16 * 16 * 16) * sum(stage1)     # stem output 16x16, 16 channels
    h2 = math.log(8 * 8 * 24) * sum(stage2)       # 8x8, 24 channels
    for conv, scale in (("official", 0.5), ("paper", 1.0)):
        s = score(arch, alpha=(1, 8), beta=10, convention=conv)
        assert s.entropy == pytest.approx(scale * (h1 + 8 * h2), rel=1e-12)
        rho_full = 7 / math.exp(sum(stage2) / 7)
        rho_stem = 1 / math.exp(sum(stage1))
        expected_rho = max(rho_full, rho_stem) if conv == "official" else rho_full
        assert s.effectiveness == pytest.approx(expected_rho, rel=1e-12)
    assert score(arch, convention="paper").q == 1.0   # a single stage with blocks: no spread


def test_paper_entropy_is_twice_official():
    a, b = score(R50, convention="official"), score(R50, convention="paper")
    assert b.entropy == pytest.approx(2 * a.entropy, rel=1e-12)


def test_published_r50_meets_the_paper_budgets_under_our_counts():
    s = score(R50)
    assert s.effectiveness <= 0.3 and s.flops <= 4.1e9 and s.params <= 25.6e6
    assert s.num_layers == 1 + 3 * (1 + 11 + 12 + 13 + 15)
    # the official code drops the first two super-blocks from Q: depths 12, 13, 15
    assert s.q == pytest.approx(math.exp(np.std([12, 13, 15])), rel=1e-12)


def test_macs_and_params_by_hand_for_each_block():
    cin, cout, k, mid, r = 16, 32, 3, 64, 8
    t, n, macs, params = block_terms("bottleneck", cin, cout, k, mid, 2, r)
    assert macs == cin * mid * r * r + mid * mid * k * k * 16 + mid * cout * 16 + cin * cout * 16
    assert params == cin * mid + mid * mid * k * k + mid * cout + 2 * (mid + mid + cout) + cin * cout + 2 * cout
    assert n == 3 and t == pytest.approx(math.log(cin) + math.log(mid * k * k) + math.log(mid))
    se = se_width(mid)
    t, n, macs, params = block_terms("mbconv_se", cin, cout, k, mid, 1, r)
    assert params == cin * mid + mid * k * k + mid * cout + 2 * (mid + mid + cout) + 2 * mid * se + se + mid


def test_block_terms_match_stage_layers():
    rng = np.random.default_rng(0)
    for _ in range(500):
        block = rng.choice(["conv", "basic", "bottleneck", "mbconv", "mbconv_se", "skip"])
        stride, cin, cout = int(rng.choice([1, 2])), int(rng.choice([3, 8, 24, 64])), int(rng.choice([8, 24, 64]))
        k = 1 if block == "skip" else int(rng.choice([1, 3, 5, 7]))
        mid = int(rng.choice([8, 40, 96])) if block in ("bottleneck", "mbconv", "mbconv_se") else 0
        r = int(rng.choice([7, 15, 32]))
        convs = Stage(block, cin, cout, stride, k, 1, mid).layers(r)
        t, n, macs, params = block_terms(block, cin, cout, k, max(mid, 1), stride, r)
        assert t == pytest.approx(sum(math.log(c.width) for c in convs if c.main_path), abs=1e-12)
        assert (n, macs, params) == (sum(c.main_path for c in convs), sum(c.macs for c in convs),
                                     sum(c.params for c in convs))


def test_counts_match_nas_bench_macro_on_every_key():
    path = default_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("NAS-Bench-Macro not found beside the checkout (../shared/benchmarks/nas-bench-macro)")
        pytest.skip("NAS-Bench-Macro file not found")
    bench = NasBenchMacro(path)
    for key, e in bench.entries.items():
        s = score(architecture_of_key(key))
        assert (s.flops, s.params) == (e.flops, e.params), key


@pytest.mark.parametrize("convention", ["official", "paper"])
@pytest.mark.parametrize("family", list(FAMILIES.values()) + list(SMALL_FAMILIES), ids=lambda f: f.name)
def test_vectorised_scorer_equals_score(family, convention):
    prog = Program.create(family, flops=1e9, params=5e6, rho=0.5, convention=convention)
    slots = build_slot_tables(prog)
    combos, depths = sample_designs(slots, 60, np.random.default_rng(1))
    out = BatchScorer(prog, slots)(combos, depths)
    from deepmad_nni.core.incumbents import decode as _design
    for b in range(len(combos)):
        arch = _design(family, slots, tuple((combos[b, j], depths[b, j]) for j in range(len(slots) - 1, -1, -1)))
        s = prog.score(arch.architecture)
        assert out["objective"][b] == pytest.approx(s.objective, rel=1e-10)
        assert out["rho"][b] == pytest.approx(s.effectiveness, rel=1e-10)
        assert (out["flops"][b], out["params"][b]) == (s.flops, s.params)
        assert bool(out["feasible"][b]) == prog.feasible(s)
