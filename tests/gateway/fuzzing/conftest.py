"""A gateway of its own for the fuzzer: what it creates (variables every execution sees,
pipelines) must not reach the acceptance tests' gateway."""

from __future__ import annotations

from tests.gateway.acceptance.conftest import access_token, gateway  # noqa: F401 - fixtures
