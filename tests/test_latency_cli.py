"""``deepmad-nni latency profile`` and ``design --latency``: bad input names the option; a tiny profile runs."""
import json

import pytest

from deepmad_nni.cli import main


@pytest.mark.parametrize("argv,option", [
    (["--batch-size", "0"], "--batch-size"), (["--threads", "0"], "--threads"), (["--repeats", "0"], "--repeats"),
    (["--warmup", "-1"], "--warmup"), (["--flops", "-5"], "--flops"), (["--family", "nope"], "--family"),
])
def test_profile_bad_input_names_the_option(tmp_path, capsys, argv, option):
    base = ["latency", "profile", "--family", "nas-bench-macro", "--out", str(tmp_path / "t.json")]
    assert main(base + argv) == 2
    err = capsys.readouterr().err
    assert option in err and "Traceback" not in err


def test_profile_cuda_without_cuda_is_a_clear_error(tmp_path, capsys):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert main(["latency", "profile", "--family", "nas-bench-macro", "--device", "cuda", "--out",
                 str(tmp_path / "t.json")]) == 2
    assert "--device cuda" in capsys.readouterr().err


def test_argparse_rejects_a_bad_device(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["latency", "profile", "--family", "nas-bench-macro", "--device", "tpu", "--out", str(tmp_path / "t")])
    assert "--device" in capsys.readouterr().err


def test_dry_run_counts_units(capsys, tmp_path):
    assert main(["latency", "profile", "--family", "nas-bench-macro", "--out", str(tmp_path / "t.json"),
                 "--dry-run"]) == 0
    assert "38 units" in capsys.readouterr().out
    assert not (tmp_path / "t.json").exists()


@pytest.mark.parametrize("command", [["design"], ["tune", "--out", "OUT", "--evaluator", "nas-bench-macro",
                                                 "--flops", "60e6", "--n-trials", "1"]], ids=["design", "tune"])
def test_latency_options_name_the_option(tmp_path, capsys, command):
    """design and tune share the budget options (commands/budget_args.py): bad input names the option."""
    base = [str(tmp_path / "out") if a == "OUT" else a for a in command] + ["--family", "nas-bench-macro"]
    assert main(base + ["--latency", "1"]) == 2
    assert "--latency needs --latency-table" in capsys.readouterr().err
    assert main(base + ["--latency", "1", "--latency-table", str(tmp_path / "missing.json")]) == 2
    assert "--latency-table" in capsys.readouterr().err
    assert main(base + ["--max-feature-map", "-3"]) == 2
    assert "--max-feature-map" in capsys.readouterr().err


def test_design_latency_options(tmp_path, capsys):
    assert main(["design", "--family", "nas-bench-macro", "--latency", "1"]) == 2
    assert "--latency needs --latency-table" in capsys.readouterr().err
    assert main(["design", "--family", "nas-bench-macro", "--latency", "1", "--latency-table",
                 str(tmp_path / "missing.json")]) == 2
    assert "--latency-table" in capsys.readouterr().err
    assert main(["design", "--family", "nas-bench-macro", "--max-feature-map", "-3"]) == 2
    assert "--max-feature-map" in capsys.readouterr().err


def test_profile_then_design_with_latency(tmp_path, capsys):
    out = tmp_path / "nbm.json"
    assert main(["latency", "profile", "--family", "nas-bench-macro", "--out", str(out), "--repeats", "2",
                 "--warmup", "1"]) == 0
    table = json.loads(out.read_text())
    assert len(table["entries"]) == 38 and table["settings"]["batch_size"] == 1
    capsys.readouterr()
    ms = sorted(table["entries"].values())
    budget = 40 * ms[len(ms) // 2]
    code = main(["design", "--family", "nas-bench-macro", "--latency", str(budget), "--latency-table", str(out)])
    text = capsys.readouterr().out
    if code == 0:
        assert "status: optimal" in text
        got = float(text.split("design 1: predicted latency ")[1].split(" ms")[0])
        assert got <= budget
    else:
        assert "status: infeasible" in text
