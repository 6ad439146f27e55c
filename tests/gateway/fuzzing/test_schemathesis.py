"""schemathesis against the served ``/openapi.json``, with an access token as the SDK sends it:
a bounded run (at most ``MAX_EXAMPLES`` cases per operation and phase, a fixed seed) in which
no request may get a 5xx answer; the gateway's log must hold no traceback (the fixture's
check)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gateway.acceptance.conftest import Gateway

MAX_EXAMPLES = 10
SEED = 20261130
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# Answers 501 VectorDatabaseNotProvided by design, whatever the request (its own test:
# tests/gateway/acceptance/test_platform_calls.py); every other route is fuzzed.
NOT_PROVIDED = "/api/v1/environments/{environment_id}/vector-database"


@pytest.mark.timeout(1800)  # about 2 minutes on an idle 2-core machine, much more when busy
def test_no_generated_request_gets_a_server_error(
    gateway: Gateway, access_token: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{gateway.base_url}/openapi.json",
            "--checks=not_a_server_error",
            f"--exclude-path={NOT_PROVIDED}",
            f"--max-examples={MAX_EXAMPLES}",
            f"--seed={SEED}",
            "--generation-database=none",
            "--workers=1",
            "--request-timeout=60",
            "--no-color",
            f"--header=Authorization: Bearer {access_token}",
            f"--report-dir={tmp_path}",
        ],
        cwd=tmp_path,  # its cache of crashes goes there, not into the repository
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    summary = done.stdout[-6000:]
    assert done.returncode == 0, summary
    counts = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert counts is not None, summary
    assert int(counts[1]) == int(counts[2]) > 10 * MAX_EXAMPLES, summary
