"""``tune(...)``: the Optuna study around the DeepMAD solver (storage, sampler, pruner, progress, plots)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..core.program import positive_number
from ._space import SearchRanges

SAMPLERS = ("tpe", "random", "nsga2")
PRUNERS = ("median", "hyperband", "none")
META_ATTR = "deepmad"


@dataclass
class TuneResult:
    """What :func:`tune` leaves: the study, its best trial(s) and the plots written."""

    study: object
    storage: str
    study_name: str
    plots: dict = field(default_factory=dict)
    space: object = None  # the NNI model space of a study over a space (``tune(space=...)``), else None

    @property
    def best_trials(self) -> list:
        """The best trial (single objective) or the Pareto front (multi-objective)."""
        from optuna.trial import TrialState
        if not self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
            return []
        return self.study.best_trials if len(self.study.directions) > 1 else [self.study.best_trial]

    @property
    def pareto_front(self) -> list:
        """One trial per distinct design among the best trials (identical designs share their values)."""
        seen, out = set(), []
        for t in sorted(self.best_trials, key=lambda t: t.number):
            if t.user_attrs.get("design_key") not in seen:
                seen.add(t.user_attrs.get("design_key"))
                out.append(t)
        return out

    def summary(self) -> dict:
        """Counts by state, distinct designs evaluated, the best trial (or the Pareto front)."""
        from collections import Counter
        trials = self.study.get_trials(deepcopy=False)
        states = Counter(t.state.name for t in trials)

        def brief(t):
            a = t.user_attrs
            return {"trial": t.number, "accuracy": a.get("accuracy"), "flops": a.get("flops"),
                    "params": a.get("params"),
                    "params_tuned": t.params, "design_key": a.get("design_key"), "design": a.get("design"),
                    "sample": a.get("sample"), "benchmark_key": a.get("evaluation", {}).get("benchmark_key")}

        best = self.best_trials
        out = {"study_name": self.study_name, "storage": self.storage, "trials": dict(states),
               "distinct_designs_evaluated": len({t.user_attrs.get("design_key") for t in trials
                                                  if t.user_attrs.get("cache") == "miss"})}
        if len(self.study.directions) > 1:
            out["best"] = None
            out["pareto_front"] = [brief(t) for t in self.pareto_front]
        else:
            out["best"] = brief(best[0]) if best else None
        return out

    def _best(self):
        trials = self.best_trials
        return max(trials, key=lambda t: t.values[0]) if trials else None

    @property
    def best_architecture(self):
        """The design of the most accurate trial (None before any completed trial, and for a study over a
        space: see :attr:`best_sample`)."""
        from ._design import architecture_of
        best = self._best()
        if best is None or "design" not in best.user_attrs:
            return None
        a = best.user_attrs
        return architecture_of(a["design"], resolution=a["resolution"], in_channels=a.get("in_channels", 3),
                               num_classes=self.study.user_attrs[META_ATTR]["num_classes"])

    @property
    def best_sample(self) -> dict | None:
        """A study over a space: the NNI sample of the most accurate trial (``space.freeze(sample)`` builds it);
        None for a family's study or before any completed trial."""
        best = self._best()
        return None if best is None else best.user_attrs.get("sample")


def make_storage(storage, out_dir, *, heartbeat_interval: int | None = 10):
    """An Optuna storage: ``None`` -> ``sqlite:///<out_dir>/study.db`` (in memory without ``out_dir``);
    an RDB URL (``sqlite:///...``, ``postgresql://...``, ``mysql://...``) with a heartbeat so that a killed
    worker's running trial turns FAIL; any ``optuna.storages.BaseStorage`` as is."""
    import optuna
    if storage is None:
        if out_dir is None:
            return optuna.storages.InMemoryStorage(), "memory"
        storage = f"sqlite:///{Path(out_dir).resolve() / 'study.db'}"
    if isinstance(storage, optuna.storages.BaseStorage):
        return storage, type(storage).__name__
    if not isinstance(storage, str) or "://" not in storage:
        raise ValueError(f"storage must be an Optuna RDB URL such as 'sqlite:///study.db' or "
                         f"'postgresql://user@host/db', or a BaseStorage, but got {storage!r}.")
    engine_kwargs = {"connect_args": {"timeout": 60}} if storage.startswith("sqlite") else {}
    storage = _postgresql_driver(storage)
    if storage.startswith("sqlite:///"):
        path = storage[len("sqlite:///"):]
        if path and path != ":memory:" and not Path(path).parent.exists():
            raise ValueError(f"storage {storage!r}: the folder {str(Path(path).parent)!r} does not exist.")
    import time
    import warnings

    import sqlalchemy
    for attempt in range(6):  # workers starting together race to create the schema of a new database
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                rdb = optuna.storages.RDBStorage(
                    storage, engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_interval,
                    grace_period=None if heartbeat_interval is None else 3 * heartbeat_interval)
            return rdb, storage
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError):
            if attempt == 5:
                raise
            time.sleep(0.5 * (attempt + 1))


def _postgresql_driver(url: str) -> str:
    """SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3; use psycopg2 when only that driver is installed."""
    if not url.startswith("postgresql://"):
        return url
    import importlib.util
    if importlib.util.find_spec("psycopg") is None and importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url


def _sampler(sampler, seed, multi_objective):
    import optuna
    if isinstance(sampler, optuna.samplers.BaseSampler):
        return sampler
    if sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=8, multivariate=True)
    if sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=10)
    raise ValueError(f"sampler must be one of {list(SAMPLERS)} or an optuna sampler, but got {sampler!r}.")


def _pruner(pruner):
    import optuna
    if isinstance(pruner, optuna.pruners.BasePruner):
        return pruner
    if pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1)
    if pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    if pruner in ("none", None):
        return optuna.pruners.NopPruner()
    raise ValueError(f"pruner must be one of {list(PRUNERS)} or an optuna pruner, but got {pruner!r}.")


def _open_study(*, storage, study_name, meta, sampler, pruner, multi_objective):
    """Create the study or load it; a loaded study must describe the same problem (``meta``)."""
    import optuna
    directions = ["maximize", "minimize"] if multi_objective else ["maximize"]
    try:
        study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner,
                                    directions=directions, load_if_exists=False)
        created = True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler, pruner=pruner)
        created = False
    if [d.name.lower() for d in study.directions] != directions:
        raise ValueError(f"study {study_name!r} has directions {[d.name.lower() for d in study.directions]}, but "
                         f"multi_objective={multi_objective} needs {directions}; use another study_name.")
    old = study.user_attrs.get(META_ATTR)
    if old is None:
        study.set_user_attr(META_ATTR, meta)
    else:
        for k in ("family", "space", "flops", "params", "convention", "evaluator", "latency", "max_feature_map",
                  "latency_table"):
            if old.get(k) != meta.get(k):
                raise ValueError(f"study {study_name!r} was created with {k}={old.get(k)!r}, but got {meta.get(k)!r}; "
                                 "use another study_name.")
    return study, created


def tune(family=None, *, space=None, flops=None, params=None, evaluator=None, benchmark_path=None,
         evaluator_options=None, ranges: SearchRanges | None = None, n_trials: int | None = 30,
         timeout: float | None = None, storage=None, study_name: str | None = None, out_dir=None,
         multi_objective: bool = False, sampler="tpe", pruner="median", seed: int | None = None,
         convention: str = "official", time_limit: float = 10.0, start_from_defaults: bool = True,
         heartbeat_interval: int | None = 10, max_evaluations: int | None = None, plots: bool = True,
         progress: bool = True, latency=None, latency_table=None, max_feature_map=None) -> TuneResult:
    """Tune DeepMAD's rho_0, beta and alpha with Optuna against real evaluations of the designs.

    Every trial draws (rho_0, beta, alpha) from ``ranges``, solves the DeepMAD program within ``flops`` /
    ``params`` and evaluates the design with ``evaluator``; what the program is solved over is one of:

    * ``family`` (default ``"nas-bench-macro"``): a core family name or ``Family``
      (:func:`deepmad_nni.core.solve`); ``evaluator`` (default ``"nas-bench-macro"``): ``"nas-bench-macro"``,
      ``"training"``, ``"module:attribute"``, a callable, an NNI evaluator or an :class:`Evaluator`, given the
      design's ``Architecture``;
    * ``space``: an NNI model space (a ``ModelSpace``, or ``"module:attribute"`` naming one or a zero-argument
      callable returning one), solved over :func:`deepmad_nni.nas.route.route_of` (``top_k=1``); the
      evaluator (no default) receives the frozen NNI model ``space.freeze(sample)``: a callable
      ``f(model) -> accuracy`` (or ``f(model, report)``), an ``nni.nas.evaluator.Evaluator`` run in this
      process, or an :class:`Evaluator` (``evaluate(model, report)``).  The named ``"nas-bench-macro"`` and
      ``"training"`` evaluators (architectures of core families), ``benchmark_path`` and the NNI evaluator's
      proxy options (all but ``scale``) are refused with a space.  The trial records ``sample`` and
      ``network``; two samples of one network are one design.

    A design is evaluated once per study (the cache lives in the storage).  An infeasible program prunes the
    trial (``user_attrs["pruned_reason"]``).  ``ranges.rho=None`` (default): rho_0 is drawn where the
    constraint binds for these budgets (the family's / route's ``rho_range``).  ``multi_objective``
    maximises accuracy and minimises FLOPs.  ``storage``: an RDB URL shared by any number of workers, or
    ``None`` for ``<out_dir>/study.db``; the same ``study_name`` resumes a study and adds ``n_trials``.
    ``start_from_defaults`` enqueues the paper's hyperparameters (rho_0 of the family or route, clipped into
    a computed rho range; beta 10, alpha default) as the first trial of a new study.  ``max_evaluations`` stops the
    study once that many distinct designs have been evaluated (cache hits are free, so this is the
    evaluation budget).  Plots (PNG) go to ``out_dir``.  ``latency`` (ms, with ``latency_table``) and
    ``max_feature_map`` are budgets as in :func:`deepmad_nni.core.solve` (docs/latency.md); each trial records
    its design's ``latency_ms`` / ``max_feature_map``.
    """
    import optuna

    from ._cache import open_cache
    from ._objective import FamilyDesigner, Objective, SpaceDesigner

    if family is not None and space is not None:
        raise ValueError(f"family and space cannot both be given (a study designs over one of them), but got "
                         f"family={family if isinstance(family, str) else type(family).__name__!r} and space="
                         f"{space if isinstance(space, str) else type(space).__name__!r}.")
    flops, params = positive_number("flops", flops), positive_number("params", params)
    from ..core.device_budgets import DeviceBudgets
    device = DeviceBudgets.create(latency=latency, latency_table=latency_table, max_feature_map=max_feature_map)
    device = device if device.active else None
    ranges = SearchRanges() if ranges is None else ranges
    if not isinstance(ranges, SearchRanges):
        raise ValueError(f"ranges must be a SearchRanges, but got {type(ranges).__name__}.")
    if n_trials is not None and (not isinstance(n_trials, int) or isinstance(n_trials, bool) or n_trials < 1):
        raise ValueError(f"n_trials must be a positive integer or None, but got {n_trials!r}.")
    if max_evaluations is not None and (not isinstance(max_evaluations, int) or isinstance(max_evaluations, bool)
                                        or max_evaluations < 1):
        raise ValueError(f"max_evaluations must be a positive integer or None, but got {max_evaluations!r}.")
    if n_trials is None and timeout is None and max_evaluations is None:
        raise ValueError("n_trials, timeout and max_evaluations cannot all be None (the study would never stop).")
    from deepmad_nni.core.score import CONVENTIONS
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {sorted(CONVENTIONS)}, but got {convention!r}.")
    sampler_obj, pruner_obj = _sampler(sampler, seed, multi_objective), _pruner(pruner)
    computed_rho = ranges.rho is None
    if space is not None:
        from ..nas.route import route_of
        space = load_space(space)
        route = route_of(space)
        ev = _space_evaluator(evaluator, benchmark_path, evaluator_options, route)
        ranges, reach = _resolved_rho(ranges, lambda: route.rho_range(flops=flops, params=params,
                                                                      convention=convention))
        default_rho, num_stages = route.default_rho(reach), route.num_stages
        designer = SpaceDesigner(route, time_limit, device)
        space_id, label = _space_identity(route)
        meta = {"family": None, "space": space_id, "num_classes": None}
    else:
        from ..core import get_family
        from ..core.family import Family
        from ..core.rho_range import rho_range
        from ._evaluators import make_evaluator
        family = "nas-bench-macro" if family is None else family
        fam = get_family(family) if isinstance(family, str) else family
        if not isinstance(fam, Family):
            raise ValueError(f"family must be a family name or a Family, but got {type(family).__name__}.")
        ev = make_evaluator("nas-bench-macro" if evaluator is None else evaluator, benchmark_path=benchmark_path,
                            **(evaluator_options or {}))
        ev.check_family(fam)
        ranges, _ = _resolved_rho(ranges, lambda: rho_range(fam, flops=flops, params=params, convention=convention))
        default_rho, num_stages = fam.default_rho, fam.num_stages()
        designer = FamilyDesigner(fam, ev.signature(), time_limit, device)
        label = fam.name
        meta = {"family": fam.name, "num_classes": fam.num_classes}
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
    store, storage_name = make_storage(storage, out_dir, heartbeat_interval=heartbeat_interval)
    meta.update({"flops": flops, "params": params, "convention": convention, "evaluator": ev.signature(),
                 "ranges": ranges.as_dict()})
    if device is not None:     # another budget is another study: its designs differ
        meta.update({"latency": device.latency, "max_feature_map": device.max_feature_map,
                     "latency_table": device.latency_table.describe() if device.latency_table is not None else None})
    if study_name is None:
        study_name = (f"deepmad-{'space-' if space is not None else ''}{label}-flops{flops or 0:.4g}-"
                      f"params{params or 0:.4g}-{ev.name}" + ("-pareto" if multi_objective else "")
                      + (f"-latency{device.latency:.4g}" if device is not None and device.latency else "")
                      + (f"-fm{device.max_feature_map:.4g}" if device is not None and device.max_feature_map else ""))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study, created = _open_study(storage=store, study_name=study_name, meta=meta, sampler=sampler_obj,
                                 pruner=pruner_obj, multi_objective=multi_objective)
    cache = open_cache(study)
    if created:
        cache.clear()  # SQLite may reuse the id of a deleted study
        if start_from_defaults:
            _enqueue_defaults(study, num_stages, default_rho, ranges, clip=computed_rho)
    objective = Objective(flops=flops, params=params, ranges=ranges, evaluator=ev, cache=cache,
                          convention=convention, time_limit=time_limit, multi_objective=multi_objective,
                          designer=designer)
    callbacks = [_Progress(sys.stdout, n_trials, multi_objective)] if progress else []
    if max_evaluations is not None:
        callbacks.append(_StopAfterEvaluations(cache, max_evaluations))
    if progress:
        print(f"study {study_name!r} in {storage_name}: {len(study.trials)} trials so far; evaluator {ev!r}",
              flush=True)
    study.optimize(objective, n_trials=n_trials, timeout=timeout, callbacks=callbacks, gc_after_trial=False)
    result = TuneResult(study, storage_name, study_name, space=space)
    if plots and out_dir is not None:
        from ._plots import write_plots
        result.plots = write_plots(study, out_dir)
    return result


PAPER_RHO_RANGE = (0.1, 2.0)  # the paper's hand-tuned range: the fallback when no design meets the budgets


def _resolved_rho(ranges: SearchRanges, reach):
    """``ranges`` with rho set (as given, or ``reach()``'s RhoRange) and that RhoRange (None when given).
    When no design meets the budgets at all, rho falls back on :data:`PAPER_RHO_RANGE` and every trial is
    pruned with the solver's reason."""
    if ranges.rho is not None:
        return ranges, None
    try:
        rr = reach()
    except ValueError:
        from dataclasses import replace
        return replace(ranges, rho=PAPER_RHO_RANGE), None
    return ranges.resolved(lambda: rr), rr


def load_space(space, *, argument: str = "space"):
    """An NNI model space from a ``ModelSpace`` (returned as is) or ``"module:attribute"`` naming a ModelSpace
    or a zero-argument callable returning one; ValueError naming ``argument`` otherwise."""
    from ._evaluators import resolve_object
    spec = space
    if isinstance(space, str):
        space = resolve_object(space, argument=argument, expected="'module:attribute' (a ModelSpace, or a "
                               "zero-argument callable returning one)")
    if not _is_model_space(space) and callable(space):
        try:
            space = space()
        except TypeError as err:
            raise ValueError(f"{argument} {spec!r}: a callable must build the space with no arguments, but calling "
                             f"it failed ({err}).") from None
    if not _is_model_space(space):
        raise ValueError(f"{argument} must be an NNI ModelSpace (nni.nas.nn.pytorch.ModelSpace), 'module:attribute' "
                         f"naming one, or a zero-argument callable returning one, but got "
                         f"{type(space).__name__}{f' from {spec!r}' if isinstance(spec, str) else ''}.")
    return space


def _is_model_space(obj) -> bool:
    try:
        from nni.nas.nn.pytorch import ModelSpace
        from nni.nas.space import ExecutableModelSpace
    except ImportError:
        return False
    return isinstance(obj, (ModelSpace, ExecutableModelSpace))


def _space_identity(route) -> tuple[str, str]:
    """(id recorded in the study, short label for its name): the space's class, its core family when it
    maps to one, and a digest of its labels and choices (a resumed study must design over the same space)."""
    import hashlib
    import json
    raw = route.space
    family = getattr(getattr(route, "family", None), "name", None)
    labels = {k: [repr(v) for v in m.values] for k, m in route.mutables.items()}
    material = {"class": f"{type(raw).__module__}.{type(raw).__qualname__}", "family": family, "labels": labels}
    digest = hashlib.sha1(json.dumps(material, sort_keys=True).encode()).hexdigest()[:12]
    return f"{material['class']}:{family or '-'}:{digest}", family or type(raw).__name__


SPACE_EVALUATORS = ("a callable f(model) -> accuracy (or f(model, report)), an nni.nas.evaluator.Evaluator, a "
                    "deepmad_nni.optuna_loop.Evaluator (evaluate(model, report)), or 'module:attribute' naming one")


def _space_evaluator(evaluator, benchmark_path, options, route):
    """The evaluator of a study over a space (it receives frozen NNI models); the combinations that cannot
    work are refused (see :func:`tune`)."""
    from ._evaluators import EVALUATOR_NAMES, NasBenchMacroEvaluator, make_evaluator
    family = getattr(getattr(route, "family", None), "name", None)
    hint = (f"; this space maps to the core family {family!r} (deepmad_nni.nas.route.route_of(space).family), "
            "which tune(family=...) takes with the named evaluators") if family else ""
    if evaluator is None:
        raise ValueError(f"evaluator (--evaluator) must be given with a space (--space / space=...): "
                         f"{SPACE_EVALUATORS}, but got None.")
    if isinstance(evaluator, str) and evaluator in EVALUATOR_NAMES:
        raise ValueError(f"evaluator {evaluator!r} evaluates architectures of a core family (family=...), not the "
                         f"frozen models of a space; with a space (--space / space=...) give {SPACE_EVALUATORS}{hint}.")
    if benchmark_path is not None:
        raise ValueError("benchmark_path (--benchmark-path) is for the 'nas-bench-macro' evaluator of a family's "
                         f"designs, but got {str(benchmark_path)!r} with a space (--space / space=...){hint}.")
    options = dict(options or {})
    extra = sorted(set(options) - {"scale"})
    if extra:
        raise ValueError(f"evaluator_options {extra} adapt a family's designs to a dataset; with space=... the "
                         "evaluator gets the space's own frozen model (only 'scale' applies).")
    ev = make_evaluator(evaluator, **options)
    from ._training import TrainingEvaluator
    if isinstance(ev, (NasBenchMacroEvaluator, TrainingEvaluator)):
        raise ValueError(f"evaluator {type(ev).__name__} evaluates architectures of a core family (family=...), "
                         f"not the frozen models of a space; with a space give {SPACE_EVALUATORS}{hint}.")
    return ev


def _enqueue_defaults(study, num_stages: int, default_rho: float, ranges: SearchRanges, *, clip: bool) -> None:
    """The paper's point (beta 10, alpha (1, ..., 1, 8), the family's / route's rho_0) as the first trial,
    unless a value lies outside its range.  ``clip`` (rho's range was computed): rho_0 is clipped into it
    instead, since above the range's top every rho_0 gives the same design (the constraint no longer
    binds) and below its bottom there is none."""
    from ..core.score import default_alpha
    alpha = default_alpha(num_stages)
    low, high = ranges.rho
    point = {"rho_0": min(max(default_rho, low), high) if clip else default_rho, "beta": 10.0,
             "alpha_last": alpha[-1]}
    bounds = {"rho_0": ranges.rho, "beta": ranges.beta, "alpha_last": ranges.alpha_last}
    if ranges.alpha_others is not None:
        for i in range(len(alpha) - 1):
            point[f"alpha_{i + 1}"], bounds[f"alpha_{i + 1}"] = alpha[i], ranges.alpha_others
    if all(lo <= point[k] <= hi for k, (lo, hi) in bounds.items()):
        study.enqueue_trial(point, user_attrs={"start": "paper defaults"})


class _StopAfterEvaluations:
    """Stop the study once ``limit`` distinct designs have a finished evaluation (done or pruned)."""

    def __init__(self, cache, limit: int):
        self.cache, self.limit = cache, limit

    def __call__(self, study, trial):
        finished = sum(e.state in ("done", "pruned") for e in self.cache.entries().values())
        if finished >= self.limit:
            study.stop()


class _Progress:
    """One line per finished trial: state, hyperparameters, design, accuracy, cache, best so far."""

    def __init__(self, stream, n_trials, multi_objective):
        self.stream, self.n_trials, self.multi_objective, self.done = stream, n_trials, multi_objective, 0

    def __call__(self, study, trial):
        self.done += 1
        a = trial.user_attrs
        hp = " ".join(f"{k}={v:.3g}" for k, v in trial.params.items())
        if trial.state.name == "COMPLETE":
            what = (f"acc={a.get('accuracy'):.4g} flops={a.get('flops', 0) / 1e6:.4g}M "
                    f"params={a.get('params', 0) / 1e6:.4g}M {a.get('cache')} {a.get('wall_time_s', 0):.2f}s")
        else:
            what = a.get("pruned_reason", trial.state.name.lower())
        best = ""
        if not self.multi_objective:
            try:
                best = f" | best {study.best_value:.4g} (#{study.best_trial.number})"
            except ValueError:
                pass
        else:
            best = f" | Pareto front: {len({t.user_attrs.get('design_key') for t in study.best_trials})} designs"
        total = f"/{self.n_trials}" if self.n_trials else ""
        print(f"[{self.done}{total}] trial {trial.number} {trial.state.name}: {hp} -> {what}{best}",
              file=self.stream, flush=True)
