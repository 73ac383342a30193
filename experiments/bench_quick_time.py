"""Benchmark: the quick solve's time over the budgets of earlier benchmark JSONs, in rounds, beside a baseline.

The machine's speed drifts by tens of percent within minutes, so a time is only worth its comparison with a
baseline measured in the same run.  Each round solves every budget of ``--budgets`` (JSONs of
bench_off_preset.py / bench_random_budgets.py, or experiments/budgets/) once with this checkout, then, with
``--baseline DIR`` (another checkout, e.g. ``git worktree add /tmp/base 0101bcb``), once with that one, each in
a fresh process.  With ``--repeats K`` each budget is solved K times in a row and its fastest time kept (the
page faults and cache misses of a first solve vary most).  It prints each round's median and the median over
the rounds, and how many budgets each checkout's quick design is below the JSONs' evolution column on.

    OMP_NUM_THREADS=1 python experiments/bench_quick_time.py --budgets F.json [G.json ...] [--rounds 5] [--repeats 1]
        [--baseline DIR]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from budget_table import SAME, read_rows  # noqa: E402

_TIMER = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from deepmad_nni.core import solve
budgets, repeats = json.loads(sys.argv[2]), int(sys.argv[3])
solve(budgets[0][0], flops=budgets[0][1], params=budgets[0][2], rho=budgets[0][3])   # imports, first tables
out = []
for family, flops, params, rho in budgets:
    fastest = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = solve(family, flops=flops, params=params, rho=rho)
        fastest = min(fastest, time.perf_counter() - t0)
    out.append((fastest, r.objective))
print(json.dumps(out))
"""


def _run(root: Path, budgets, repeats: int) -> list:
    done = subprocess.run([sys.executable, "-c", _TIMER, str(root), json.dumps(budgets), str(repeats)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the quick solves under {root} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", nargs="+", required=True, help="benchmark JSONs whose budgets are solved")
    ap.add_argument("--rounds", type=int, default=5, help="rounds (each: this checkout, then the baseline)")
    ap.add_argument("--repeats", type=int, default=1, help="solves of each budget in a row; the fastest is kept")
    ap.add_argument("--baseline", help="another checkout's root directory, timed in the same rounds")
    args = ap.parse_args(argv)
    for name in ("rounds", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be at least 1, but got {getattr(args, name)}.")
    rows = read_rows(args.budgets)
    budgets = [(r["family"], r["flops"], r["params"], r["rho"]) for r in rows]
    roots = {"this checkout": HERE}
    if args.baseline:
        if not (Path(args.baseline) / "deepmad_nni" / "core").is_dir():
            ap.error(f"--baseline must be a checkout of deepmad-nni, but {args.baseline!r} has no deepmad_nni/core.")
        roots["baseline"] = Path(args.baseline).resolve()
    medians = {name: [] for name in roots}
    for k in range(args.rounds):
        for name, root in roots.items():
            out = _run(root, budgets, args.repeats)
            medians[name].append(statistics.median(t for t, _ in out))
            below = sum(v < r["evolution"] - SAME * abs(r["evolution"]) for (_, v), r in zip(out, rows))
            print(f"round {k + 1} {name:14} median {medians[name][-1]:.3f} s over {len(out)} budgets; "
                  f"below the evolution on {below}", flush=True)
    for name, values in medians.items():
        print(f"{name:14} median of the rounds' medians {statistics.median(values):.3f} s "
              f"(rounds {min(values):.3f}-{max(values):.3f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
