"""What the routes need, opened once per app: the store, storage, engine and trackers.

``open_services`` is the app's lifespan: it migrates the store, starts the engine and the
execution tracker, and closes them in the reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, Protocol, TypeVar

from compiler import Pipeline
from gateway.auth import new_signing_key
from gateway.builds import StepEnvironments
from gateway.data_dir import prepare_data_dir
from gateway.datastore import LocalTransfers, S3Transfers, Transfers
from gateway.engine_setup import open_engine
from gateway.engines.base import Engine, Manifest
from gateway.engines.local import Clock
from gateway.environment_variables import VariableSecret
from gateway.execution_secrets import ExecutionSecrets, provide_secret
from gateway.lowlatency.runtime import LowLatencyRuntime
from gateway.resource_sampler import sample_resources
from gateway.settings import Settings
from gateway.signed_urls import UrlSigner
from gateway.storage import LocalStorage, Storage
from gateway.store import (
    Database,
    EnvironmentVariableRepository,
    ExecutionRepository,
    PipelineRepository,
    TokenRepository,
    WorkerLogRepository,
)
from gateway.store.records import ExecutionRecord

__all__ = ["ExecutionFollower", "Services", "check_storage", "open_services"]

P = ParamSpec("P")
T = TypeVar("T")


class ExecutionFollower(Protocol):
    """What keeps execution records current (``tracking.ExecutionTracker``)."""

    def expect(self, name: str) -> None:
        """A Workflow was submitted: its execution will be recorded in a moment."""
        ...

    def track(self, record: ExecutionRecord, pipeline: Pipeline) -> None: ...


@dataclass
class Services:
    settings: Settings
    db: Database
    tokens: TokenRepository
    pipelines: PipelineRepository
    executions: ExecutionRepository
    storage: Storage
    transfers: Transfers
    engine: Engine
    signing_key: str
    variables: EnvironmentVariableRepository
    low_latency: LowLatencyRuntime
    close_engine: Callable[[], Coroutine[Any, Any, None]]
    environments: StepEnvironments
    variable_secret: VariableSecret
    execution_secrets: ExecutionSecrets
    follower: ExecutionFollower | None = None
    _background: set[asyncio.Task[Any]] = field(default_factory=set)

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` after the answer is sent; the app waits for it when it stops."""
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def in_store(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a repository call in a thread: SQLAlchemy is used synchronously."""
        return await asyncio.to_thread(function, *args, **kwargs)

    def expect_execution(self, name: str) -> None:
        """Right after a submission, before anything else is awaited: the Workflow's first
        changes then wait for its record instead of being looked up in the store."""
        if self.follower is not None:
            self.follower.expect(name)

    def submitted(self, workflow: Manifest) -> None:
        """Right after a submission: expect its execution, and give it its Secret at once (on a
        cluster its first pod waits for it; the tracker would create it too, a little later)."""
        self.expect_execution(workflow["metadata"]["name"])
        self.spawn(provide_secret(self.execution_secrets, workflow))

    async def record_execution(self, record: ExecutionRecord, pipeline: Pipeline) -> None:
        """Store a new execution (batched with other writes) and have it followed."""
        await self.db.writer.run(self.executions.insert, record)
        if self.follower is not None:
            self.follower.track(record, pipeline)


@contextlib.asynccontextmanager
async def open_services(
    settings: Settings, *, clock: Clock | None = None
) -> AsyncIterator[Services]:
    await asyncio.to_thread(prepare_data_dir, settings)
    for folder in (settings.storage_dir, settings.work_dir):
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    try:
        await asyncio.to_thread(db.upgrade)
        tokens = TokenRepository(db)
        signing_key = await asyncio.to_thread(
            tokens.signing_key, new_signing_key, datetime.now(UTC)
        )
        variables = EnvironmentVariableRepository(db)
        async with (
            _open_storage(settings, signing_key) as (storage, transfers, artifacts),
            open_engine(
                settings, db, variables, storage, artifacts, signing_key=signing_key, clock=clock
            ) as parts,
        ):
            low_latency = LowLatencyRuntime(
                WorkerLogRepository(db), start_timeout_s=settings.low_latency_start_timeout_s
            )
            low_latency.start()
            services = Services(
                settings=settings,
                db=db,
                tokens=tokens,
                pipelines=PipelineRepository(db),
                executions=ExecutionRepository(db),
                storage=storage,
                transfers=transfers,
                engine=parts.engine,
                signing_key=signing_key,
                variables=variables,
                low_latency=low_latency,
                close_engine=parts.close,
                environments=parts.environments,
                variable_secret=parts.variable_secret,
                execution_secrets=parts.execution_secrets,
            )
            if settings.samples_resources:
                retention = timedelta(days=settings.resource_retention_days)
                services.spawn(
                    sample_resources(
                        db,
                        settings.data_dir,
                        interval_s=settings.resource_sample_s,
                        retention=retention,
                    )
                )
            try:
                yield services
            finally:
                for task in list(services._background):
                    task.cancel()
                await asyncio.gather(*services._background, return_exceptions=True)
                await low_latency.close()
    finally:
        await asyncio.to_thread(db.dispose)


async def check_storage(settings: Settings) -> None:
    """Raise StorageUnavailableError, naming the setting, if the storage cannot be used."""
    async with _open_storage(settings, signing_key=""):
        pass


@contextlib.asynccontextmanager
async def _open_storage(
    settings: Settings, signing_key: str
) -> AsyncIterator[tuple[Storage, Transfers, Storage]]:
    """The gateway's storage, its transfer URLs, and the engine's artifact repository: the same
    bucket without the key prefix, since manifests carry whole keys (``with_key_prefix``)."""
    if settings.storage == "local":
        storage = LocalStorage(settings.storage_dir)
        transfers: Transfers = LocalTransfers(
            storage=storage,
            signer=UrlSigner(signing_key, settings.resolved_external_url),
            lifetime_s=settings.signed_url_lifetime_s,
            work_dir=settings.work_dir,
        )
        yield storage, transfers, storage
        return
    # Imported here: aiobotocore and botocore's S3 model cost a local gateway ~40 MB.
    from gateway.storage.s3 import S3Config, open_s3_storage  # noqa: PLC0415

    config = S3Config(
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        prefix=settings.s3_prefix,
        addressing_style=settings.s3_addressing_style,
        access_key_id=settings.s3_access_key_id,
        secret_access_key=settings.s3_secret_access_key.get_secret_value(),
        public_endpoint_url=settings.s3_public_endpoint_url,
    )
    async with open_s3_storage(config) as bucket:
        transfers = S3Transfers(bucket, lifetime_s=settings.signed_url_lifetime_s)
        yield bucket, transfers, bucket.with_prefix("")
