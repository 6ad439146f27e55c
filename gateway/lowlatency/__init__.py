"""Low-latency deployments: endpoints served by warm worker processes instead of Workflows.

``rules`` says what may be deployed so, ``deployments`` starts and stops a deployment's workers,
``calls`` turns each call into an execution, ``workers`` runs the worker pods of the embedded
engine, ``runtime`` holds what one gateway process keeps for them (see docs/ARCHITECTURE.md).
Nothing is imported here: ``services`` needs ``runtime`` before ``calls`` can need ``services``.
"""
