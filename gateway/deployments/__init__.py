"""Deployments: a pipeline as an endpoint (a WorkflowTemplate, one Workflow per call) or on a
schedule (a CronWorkflow). See craft-api.md sections 5.4 and 5.5."""

from __future__ import annotations

from gateway.deployments.definitions import deployment_view, parse_deployment
from gateway.deployments.lifecycle import (
    create_deployment,
    delete_deployment,
    delete_deployments_of_pipeline,
    deployments_of,
    get_deployment,
    pipeline_of,
    restore_low_latency,
    rotate_endpoint_token,
    schedule_error,
    update_deployment,
)
from gateway.deployments.results import endpoint_results
from gateway.deployments.tokens import check_endpoint_token
from gateway.deployments.triggers import (
    EndpointCall,
    EndpointGates,
    read_endpoint_call,
    trigger_endpoint,
)

__all__ = [
    "EndpointCall",
    "EndpointGates",
    "check_endpoint_token",
    "create_deployment",
    "delete_deployment",
    "delete_deployments_of_pipeline",
    "deployment_view",
    "deployments_of",
    "endpoint_results",
    "get_deployment",
    "parse_deployment",
    "pipeline_of",
    "read_endpoint_call",
    "restore_low_latency",
    "rotate_endpoint_token",
    "schedule_error",
    "trigger_endpoint",
    "update_deployment",
]
