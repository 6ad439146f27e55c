from __future__ import annotations

import asyncio
from collections.abc import Mapping

import pytest

from compiler.execution_secret import SDK_ENVIRONMENT, execution_secret_name
from gateway.step_tokens import (
    execution_secret_data,
    execution_secret_lookup,
    is_step_token,
    read_step_token,
    step_token,
)

KEY = "k" * 48


def test_a_step_token_names_its_execution_and_is_checked_without_being_stored() -> None:
    token = step_token(KEY, "hello-x7k2p")
    assert is_step_token(token)
    assert token == step_token(KEY, "hello-x7k2p")  # any engine can hand it out again
    assert read_step_token(KEY, token) == "hello-x7k2p"
    assert step_token(KEY, "hello-x7k2q") != token


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t.replace("hello-x7k2p", "hello-x7k2q"),  # another execution, same MAC
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # a MAC that is not its own
        lambda t: t.rpartition(".")[0],  # no MAC
        lambda t: "tdx_." + t.rpartition(".")[2],  # no execution
        lambda t: "tdr_" + t[4:],  # an SDK token's prefix
    ],
    ids=["other-execution", "altered-mac", "no-mac", "no-execution", "not-a-step-token"],
)
def test_altered_step_tokens_are_refused(change: object) -> None:
    token = step_token(KEY, "hello-x7k2p")
    assert callable(change)
    assert read_step_token(KEY, change(token)) is None


def test_another_signing_key_refuses_the_token() -> None:
    assert read_step_token("z" * 48, step_token(KEY, "hello-x7k2p")) is None


def test_the_execution_secret_holds_what_the_sdk_reads() -> None:
    data = execution_secret_data(KEY, "run-1", "http://gw:8080")
    assert set(data) == set(SDK_ENVIRONMENT.values())
    assert read_step_token(KEY, data["sdk-token"]) == "run-1"
    assert data["environment-url"] == data["control-url"] == "http://gw:8080"


def test_the_embedded_lookup_answers_only_for_execution_secrets() -> None:
    lookup = execution_secret_lookup(KEY, "http://gw:8080")

    async def resolve() -> list[Mapping[str, str] | None]:
        return [
            await lookup(execution_secret_name("run-1")),
            await lookup("tender-environment"),
            await lookup("tender-execution-"),
        ]

    data, other, empty = asyncio.run(resolve())
    assert data is not None
    assert data["sdk-token"] == step_token(KEY, "run-1")
    assert (other, empty) == (None, None)
