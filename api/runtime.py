"""The composition root: one opened store with its application services,
projection engine and idempotency keys. The HTTP app and the CLI both use it."""

from __future__ import annotations

import logging
import threading
import zlib
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from adapters.database import PostgresDatabase, open_database, open_event_database
from adapters.idempotency import IdempotencyStore
from adapters.store import StoreConfig, parse_database_url
from api.gc_pause import paused
from application.ab_policies import ABPolicies
from application.ab_results import ABResults
from application.ab_tests import ABTesting, SamplesRecorded
from application.base import Recorded
from application.batch_ingestion import BatchIngestion
from application.dataset_builds import DatasetBuilds, TokenCounter
from application.datasets import Datasets, ExamplesRecorded
from application.evaluation_results import EvaluationResults
from application.evaluations import Evaluations
from application.jobs import Jobs
from application.ledger import CostLedger, InferencesRecorded
from application.registry import Registry
from application.version_registration import VersionRegistration
from projections.catalog import default_projections
from projections.database import Cursor, Database
from projections.engine import TRACKING_TABLE, EventLog, ProjectionEngine, RebuildReport
from projections.gateway_calls import arm_latency_p95

if TYPE_CHECKING:  # the job service, its providers and the token counter load when first used (ft-cli start-up)
    from adapters.local_jobs import LocalTrainer
    from adapters.openai_jobs import OpenAISettings
    from api.settings import ProviderSettings
    from application.job_runs import JobPoller, JobService
    from application.live_evaluations import LiveEvaluations

log = logging.getLogger(__name__)
T = TypeVar("T")

#: serialises `db init` across processes on PostgreSQL
SCHEMA_LOCK_KEY = zlib.crc32(b"ft-lifecycle:schema")


def _cross_process_lock(db: Database, key: int) -> AbstractContextManager[None]:
    """An advisory lock on PostgreSQL, shared by every process on the database; SQLite has one
    writer at a time already."""
    return db.advisory_lock(key) if isinstance(db, PostgresDatabase) else nullcontext()


def _has_table(cur: Cursor, name: str) -> bool:
    """Whether a SQLite database holds a table of this name."""
    return cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


def _token_counter(target_model: str) -> TokenCounter:
    """The target model's tokenizer (tiktoken loads when a dataset is first built)."""
    from adapters import tokens

    encoding = tokens.get_encoding(tokens.encoding_name_for(target_model))
    return lambda messages: tokens.count_chat(messages, encoding)


class SchemaMissing(RuntimeError):
    """The database has not been initialised: run `ft-cli db init`."""


@dataclass
class Runtime:
    config: StoreConfig
    registry: Registry
    ledger: CostLedger
    ab: ABTesting
    datasets: Datasets
    jobs: Jobs
    evaluations: Evaluations
    #: the read models (projections, their tracking and quarantine)
    db: Database
    engine: ProjectionEngine
    idempotency: IdempotencyStore
    #: our own access to the events' database (the Idempotency-Key table); `db` itself on PostgreSQL
    events_db: Database
    #: projections that schema creation rebuilt (their table layout had changed)
    rebuilt: list[RebuildReport] = field(default_factory=list)
    #: where jobs go and local runs run (OPENAI_*, AZURE_OPENAI_*, FT_LOCAL_*); read from the environment
    #: when first needed, unless given
    providers: ProviderSettings | None = None
    #: where fine-tuning jobs go, overriding `providers` (tests, the demo's sandbox)
    openai_settings: OpenAISettings | None = None
    #: where local jobs run (FT_LOCAL_RUNS_DIR, default .ft/runs) unless given
    local_trainer: LocalTrainer | None = None
    _job_service: JobService | None = field(default=None, repr=False)
    _poller: JobPoller | None = field(default=None, repr=False)
    _follower: threading.Thread | None = field(default=None, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    @classmethod
    def open(
        cls,
        database_url: str | None = None,
        *,
        create_schema: bool | None = None,
        openai_settings: OpenAISettings | None = None,
        local_trainer: LocalTrainer | None = None,
        pool_timeout: float | None = None,
        providers: ProviderSettings | None = None,
    ) -> Runtime:
        """Opens the store. The schema is created here only on SQLite (one embedded
        file, zero setup); PostgreSQL workers start with table creation off."""
        config = parse_database_url(database_url).with_pool_timeout(pool_timeout)
        if create_schema is None:
            create_schema = config.dialect == "sqlite"
        if config.sqlite_path is not None:
            config.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
        db = open_database(config)
        events_db = open_event_database(config, db)
        try:
            # Many processes creating tables at once race on PostgreSQL ("tuple concurrently
            # updated"): creation, the library's event tables included, runs under one lock.
            with _cross_process_lock(db, SCHEMA_LOCK_KEY) if create_schema else nullcontext():
                env = config.eventsourcing_env(create_table=create_schema)
                registry = Registry(env=env)
                shared = env | {"CREATE_TABLE": "n"}  # the registry created the one event table
                ledger, ab, datasets = CostLedger(env=shared), ABTesting(env=shared), Datasets(env=shared)
                jobs, evaluations = Jobs(env=shared), Evaluations(env=shared)
                event_log = EventLog(registry, db.dialect, None if events_db is db else events_db)
                engine = ProjectionEngine(db, event_log, default_projections())
                runtime = cls(config, registry, ledger, ab, datasets, jobs, evaluations, db, engine,
                              IdempotencyStore(events_db), events_db, providers=providers,
                              openai_settings=openai_settings, local_trainer=local_trainer)  # fmt: skip
                if create_schema:
                    runtime.rebuilt = runtime._create_schema()
                    ledger.seed_catalog()
        except BaseException:
            db.close()
            events_db.close()
            raise
        try:
            missing = engine.missing_projections()
            if missing:
                raise SchemaMissing(
                    f"The database at {config.display_url} is not initialised (missing projections: "
                    f"{', '.join(missing)}): run `ft-cli db init` once, then start the workers."
                )
        except BaseException:
            runtime.close()
            raise
        return runtime

    def _create_schema(self) -> list[RebuildReport]:
        with self.events_db.transaction() as cur:
            IdempotencyStore.create_schema(cur)
            if self.events_db is not self.db and _has_table(cur, TRACKING_TABLE):
                # A SQLite store from before the read models had a file of their own: they are
                # rebuilt in the views file from the log, and their old copies leave the events file.
                self.engine.drop_schema(cur)
        with self.db.transaction() as cur:
            stale = self.engine.create_schema(cur)
        # A projection whose tables changed meaning is rebuilt from the log.
        return [self.engine.rebuild(name) for name in stale]

    @classmethod
    def init_schema(cls, database_url: str | None = None) -> tuple[StoreConfig, list[RebuildReport]]:
        """`ft-cli db init`: creates the event tables, projections and key tables once;
        returns the projections it had to rebuild because their tables changed."""
        runtime = cls.open(database_url, create_schema=True)
        try:
            return runtime.config, runtime.rebuilt
        finally:
            runtime.close()

    # ------------------------------------------------------ read-your-writes

    def command(self, run: Callable[[], T], *, settle: bool = True) -> T:
        """Runs a command and brings this process's projections up to its events (read-your-writes
        for what follows). With settle=False (bulk ingestion) the background follower is woken
        instead, and readers wait for the returned position."""
        result = run()
        recorded: Recorded | None = getattr(result, "recorded", None)
        if recorded is not None:
            try:
                if settle:
                    self.engine.reach(recorded.position)
                else:
                    self.engine.poke()
            except Exception as exc:
                # The command committed: it answers its success. The follower brings the
                # projections up later; a read with min_position waits for them.
                log.warning("projections did not catch up after a command: %s: %s", type(exc).__name__, exc)
        return result

    def current(self) -> None:
        """Brings this process's projections to the log's head: a read that follows sees everything
        recorded so far, by any process."""
        self.engine.reach(self.engine.log.head())

    # ------------------------------------------------------------ following

    def start_following(self, interval: float = 0.2) -> None:
        """Keeps projections current with events other processes append (CLI, other workers)."""
        if self._follower is None:
            self._stop.clear()
            self._follower = threading.Thread(
                target=self.engine.follow, args=(self._stop,), kwargs={"interval": interval},
                name="projection-follower", daemon=True,
            )  # fmt: skip
            self._follower.start()

    def stop_following(self) -> None:
        if self._follower is not None:
            self._stop.set()
            self.engine.poke()
            self._follower.join(timeout=10)
            self._follower = None

    # ------------------------------------------------------------ use cases

    def __post_init__(self) -> None:
        self.versions = VersionRegistration(self.registry, self.ledger)
        self.ingestion = BatchIngestion(self.ledger, self.datasets, self.ab, self.db)
        self.builds = DatasetBuilds(self.datasets, self.ledger, self.db, count_for=_token_counter,
                                    current=self.current)  # fmt: skip
        self.ab_results = ABResults(self.ab, self.registry, self.db, head=self.engine.log.head,
                                    reach=self.engine.reach)  # fmt: skip
        self.evaluation_results = EvaluationResults(self.evaluations, self.registry, self.db, current=self.current)
        self.ab_policies = ABPolicies(self.ab_results, self.ab, self.registry, self.db,
                                      challenger_p95=lambda test: arm_latency_p95(self.db, test, "b"))  # fmt: skip

    # The bulk paths run with the cyclic garbage collector paused (api/gc_pause.py).

    @paused
    def record_inferences(self, records: list[Any], *, actor: str) -> InferencesRecorded:
        return self.ingestion.record_inferences(records, actor=actor)

    @paused
    def collect_examples(self, examples: list[Any], *, actor: str) -> ExamplesRecorded:
        return self.ingestion.collect_examples(examples, actor=actor)

    @paused
    def record_samples(self, test_id: str, samples: list[Any], *, actor: str) -> SamplesRecorded:
        return self.ingestion.record_samples(test_id, samples, actor=actor)

    @property
    def live_evaluations(self) -> LiveEvaluations:
        """Live evaluation with the `openai` SDK's chat client, built on first use (the SDK loads only then)."""
        from adapters.chat_endpoint import OpenAIChat
        from application.live_evaluations import LiveEvaluations

        return LiveEvaluations(self.evaluations, self.ledger, self.db, connect=OpenAIChat, dataset=self.builds.get,
                               current=self.current, reach=self.engine.reach)  # fmt: skip

    # ------------------------------------------------------ fine-tuning jobs

    @property
    def job_service(self) -> JobService:
        """The job service with its providers, built on first use (the SDKs load only then)."""
        if self._job_service is None:
            from adapters import tokens
            from adapters.local_jobs import LocalTrainer
            from adapters.ollama import OllamaPublisher
            from adapters.openai_jobs import OpenAIFineTuning
            from api.settings import ProviderSettings
            from application.job_kinds import HostedTraining, LocalTraining, TrainingData
            from application.job_runs import JobService

            providers = self.providers = self.providers or ProviderSettings()
            data = TrainingData(self._export_split, tokens.ChatTokens())
            openai_jobs = OpenAIFineTuning(self.openai_settings or providers.openai())
            local = self.local_trainer or LocalTrainer(providers.local_runs_dir)
            kinds = {
                "openai": HostedTraining(openai_jobs, data, self.ledger),
                "local": LocalTraining(local, data, self.ledger, self.jobs, self.db,
                                       hardware_name=providers.local_hardware),
            }  # fmt: skip
            self._job_service = JobService(
                jobs=self.jobs, registry=self.registry, ledger=self.ledger, db=self.db, kinds=kinds,
                export=self._export_split, publisher=OllamaPublisher(),
                job_lock=self._job_lock,
            )  # fmt: skip
        return self._job_service

    def _job_lock(self, job_id: str) -> AbstractContextManager[None]:
        """Submitting one job is serialised across processes."""
        return _cross_process_lock(self.db, zlib.crc32(("job:" + job_id).encode()))

    def _export_split(self, dataset_id: str, split: str) -> tuple[bytes, dict[str, Any]]:
        self.current()  # a dataset built a moment ago is in the projection
        return self.builds.export(dataset_id, "openai", split), self.builds.get(dataset_id)

    def start_polling_jobs(self, interval: float) -> None:
        if self._poller is None:
            from application.job_runs import JobPoller

            self._poller = JobPoller(self.job_service, self.db, interval=interval)
            self._poller.start()

    def stop_polling_jobs(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None

    def close(self) -> None:
        self.stop_polling_jobs()
        if self._job_service is not None:
            self._job_service.close()
        self.stop_following()
        self.db.close()
        if self.events_db is not self.db:
            self.events_db.close()
        self.registry.close()
        self.ledger.close()
        self.ab.close()
        self.datasets.close()
        self.jobs.close()
        self.evaluations.close()
