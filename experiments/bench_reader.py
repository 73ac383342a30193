"""Reader + solver speed on NNI hub spaces (prints figures; no assertions).

    OMP_NUM_THREADS=1 PYTHONPATH=. python experiments/bench_reader.py [--time-limit T] [--samples 20]

For MobileNetV3Space and ProxylessNAS it prints: build time of the space (not counted), reading
(``read_space``), solving (``solve_space`` with the given time limit), freezing the winner, their total; and
the per-sample cost of scoring a candidate with the reader (first visit and memoised) against freezing it and
running NNI's FlopsProfiler + NumParamsProfiler on the frozen model.
"""
from __future__ import annotations

import argparse
import logging
import os
import random
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")


def bench(name, space_cls, budget, args):
    import torch
    from nni.nas.profiler.pytorch.flops import FlopsProfiler, NumParamsProfiler

    from deepmad_nni.nas.reader import read_space
    from deepmad_nni.nas.solver import solve_space

    t0 = time.perf_counter()
    space = space_cls()
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    desc = read_space(space, (1, 3, 224, 224))
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = solve_space(desc, rho=0.5, time_limit=args.time_limit, seed=0, **budget)
    t_solve = time.perf_counter() - t0
    t0 = time.perf_counter()
    if result.designs:
        space.freeze(result.designs[0].sample)
    t_freeze = time.perf_counter() - t0
    print(f"\n{name}: {desc}")
    print(f"  build {t_build:.2f} s (not counted) | read {t_read:.2f} s | solve {t_solve:.2f} s "
          f"({result.status}, {result.nodes} samples) | freeze winner {t_freeze:.2f} s | "
          f"total {t_read + t_solve + t_freeze:.2f} s")
    if result.designs:
        d = result.designs[0]
        print(f"  winner: objective {d.score.objective:.1f} (bound {result.bound:.1f}, gap {result.gap:.1f}), "
              f"rho {d.score.effectiveness:.3f}, FLOPs {d.score.flops / 1e6:.1f} M, params {d.score.params / 1e6:.2f} M")

    rng = random.Random(1)
    samples = [desc.canonical({k: rng.choice(m.values) for k, m in desc.mutables.items()})
               for _ in range(args.samples)]
    fresh = read_space(space, (1, 3, 224, 224))   # empty memo: first-visit cost
    t0 = time.perf_counter()
    for s in samples:
        fresh.evaluate(s)
    t_cold = (time.perf_counter() - t0) / len(samples)
    t0 = time.perf_counter()
    for s in samples:
        fresh.evaluate(s)
    t_warm = (time.perf_counter() - t0) / len(samples)
    x = torch.zeros(1, 3, 224, 224)
    n_frozen = min(args.samples, args.frozen)
    t_fr = t_prof = 0.0
    for s in samples[:n_frozen]:
        t0 = time.perf_counter()
        model = space.freeze(s)
        t1 = time.perf_counter()
        FlopsProfiler(model, x, count_normalization=False, count_activation=False, count_bias=False)
        NumParamsProfiler(model, x)
        t_fr += t1 - t0
        t_prof += time.perf_counter() - t1
    t_fr, t_prof = t_fr / n_frozen, t_prof / n_frozen
    print(f"  per sample: reader {t_cold * 1e3:.1f} ms (first visit), {t_warm * 1e3:.2f} ms (memoised) | "
          f"freeze {t_fr * 1e3:.0f} ms + profile {t_prof * 1e3:.0f} ms = {(t_fr + t_prof) * 1e3:.0f} ms "
          f"({(t_fr + t_prof) / t_cold:.0f}x the reader's first visit)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-limit", type=float, default=None, help="solver time limit in seconds (default: quick)")
    parser.add_argument("--samples", type=int, default=20, help="random samples for the per-sample costs")
    parser.add_argument("--frozen", type=int, default=3, help="of those, how many to freeze and profile")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("nni").setLevel(logging.ERROR)
    import torch
    torch.set_num_threads(1)
    from nni.nas.hub.pytorch import MobileNetV3Space, ProxylessNAS
    bench("MobileNetV3Space", MobileNetV3Space, dict(flops=300e6, params=5e6), args)
    bench("ProxylessNAS", ProxylessNAS, dict(flops=320e6), args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
