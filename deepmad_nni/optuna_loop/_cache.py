"""The design cache: each distinct design is evaluated once per study, across processes and restarts.

With an RDB storage (SQLite, PostgreSQL, MySQL URL) the cache is a table ``deepmad_design_cache`` in the
same database.  A trial *claims* a design by inserting its row (the primary key makes the claim atomic);
other trials that draw the same design wait for the row's result.  A claim whose owner trial is no longer
RUNNING (it failed, or Optuna's heartbeat failed it after a crash) is taken over by a conditional update,
so a killed worker never blocks the study.  Other storages (in memory, journal) keep the cache in the
study's system attributes: correct within one process, not an atomic claim across several.

Row states: ``running`` (claimed), ``done`` (value known), ``pruned`` (the pruner stopped its
evaluation), ``failed`` (the evaluator raised; the next trial retries).
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

RUNNING, DONE, PRUNED, FAILED = "running", "done", "pruned", "failed"
TABLE = "deepmad_design_cache"


@dataclass
class Entry:
    state: str
    owner_trial_id: int
    evaluations: int = 1
    value: float | None = None
    payload: dict = field(default_factory=dict)


def open_cache(study):
    from optuna.storages import RDBStorage
    storage = study._storage
    backend = getattr(storage, "_backend", storage)  # optuna wraps RDBStorage in a cache layer
    if isinstance(backend, RDBStorage):
        return SqlDesignCache(backend.engine, study._study_id)
    return AttrDesignCache(storage, study._study_id)


class _Base:
    """Shared protocol: :meth:`acquire` returns ``(None, waited_s)`` (the caller evaluates, then calls
    :meth:`finish`) or ``(entry, waited_s)`` with the finished :class:`Entry` of another trial."""

    poll_s = 0.2

    def acquire(self, key: str, trial_id: int, study, timeout_s: float | None = None):
        import optuna
        t0 = time.monotonic()
        while True:
            entry = self._insert_or_get(key, trial_id)
            if entry is None:
                return None, time.monotonic() - t0
            if entry.state in (DONE, PRUNED):
                return entry, time.monotonic() - t0
            if entry.state == FAILED or self._owner_gone(study, entry.owner_trial_id):
                if self._take_over(key, entry, trial_id):
                    return None, time.monotonic() - t0
                continue
            if timeout_s is not None and time.monotonic() - t0 > timeout_s:
                raise TimeoutError(f"design {key} is still being evaluated by trial id {entry.owner_trial_id}.")
            try:  # a crashed owner's trial turns FAIL here once its heartbeat is stale
                import warnings
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    optuna.storages.fail_stale_trials(study)
            except Exception:  # noqa: BLE001 (another worker may be failing the same trial)
                pass
            time.sleep(self.poll_s)

    def claim(self, key: str, trial_id: int, study) -> bool:
        """Claim ``key`` for ``trial_id`` without waiting: True when this trial now owns its evaluation (a new
        row, or the take-over of a failed one or of one whose owner trial is no longer running); False when
        it is evaluated or being evaluated by a live trial."""
        entry = self._insert_or_get(key, trial_id)
        if entry is None:
            return True
        if entry.state in (DONE, PRUNED):
            return False
        if entry.state == FAILED or self._owner_gone(study, entry.owner_trial_id):
            return self._take_over(key, entry, trial_id)
        return False

    @staticmethod
    def _owner_gone(study, owner_trial_id: int) -> bool:
        from optuna.trial import TrialState
        try:
            return study._storage.get_trial(owner_trial_id).state != TrialState.RUNNING
        except KeyError:
            return True


class SqlDesignCache(_Base):
    def __init__(self, engine, study_id: int):
        import sqlalchemy as sa
        self.sa, self.engine, self.study_id = sa, engine, int(study_id)
        meta = sa.MetaData()
        self.table = sa.Table(
            TABLE, meta,
            sa.Column("study_id", sa.Integer, primary_key=True, autoincrement=False),
            sa.Column("design_key", sa.String(64), primary_key=True),
            sa.Column("state", sa.String(16), nullable=False),
            sa.Column("owner_trial_id", sa.Integer, nullable=False),
            sa.Column("evaluations", sa.Integer, nullable=False),
            sa.Column("value", sa.Float, nullable=True),
            sa.Column("payload", sa.Text, nullable=True),
            sa.Column("updated", sa.Float, nullable=False),
        )
        for attempt in range(5):  # two workers may create the table at the same moment
            try:
                meta.create_all(engine, checkfirst=True)
                break
            except sa.exc.SQLAlchemyError:
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def clear(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.table.delete().where(self.table.c.study_id == self.study_id))

    def _where(self, key):
        t = self.table
        return (t.c.study_id == self.study_id) & (t.c.design_key == key)

    def get(self, key: str) -> Entry | None:
        with self.engine.connect() as conn:
            row = conn.execute(self.sa.select(self.table).where(self._where(key))).mappings().first()
        if row is None:
            return None
        return Entry(row["state"], row["owner_trial_id"], row["evaluations"], row["value"],
                     json.loads(row["payload"] or "{}"))

    def _insert_or_get(self, key: str, trial_id: int):
        try:
            with self.engine.begin() as conn:
                conn.execute(self.table.insert().values(
                    study_id=self.study_id, design_key=key, state=RUNNING, owner_trial_id=trial_id,
                    evaluations=1, value=None, payload=None, updated=time.time()))
            return None
        except self.sa.exc.IntegrityError:
            entry = self.get(key)
            return entry if entry is not None else self._insert_or_get(key, trial_id)

    def _take_over(self, key: str, entry: Entry, trial_id: int) -> bool:
        t = self.table
        with self.engine.begin() as conn:
            res = conn.execute(t.update().where(
                self._where(key) & (t.c.state == entry.state) & (t.c.owner_trial_id == entry.owner_trial_id)
            ).values(state=RUNNING, owner_trial_id=trial_id, evaluations=t.c.evaluations + 1,
                     updated=time.time()))
        return res.rowcount == 1

    def finish(self, key: str, trial_id: int, state: str, value=None, payload=None) -> None:
        t = self.table
        with self.engine.begin() as conn:
            conn.execute(t.update().where(self._where(key) & (t.c.owner_trial_id == trial_id)).values(
                state=state, value=value, payload=json.dumps(payload or {}), updated=time.time()))

    def entries(self) -> dict[str, Entry]:
        with self.engine.connect() as conn:
            rows = conn.execute(self.sa.select(self.table).where(
                self.table.c.study_id == self.study_id)).mappings().all()
        return {r["design_key"]: Entry(r["state"], r["owner_trial_id"], r["evaluations"], r["value"],
                                       json.loads(r["payload"] or "{}")) for r in rows}


class AttrDesignCache(_Base):
    """Cache in the study's system attributes (in-memory and journal storages)."""

    PREFIX = "deepmad_design:"

    def __init__(self, storage, study_id: int):
        self.storage, self.study_id = storage, study_id

    def clear(self) -> None:
        pass  # a new study starts with no system attributes

    def get(self, key: str) -> Entry | None:
        raw = self.storage.get_study_system_attrs(self.study_id).get(self.PREFIX + key)
        return Entry(**raw) if raw else None

    def _put(self, key: str, entry: Entry) -> None:
        self.storage.set_study_system_attr(self.study_id, self.PREFIX + key, entry.__dict__)

    def _insert_or_get(self, key: str, trial_id: int):
        entry = self.get(key)
        if entry is None:
            self._put(key, Entry(RUNNING, trial_id))
        return entry

    def _take_over(self, key: str, entry: Entry, trial_id: int) -> bool:
        self._put(key, Entry(RUNNING, trial_id, entry.evaluations + 1))
        return True

    def finish(self, key: str, trial_id: int, state: str, value=None, payload=None) -> None:
        entry = self.get(key)
        self._put(key, Entry(state, trial_id, entry.evaluations if entry else 1, value, payload or {}))

    def entries(self) -> dict[str, Entry]:
        attrs = self.storage.get_study_system_attrs(self.study_id)
        return {k[len(self.PREFIX):]: Entry(**v) for k, v in attrs.items() if k.startswith(self.PREFIX)}
