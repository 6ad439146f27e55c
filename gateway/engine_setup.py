"""The engine ``TENDER_ENGINE`` names, with what goes with it: where a pipeline's requirements
are installed, and where steps read the environment variables.

- ``local``: the LocalEngine (local processes), a virtualenv per pipeline, and steps that read
  the variables and their execution's Secret from the gateway;
- ``argo``: the ArgoEngine (the Kubernetes API), a dependencies archive per pipeline, the
  variables' Secret written from the store, and a Secret per execution.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any

from compiler.execution_secret import execution_secret_name
from compiler.labels import PIPELINE_LABEL
from gateway.builds import StepEnvironments
from gateway.engines.argo import (
    ArgoEngine,
    ArgoEngineSettings,
    ArgoSetupError,
    CredentialsError,
    EnvironmentSecret,
    ExecutionSecretWriter,
    Expected,
    KubeClient,
    LogArchive,
    check_cluster,
    load_credentials,
)
from gateway.engines.argo.permissions import ENVIRONMENT_SECRET
from gateway.engines.base import Engine, Manifest
from gateway.engines.local import Clock, LocalEngine, LocalEngineSettings
from gateway.engines.local.settings import (
    InterpreterResolver,
    SecretLookup,
    resolve_default_interpreter,
)
from gateway.environment_variables import NoVariableSecret, VariableSecret, secret_lookup
from gateway.environments import Virtualenvs, environment_python
from gateway.execution_secrets import ExecutionSecrets, NoExecutionSecrets
from gateway.settings import Settings
from gateway.step_dependencies import DependencyArchives
from gateway.step_tokens import execution_secret_data, execution_secret_lookup
from gateway.storage import Storage
from gateway.store import Database, EnvironmentVariableRepository

__all__ = ["EngineParts", "check_engine", "open_engine"]


@dataclass(frozen=True)
class EngineParts:
    engine: Engine
    environments: StepEnvironments
    variable_secret: VariableSecret
    execution_secrets: ExecutionSecrets
    close: Callable[[], Coroutine[Any, Any, None]]  # stops the engine (the app's lifespan)


@contextlib.asynccontextmanager
async def open_engine(
    settings: Settings,
    db: Database,
    variables: EnvironmentVariableRepository,
    storage: Storage,
    artifacts: Storage,
    *,
    signing_key: str,
    clock: Clock | None = None,
) -> AsyncIterator[EngineParts]:
    """``storage`` is the gateway's (with its key prefix), ``artifacts`` the same bucket with
    whole keys, as manifests and Argo name them."""
    if settings.engine == "argo":
        async with _open_argo(settings, variables, storage, artifacts, signing_key) as parts:
            yield parts
        return
    processes = settings.concurrency or os.cpu_count() or 1
    engine = LocalEngine(
        db,
        LocalEngineSettings(
            data_dir=settings.data_dir / "engine",
            artifacts_dir=settings.storage_dir,
            max_processes=processes,
            max_workflows=2 * processes,
        ),
        resolve_interpreter=_pipeline_interpreters(settings),
        secrets=_secrets(
            secret_lookup(variables),
            execution_secret_lookup(signing_key, settings.resolved_internal_url),
        ),
        clock=clock,
        artifacts=artifacts,
    )
    await engine.start()
    try:
        yield EngineParts(
            engine=engine,
            environments=Virtualenvs(settings.environments_dir, settings.pip_timeout_s),
            variable_secret=NoVariableSecret(),
            execution_secrets=NoExecutionSecrets(),
            close=engine.close,
        )
    finally:
        await engine.close()


def _secrets(*lookups: SecretLookup) -> SecretLookup:
    """The Secrets a step may reference: environment variables, and its execution's own."""

    async def lookup(secret_name: str) -> Mapping[str, str] | None:
        for each in lookups:
            data = await each(secret_name)
            if data is not None:
                return data
        return None

    return lookup


async def check_engine(settings: Settings) -> None:
    """Raise ArgoSetupError naming everything the cluster lacks (nothing to check locally)."""
    if settings.engine != "argo":
        return
    client = _kube_client()
    try:
        await check_cluster(client, _expected(settings, client))
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def _open_argo(
    settings: Settings,
    variables: EnvironmentVariableRepository,
    storage: Storage,
    artifacts: Storage,
    signing_key: str,
) -> AsyncIterator[EngineParts]:
    client = _kube_client()
    try:
        namespace = _expected(settings, client).namespace
        engine = ArgoEngine(
            client,
            ArgoEngineSettings(
                namespace=namespace,
                ttl_s=settings.argo_ttl_s,
                pod_gc=settings.argo_pod_gc,
                service_account=settings.argo_step_service_account,
                artifact_repository=settings.argo_artifact_repository,
                ui_url=settings.argo_ui_url,
            ),
            LogArchive(artifacts, settings.s3_bucket, settings.key_prefix),
        )

        async def every_variable() -> Mapping[str, str]:
            return await asyncio.to_thread(variables.all)

        secret = EnvironmentSecret(client, namespace, ENVIRONMENT_SECRET, every_variable)
        await secret.sync()
        gateway_url = settings.resolved_internal_url

        def execution_secret(execution_id: str) -> dict[str, str]:
            return execution_secret_data(signing_key, execution_id, gateway_url)

        yield EngineParts(
            engine=engine,
            environments=DependencyArchives(
                storage=storage,
                default_image=settings.argo_step_image,
                platforms=settings.argo_platforms,
                work_dir=settings.work_dir,
                timeout_s=settings.pip_timeout_s,
            ),
            variable_secret=secret,
            execution_secrets=ExecutionSecretWriter(
                client, namespace, execution_secret_name, execution_secret
            ),
            close=_nothing,
        )
    finally:
        await client.close()


async def _nothing() -> None:
    """Stopping the gateway stops nothing on the cluster: Argo runs the executions on."""


def _kube_client() -> KubeClient:
    try:
        return KubeClient(load_credentials())
    except CredentialsError as exc:
        raise ArgoSetupError([str(exc)]) from exc


def _expected(settings: Settings, client: KubeClient) -> Expected:
    return Expected(
        namespace=settings.argo_namespace or client.credentials.namespace,
        bucket=settings.s3_bucket,
        key_prefix=settings.key_prefix,
        artifact_repository=settings.argo_artifact_repository,
        endpoint_url=settings.s3_endpoint_url,
    )


def _pipeline_interpreters(settings: Settings) -> InterpreterResolver:
    """Steps of a tender pipeline run with the pipeline's own virtualenv (built at creation)."""

    def resolve(command: str, workflow: Manifest) -> str | None:
        pipeline = workflow.get("metadata", {}).get("labels", {}).get(PIPELINE_LABEL)
        if command in ("python", "python3") and pipeline:
            python = environment_python(pipeline, settings.environments_dir)
            if python.exists():
                return str(python)
        return resolve_default_interpreter(command, workflow)

    return resolve
