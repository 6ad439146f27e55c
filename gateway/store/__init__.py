"""The gateway's store: one SQL database (SQLite or PostgreSQL) behind small repositories.

ORM rows never leave this package; repositories return the records of `records.py`.
"""

from __future__ import annotations

from gateway.store.db import Database, StoreUnavailableError
from gateway.store.deployments import DeploymentRepository
from gateway.store.environment_variables import EnvironmentVariableRepository
from gateway.store.executions import ExecutionRepository
from gateway.store.logs import StepLogRepository
from gateway.store.objects import CronWorkflowRepository, WorkflowTemplateRepository
from gateway.store.pipelines import PipelineRepository
from gateway.store.processes import StepProcessRepository
from gateway.store.records import (
    DeploymentRecord,
    ExecutionRecord,
    LogLine,
    ObjectRecord,
    PipelineRecord,
    StepProcess,
    TokenInfo,
    WorkerLogLine,
    WorkflowRecord,
    WorkflowStatus,
)
from gateway.store.tokens import TokenRepository
from gateway.store.worker_logs import WorkerLogRepository
from gateway.store.workflows import WorkflowRepository

__all__ = [
    "CronWorkflowRepository",
    "Database",
    "DeploymentRecord",
    "DeploymentRepository",
    "EnvironmentVariableRepository",
    "ExecutionRecord",
    "ExecutionRepository",
    "LogLine",
    "ObjectRecord",
    "PipelineRecord",
    "PipelineRepository",
    "StepLogRepository",
    "StepProcess",
    "StepProcessRepository",
    "StoreUnavailableError",
    "TokenInfo",
    "TokenRepository",
    "WorkerLogLine",
    "WorkerLogRepository",
    "WorkflowRecord",
    "WorkflowRepository",
    "WorkflowStatus",
    "WorkflowTemplateRepository",
]
