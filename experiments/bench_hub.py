"""The reader route's quick solve on NNI hub spaces (prints figures; no assertions).

    OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/bench_hub.py [--runs 3] [--random-samples 10]

Per space and budget (rho_0 = 0.5; ShuffleNetSpace also at a rho_0 inside the range it reaches): read
(``read_space``) + quick solve (``solve_space``, no time limit) + freeze of the winner, timed over ``--runs``
fresh readings (median; the space's construction is not counted), whether every run gave the same sample,
status, objective, proven bound and gap, and the winner's FLOPs/params as the solver counts them against
NNI's FlopsProfiler(count_normalization=False, count_activation=False, count_bias=False) and
NumParamsProfiler on the frozen model.  Beside it: what NNI's Random strategy spends on 100 samples of the
same space when each one is frozen and profiled (timed on ``--random-samples`` samples, extrapolated to 100).
"""
from __future__ import annotations

import argparse
import logging
import math
import os
import random
import statistics
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")

CASES = [("MobileNetV3Space", 300e6), ("MobileNetV3Space", 600e6), ("ProxylessNAS", 320e6),
         ("ShuffleNetSpace", 300e6), ("ShuffleNetSpace", 600e6)]
RHO = 0.5
INPUT = (1, 3, 224, 224)


def profiled(space, sample):
    """(FLOPs, params) of the frozen sample by NNI's profilers, with the core's counting conventions."""
    import torch
    from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler
    model, x = space.freeze(sample), torch.zeros(*INPUT)
    flops = FlopsProfiler(model, x, count_normalization=False, count_activation=False, count_bias=False).expression
    return float(flops), float(NumParamsProfiler(model, x).expression)


def timed_solve(space_cls, flops, rho):
    """One run: (read s, solve s, freeze s, description, result)."""
    from deepmad_nni.nas.reader import read_space
    from deepmad_nni.nas.solver import solve_space
    space = space_cls()
    t0 = time.perf_counter()
    desc = read_space(space, INPUT)
    t1 = time.perf_counter()
    result = solve_space(desc, flops=flops, rho=rho)
    t2 = time.perf_counter()
    if result.designs:
        space.freeze(result.designs[0].sample)
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2, space, desc, result


def bench_case(name, space_cls, flops, rho, runs):
    times, samples, last = [], [], None
    for _ in range(runs):
        read, solve, freeze, space, desc, result = timed_solve(space_cls, flops, rho)
        times.append((read, solve, freeze, read + solve + freeze))
        samples.append(result.designs[0].sample if result.designs else None)
        last = (space, desc, result)
    space, desc, result = last
    med = [statistics.median(t[i] for t in times) for i in range(4)]
    same = all(s == samples[0] for s in samples)
    row = {"space": name, "flops": flops, "rho": rho, "status": result.status, "med": med, "same": same,
           "nodes": result.nodes, "message": result.message}
    if result.designs:
        d = result.designs[0]
        nni_flops, nni_params = profiled(space, d.sample)
        row.update(objective=d.score.objective, bound=result.bound, gap=100 * result.gap / abs(result.bound),
                   rho_d=d.score.effectiveness, f=d.score.flops, p=d.score.params, nni_f=nni_flops, nni_p=nni_params)
    return row, desc


def random_cost(space_cls, count):
    """Seconds NNI's Random would spend on 100 samples, freezing and profiling each (timed on ``count``)."""
    space = space_cls()
    mutables = {k: m for k, m in space.simplify().items() if getattr(m, "values", None) is not None}
    rng = random.Random(0)
    t0 = time.perf_counter()
    for _ in range(count):
        profiled(space, {k: rng.choice(m.values) for k, m in mutables.items()})
    return (time.perf_counter() - t0) * 100 / count


def show(row, random_100, count):
    m = row["med"]
    head = (f"| {row['space']} | {row['flops'] / 1e6:.0f}M | {row['rho']:.3g} | {row['status']} | "
            f"{m[0]:.2f} + {m[1]:.2f} + {m[2]:.2f} = {m[3]:.2f} | {'yes' if row['same'] else 'NO'} | ")
    if "objective" in row:
        match = "yes" if (row["f"], row["p"]) == (row["nni_f"], row["nni_p"]) else "NO"
        body = (f"{row['objective']:.1f} | {row['bound']:.1f} | {row['gap']:.2f}% | {row['rho_d']:.3f} | "
                f"{row['f'] / 1e6:.2f} / {row['nni_f'] / 1e6:.2f} | {row['p'] / 1e6:.3f} / {row['nni_p'] / 1e6:.3f} | "
                f"{match} |")
    else:
        body = "- | - | - | - | - | - | - |"
    print(head + body + f" {random_100:.1f} s (extrapolated from {count}) |")
    if "objective" not in row:
        print(f"|   message: {row['message']} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="fresh read + solve + freeze runs per case (median)")
    parser.add_argument("--random-samples", type=int, default=10,
                        help="samples frozen and profiled to time NNI's Random (extrapolated to 100)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch
    torch.set_num_threads(1)
    import nni.nas.hub.pytorch as hub
    from nni.nas.profiler.pytorch import flops as _  # noqa: F401  (its loggers exist before they are quietened)
    from deepmad_nni.nas.solver import rho_range
    logging.getLogger("nni").setLevel(logging.ERROR)    # NNI sets its level when imported

    print("| space | MACs budget | rho_0 | status | read + solve + freeze s (median) | same sample, all runs | "
          "objective | bound | gap | design rho | FLOPs M solver / NNI | params M solver / NNI | match | "
          "NNI Random, 100 samples frozen + profiled |")
    print("|---" * 14 + "|")
    randoms = {}
    for name, flops in CASES:
        space_cls = getattr(hub, name)
        if name not in randoms:
            randoms[name] = random_cost(space_cls, args.random_samples)
        row, desc = bench_case(name, space_cls, flops, RHO, args.runs)
        show(row, randoms[name], args.random_samples)
        if row["status"] == "infeasible" and "smallest network" not in row["message"]:
            t0 = time.perf_counter()
            low, high = rho_range(desc, flops=flops)
            inside = math.sqrt(low * high)
            print(f"|   rho_range(flops={flops / 1e6:.0f}M): {low:.4g}-{high:.4g} in {time.perf_counter() - t0:.2f} s; "
                  f"rho_0 = {inside:.3g} (geometric middle) below |")
            row, _ = bench_case(name, space_cls, flops, inside, args.runs)
            show(row, randoms[name], args.random_samples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
