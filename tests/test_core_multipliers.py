"""The relaxation's KKT multipliers: SciPy's (>= 1.16) when it reports them, computed by core.continuous otherwise.

The branch and bound's quick bound is the Lagrangian of these multipliers, so a wrong or missing set does not
fail: it only loosens the bound (R50: 2.6% gap with them, 42.5% with zeros).  These tests withhold SciPy's
and check the bound stays tight.
"""
import math

import numpy as np
import pytest
import scipy

import deepmad_nni.core.continuous as continuous
from deepmad_nni.core import solve
from deepmad_nni.core.continuous import ContinuousRelaxation, kkt_multipliers
from deepmad_nni.core.presets import get_family, get_preset
from deepmad_nni.core.program import Program

SCIPY_HAS_MULTIPLIERS = tuple(int(v) for v in scipy.__version__.split(".")[:2]) >= (1, 16)


@pytest.fixture
def withheld(monkeypatch):
    """SLSQP results without ``multipliers`` (as from SciPy < 1.16); counts the fallback's calls."""
    calls = []
    real_minimize, real_kkt = continuous.minimize, continuous.kkt_multipliers

    def minimize(*args, **kwargs):
        res = real_minimize(*args, **kwargs)
        res.pop("multipliers", None)
        return res

    def kkt(*args, **kwargs):
        calls.append(1)
        return real_kkt(*args, **kwargs)

    monkeypatch.setattr(continuous, "minimize", minimize)
    monkeypatch.setattr(continuous, "kkt_multipliers", kkt)
    return calls


def test_kkt_multipliers_of_a_disc():
    """min -(x + y) on the unit disc: at (1, 1)/sqrt(2), grad f = (-1, -1) = kappa * grad c, c = 1 - x^2 - y^2,
    so kappa = 1/sqrt(2); an inactive constraint and the inactive bounds get 0."""
    z = np.full(2, 1 / math.sqrt(2))
    kappa = kkt_multipliers(np.array([-1.0, -1.0]), np.array([-2 * z, [1.0, 0.0]]), np.array([0.0, 5.0]),
                            z + 1, 1 - z + 1)
    np.testing.assert_allclose(kappa, [1 / math.sqrt(2), 0.0], atol=1e-12)


def test_kkt_multipliers_with_active_bounds_and_fixed_variables():
    """min -x - 2y s.t. x + y <= 1, 0 <= x, y <= 0.6, z fixed: at (0.4, 0.6) the constraint carries 1 and
    y's upper bound the remaining 1; the fixed variable's row is left out whatever its gradient."""
    grad = np.array([-1.0, -2.0, 7.0])
    jac = np.array([[-1.0, -1.0, 0.0]])           # 1 - x - y >= 0
    z = np.array([0.4, 0.6, 0.3])
    kappa = kkt_multipliers(grad, jac, np.array([0.0]), z - [0.0, 0.0, 0.3], [0.6, 0.6, 0.3] - z)
    np.testing.assert_allclose(kappa, [1.0], atol=1e-12)
    # a maximum over the bound (here: the constraint would need a negative multiplier) gives 0
    assert kkt_multipliers(np.array([1.0]), np.array([[-1.0]]), np.array([0.0]), np.array([1.0]),
                           np.array([1.0]))[0] == 0.0


def test_r50_bound_without_scipy_multipliers(withheld):
    """The quick solve of the R50 preset keeps its bound within a few percent of its design when SciPy
    reports no multipliers (zeros gave a 42.5% gap)."""
    p = get_preset("R50")
    result = solve(p.family, flops=p.flops, params=p.params, rho=p.rho)
    assert withheld, "the fallback was not used"
    assert result.designs and result.bound >= result.objective
    assert result.relative_gap < 0.05
    assert result.objective > 49_900   # the design the multipliers' rounding order finds (50092 with SciPy's)


def test_b0_design_without_scipy_multipliers(withheld):
    p = get_preset("B0")
    result = solve(p.family, flops=p.flops, params=p.params, rho=p.rho)
    assert withheld
    assert result.relative_gap < 0.08 and result.objective > 13_600   # zeros: a 77% gap, a 13268 design


@pytest.mark.skipif(not SCIPY_HAS_MULTIPLIERS, reason="SciPy < 1.16 reports no SLSQP multipliers")
@pytest.mark.parametrize("preset", ["R18", "R50", "B0"])
def test_computed_multipliers_agree_with_scipys(monkeypatch, preset):
    seen = {}
    real_minimize, real_kkt = continuous.minimize, continuous.kkt_multipliers

    def minimize(*args, **kwargs):
        res = real_minimize(*args, **kwargs)
        seen["scipy"] = np.asarray(res.pop("multipliers"))
        return res

    def kkt(*args, **kwargs):
        seen["ours"] = real_kkt(*args, **kwargs)
        return seen["ours"]

    monkeypatch.setattr(continuous, "minimize", minimize)
    monkeypatch.setattr(continuous, "kkt_multipliers", kkt)
    p = get_preset(preset)
    relaxation = ContinuousRelaxation(Program.create(get_family(p.family), flops=p.flops, params=p.params,
                                                     rho=p.rho))
    relaxation.solve(relaxation.start())
    ours, theirs = seen["ours"], np.maximum(seen["scipy"][:len(seen["ours"])], 0.0)
    np.testing.assert_allclose(ours, theirs, atol=2e-3 * theirs.max())
