"""Benchmark: solves with short time limits over the budgets of earlier benchmark JSONs, against their columns.

For each time limit of ``--time-limits`` it solves every budget of ``--budgets`` (JSONs of bench_off_preset.py /
bench_random_budgets.py, or experiments/budgets/) and counts the budgets whose design is below the JSON's
500,000-candidate evolution and those more than 0.1% below the best of its timed solve (``limit``, 30 s in
experiments/budgets/) and evolution: how much time a budget of one's own needs to come near the best design
known; then the proven gaps (their median, how many are within 1%, how many budgets are proven optimal).
``--out DIR`` writes the per-budget figures as JSON.  Timed solves depend on the machine's speed, which
drifts: to compare two commits, run this in a checkout of each at the same time.

    OMP_NUM_THREADS=1 python experiments/bench_time_limits.py --budgets F.json [G.json ...] [--time-limits 5 10]
        [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from budget_table import FAR, SAME, read_rows  # noqa: E402
from deepmad_nni.core import solve  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budgets", nargs="+", required=True, help="benchmark JSONs whose budgets are solved")
    ap.add_argument("--time-limits", nargs="+", type=float, default=[5.0, 10.0], help="time limits (s)")
    ap.add_argument("--out", help="directory for the JSON of this run (optional)")
    args = ap.parse_args(argv)
    bad = [t for t in args.time_limits if not t > 0]
    if bad:
        ap.error(f"--time-limits must be positive seconds, but got {bad}.")
    rows = read_rows(args.budgets)
    out = []
    for limit in args.time_limits:
        below = far = optimal = 0
        times, gaps = [], []
        for r in rows:
            t0 = time.perf_counter()
            res = solve(r["family"], flops=r["flops"], params=r["params"], rho=r["rho"], time_limit=limit)
            times.append(time.perf_counter() - t0)
            best = max(r["limit"], r["evolution"])
            is_below = res.objective < r["evolution"] - SAME * abs(r["evolution"])
            is_far = res.objective < best - FAR * abs(best)
            below, far, optimal = below + is_below, far + is_far, optimal + (res.status == "optimal")
            gaps.append(100 * res.relative_gap)
            out.append({**{k: r[k] for k in ("family", "flops", "params", "rho", "limit", "evolution")},
                        "time_limit": limit, "objective": res.objective, "bound": res.bound, "gap_pct": gaps[-1],
                        "status": res.status, "time_s": times[-1]})
            print(f"{limit:5g} s  {r['family']:24} {r['flops'] / 1e9:7.3f} GFLOPs {r['params'] / 1e6:7.2f} M "
                  f"rho {r['rho']:.3f}: {100 * (res.objective / best - 1):+.3f}% against the best known, "
                  f"{res.status} (gap {gaps[-1]:.2f}%){'  below the evolution' if is_below else ''}", flush=True)
        print(f"time limit {limit:g} s: below the evolution on {below}, more than 0.1% below the best known on "
              f"{far} of {len(rows)} budgets (median {statistics.median(times):.1f} s); proven gap median "
              f"{statistics.median(gaps):.2f}%, within 1% on {sum(g <= 1.0 for g in gaps)}, optimal on "
              f"{optimal}", flush=True)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "bench_time_limits.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
