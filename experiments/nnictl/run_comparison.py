"""Run the four nnictl configs (DeepMAD, TPE, Random, Evolution) one after another and compare them.

    PYTHONPATH=. python experiments/nnictl/run_comparison.py --out /tmp/nnictl-run \
        --trials 5 --trial-args "--train-size 5000 --test-size 1000 --epochs 3"

Each config is copied into ``--out`` with absolute paths and its working directory there, the trial budget
(``--trials``: maxTrialNumber of every config and DeepMAD's top_k) and the extra trial arguments
(appended to the trial command, so they override it).  The script registers the DeepMAD tuner (in
``--out``/nni-config), checks its classArgs, runs ``nnictl create``, waits for DONE, exports the trials
(``nnictl experiment export``, JSON and CSV), stops the experiment, and writes ``comparison.md`` and
``comparison.csv``: best accuracy, trials, total trial CPU-/GPU-hours, FLOPs/params of the best.
Everything NNI writes (its HOME-based registry included) stays under ``--out``.
"""
from __future__ import annotations

import argparse
import csv
import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from deepmad_nni.tuner.nnictl_session import NnictlSession, prepare_config  # noqa: E402
from deepmad_nni.tuner.validator import check_config  # noqa: E402

TUNERS = {"deepmad": "DeepMAD", "tpe": "TPE", "random": "Random", "evolution": "Evolution"}
COLUMNS = ["tuner", "status", "trials", "succeeded", "best_accuracy", "best_test_accuracy", "best_flops",
           "best_params", "mean_accuracy", "cpu_hours", "gpu_hours", "experiment_minutes", "experiment_id"]


def summarise(name, exp_id, status, records, trials, minutes) -> dict:
    finals = [r for r in records if isinstance(r.get("value"), dict)]
    row = {"tuner": TUNERS[name], "status": status, "trials": len(trials),
           "succeeded": sum(1 for t in trials if t.get("status") == "SUCCEEDED"),
           "experiment_minutes": round(minutes, 2), "experiment_id": exp_id}
    hours = {"cpu": 0.0, "cuda": 0.0}
    for r in finals:
        hours["cuda" if str(r["value"].get("device", "cpu")).startswith("cuda") else "cpu"] += \
            r["value"].get("wall_time_s", 0.0) / 3600
    row.update(cpu_hours=round(hours["cpu"], 4), gpu_hours=round(hours["cuda"], 4))
    if finals:
        best = max(finals, key=lambda r: r["value"]["default"])["value"]
        row.update(best_accuracy=round(best["default"], 4), best_test_accuracy=round(best["test_accuracy"], 4),
                   best_flops=best["flops"], best_params=best["params"],
                   mean_accuracy=round(sum(r["value"]["default"] for r in finals) / len(finals), 4))
    return row


def markdown(rows, note) -> str:
    head = "| " + " | ".join(COLUMNS[:-1]) + " |\n|" + "---|" * (len(COLUMNS) - 1) + "\n"
    body = "".join("| " + " | ".join(str(r.get(c, "")) for c in COLUMNS[:-1]) + " |\n" for r in rows)
    return f"{note}\n\n{head}{body}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="folder for configs, NNI experiments, exports and the table")
    p.add_argument("--trials", type=int, default=None, help="trial budget of every tuner (default: the configs')")
    p.add_argument("--trial-args", default="", help="extra trial arguments, e.g. '--epochs 3 --train-size 5000'")
    p.add_argument("--tuners", default=",".join(TUNERS), help=f"comma-separated subset of {list(TUNERS)}")
    p.add_argument("--timeout", type=float, default=6 * 3600, help="seconds per experiment")
    args = p.parse_args(argv)
    out = Path(args.out).resolve()
    names = [t.strip() for t in args.tuners.split(",") if t.strip()]
    bad = [t for t in names if t not in TUNERS]
    if bad:
        p.error(f"--tuners must be some of {list(TUNERS)}, but got {bad}")
    rows = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))  # so the session below stops NNI
    with NnictlSession(out) as session:
        session.register()
        for name in names:
            cfg = prepare_config(HERE / f"config_{name}.yml", out / "configs" / f"config_{name}.yml", workdir=out,
                                 max_trials=args.trials, trial_args=args.trial_args)
            if name == "deepmad" and args.trials:
                import yaml
                config = yaml.safe_load(cfg.read_text())
                config["tuner"]["classArgs"]["top_k"] = args.trials
                cfg.write_text(yaml.safe_dump(config, sort_keys=False))
            check_config(cfg)  # nnictl create does not run classArgs validators (NNI 3.0, v2 configs)
            t0 = time.monotonic()
            exp_id = session.create(cfg)
            print(f"[{name}] experiment {exp_id} started", flush=True)
            status = session.wait(exp_id, timeout=args.timeout)
            minutes = (time.monotonic() - t0) / 60
            trials = session.trials(exp_id)
            records = session.export(exp_id, out / f"export_{name}.json") if trials else []
            session.nnictl("experiment", "export", exp_id, "--type", "csv", "--filename", out / f"export_{name}.csv",
                           check=False)
            session.stop(exp_id)
            rows.append(summarise(name, exp_id, status["status"], records, trials, minutes))
            print(f"[{name}] {rows[-1]}", flush=True)
    with open(out / "comparison.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    note = (f"nnictl comparison, trial budget {args.trials or 'from the configs'}, extra trial arguments "
            f"`{args.trial_args or '-'}`; accuracy on the validation split, best by validation accuracy; "
            "hours are the trials' own wall time (data loading + training + evaluation).")
    (out / "comparison.md").write_text(markdown(rows, note))
    print(markdown(rows, note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
