"""``DeepMADOptuna``: an Optuna study over DeepMAD's (rho_0, alpha, beta) as an NNI strategy, one new design per trial.

::

    strategy = DeepMADOptuna(flops=300e6)                       # instead of strategy = TPE()
    NasExperiment(model_space, evaluator, strategy, config).run()   # config.max_trial_number = evaluations

Each Optuna trial suggests (rho_0, alpha, beta) from :class:`~deepmad_nni.optuna_loop.SearchRanges`
(rho_0's range by default where the constraint binds for this space and budgets, extended up to the
package family's rho_0 on the package's spaces so that the paper's setting is inside it), solves the program over
the space (:mod:`.route`, any space ``DeepMAD`` reads) for its best distinct designs (as many as the
study has evaluated, plus ``candidates``), and submits the best one the study has not evaluated; the engine's metric is the trial's value.  So every
trial costs exactly one new evaluation and ``max_trial_number`` is the evaluation budget.  When all
the designs solved under a trial's hyperparameters are evaluated (the loop stops producing new
designs), the trial goes on from the best evaluated designs by mutation (:mod:`.mutation`), the mutants
ranked by the same trial's objective (``mutation="auto"``; ``"never"`` ends the search instead).

Storage: ``storage=None`` keeps the study in ``deepmad-optuna.db`` (SQLite) in the NNI experiment's
directory (in memory when the strategy runs outside a ``NasExperiment``); any Optuna RDB URL shares one
study between experiments or workers: a design is claimed atomically before it is submitted
(:mod:`deepmad_nni.optuna_loop._cache`), so no design is evaluated twice in a study.  The experiment's
checkpoint (state_dict / load_state_dict) holds the storage and study name; a resumed experiment reopens the
study, fails the trials the interrupted run left running and never re-evaluates a finished design.
"""
from __future__ import annotations

import logging
import math

from deepmad_nni.core.rho_range import RhoRange
from deepmad_nni.core.score import CONVENTIONS

from .loop import EvaluationLoop, Proposal, check_int
from .mutation import ranked_mutants

_logger = logging.getLogger(__name__)

DB_NAME = "deepmad-optuna.db"
MUTATIONS = ("auto", "never")


def experiment_directory():
    """The directory of the running NNI experiment (``<working dir>/<id>``), from NNI's experiment log handler;
    None outside an experiment."""
    from pathlib import Path

    from nni.runtime import log
    for key, handler in getattr(log, "_handlers", {}).items():
        name = getattr(handler, "baseFilename", None)
        if key != "_stdout_" and name and Path(name).name == "experiment.log":
            return Path(name).parent.parent
    return None


class DeepMADOptuna(EvaluationLoop):
    """See the module docstring.  Keyword-only settings: ``flops`` (MACs) / ``params`` budgets; ``rho``,
    ``beta``, ``alpha_last``, ``alpha_others`` (low, high) ranges, as :class:`~deepmad_nni.optuna_loop.SearchRanges`
    (``rho=None``: computed); ``sampler`` (``"tpe"``, ``"random"``, ``"nsga2"`` or an Optuna sampler);
    ``seed``; ``storage`` (None or an RDB URL); ``study_name``; ``candidates`` (designs solved per trial);
    ``mutation``; ``defaults`` (the first ``defaults`` trials of a new study take the paper's hyperparameters,
    so they evaluate DeepMAD's top designs before the sampler explores);
    ``convention``; ``time_limit`` (the solver's; None: quick); ``input_size``; ``latency`` (ms, with
    ``latency_table``) and ``max_feature_map`` budgets as :class:`~deepmad_nni.DeepMAD`'s (docs/latency.md)."""

    def __init__(self, *, flops=None, params=None, rho=None, beta=(0.0, 20.0), alpha_last=(1.0, 32.0),
                 alpha_others=(0.5, 2.0), sampler="tpe", seed: int = 0, storage=None, study_name: str | None = None,
                 candidates: int = 8, mutation: str = "auto", defaults: int = 10,
                 convention: str = "official", time_limit: float | None = None, input_size=None,
                 latency=None, latency_table=None, max_feature_map=None):
        super().__init__(flops=flops, params=params, input_size=input_size, latency=latency,
                         latency_table=latency_table, max_feature_map=max_feature_map)
        from deepmad_nni.core.program import positive_number
        import optuna

        from deepmad_nni.optuna_loop._space import SearchRanges
        from deepmad_nni.optuna_loop._tune import _sampler
        self.ranges = SearchRanges(rho=rho, beta=beta, alpha_last=alpha_last, alpha_others=alpha_others)
        self.seed = check_int("seed", seed, low=0)
        self.sampler_setting = sampler
        self._sampler = _sampler(sampler, self.seed, False)   # a ValueError naming sampler when unknown
        if storage is not None and not (isinstance(storage, str) and "://" in storage) and \
                not isinstance(storage, optuna.storages.BaseStorage):
            raise ValueError(f"storage must be None, an Optuna RDB URL such as 'sqlite:///study.db' or an "
                             f"optuna.storages.BaseStorage, but got {storage!r}.")
        self.storage, self.study_name = storage, study_name
        self.candidates = check_int("candidates", candidates)
        if mutation not in MUTATIONS:
            raise ValueError(f"mutation must be one of {list(MUTATIONS)}, but got {mutation!r}.")
        self.mutation, self.defaults = mutation, check_int("defaults", defaults, low=0)
        if convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, but got {convention!r}.")
        self.convention = convention
        self.time_limit = positive_number("time_limit", time_limit)
        self.study = self._cache = None
        self._trials: dict = {}     # network key -> optuna Trial being evaluated

    def extra_repr(self) -> str:
        return (f"flops={self.flops}, params={self.params}, ranges={self.ranges.as_dict()}, "
                f"sampler={self.sampler_setting!r}, seed={self.seed}, candidates={self.candidates}, "
                f"mutation={self.mutation!r}")

    # -- the study ---------------------------------------------------------------------------------------
    def _prepare(self) -> None:
        import optuna

        from deepmad_nni.optuna_loop._cache import open_cache
        from deepmad_nni.optuna_loop._tune import make_storage
        reach = None
        if self.ranges.rho is None:
            reach = self.route.rho_range(flops=self.flops, params=self.params, convention=self.convention)
            top = max(reach.high, self.route.family_rho or 0.0)   # the package family's rho_0 stays in range
            self.ranges = self.ranges.resolved(lambda: RhoRange(reach.low, top, reach.exact))
            _logger.info("DeepMADOptuna: rho_0 sampled in %s (where rho <= rho_0 binds for these budgets).", reach)
        if self.storage is None:
            folder = experiment_directory()
            self.storage = None if folder is None else f"sqlite:///{folder / DB_NAME}"
        store, self.storage_name = make_storage(self.storage, None, heartbeat_interval=None)
        if self.study_name is None:
            self.study_name = (f"deepmad-optuna-flops{self.flops or 0:.4g}-params{self.params or 0:.4g}"
                               + (f"-latency{self.device.latency:.4g}" if self.device.latency else "")
                               + (f"-fm{self.device.max_feature_map:.4g}" if self.device.max_feature_map else ""))
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = optuna.create_study(study_name=self.study_name, storage=store, sampler=self._sampler,
                                         direction="maximize", load_if_exists=True)
        self._cache = open_cache(self.study)
        self._fail_orphans()
        if not self.study.trials:
            from deepmad_nni.optuna_loop._tune import _enqueue_defaults
            for _ in range(self.defaults):   # rho_0 clipped into the range, as tune() does for a computed one
                _enqueue_defaults(self.study, self.route.num_stages, self.route.default_rho(None), self.ranges,
                                  clip=True)
        _logger.info("DeepMADOptuna: study %r in %s, %d trials so far.", self.study_name, self.storage_name,
                     len(self.study.trials))

    def _fail_orphans(self) -> None:
        """Trials an interrupted run of this strategy left RUNNING turn FAIL: their designs may be claimed again."""
        from optuna.trial import TrialState
        mine = set(getattr(self, "_restored_trials", ()))
        for t in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if t.number in mine:
                self.study.tell(t.number, state=TrialState.FAIL)

    # -- one trial = one new design --------------------------------------------------------------------
    def _propose(self) -> Proposal | None:
        while True:
            trial = self.study.ask()
            hp = self.ranges.suggest(trial, self.route.num_stages)
            program = dict(flops=self.flops, params=self.params, rho=hp["rho"], alpha=hp["alpha"],
                           beta=hp["beta"], convention=self.convention)
            done = self.evaluated            # one read of the study's table per trial
            top_k = len(done) + self.candidates   # the best unevaluated design is among them
            result, records = self.route.solve(**program, top_k=top_k, time_limit=self.time_limit,
                                               budgets=self.device.solve_kwargs())
            found = self._claim_first(trial, [(r.sample, r.score, "program") for r in records], done)
            if found is None and self.mutation == "auto":
                found = self._claim_first(trial, self._mutants(program, done), done)
            if found is None:
                from optuna.trial import TrialState
                reason = "no unevaluated design" if records else f"solver {result.status}: {result.message}"
                trial.set_user_attr("failed_reason", reason)
                self.study.tell(trial, state=TrialState.FAIL)
                if records or self._stalled():
                    return None
                continue
            sample, score, key, source, device = found
            trial.set_user_attr("deepmad", {"source": source, "status": result.status, "entropy": score.entropy,
                                            "rho": score.effectiveness, "q": score.q, "objective": score.objective,
                                            "flops": score.flops, "params": score.params, "network": key,
                                            "alpha": list(hp["alpha"]), **device})
            trial.set_user_attr("sample", {k: v for k, v in sample.items()})
            self._trials[key] = trial
            _logger.info("DeepMADOptuna trial %d: rho_0=%.4g beta=%.3g alpha=%s -> %s design, objective %.6g, "
                         "rho %.4g, FLOPs %.4g, params %.4g", trial.number, hp["rho"], hp["beta"],
                         [round(a, 3) for a in hp["alpha"]], source, score.objective, score.effectiveness,
                         score.flops, score.params)
            return Proposal(sample, key, score, source, {"trial": trial.number, "rho0": hp["rho"],
                                                         "alpha": hp["alpha"], "beta": hp["beta"], **device})

    def _stalled(self) -> bool:
        """Infeasible hyperparameters fail their trial and the next is drawn; stop after many in a row."""
        from optuna.trial import TrialState
        last = self.study.get_trials(deepcopy=False)[-20:]
        return len(last) == 20 and all(t.state == TrialState.FAIL for t in last)

    def _claim_first(self, trial, options, done):
        for sample, score, source in options:
            key = self.route.network(sample)
            if key in done:
                continue
            device = self.admitted(sample, score)
            if device is not None and self._cache.claim(key, trial._trial_id, self.study):
                return sample, score, key, source, device
        return None

    def _mutants(self, program, done):
        """Mutants of the study's three best evaluated designs (any worker's), ranked by this trial's objective."""
        from optuna.trial import TrialState
        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        parents = [t.user_attrs["sample"] for t in sorted(complete, key=lambda t: -t.value)[:3]
                   if "sample" in t.user_attrs]
        from deepmad_nni.optuna_loop._cache import RUNNING
        busy = {k for k, e in self._cache.entries().items() if e.state == RUNNING}   # claimed by another worker
        for pairs in (False, True):
            ranked = ranked_mutants(self.route, parents, done | busy, pairs=pairs, **program)
            if ranked:
                return [(sample, score, "mutation") for score, sample, _ in ranked]
        return []

    def _finished(self, proposal: Proposal) -> None:
        from optuna.trial import TrialState

        from deepmad_nni.optuna_loop._cache import DONE, FAILED
        trial = self._trials.pop(proposal.network, None)
        if trial is None:
            return
        if proposal.metric is None or not math.isfinite(proposal.metric):
            self._cache.finish(proposal.network, trial._trial_id, FAILED)
            self.study.tell(trial, state=TrialState.FAIL)
        else:
            self._cache.finish(proposal.network, trial._trial_id, DONE, value=proposal.metric)
            self.study.tell(trial, proposal.metric)

    # -- checkpointing ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"storage": self.storage if isinstance(self.storage, str) else None, "study_name": self.study_name,
                "ranges": self.ranges.as_dict(),
                "running_trials": [t.number for t in self._trials.values()]}

    def load_state_dict(self, state_dict: dict) -> None:
        from deepmad_nni.optuna_loop._space import SearchRanges
        self.storage, self.study_name = state_dict["storage"], state_dict["study_name"]
        r = state_dict["ranges"]
        self.ranges = SearchRanges(rho=r["rho"], beta=r["beta"], alpha_last=r["alpha_last"],
                                   alpha_others=r["alpha_others"])
        self._restored_trials = list(state_dict.get("running_trials", ()))

    @property
    def evaluated(self) -> set:
        """Network keys evaluated in the study (by any worker) or being evaluated by this strategy."""
        own = super().evaluated
        if self._cache is None:
            return own
        from deepmad_nni.optuna_loop._cache import DONE, PRUNED
        return own | {k for k, e in self._cache.entries().items() if e.state in (DONE, PRUNED)}
