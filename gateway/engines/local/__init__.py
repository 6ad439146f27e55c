"""The embedded engine: runs Argo manifests as local processes (see README.md here)."""

from __future__ import annotations

from gateway.engines.local.clock import Clock, ManualClock, SystemClock
from gateway.engines.local.engine import LocalEngine
from gateway.engines.local.settings import (
    InterpreterResolver,
    LocalEngineSettings,
    SecretLookup,
    resolve_default_interpreter,
)

__all__ = [
    "Clock",
    "InterpreterResolver",
    "LocalEngine",
    "LocalEngineSettings",
    "ManualClock",
    "SecretLookup",
    "SystemClock",
    "resolve_default_interpreter",
]
