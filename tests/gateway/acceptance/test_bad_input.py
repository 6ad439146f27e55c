"""Bad requests: a 4xx JSON error that names the problem, and nothing left half-created."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from gateway.auth import issue_access_token
from gateway.store import Database, TokenRepository
from tests.gateway.acceptance.conftest import Gateway
from tests.gateway.acceptance.folders import USES_PACKAGE, gated_package, tar_gz

NameFactory = Callable[[str], str]
ERROR_KEYS = {"message", "name", "request_id", "additional_data"}

MAIN = b"""
def main(count, label=None, document=None):
    return {"total": count}
"""
MAIN_FIELDS = {
    "function_path": "src/main.py",
    "function_name": "main",
    "inputs[0][name]": "count",
    "inputs[0][data_type]": "number",
    "inputs[1][name]": "label",
    "inputs[1][data_type]": "string",
    "inputs[1][is_required]": "False",
    "inputs[2][name]": "document",
    "inputs[2][data_type]": "file",
    "inputs[2][is_required]": "False",
    "outputs[0][name]": "total",
    "outputs[0][data_type]": "number",
}


def assert_error(answer: requests.Response, status: int, *words: str) -> dict[str, Any]:
    """The platform's error object (craft-api.md section 3.3), whose message holds ``words``."""
    assert answer.status_code == status, f"{answer.status_code}: {answer.text}"
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert isinstance(body, dict)
    assert set(body) == ERROR_KEYS
    assert isinstance(body["name"], str)
    assert body["name"]
    assert isinstance(body["request_id"], str)
    assert body["request_id"]
    for word in words:
        assert word in body["message"], f"{word!r} not in {body['message']!r}"
    return body


def _files(gateway: Gateway) -> set[str]:
    """What the gateway keeps for pipelines and runs, on disk and in storage (the engine's own
    folder aside)."""
    found = {f"storage:{key}" for key in gateway.stored_keys()}
    for part in ("storage", "work", "environments"):
        root = gateway.data_dir / part
        if root.exists():
            found |= {str(path.relative_to(gateway.data_dir)) for path in root.rglob("*")}
    return found


@pytest.fixture
def nothing_left(gateway: Gateway) -> Iterator[None]:
    """Fails the test if a file or folder appeared in the gateway's storage, work or envs."""
    before = _files(gateway)
    yield
    assert _files(gateway) - before == set()


def _create(
    http: requests.Session,
    gateway: Gateway,
    name: str,
    fields: dict[str, str] = MAIN_FIELDS,
    code: bytes | None = None,
) -> requests.Response:
    return http.post(
        f"{gateway.api}/pipelines",
        data={"pipeline_name": name, **fields},
        files={"step_file": ("step_file", tar_gz({"src/main.py": MAIN}) if code is None else code)},
        allow_redirects=False,
    )


def _pipeline_names(http: requests.Session, gateway: Gateway) -> list[str]:
    answer = http.get(f"{gateway.api}/pipelines")
    assert answer.status_code == 200
    return [p["pipeline_name"] for p in answer.json()]


@pytest.fixture
def ready(http: requests.Session, gateway: Gateway, pipeline_name: NameFactory) -> str:
    """A built pipeline with a required number, an optional string and an optional file."""
    name = pipeline_name("target")
    assert _create(http, gateway, name).status_code == 200
    for _ in range(200):
        pipeline = http.get(
            f"{gateway.api}/pipelines/{name}", params={"wait_for_completion": "true"}
        ).json()
        if pipeline["creation_info"]["status"] != "creation_pending":
            break
    assert pipeline["creation_info"]["status"] == "ready"
    return name


# ---- pipeline creation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad_name",
    ["Upper", "under_score", "dot.ted", "-leading", "trailing-", "x" * 64, "sp ace"],
)
def test_a_pipeline_name_outside_dns_labels_is_refused(
    http: requests.Session, gateway: Gateway, nothing_left: None, bad_name: str
) -> None:
    body = assert_error(_create(http, gateway, bad_name), 400, "pipeline_name", repr(bad_name))
    assert body["additional_data"]["field"] == "pipeline_name"
    assert bad_name not in _pipeline_names(http, gateway)


def test_a_pipeline_name_that_exists_is_a_conflict_that_keeps_the_first(
    http: requests.Session, gateway: Gateway, ready: str
) -> None:
    before = http.get(f"{gateway.api}/pipelines/{ready}").json()
    other_code = tar_gz({"src/main.py": b"def main(count):\n    return {'total': -1}\n"})

    with_other_code = _create(http, gateway, ready, code=other_code)

    assert_error(with_other_code, 409, ready)
    assert http.get(f"{gateway.api}/pipelines/{ready}").json() == before
    run = http.post(
        f"{gateway.api}/pipelines/{ready}/run", data={"json_inputs": json.dumps({"count": 5})}
    )
    execution_id = run.json()["execution_id"]
    for _ in range(200):
        outputs = http.get(
            f"{gateway.api}/executions/{execution_id}/outputs",
            params={"wait_for_completion": "true"},
            allow_redirects=False,
        )
        if outputs.status_code != 307:
            break
    assert outputs.status_code == 200, outputs.text
    assert outputs.json()["outputs"][0]["value"] == 5  # the first upload's code ran


def _tar_gz_with(member: tarfile.TarInfo, content: bytes = b"") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        main = tarfile.TarInfo("src/main.py")
        main.size = len(MAIN)
        tar.addfile(main, io.BytesIO(MAIN))
        member.size = len(content)
        tar.addfile(member, io.BytesIO(content) if member.isreg() else None)
    return buffer.getvalue()


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    member = tarfile.TarInfo(name)
    member.type = kind
    member.linkname = target
    return member


def _plain_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        main = tarfile.TarInfo("src/main.py")
        main.size = len(MAIN)
        tar.addfile(main, io.BytesIO(MAIN))
    return buffer.getvalue()


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("src/main.py", MAIN)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(b"this is not an archive", id="text"),
        pytest.param(gzip.compress(b"a gzip file, but no tar inside" * 40), id="gzip-not-tar"),
        pytest.param(_plain_tar(), id="tar-not-gzip"),
        pytest.param(_zip(), id="zip"),
        pytest.param(tar_gz({"src/main.py": MAIN})[:-30], id="truncated"),
    ],
)
def test_a_step_file_that_is_not_a_tar_gz_is_refused(
    http: requests.Session,
    gateway: Gateway,
    pipeline_name: NameFactory,
    nothing_left: None,
    code: bytes,
) -> None:
    name = pipeline_name("notgz")
    assert_error(_create(http, gateway, name, code=code), 400, "step_file")
    assert name not in _pipeline_names(http, gateway)


@pytest.mark.parametrize(
    ("code", "entry"),
    [
        pytest.param(_tar_gz_with(tarfile.TarInfo("../escape.py"), b"x = 1"), "../escape.py"),
        pytest.param(
            _tar_gz_with(tarfile.TarInfo("src/../../escape.py"), b"x = 1"), "src/../../escape.py"
        ),
        pytest.param(
            _tar_gz_with(tarfile.TarInfo("/tmp/absolute.py"), b"x = 1"), "/tmp/absolute.py"
        ),
        pytest.param(_tar_gz_with(_link("src/link", "/etc/passwd", tarfile.SYMTYPE)), "src/link"),
        pytest.param(_tar_gz_with(_link("src/up", "../..", tarfile.SYMTYPE)), "src/up"),
        pytest.param(_tar_gz_with(_link("src/hard", "src/main.py", tarfile.LNKTYPE)), "src/hard"),
    ],
    ids=["dotdot", "nested-dotdot", "absolute", "symlink", "symlink-up", "hardlink"],
)
def test_a_step_file_entry_that_escapes_the_folder_is_refused(
    http: requests.Session,
    gateway: Gateway,
    pipeline_name: NameFactory,
    nothing_left: None,
    *,
    code: bytes,
    entry: str,
) -> None:
    name = pipeline_name("escape")
    assert_error(_create(http, gateway, name, code=code), 400, repr(entry))
    assert name not in _pipeline_names(http, gateway)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("function_path", "src/missing.py"),
        ("function_path", "../outside.py"),
        ("function_path", "/etc/hostname"),
        ("function_name", "missing"),
    ],
)
def test_a_function_missing_from_the_archive_is_refused(
    http: requests.Session,
    gateway: Gateway,
    pipeline_name: NameFactory,
    nothing_left: None,
    *,
    field: str,
    value: str,
) -> None:
    name = pipeline_name("nofn")
    answer = _create(http, gateway, name, fields={**MAIN_FIELDS, field: value})
    # The message names what is missing; "function_path" names the file either way.
    assert_error(answer, 400, "function_path", repr(value))
    assert name not in _pipeline_names(http, gateway)


# ---- runs --------------------------------------------------------------------------------


def _run(
    http: requests.Session,
    gateway: Gateway,
    name: str,
    fields: dict[str, str],
    files: dict[str, bytes] | None = None,
) -> requests.Response:
    return http.post(
        f"{gateway.api}/pipelines/{name}/run", data=fields, files=files, allow_redirects=False
    )


def _executions(http: requests.Session, gateway: Gateway, name: str) -> list[Any]:
    answer = http.get(f"{gateway.api}/pipelines/{name}/executions")
    assert answer.status_code == 200, answer.text
    listed: list[Any] = answer.json()
    return listed


@pytest.fixture
def no_execution(http: requests.Session, gateway: Gateway, ready: str) -> Iterator[str]:
    """The ready pipeline; fails the test if an execution of it, or any stored file, appears."""
    before = _files(gateway)
    yield ready
    assert _executions(http, gateway, ready) == []
    assert _files(gateway) - before == set()


@pytest.mark.parametrize(
    ("inputs", "files", "status", "words"),
    [
        pytest.param({}, None, 400, ["count"], id="missing-required"),
        pytest.param({"label": "x"}, None, 400, ["count"], id="missing-required-with-others"),
        pytest.param({"count": "three"}, None, 400, ["count"], id="string-for-number"),
        pytest.param({"count": True}, None, 400, ["count"], id="boolean-for-number"),
        pytest.param({"count": 1, "label": 5}, None, 400, ["label"], id="number-for-string"),
        pytest.param({"count": 1, "document": "x"}, None, 400, ["document"], id="json-for-file"),
        pytest.param({"count": 1, "ghost": 2}, None, 400, ["ghost"], id="undeclared"),
        pytest.param({"count": 1}, {"ghost": b"x"}, 400, ["ghost"], id="undeclared-file"),
        pytest.param({}, {"count": b"1"}, 400, ["count"], id="file-for-number"),
        pytest.param(
            {"count": 1, "label": "x" * 60_000}, None, 413, ["0.06 MB"], id="over-0.06-MB"
        ),
        pytest.param(
            {"count": 1, "label": "x" * 60_000},
            {"document": b"the file must not be kept"},
            413,
            ["0.06 MB"],
            id="over-0.06-MB-with-a-file",
        ),
    ],
)
def test_bad_run_inputs_are_refused(
    http: requests.Session,
    gateway: Gateway,
    no_execution: str,
    *,
    inputs: dict[str, Any],
    files: dict[str, bytes] | None,
    status: int,
    words: list[str],
) -> None:
    answer = _run(http, gateway, no_execution, {"json_inputs": json.dumps(inputs)}, files)
    assert_error(answer, status, *words)


def test_large_inputs_are_accepted_as_files(
    http: requests.Session, gateway: Gateway, ready: str
) -> None:
    # The limit is on values only: the same bytes as a file are fine.
    answer = _run(
        http, gateway, ready, {"json_inputs": json.dumps({"count": 1})}, {"document": b"x" * 70_000}
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("json_inputs", "{not json"),
        ("json_inputs", "[1, 2]"),
        ("json_inputs", '"a string"'),
        ("inputs_mapping", "[{"),
        ("inputs_mapping", '{"pipeline_input_name": "count"}'),
        ("outputs_mapping", "nope"),
    ],
)
def test_malformed_run_fields_are_refused(
    http: requests.Session, gateway: Gateway, no_execution: str, field: str, text: str
) -> None:
    fields = {"json_inputs": json.dumps({"count": 1}), field: text}
    assert_error(_run(http, gateway, no_execution, fields), 400)


_IN, _OUT = "inputs_mapping", "outputs_mapping"


@pytest.mark.parametrize(
    ("field", "mappings", "words"),
    [
        (_IN, [{"pipeline_input_name": "ghost", "constant_value": 1}], ["ghost"]),
        (_IN, [{"pipeline_input_name": "label", "constant_value": 5}], ["label"]),
        (_IN, [{"pipeline_input_name": "label"}], ["label"]),
        (
            _IN,
            [{"pipeline_input_name": "label", "constant_value": "a", "is_null": True}],
            ["label"],
        ),
        (_IN, [{"pipeline_input_name": "document", "constant_value": "a"}], ["document"]),
        (_IN, [{"pipeline_input_name": "count", "constant_value": 2}], ["count"]),
        (
            _IN,
            [
                {"pipeline_input_name": "label", "constant_value": "a"},
                {"pipeline_input_name": "label", "constant_value": "b"},
            ],
            ["label"],
        ),
        (_IN, [{"pipeline_input_name": "label", "endpoint_input_name": "c"}], ["endpoint"]),
        (_OUT, [{"pipeline_output_name": "ghost", "is_null": True}], ["ghost"]),
        (_OUT, [{"pipeline_output_name": "total"}], ["total"]),
        (_OUT, [{"pipeline_output_name": "total", "endpoint_output_name": "t"}], ["endpoint"]),
    ],
    ids=[
        "undeclared-input",
        "constant-of-wrong-type",
        "no-source",
        "two-sources",
        "constant-for-a-file",
        "given-and-mapped",
        "mapped-twice",
        "endpoint-source-in-a-run",
        "undeclared-output",
        "no-destination",
        "endpoint-destination-in-a-run",
    ],
)
def test_bad_mappings_are_refused(
    http: requests.Session,
    gateway: Gateway,
    no_execution: str,
    *,
    field: str,
    mappings: list[dict[str, Any]],
    words: list[str],
) -> None:
    fields = {"json_inputs": json.dumps({"count": 1}), field: json.dumps(mappings)}
    assert_error(_run(http, gateway, no_execution, fields), 400, *words)


def test_a_pipeline_still_being_created_cannot_run(
    http: requests.Session, gateway: Gateway, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    release = tmp_path / "release"
    files = {"src/greet.py": USES_PACKAGE, "requirements.txt": "--no-index\n./pkg\n"}
    code = tar_gz({k: v.encode() for k, v in {**files, **gated_package(release)}.items()})
    name = pipeline_name("pending")
    fields = {
        "function_path": "src/greet.py",
        "function_name": "greet",
        "container_config[requirements_path]": "requirements.txt",
    }
    try:
        created = _create(http, gateway, name, fields=fields, code=code)
        assert created.json()["creation_info"]["status"] == "creation_pending"
        # The build waits for `release`: the held GET ends with the pipeline still pending,
        # as a 200 with the pipeline, never a redirect.
        held = http.get(
            f"{gateway.api}/pipelines/{name}",
            params={"wait_for_completion": "true"},
            allow_redirects=False,
        )
        assert held.status_code == 200
        assert held.json()["creation_info"]["status"] == "creation_pending"

        answer = _run(http, gateway, name, {"json_inputs": "{}"})

        assert_error(answer, 409, name, "creation_pending")
        assert _executions(http, gateway, name) == []
    finally:
        release.touch()
    for _ in range(200):
        pipeline = http.get(
            f"{gateway.api}/pipelines/{name}", params={"wait_for_completion": "true"}
        ).json()
        if pipeline["creation_info"]["status"] != "creation_pending":
            break
    assert pipeline["creation_info"]["status"] == "ready"


# ---- unknown objects ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/pipelines/{p}"),
        ("GET", "/pipelines/{p}?wait_for_completion=true"),
        ("DELETE", "/pipelines/{p}"),
        ("POST", "/pipelines/{p}/run"),
        ("GET", "/pipelines/{p}/executions"),
        ("GET", "/pipelines/{p}/executions/latest"),
        ("POST", "/pipelines/{p}/logs"),
        ("GET", "/executions/{e}"),
        ("GET", "/executions/{e}/outputs?wait_for_completion=true"),
        ("GET", "/executions/{e}/outputs/total"),
        ("GET", "/executions/{e}/inputs/count"),
        ("POST", "/executions/{e}/logs"),
        ("DELETE", "/executions/{e}"),
    ],
)
def test_unknown_pipelines_and_executions_are_404(
    http: requests.Session, gateway: Gateway, method: str, path: str
) -> None:
    names = {"p": "no-such-pipeline-here", "e": "no-such-execution-here"}
    url = gateway.api + path.format(**names)
    data = {"json_inputs": "{}"} if path.endswith("/run") else None
    answer = http.request(method, url, data=data, allow_redirects=False)
    assert_error(answer, 404, names[path[path.index("{") + 1]])


def test_an_unknown_output_or_input_of_an_execution_is_404(
    http: requests.Session, gateway: Gateway, ready: str
) -> None:
    run = _run(http, gateway, ready, {"json_inputs": json.dumps({"count": 2})})
    execution_id = run.json()["execution_id"]
    for kind in ("outputs", "inputs"):
        answer = http.get(f"{gateway.api}/executions/{execution_id}/{kind}/ghost")
        assert_error(answer, 404, "ghost")


# ---- authentication ----------------------------------------------------------------------

_PROTECTED = [
    ("GET", "/pipelines"),
    ("POST", "/pipelines"),
    ("GET", "/pipelines/some-name"),
    ("POST", "/pipelines/some-name/run"),
    ("GET", "/executions/some-id/outputs?wait_for_completion=true"),
    ("DELETE", "/executions/some-id"),
    ("GET", "/project-information"),
]


def _signing_key(gateway: Gateway) -> str:
    """The key the running gateway signs with, read from its store as an operator could."""
    url = (
        os.environ["TENDER_TEST_DATABASE_URL"]
        if gateway.database == "postgres"
        else f"sqlite:///{gateway.data_dir / 'tender.db'}"
    )
    db = Database(url)
    try:

        def refuse() -> str:
            raise AssertionError("the gateway has no signing key yet")

        return TokenRepository(db).signing_key(refuse, datetime.now(UTC))
    finally:
        db.dispose()


def _bad_token(gateway: Gateway, kind: str) -> str:
    now = datetime.now(UTC)
    claims = {"sub": "someone", "iss": "tender", "iat": now, "exp": now + timedelta(hours=1)}
    if kind == "garbage":
        return "not-a-jwt"
    if kind == "garbage-segments":
        return "abc.def.ghi"
    if kind == "alg-none":
        return jwt.encode(claims, "", algorithm="none")
    if kind == "another-key":
        return jwt.encode(claims, "not the gateway's key at all, long enough", "HS256")
    assert kind == "expired"
    past = now - timedelta(hours=2)
    return issue_access_token(
        "someone",
        _signing_key(gateway),
        sdk_token_hash="0" * 64,
        now=past,
        lifetime=timedelta(hours=1),
    )


@pytest.mark.parametrize(("method", "path"), _PROTECTED)
def test_a_missing_token_is_401(gateway: Gateway, method: str, path: str) -> None:
    answer = requests.request(method, gateway.api + path, allow_redirects=False, timeout=30)
    assert_error(answer, 401)


@pytest.mark.parametrize(
    "kind", ["garbage", "garbage-segments", "alg-none", "another-key", "expired"]
)
@pytest.mark.parametrize(("method", "path"), _PROTECTED)
def test_a_bad_or_expired_token_is_401(gateway: Gateway, method: str, path: str, kind: str) -> None:
    answer = requests.request(
        method,
        gateway.api + path,
        headers={"Authorization": f"Bearer {_bad_token(gateway, kind)}"},
        allow_redirects=False,
        timeout=30,
    )
    assert_error(answer, 401, *(["expired"] if kind == "expired" else []))


def test_a_token_in_another_scheme_is_401(gateway: Gateway, access_token: str) -> None:
    for header in (f"Basic {access_token}", access_token, "Bearer"):
        answer = requests.get(
            f"{gateway.api}/pipelines", headers={"Authorization": header}, timeout=30
        )
        assert_error(answer, 401)


def test_an_unknown_sdk_token_is_refused_at_refresh(gateway: Gateway) -> None:
    for refresh_token in ("tdr_not-a-real-token", gateway.token + "x", ""):
        answer = requests.post(
            f"{gateway.api}/auth/refresh", json={"refresh_token": refresh_token}, timeout=30
        )
        assert_error(answer, 401)


def test_a_refresh_without_a_token_is_a_json_error(gateway: Gateway) -> None:
    answer = requests.post(f"{gateway.api}/auth/refresh", json={}, timeout=30)
    assert_error(answer, 400, "refresh_token")


# ---- routes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/nothing-here"),
        ("GET", "/nothing-here"),
        ("GET", "/api/v1/pipelines/"),
        ("POST", "/api/v1/pipelines/"),
        ("GET", "/api/v1/pipelines/some-name/"),
        ("GET", "/api/v1/pipelines/some-name/executions/"),
        ("GET", "/api/v1/executions/some-id/outputs/?wait_for_completion=true"),
        ("GET", "/api/v1/executions/some-id/"),
        ("POST", "/api/v1/auth/refresh/"),
        ("GET", "/api/v1"),
        ("GET", "/api/v1/"),
        ("GET", "/"),
    ],
)
def test_unknown_routes_are_json_404_never_a_redirect(
    http: requests.Session, gateway: Gateway, method: str, path: str
) -> None:
    answer = http.request(method, gateway.base_url + path, allow_redirects=False)
    assert not answer.is_redirect
    assert_error(answer, 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/auth/refresh"),
        ("DELETE", "/api/v1/pipelines"),
        ("PUT", "/api/v1/pipelines/some-name"),
        ("PATCH", "/api/v1/executions/some-id"),
        ("GET", "/api/v1/pipelines/some-name/run"),
        ("GET", "/api/v1/executions/some-id/logs"),
    ],
)
def test_a_wrong_method_is_a_json_405(
    http: requests.Session, gateway: Gateway, method: str, path: str
) -> None:
    answer = http.request(method, gateway.base_url + path, allow_redirects=False)
    assert_error(answer, 405)


def test_a_malformed_logs_query_is_a_json_error(
    http: requests.Session, gateway: Gateway, ready: str
) -> None:
    answer = http.post(f"{gateway.api}/pipelines/{ready}/logs", json={"limit": -1})
    assert_error(answer, 400, "limit")
