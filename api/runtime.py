"""The composition root: one opened store with its application services,
projection engine and idempotency keys. The HTTP app and the CLI both use it."""

from __future__ import annotations

import threading
import zlib
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from adapters.database import PostgresDatabase, open_database, open_event_database
from adapters.idempotency import IdempotencyStore
from adapters.store import StoreConfig, parse_database_url
from api.gc_pause import paused
from application.ab_tests import ABTesting, SamplesRecorded, TestChanged
from application.base import Recorded
from application.datasets import DatasetBuilt, Datasets, ExampleRated, ExamplesRecorded, spec_differences
from application.evaluations import EvaluationRecorded, Evaluations
from application.jobs import Jobs
from application.ledger import CostLedger, InferencesRecorded
from application.registry import Registry, VersionRegistered
from domain.datasets import Build, BuildSpec, build_dataset, export_bytes
from domain.errors import InvalidInput, NotFound, RuleViolation
from domain.evaluations import EvaluationSpec, compare_runs
from domain.registry import VersionSpec
from domain.values import decimal_value
from projections.ab_stats import get_test, stored_sample_ids
from projections.catalog import default_projections
from projections.costs import stored_inference_ids
from projections.database import Cursor, Database
from projections.datasets import emptying_filter, get_dataset, matching_examples, member_examples
from projections.engine import TRACKING_TABLE, EventLog, ProjectionEngine, RebuildReport
from projections.evaluations import get_evaluation
from projections.evaluations import predictions as evaluation_predictions
from projections.examples import ExampleFilter, stored_example_ids
from projections.registry import get_version

if TYPE_CHECKING:  # the job service, its providers and the token counter load when first used (ft-cli start-up)
    from adapters.local_jobs import LocalTrainer
    from adapters.openai_jobs import OpenAISettings
    from api.settings import ProviderSettings
    from application.job_runs import JobPoller, JobService
    from application.live_evaluations import LiveEvaluations

#: serialises `db init` across processes on PostgreSQL
SCHEMA_LOCK_KEY = zlib.crc32(b"ft-lifecycle:schema")


def _schema_lock(db: Database) -> AbstractContextManager[None]:
    return db.advisory_lock(SCHEMA_LOCK_KEY) if isinstance(db, PostgresDatabase) else nullcontext()


def _has_table(cur: Cursor, name: str) -> bool:
    """Whether a SQLite database holds a table of this name."""
    return cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None


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
            with _schema_lock(db) if create_schema else nullcontext():
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

    # ------------------------------------------------------------- registry

    def register_version(self, name: str, *, actor: str, reason: str | None = None, **fields: Any
                         ) -> VersionRegistered:  # fmt: skip
        """Registers a version; a cost given with it becomes that job's training cost in the ledger, once per
        job id (a second registration of the job, or a job whose cost the ledger has, adds no cost)."""
        cost = None
        if fields.get("cost") is not None:  # checked before anything is recorded, the version's rules first
            VersionSpec.validate(**{k: fields.get(k) for k in ("base_model", "job_id", "dataset_size", "accuracy",
                                                               "cost")})  # fmt: skip
            cost = self.ledger.registered_cost(job_id=fields.get("job_id"), model_name=name,
                                               base_model=fields.get("base_model"),
                                               dataset_size=fields.get("dataset_size"), cost=fields["cost"])
        def cost_with(number: int) -> Any:  # saved with the version: a crash never keeps one without the other
            return None if cost is None else self.ledger.given_cost(
                cost, actor=actor, reason=reason or f"cost registered with {name} v{number}")

        return self.registry.register_version(name, actor=actor, reason=reason, with_version=cost_with, **fields)

    def stored_inference_ids(self, ids: list[str]) -> set[str]:
        """Which record ids the cost projection already holds (the ledger's duplicate check)."""
        return stored_inference_ids(self.db, ids)

    @paused
    def record_inferences(self, records: list[Any], *, actor: str) -> InferencesRecorded:
        return self.ledger.record_inferences(records, actor=actor, stored=self.stored_inference_ids)

    # ------------------------------------------------------------- examples

    @paused
    def collect_examples(self, examples: list[Any], *, actor: str) -> ExamplesRecorded:
        return self.datasets.collect_examples(
            examples, actor=actor, stored=lambda ids: stored_example_ids(self.db, ids)
        )

    def rate_example(self, example_id: str, rating: Any, *, actor: str, reason: str | None = None) -> ExampleRated:
        return self.datasets.rate_example(
            example_id, rating, actor=actor, reason=reason, exists=lambda e: bool(stored_example_ids(self.db, [e]))
        )

    # ------------------------------------------------------------- datasets

    def build_dataset(self, *, actor: str, reason: str | None = None, reuse_identical: bool = False,
                      **settings: Any) -> DatasetBuilt:  # fmt: skip
        """Builds a dataset from every collected example up to the log's head that the filters keep.
        `reuse_identical`: a dataset with this id and these very settings is returned as it was built."""
        from adapters import tokens

        spec = BuildSpec.validate(**settings)
        encoding = tokens.get_encoding(tokens.encoding_name_for(spec.target_model))
        self.engine.reach(self.engine.log.head())  # every example collected so far is in the projection
        if reuse_identical and spec.dataset_id is not None and (found := self._identical_build(spec, spec.dataset_id)):
            return found
        f = ExampleFilter(**spec.filters)
        examples = matching_examples(self.db, f)
        if not examples:
            culprit = emptying_filter(self.db, f)
            raise InvalidInput(f"The filters leave no example, so there is no dataset to build: {culprit} emptied it.")
        prices = [p for p in self.ledger.prices_at(datetime.now(UTC)) if p.training_per_1m is not None]
        build = build_dataset(spec, examples, lambda messages: tokens.count_chat(messages, encoding), prices)
        if reuse_identical and (found := self._identical_build(spec, build.dataset_id)):
            return found  # the id came from the content hash: the same examples, built the same way before
        return self.datasets.record_build(build, actor=actor, reason=reason)

    def _identical_build(self, spec: BuildSpec, dataset_id: str) -> DatasetBuilt | None:
        """The build recorded under `dataset_id` when it had these settings; a clear refusal when it had others."""
        found = get_dataset(self.db, dataset_id)
        if found is None:
            return None
        differences = spec_differences(found["spec"], spec)
        if differences:
            raise RuleViolation(f"Dataset {dataset_id!r} already exists with other settings ({'; '.join(differences)})"
                                ": give another id (--name), or its own settings to write its files again.")
        members = {split: [e["example_id"] for e in member_examples(self.db, dataset_id, split)]
                   for split in ("train", "test")}  # fmt: skip
        build = Build(dataset_id, spec, members["train"], members["test"], found["rejected_list"],
                      found["content_hash"], found["stats"])  # fmt: skip
        return DatasetBuilt(build, Recorded(found["position"], 1), existing=True)

    def dataset(self, dataset_id: str) -> dict[str, Any]:
        found = get_dataset(self.db, dataset_id)
        if found is None:
            raise NotFound(f"Dataset {dataset_id!r} does not exist: build one with `ft-cli prepare-dataset` "
                           "(or POST /v1/datasets).")
        return found

    def export_dataset(self, dataset_id: str, fmt: str, split: str) -> bytes:
        self.dataset(dataset_id)
        if split not in ("train", "test", "all"):
            raise InvalidInput(f"Unknown split {split!r}: use train, test or all.")
        if fmt not in ("openai", "alpaca", "jsonl"):
            raise InvalidInput(f"Unknown format {fmt!r}: use openai, alpaca or jsonl.")
        return export_bytes(member_examples(self.db, dataset_id, split), fmt)

    # ------------------------------------------------------------ A/B tests

    def create_ab_test(self, *, actor: str, reason: str | None = None, **settings: Any) -> TestChanged:
        return self.ab.create_test(actor=actor, reason=reason, check_model=self._check_arm, **settings)

    def _check_arm(self, arm: str, model: str) -> None:
        """`NAME@N` of a registered model must be one of its versions (other names are served elsewhere)."""
        name, _, version = model.rpartition("@")
        if not version.isdigit() or not name:
            return
        try:
            registered = self.registry.load(name)
        except (NotFound, InvalidInput):  # not a registry model: a name the serving side knows
            return
        try:
            registered.status_of(int(version))
        except NotFound as e:
            raise InvalidInput(f"{arm} {model!r} names a version that does not exist: {e.detail}") from None

    @paused
    def record_samples(self, test_id: str, samples: list[Any], *, actor: str) -> SamplesRecorded:
        return self.ab.record_samples(
            test_id, samples, actor=actor, stored=lambda t, ids: stored_sample_ids(self.db, t, ids)
        )

    def ab_test(self, test_id: str) -> dict[str, Any]:
        """A test's settings and status with its live statistics, or its frozen result once concluded."""
        from domain.ab_results import analyze  # scipy: loaded by the commands that compute

        found = get_test(self.db, test_id)
        if found is None:
            raise NotFound(f"A/B test {test_id!r} does not exist (or the projections have not caught up yet).")
        live = analyze(found["config"], *found["arms"])
        return found | {"statistics": found["result"] if found["status"] == "concluded" else live}

    def deploy_command(self, model: str | None) -> str | None:
        """A winner named `NAME@VERSION` after a registry version gives the command that deploys it."""
        if model is None or "@" not in model:
            return None
        name, _, version = model.rpartition("@")
        if not version.isdigit() or get_version(self.db, name, int(version)) is None:
            return None
        return f"ft-cli deploy-model {name} --version {version}"

    def conclude_ab_test(self, test_id: str, *, actor: str, reason: str | None = None) -> TestChanged:
        """Freezes the result: the statistics of every sample up to the log's head, computed once."""
        from domain.ab_results import analyze

        self.ab.load(test_id).check_concludable()  # a clear 409 before any work
        position = self.engine.log.head()
        self.engine.reach(position)
        found = get_test(self.db, test_id)
        assert found is not None  # the projections include the test: they reached the head
        result = analyze(found["config"], *found["arms"]) | {"position": position}
        return self.ab.conclude(test_id, result, position, actor=actor, reason=reason)

    # ----------------------------------------------------------- evaluations

    def evaluate_offline(self, *, actor: str, reason: str | None = None, evaluation_id: str | None = None,
                         model: Any, model_type: Any, predictions: list[Any], modes: list[str] | None = None,
                         normalisation: dict[str, bool] | None = None, cost: Any = None,
                         source: dict[str, Any] | None = None) -> EvaluationRecorded:  # fmt: skip
        spec = EvaluationSpec.validate(evaluation_id=evaluation_id or "ev-" + uuid4().hex[:12], model=model,
                                       model_type=model_type, modes=modes or ["exact"], normalisation=normalisation,
                                       source=source)  # fmt: skip
        default_cost = None if cost is None else decimal_value("cost", cost)
        return self.evaluations.evaluate_offline(spec, predictions, actor=actor, reason=reason,
                                                 default_cost=default_cost)  # fmt: skip

    def evaluation(self, evaluation_id: str) -> dict[str, Any]:
        found = get_evaluation(self.db, evaluation_id)
        if found is None:
            raise NotFound(f"Evaluation {evaluation_id!r} does not exist: list them with GET /v1/evaluations.")
        return found

    def attach_evaluation(self, evaluation_id: str, model: str, version: int, *, actor: str,
                          reason: str | None = None) -> tuple[float, Recorded]:  # fmt: skip
        """The evaluation's accuracy becomes the registry version's, linked to the evaluation."""
        self.engine.reach(self.engine.log.head())
        metrics = self.evaluation(evaluation_id)["metrics"] or {}
        headline = next((metrics[k] for k in ("exact", "substring", "classification") if k in metrics), None)
        if headline is None:
            raise RuleViolation(f"Evaluation {evaluation_id!r} has no accuracy (modes {metrics.get('modes')}): "
                                "evaluate with exact, substring or classification to attach one.")  # fmt: skip
        recorded = self.registry.attach_evaluation(model, version, accuracy=headline["accuracy"],
                                                   evaluation_id=evaluation_id, actor=actor, reason=reason)
        return headline["accuracy"], recorded

    def compare_evaluations(self, base: str, candidate: str, *, roi: dict[str, Any] | None = None) -> dict[str, Any]:
        self.engine.reach(self.engine.log.head())
        b, c = self.evaluation(base), self.evaluation(candidate)
        return compare_runs(b, evaluation_predictions(self.db, base), c, evaluation_predictions(self.db, candidate),
                            roi=roi)  # fmt: skip

    @property
    def live_evaluations(self) -> LiveEvaluations:
        """Live evaluation with the `openai` SDK's chat client, built on first use (the SDK loads only then)."""
        from adapters.chat_endpoint import OpenAIChat
        from application.live_evaluations import LiveEvaluations

        return LiveEvaluations(self.evaluations, self.ledger, self.db, connect=OpenAIChat, dataset=self.dataset,
                               current=lambda: self.engine.reach(self.engine.log.head()),
                               reach=self.engine.reach)  # fmt: skip

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
            from application.job_runs import JobService, no_lock

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
                job_lock=self._job_lock if isinstance(self.db, PostgresDatabase) else no_lock,
            )  # fmt: skip
        return self._job_service

    def _job_lock(self, job_id: str) -> AbstractContextManager[None]:
        """Submitting one job is serialised across processes (PostgreSQL: an advisory lock on its id)."""
        return self.db.advisory_lock(zlib.crc32(("job:" + job_id).encode()))

    def _export_split(self, dataset_id: str, split: str) -> tuple[bytes, dict[str, Any]]:
        self.engine.reach(self.engine.log.head())  # a dataset built a moment ago is in the projection
        return self.export_dataset(dataset_id, "openai", split), self.dataset(dataset_id)

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
