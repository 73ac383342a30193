"""The ``deepmad-nni design`` and ``score`` commands, run as a user runs them."""
import json
import subprocess
import sys

import pytest


def cli(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "deepmad_nni.cli", *args], capture_output=True, text=True,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_design_preset_json_keys_and_budgets():
    out = json.loads(cli("design", "--preset", "R50", "--json", "--time-limit", "1").stdout)
    for key in ("stages", "entropy", "effectiveness", "q", "objective", "flops", "params", "status", "gap",
                "time_s"):
        assert key in out
    assert out["status"] in ("optimal", "feasible-with-gap")
    assert out["flops"] <= 4.1e9 and out["params"] <= 25.6e6 and out["effectiveness"] <= 0.3
    assert out["stages"][0]["class"] == "ConvKXBNRELU" and out["stages"][1]["class"] == "SuperResK1KXK1"


def test_design_table_then_export_then_score_agree(tmp_path):
    table = cli("design", "--family", "nas-bench-macro", "--flops", "60e6", "--params", "1.5e6", "--rho", "0.5")
    assert "status: optimal" in table.stdout and "mbconv" in table.stdout
    exported = json.loads(cli("design", "--preset", "B0", "--export", "tinynas", "--time-limit", "1").stdout)
    assert [d["class"] for d in exported] == ["ConvKXBNRELU"] + ["SuperResK1DWSEK1"] * 5 + ["ConvKXBNRELU"]
    designed = json.loads(cli("design", "--preset", "B0", "--json", "--time-limit", "1", "--rho", "0.6").stdout)
    path = tmp_path / "b0.json"
    path.write_text(json.dumps(designed["stages"]))
    scored = json.loads(cli("score", str(path), "--json").stdout)
    assert scored["stages"] == designed["stages"]
    assert scored["objective"] == pytest.approx(designed["objective"], rel=1e-12)
    assert scored["effectiveness"] <= 0.6


@pytest.mark.parametrize("args, message", [
    (("design", "--preset", "R101"), "preset must be one of"),
    (("design", "--family", "nas-bench-macro", "--flops", "-5"), "flops must be a positive"),
    (("design", "--preset", "R50", "--rho", "0"), "rho must be a positive"),
    (("design", "--preset", "R50", "--alpha", "1", "8"), "alpha must have one weight per stage"),
    (("score", "/nonexistent.json"), "file must be an existing structure file"),
])
def test_bad_input_exits_2_with_a_message(args, message):
    proc = cli(*args, check=False)
    assert proc.returncode == 2 and message in proc.stderr


def test_infeasible_budget_exits_1_and_says_why():
    proc = cli("design", "--family", "nas-bench-macro", "--flops", "1e6", check=False)
    assert proc.returncode == 1 and "status: infeasible" in proc.stdout and "FLOPs" in proc.stdout
