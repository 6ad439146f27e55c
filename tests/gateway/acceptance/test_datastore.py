"""The data store through the unmodified SDK and plain HTTP, and mappings from and to it.

Every test works in a folder of its own (``ds-<random>/``): the gateway is shared by the package.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from craft_ai_sdk import INPUT_OUTPUT_TYPES
from craft_ai_sdk.exceptions import SdkException
from craft_ai_sdk.io import Input, InputSource, Output, OutputDestination

from gateway.signed_urls import UrlSigner
from gateway.store import Database, TokenRepository
from tests.gateway.acceptance.conftest import DATASTORE_PAGE_SIZE, Gateway
from tests.gateway.acceptance.folders import write_folder

T = INPUT_OUTPUT_TYPES
NameFactory = Callable[[str], str]
ERROR_KEYS = {"message", "name", "request_id", "additional_data"}

TRANSFORM = """
import hashlib


def transform(document, token):
    with open(document["path"], "rb") as source:
        content = source.read()
    with open("result.bin", "wb") as out:
        out.write(content[::-1])
        out.write(hashlib.sha256(token.encode()).hexdigest().encode())
    return {"result": {"path": "result.bin"}, "size": len(content)}
"""

# Runs in its own interpreter: the SDK reads the multipart settings when it is imported.
MULTIPART_CLIENT = """
import json
import sys

import requests

puts = []
_put = requests.put


def counting_put(*args, **kwargs):
    answer = _put(*args, **kwargs)
    puts.append({"status": answer.status_code, "etag": answer.headers.get("ETag")})
    return answer


requests.put = counting_put

from craft_ai_sdk import CraftAiSdk

base_url, token, source, path, target = sys.argv[1:]
sdk = CraftAiSdk(sdk_token=token, environment_url=base_url, control_url=base_url)
sdk.upload_data_store_object(source, path)
sdk.download_data_store_object(path, target)
print(json.dumps(puts))
"""


@pytest.fixture
def folder() -> str:
    return f"ds-{secrets.token_hex(4)}"


def _signing_key(gateway: Gateway) -> str:
    db = Database(gateway.database_url)
    try:

        def refuse() -> str:
            raise AssertionError("the gateway has no signing key yet")

        return TokenRepository(db).signing_key(refuse, datetime.now(UTC))
    finally:
        db.dispose()


def _xml_error(answer: requests.Response, status: int, code: str) -> str:
    """The S3 error (``<Error><Code>..</Code><Message>..</Message>``); returns its message."""
    assert answer.status_code == status, f"{answer.status_code}: {answer.text}"
    assert answer.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(answer.text)
    assert root.tag == "Error"
    fields = {node.tag: node.text for node in root}
    assert fields["Code"] == code, answer.text
    assert fields["Message"]
    return fields["Message"]


def _storage_files(gateway: Gateway) -> set[str]:
    return gateway.stored_keys()


def test_upload_list_information_download_and_delete(
    sdk: Any, http: requests.Session, gateway: Gateway, folder: str
) -> None:
    contents = {
        f"{folder}/{name}": os.urandom(size)
        for name, size in [
            ("a.bin", 10),
            ("b.bin", 2048),
            ("sub/c.csv", 0),
            ("sub/d.txt", 5),
            ("é è.txt", 3),
        ]
    }
    for path, content in contents.items():
        assert sdk.upload_data_store_object(io.BytesIO(content), path) is None

    listed = sdk.list_data_store_objects(folder)
    assert sorted(item["path"] for item in listed) == sorted(contents)
    assert {item["path"]: item["size"] for item in listed}[f"{folder}/b.bin"] == "2.00 KB"
    assert [i["path"] for i in sdk.list_data_store_objects(f"{folder}/sub")] == [
        f"{folder}/sub/c.csv",
        f"{folder}/sub/d.txt",
    ]
    # The pages are small: the SDK followed the continuation tokens.
    first = http.get(f"{gateway.api}/data-store/list", params={"folder_path": folder}).json()
    assert len(first["items"]) == DATASTORE_PAGE_SIZE
    assert isinstance(first["continuation_token"], str)
    assert all(isinstance(item["size"], int) for item in first["items"])

    info = sdk.get_data_store_object_information(f"{folder}/a.bin")
    assert info["path"] == f"{folder}/a.bin"
    assert info["size"] == "10.00 B"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", info["last_modified"])

    for path, content in contents.items():
        buffer = io.BytesIO()
        sdk.download_data_store_object(path, buffer)
        assert buffer.getvalue() == content

    assert sdk.delete_data_store_object(f"{folder}/a.bin") == {"path": f"{folder}/a.bin"}
    assert f"{folder}/a.bin" not in [i["path"] for i in sdk.list_data_store_objects(folder)]
    with pytest.raises(SdkException) as raised:
        sdk.get_data_store_object_information(f"{folder}/a.bin")
    assert raised.value.status_code == 404
    with pytest.raises(SdkException) as raised:
        sdk.delete_data_store_object(f"{folder}/a.bin")
    assert raised.value.status_code == 404
    with pytest.raises(SdkException) as raised:
        sdk.download_data_store_object(f"{folder}/a.bin", io.BytesIO())
    assert raised.value.status_code == 404


def test_an_upload_replaces_the_object(sdk: Any, folder: str, tmp_path: Path) -> None:
    source = tmp_path / "v.txt"
    source.write_bytes(b"first")
    sdk.upload_data_store_object(str(source), f"{folder}/v.txt")
    sdk.upload_data_store_object(io.BytesIO(b"second"), f"{folder}/v.txt")
    target = tmp_path / "out.txt"
    sdk.download_data_store_object(f"{folder}/v.txt", str(target))
    assert target.read_bytes() == b"second"


def test_a_multipart_upload(
    gateway: Gateway, folder: str, tmp_path: Path, http: requests.Session
) -> None:
    # S3 takes no part but the last under 5 MiB (MinIO and AWS check it on completion).
    part = 400 if gateway.s3 is None else 5 * 1024 * 1024
    content = os.urandom(6 * part + part // 4)
    source, target = tmp_path / "big.bin", tmp_path / "back.bin"
    source.write_bytes(content)
    env = {
        **os.environ,
        "CRAFT_AI__MULTIPART_THRESHOLD__B": str(part * 2),
        "CRAFT_AI__MULTIPART_PART_SIZE__B": str(part),
        "SDK_VERBOSE_LOG": "false",
    }
    path = f"{folder}/big.bin"
    args = [gateway.base_url, gateway.token, str(source), path, str(target)]
    done = subprocess.run(
        [sys.executable, "-c", MULTIPART_CLIENT, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    puts = json.loads(done.stdout)
    assert len(puts) == 7  # 6 whole parts and a quarter of one
    assert all(put["status"] == 200 and put["etag"] for put in puts)
    assert target.read_bytes() == content
    info = http.post(f"{gateway.api}/data-store/information", json={"path_to_object": path})
    assert info.json()["size"] == len(content)
    assert not any(name.startswith("uploads/") for name in _storage_files(gateway))


def test_a_multipart_upload_with_a_wrong_etag_or_upload_is_refused(
    http: requests.Session, gateway: Gateway, folder: str
) -> None:
    base = f"{gateway.api}/data-store/upload/multipart"
    path = f"{folder}/parts.bin"
    config = http.post(base, json={"path_to_object": path}).json()
    part = http.post(
        f"{base}/part",
        json={
            "path_to_object": path,
            "multipart_upload_configuration": config,
            "chunk_size": 3,
            "part_number": 1,
            "size": 3,
        },
    ).json()
    put = requests.put(part["signed_url"], data=b"abc", headers=part["headers"], timeout=30)
    assert put.status_code == 200
    end = {"path_to_object": path, "multipart_upload_configuration": config}

    wrong_etag = http.post(f"{base}/end", json={**end, "parts": [{"number": 1, "metadata": "x"}]})
    assert wrong_etag.status_code == 400, wrong_etag.text
    missing = http.post(f"{base}/end", json={**end, "parts": [{"number": 2}]})
    assert missing.status_code == 400, missing.text
    other_path = http.post(
        f"{base}/end",
        json={**end, "path_to_object": f"{folder}/other.bin", "parts": [{"number": 1}]},
    )
    assert other_path.status_code == 404, other_path.text
    unknown = http.post(
        f"{base}/end",
        json={
            **end,
            "multipart_upload_configuration": {"upload_id": "0" * 32},
            "parts": [{"number": 1}],
        },
    )
    assert unknown.status_code == 404, unknown.text
    assert (
        http.post(
            f"{gateway.api}/data-store/information", json={"path_to_object": path}
        ).status_code
        == 404
    )

    done = http.post(
        f"{base}/end", json={**end, "parts": [{"number": 1, "metadata": put.headers["ETag"]}]}
    )
    assert done.status_code == 200, done.text
    url = http.post(f"{gateway.api}/data-store/download", data={"path_to_object": path}).json()
    assert requests.get(url["signed_url"], timeout=30).content == b"abc"


def _upload_url(http: requests.Session, gateway: Gateway, path: str) -> str:
    answer = http.get(f"{gateway.api}/data-store/upload", params={"path_to_object": path})
    assert answer.status_code == 200, answer.text
    assert gateway.is_storage_url(answer.json()["signed_url"])
    url: str = answer.json()["signed_url"]
    return url


def _download_url(http: requests.Session, gateway: Gateway, path: str) -> str:
    answer = http.post(f"{gateway.api}/data-store/download", data={"path_to_object": path})
    assert answer.status_code == 200, answer.text
    url: str = answer.json()["signed_url"]
    return url


def _with_params(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    params = dict(parse_qsl(parts.query))
    params.update(changes)
    return parts._replace(query=urlencode(params)).geturl()


def test_signed_urls_are_bound_to_one_path_one_method_and_a_time(
    http: requests.Session, gateway: Gateway, folder: str
) -> None:
    if gateway.s3 is not None:
        pytest.skip("the gateway signs URLs of its own on the local storage only")
    path = f"{folder}/signed.bin"
    upload = _upload_url(http, gateway, path)
    assert requests.post(upload, files={"file": b"content"}, timeout=30).status_code in (200, 204)
    download = _download_url(http, gateway, path)
    assert requests.get(download, timeout=30).content == b"content"
    before = _storage_files(gateway)

    # Another path, a tampered signature or expiry, another method, no signature at all.
    _xml_error(
        requests.get(_with_params(download, path=f"{folder}/x"), timeout=30),
        403,
        "SignatureDoesNotMatch",
    )
    _xml_error(
        requests.get(_with_params(download, signature="A" * 43), timeout=30),
        403,
        "SignatureDoesNotMatch",
    )
    later = str(int(time.time()) + 10**6)
    _xml_error(
        requests.get(_with_params(download, expires=later), timeout=30),
        403,
        "SignatureDoesNotMatch",
    )
    _xml_error(
        requests.post(download, files={"file": b"evil"}, timeout=30), 403, "SignatureDoesNotMatch"
    )
    _xml_error(requests.put(download, data=b"evil", timeout=30), 403, "SignatureDoesNotMatch")
    _xml_error(requests.get(upload, timeout=30), 403, "SignatureDoesNotMatch")
    _xml_error(requests.get(download.partition("?")[0], timeout=30), 403, "AccessDenied")
    # The other path's upload URL does not write this path.
    other = _upload_url(http, gateway, f"{folder}/other.bin")
    _xml_error(
        requests.post(_with_params(other, path=path), files={"file": b"evil"}, timeout=30),
        403,
        "SignatureDoesNotMatch",
    )

    # Expired: signed as the gateway signs, but in the past.
    signer = UrlSigner(_signing_key(gateway), gateway.base_url)
    past = int((datetime.now(UTC) - timedelta(seconds=5)).timestamp())
    expired = signer.sign("GET", "/data-store/signed", {"key": f"datastore/{path}"}, past)
    assert "expired" in _xml_error(requests.get(expired, timeout=30), 403, "AccessDenied")
    fresh = signer.sign("GET", "/data-store/signed", {"key": f"datastore/{path}"}, past + 60)
    assert requests.get(fresh, timeout=30).content == b"content"

    assert requests.get(download, timeout=30).content == b"content"
    assert _storage_files(gateway) == before

    # A missing object: NoSuchKey, which the SDK reads as the error's name.
    http.delete(f"{gateway.api}/data-store/delete", data={"path_to_object": path})
    message = _xml_error(requests.get(download, timeout=30), 404, "NoSuchKey")
    assert path in message
    # A POST without its file part.
    _xml_error(requests.post(upload, data={"x": "y"}, timeout=30), 400, "InvalidArgument")


def test_presigned_urls_of_the_bucket_are_checked_by_s3(
    http: requests.Session, gateway: Gateway, folder: str
) -> None:
    """Tampered, for another key or method, or expired: S3's own 403, in S3's XML."""
    if gateway.s3 is None:
        pytest.skip("presigned by S3 itself on the S3 storage only")
    path = f"{folder}/signed.bin"
    answer = http.get(f"{gateway.api}/data-store/upload", params={"path_to_object": path}).json()
    upload, fields = answer["signed_url"], answer["fields"]
    assert gateway.is_storage_url(upload)
    posted = requests.post(upload, data=fields, files={"file": b"content"}, timeout=30)
    assert posted.status_code == 204, posted.text
    download = _download_url(http, gateway, path)
    assert gateway.is_storage_url(download)
    assert dict(parse_qsl(urlsplit(download).query))["X-Amz-Expires"] == "3600"
    assert requests.get(download, timeout=30).content == b"content"
    before = _storage_files(gateway)

    _xml_error(
        requests.get(_with_params(download, **{"X-Amz-Signature": "0" * 64}), timeout=30),
        403,
        "SignatureDoesNotMatch",
    )
    other_key = download.replace("/signed.bin?", "/other.bin?")
    _xml_error(requests.get(other_key, timeout=30), 403, "SignatureDoesNotMatch")
    _xml_error(requests.put(download, data=b"evil", timeout=30), 403, "SignatureDoesNotMatch")
    # The POST policy names its key: the same fields cannot write another object.
    elsewhere = {**fields, "key": fields["key"].replace("signed.bin", "other.bin")}
    refused = requests.post(upload, data=elsewhere, files={"file": b"evil"}, timeout=30)
    assert refused.status_code == 403, refused.text
    # Expired: signed as the gateway signs (same credentials), with a second to live.
    assert gateway.s3 is not None
    short = gateway.s3.client().generate_presigned_url(
        "get_object",
        Params={"Bucket": gateway.bucket, "Key": urlsplit(download).path.split("/", 2)[2]},
        ExpiresIn=1,
    )
    time.sleep(2)
    _xml_error(requests.get(short, timeout=30), 403, "AccessDenied")

    assert _storage_files(gateway) == before
    assert requests.get(download, timeout=30).content == b"content"
    http.delete(f"{gateway.api}/data-store/delete", data={"path_to_object": path})
    _xml_error(requests.get(download, timeout=30), 404, "NoSuchKey")


BAD_PATHS = [
    "../escape.txt",
    "a/../../escape.txt",
    "/absolute.txt",
    "a\\b.txt",
    "a\x00b",
    "a//b",
    "a/./b",
    "",
    "dir/",
]


@pytest.mark.parametrize(
    "path",
    BAD_PATHS,
    ids=[
        "dotdot",
        "nested-dotdot",
        "absolute",
        "backslash",
        "nul",
        "empty-segment",
        "dot",
        "empty",
        "folder",
    ],
)
def test_paths_that_escape_the_data_store_are_refused(
    http: requests.Session, gateway: Gateway, path: str
) -> None:
    before = _storage_files(gateway)
    api = f"{gateway.api}/data-store"
    answers = [
        http.get(f"{api}/upload", params={"path_to_object": path}),
        http.post(f"{api}/upload/multipart", json={"path_to_object": path}),
        http.post(f"{api}/information", json={"path_to_object": path}),
        http.post(f"{api}/download", data={"path_to_object": path}),
        http.delete(f"{api}/delete", data={"path_to_object": path}),
    ]
    for answer in answers:
        assert answer.status_code in (400, 422), (
            f"{answer.request.method} {answer.request.url}: {answer.text}"
        )
        assert set(answer.json()) == ERROR_KEYS
    if path not in ("", "dir/"):
        listed = http.get(f"{api}/list", params={"folder_path": path})
        assert listed.status_code == 400, listed.text
    assert _storage_files(gateway) == before


def test_data_store_routes_need_an_access_token(gateway: Gateway) -> None:
    api = f"{gateway.api}/data-store"
    assert requests.get(f"{api}/list", timeout=30).status_code == 401
    assert (
        requests.get(f"{api}/upload", params={"path_to_object": "x"}, timeout=30).status_code == 401
    )
    assert (
        requests.post(f"{api}/download", data={"path_to_object": "x"}, timeout=30).status_code
        == 401
    )


def _create_transform(sdk: Any, name: str, tmp_path: Path) -> None:
    code = write_folder(tmp_path / name, {"src/transform.py": TRANSFORM})
    sdk.create_pipeline(
        name,
        function_path="src/transform.py",
        function_name="transform",
        container_config={"local_folder": str(code)},
        inputs=[Input("document", T.FILE), Input("token", T.STRING)],
        outputs=[Output("result", T.FILE), Output("size", T.NUMBER)],
    )


def test_a_run_reads_a_variable_and_the_data_store_and_writes_to_it(
    sdk: Any, pipeline_name: NameFactory, folder: str, tmp_path: Path
) -> None:
    import hashlib

    variable = f"DS_TOKEN_{secrets.token_hex(4).upper()}"
    sdk.create_or_update_environment_variable(variable, "the token")
    try:
        name = pipeline_name("transform")
        _create_transform(sdk, name, tmp_path)
        sdk.upload_data_store_object(io.BytesIO(b"hello data"), f"{folder}/in/doc.bin")
        destination = f"{folder}/out/{{date}}/{{execution_id}}_{{date_time}}.bin"

        result = sdk.run_pipeline(
            name,
            inputs_mapping=[
                InputSource(pipeline_input_name="document", datastore_path=f"{folder}/in/doc.bin"),
                InputSource(pipeline_input_name="token", environment_variable_name=variable),
            ],
            outputs_mapping=[
                OutputDestination(pipeline_output_name="result", datastore_path=destination)
            ],
        )
    finally:
        sdk.delete_environment_variable(variable)

    execution_id = result["execution_id"]
    assert result["outputs"]["size"] == len(b"hello data")
    [written] = sdk.list_data_store_objects(f"{folder}/out")
    match = re.fullmatch(
        rf"{folder}/out/(\d{{8}})/{re.escape(execution_id)}_(\d{{8}})_(\d{{6}})\.bin",
        written["path"],
    )
    assert match, written["path"]
    assert match.group(1) == match.group(2)
    buffer = io.BytesIO()
    sdk.download_data_store_object(written["path"], buffer)
    expected = b"atad olleh" + hashlib.sha256(b"the token").hexdigest().encode()
    assert buffer.getvalue() == expected

    execution = sdk.get_pipeline_execution(execution_id)
    inputs = {i["pipeline_input_name"]: i for i in execution["inputs"]}
    assert inputs["document"]["source"] == "datastore"
    assert inputs["document"]["datastore_path"] == f"{folder}/in/doc.bin"
    assert inputs["token"]["source"] == "environment_variable"
    outputs = {o["pipeline_output_name"]: o for o in execution["outputs"]}
    assert outputs["result"]["destination"] == "datastore"
    assert outputs["result"]["datastore_path"] == written["path"]


def test_a_missing_datastore_input_fails_the_execution_naming_it(
    sdk: Any, pipeline_name: NameFactory, folder: str, tmp_path: Path
) -> None:
    name = pipeline_name("transform")
    _create_transform(sdk, name, tmp_path)

    with pytest.raises(SdkException) as raised:
        sdk.run_pipeline(
            name,
            inputs={"token": "t"},
            inputs_mapping=[
                InputSource(pipeline_input_name="document", datastore_path=f"{folder}/nothing.bin")
            ],
        )

    assert raised.value.name == "ExecutionFailed"
    assert "document" in raised.value.message


@pytest.mark.parametrize("path", ["../escape", "/abs", "a\\b", "a/../../b"])
def test_run_mappings_with_escaping_datastore_paths_are_refused(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path, path: str
) -> None:
    name = pipeline_name("transform")
    _create_transform(sdk, name, tmp_path)

    for inputs_mapping, outputs_mapping in [
        ([InputSource(pipeline_input_name="document", datastore_path=path)], None),
        (None, [OutputDestination(pipeline_output_name="result", datastore_path=path)]),
    ]:
        with pytest.raises(SdkException) as raised:
            sdk.run_pipeline(
                name,
                inputs={"token": "t", **({} if inputs_mapping else {"document": b"x"})},
                inputs_mapping=inputs_mapping,
                outputs_mapping=outputs_mapping,
            )
        assert raised.value.status_code == 400
        assert "datastore path" in raised.value.message
        assert raised.value.additional_data["field"].endswith("datastore_path")
    assert sdk.list_pipeline_executions(name) == []


def test_a_pipeline_code_archive_downloads_from_the_storage(
    sdk: Any, gateway: Gateway, http: requests.Session, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    import tarfile

    name = pipeline_name("transform")
    _create_transform(sdk, name, tmp_path)
    answer = http.get(f"{gateway.api}/pipelines/{name}/download")
    assert answer.status_code == 200, answer.text
    assert gateway.is_storage_url(answer.json()["signed_url"])

    target = tmp_path / "downloaded"
    target.mkdir()
    sdk.download_pipeline_local_folder(name, str(target))

    with tarfile.open(target / f"{name}.tgz") as archive:
        names = archive.getnames()
        member = archive.extractfile(next(n for n in names if n.endswith("transform.py")))
        assert member is not None
        assert member.read().decode().strip() == TRANSFORM.strip()
    missing = http.get(f"{gateway.api}/pipelines/{name}-missing/download")
    assert missing.status_code == 404
    assert set(missing.json()) == ERROR_KEYS
