"""The strategies compared, by name: NNI's built-ins (as shipped, with the settings stated) and DeepMAD.

``NNI_STRATEGIES[name](seed)`` builds a fresh NNI strategy; ``DEEPMAD_LOOPS`` are the package's NNI
strategies that spend evaluations (``DeepMADOptuna``, ``DeepMADEvolution``), built by
:func:`deepmad_loop` with the problem's budgets and run through the same harness.  ``SequentialTPE`` is
NNI's TPE strategy without ``HPOTunerStrategy``'s one-second sleep after every proposal: with the sequential
engine a submitted model is trained before ``submit_models`` returns, so there is nothing to wait for.
"""
from __future__ import annotations

import random

DEEPMAD = "deepmad"            # top-1 with 0 trained candidates, then top-k (k = N) evaluated
DEEPMAD_OPTUNA = "deepmad-optuna"  # DeepMADOptuna (NNI strategy): one new DeepMAD design per Optuna trial
DEEPMAD_EVOLUTION = "deepmad-evolution"  # DeepMADEvolution (NNI strategy): DeepMAD-seeded, objective-ranked mutants
DEEPMAD_LOOPS = (DEEPMAD_OPTUNA, DEEPMAD_EVOLUTION)
MATHNAS = "mathnas"  # MathNAS (NNI strategy): per-choice contributions estimated, then the one-hot ILP's k best
NNI_NAMES = ("random", "grid", "evolution", "tpe", "rl")
ALL = (DEEPMAD,) + DEEPMAD_LOOPS + NNI_NAMES  # the default list (no one-shot: see ONESHOT)
ONESHOT = ("darts", "gumbel-darts", "random-oneshot")  # training track only, chosen with --strategies
KNOWN = ALL + ONESHOT + (MATHNAS,)  # mathnas: NAS-Bench-Macro space, chosen with --strategies
RL_REQUIREMENT = "tianshou==0.5.1 and gym (pip install 'tianshou==0.5.1' gym)"


def _sequential_tpe_class():
    import nni
    from nni.nas.strategy import TPE

    class SequentialTPE(TPE):
        """NNI's TPE (TpeTuner) as a NAS strategy, proposing the next model as soon as the last is trained."""

        def _run(self) -> None:
            space = {label: m.as_legacy_dict() for label, m in self.model_space.simplify().items()}
            with self._thread_lock:
                self.tuner.update_search_space(space)
            while self.engine.budget_available():
                with self._thread_lock:
                    try:
                        param = self.tuner.generate_parameters(self._model_count)
                    except nni.NoMoreTrialError:
                        break
                    model = self.model_space.freeze(param)
                    self._model_to_id[model] = self._model_count
                    self._model_count += 1
                self.engine.submit_models(model)

    return SequentialTPE


def sequential_tpe(seed: int):
    return _sequential_tpe_class()(optimize_mode="maximize", seed=seed)


def rl_available() -> tuple[bool, str]:
    """Whether PolicyBasedRL can run here, and why not."""
    try:
        import gym  # noqa: F401
        import tianshou
    except ImportError as err:
        return False, f"PolicyBasedRL skipped: it needs {RL_REQUIREMENT} ({err})."
    if not tianshou.__version__.startswith("0.5."):
        return False, f"PolicyBasedRL skipped: it needs {RL_REQUIREMENT}, found tianshou {tianshou.__version__}."
    return True, ""


def _random(seed):
    from nni.nas.strategy import Random
    return Random(seed=seed)


def _grid(seed):
    from nni.nas.strategy import GridSearch
    return GridSearch(shuffle=True, seed=seed)


def _evolution(seed):
    from nni.nas.strategy import RegularizedEvolution
    return RegularizedEvolution(population_size=20, sample_size=5, seed=seed)


def _rl(seed):
    import numpy as np
    import torch
    from nni.nas.strategy import PolicyBasedRL
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # PolicyBasedRL takes no seed; its policy and sampling draw from these
    return PolicyBasedRL(samples_per_update=10)


NNI_STRATEGIES = {"random": _random, "grid": _grid, "evolution": _evolution, "tpe": sequential_tpe, "rl": _rl}


def deepmad_loop(name: str, seed: int, *, flops=None, params=None, sampler="tpe"):
    """A fresh ``DeepMADOptuna`` / ``DeepMADEvolution`` (``name`` in :data:`DEEPMAD_LOOPS`) for these budgets.

    ``DeepMADOptuna`` keeps its study in memory (one new study per run, its sampler seeded with ``seed``),
    whatever NNI experiment this process may have started before."""
    if name == DEEPMAD_OPTUNA:
        import optuna

        from deepmad_nni.nas.optuna_strategy import DeepMADOptuna
        strategy = DeepMADOptuna(flops=flops, params=params, seed=seed, sampler=sampler)
        strategy.storage = optuna.storages.InMemoryStorage()  # never an experiment folder's SQLite file
        return strategy
    if name == DEEPMAD_EVOLUTION:
        from deepmad_nni.nas.evolution import DeepMADEvolution
        return DeepMADEvolution(flops=flops, params=params, seed=seed)
    raise ValueError(f"name must be one of {list(DEEPMAD_LOOPS)}, but got {name!r}.")

SETTINGS = {
    "random": "Random(seed=s, dedup=True)",
    "grid": "GridSearch(shuffle=True, seed=s)",
    "evolution": "RegularizedEvolution(population_size=20, sample_size=5, mutation_prob=0.05, seed=s)",
    "tpe": "TPE(optimize_mode='maximize', seed=s) without the 1 s sleep per proposal",
    "rl": "PolicyBasedRL(samples_per_update=10), torch/numpy seeded with s",
    DEEPMAD: "core solve (exact enumeration) top-1 (N=0, nothing trained) and top-k distinct networks (N=k)",
    DEEPMAD_OPTUNA: "DeepMADOptuna(flops=, params= the budget's, seed=s, sampler='tpe'), other settings its "
                    "defaults, study in memory: each Optuna trial draws (rho_0, alpha, beta), solves DeepMAD's "
                    "program and trains its best design not trained yet (the first trials take the paper's "
                    "hyperparameters, i.e. DeepMAD's top-k)",
    DEEPMAD_EVOLUTION: "DeepMADEvolution(flops=, params= the budget's, seed=s), other settings its defaults: "
                       "DeepMAD's top designs first, then regularized evolution whose mutants are ranked by "
                       "DeepMAD's objective",
    MATHNAS: "MathNAS(flops=, params= the budget's, input_size= the input the problem's profilers count at, "
             "seed=s), other settings its defaults: the swap estimate (a seeded random base within the budget and "
             "its single swaps, those over the budget repaired within it; 1 + sum(n_i - 1) evaluations, 17 on "
             "NAS-Bench-Macro, fewer where choices are pruned), "
             "then the one-hot ILP's best designs not evaluated yet",
}


def check_strategies(names) -> list[str]:
    names = list(names)
    unknown = [n for n in names if n not in KNOWN]
    if unknown or not names:
        raise ValueError(f"strategies must be a non-empty list of {list(KNOWN)}, but got {names!r}.")
    return names
