from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from compiler import CompileOptions
from gateway.environment_variables import check_name, secret_lookup
from gateway.errors import BadRequestError
from gateway.store import Database, EnvironmentVariableRepository


@pytest.fixture
def variables(tmp_path: Path) -> Iterator[EnvironmentVariableRepository]:
    db = Database(f"sqlite:///{tmp_path / 'store.db'}")
    db.upgrade()
    yield EnvironmentVariableRepository(db)
    db.dispose()


@pytest.mark.parametrize(
    "name", ["A", "_x", "API_KEY_2", "a" * 253, "CRAFT_AI__MULTIPART_PART_SIZE__B"]
)
def test_identifiers_are_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "1A",
        "A-B",
        "A B",
        "A.B",
        "é",
        "a" * 254,
        "TENDER_STEP",
        "ARGO_X",
        "CRAFT_AI_EXECUTION_ID",
        "CRAFT_AI_SDK_TOKEN",
        "CRAFT_AI_ENVIRONMENT_URL",
        "CRAFT_AI_CONTROL_URL",
    ],
)
def test_other_names_are_refused(name: str) -> None:
    with pytest.raises(BadRequestError) as raised:
        check_name(name)
    assert raised.value.name == "InvalidEnvironmentVariableName"


def test_the_repository_creates_updates_lists_and_deletes(
    variables: EnvironmentVariableRepository,
) -> None:
    now = datetime.now(UTC)
    variables.put({"B": "2", "A": "1"}, now)
    variables.put({"B": "two"}, now)
    assert variables.all() == {"A": "1", "B": "two"}
    assert list(variables.all()) == variables.names() == ["A", "B"]
    assert variables.get("B") == "two"
    assert variables.delete("B") == "two"
    assert variables.delete("B") is None
    assert variables.get("B") is None


def test_the_engine_reads_variables_from_the_compilers_secret_only(
    variables: EnvironmentVariableRepository,
) -> None:
    variables.put({"TOKEN": "value"}, datetime.now(UTC))
    lookup = secret_lookup(variables)
    secret = CompileOptions().secret_name

    assert asyncio.run(lookup(secret)) == {"TOKEN": "value"}
    variables.put({"LATER": "added"}, datetime.now(UTC))
    assert asyncio.run(lookup(secret)) == {"LATER": "added", "TOKEN": "value"}
    assert asyncio.run(lookup("another-secret")) is None
