"""Why a call to a low-latency deployment's workers did not return the function's result.

    WorkerError
    ├── WorkerStartError    a worker could not start (its import raised, it exited, timed out)
    ├── WorkerLostError     the worker serving the call ended before answering
    └── WorkersStoppedError the deployment's workers are stopped (deleted, disabled, shut down)

None of them reaches HTTP: each ends the call's execution, with its message in the log.
"""

from __future__ import annotations

__all__ = ["WorkerError", "WorkerLostError", "WorkerStartError", "WorkersStoppedError"]


class WorkerError(Exception):
    """A call that the workers could not serve; ``str()`` says why, in a user's words."""


class WorkerStartError(WorkerError):
    pass


class WorkerLostError(WorkerError):
    pass


class WorkersStoppedError(WorkerError):
    pass
