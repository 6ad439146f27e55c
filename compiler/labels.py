"""Labels and annotations that tender puts on Argo objects, to select them and to read them."""

from __future__ import annotations

__all__ = [
    "CRON_WORKFLOW_LABEL",
    "DEPLOYMENT_LABEL",
    "DESCRIPTION_ANNOTATION",
    "PIPELINE_LABEL",
    "TITLE_ANNOTATION",
    "TRIGGER_LABEL",
    "WORKFLOW_TEMPLATE_LABEL",
]

PIPELINE_LABEL = "tender.io/pipeline"
DEPLOYMENT_LABEL = "tender.io/deployment"
TRIGGER_LABEL = "tender.io/trigger"  # run | endpoint | periodic

# Shown by the Argo UI in place of the generated name (docs/title-and-description.md).
TITLE_ANNOTATION = "workflows.argoproj.io/title"
DESCRIPTION_ANNOTATION = "workflows.argoproj.io/description"

# Set by Argo itself on Workflows submitted from a template or a CronWorkflow.
WORKFLOW_TEMPLATE_LABEL = "workflows.argoproj.io/workflow-template"
CRON_WORKFLOW_LABEL = "workflows.argoproj.io/cron-workflow"
