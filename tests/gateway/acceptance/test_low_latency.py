"""Low-latency deployments through the unmodified ``craft-ai-sdk==0.74.7`` client: warm workers
serving endpoint calls, each call an execution."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from craft_ai_sdk import INPUT_OUTPUT_TYPES
from craft_ai_sdk.exceptions import SdkException
from craft_ai_sdk.io import Input, InputSource, Output, OutputDestination

from loopback import free_port, wait_until_serving
from tests.gateway.acceptance.conftest import TENDER, Gateway, _server_env
from tests.gateway.acceptance.folders import write_folder

T = INPUT_OUTPUT_TYPES
NameFactory = Callable[[str], str]

# One module, one function per pipeline. `hold` waits until the test creates `release` and
# first says which process it runs in, so that a test can kill that process mid-call.
SERVED = """
import os
import tempfile
import time

print(f"worker {os.getpid()} imported")


def add(a, b=1):
    print(f"adding {a} and {b}")
    return {"total": a + b, "pid": os.getpid()}


def hold(release, number):
    print(f"holding in {os.getpid()}")
    waited = 0.0
    while not os.path.exists(release) and waited < 120:
        time.sleep(0.01)
        waited += 0.01
    return {"doubled": number * 2, "pid": os.getpid()}


def fail(reason):
    print("about to fail")
    raise RuntimeError(reason)


def describe(document, label, key):
    with open(document["path"], "rb") as source:
        content = source.read()
    # Calls share the worker's working folder: each writes its own file.
    handle, path = tempfile.mkstemp()
    with os.fdopen(handle, "wb") as out:
        out.write(content[::-1])
    return {
        "size": len(content),
        "reversed": {"path": path},
        "archived": {"path": path},
        "seen": {"label": label, "key": key},
    }


def grab(megabytes):
    block = bytearray(megabytes * 1024 * 1024)
    return {"size": len(block)}
"""
BROKEN = """
import not_a_module_anywhere


def nothing():
    return {}
"""
_WAIT_S = 60.0


@pytest.fixture
def code(tmp_path: Path) -> Path:
    return write_folder(tmp_path / "served", {"src/served.py": SERVED})


def _pipeline(
    sdk: Any, name: str, code: Path, function: str, inputs: list[Any], *, outputs: list[Any]
) -> None:
    sdk.create_pipeline(
        name,
        function_path="src/served.py",
        function_name=function,
        container_config={"local_folder": str(code)},
        inputs=inputs,
        outputs=outputs,
    )


def _adder(sdk: Any, name: str, code: Path) -> None:
    inputs = [Input("a", T.NUMBER), Input("b", T.NUMBER, is_required=False)]
    outputs = [Output("total", T.NUMBER), Output("pid", T.NUMBER)]
    _pipeline(sdk, name, code, "add", inputs, outputs=outputs)


def _holder(sdk: Any, name: str, code: Path) -> None:
    inputs = [Input("release", T.STRING), Input("number", T.NUMBER)]
    outputs = [Output("doubled", T.NUMBER), Output("pid", T.NUMBER)]
    _pipeline(sdk, name, code, "hold", inputs, outputs=outputs)


def _eventually(what: str, probe: Callable[[], Any]) -> Any:
    """``probe()`` once it is truthy; fails the test (never hangs it) after _WAIT_S."""
    deadline = time.monotonic() + _WAIT_S
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    pytest.fail(f"{what} did not happen within {_WAIT_S} s")


def _held_pid(sdk: Any, deployment: str, known: set[int]) -> int:
    """The pid a new `hold` call announced in the deployment's logs."""

    def probe() -> int | None:
        for line in sdk.get_deployment_logs(deployment):
            match = re.fullmatch(r"holding in (\d+)", line["message"])
            if match and int(match.group(1)) not in known:
                return int(match.group(1))
        return None

    pid: int = _eventually("the call starting", probe)
    return pid


def _is_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_low_latency_endpoint_serves_calls_from_a_warm_worker(
    sdk: Any, pipeline_name: NameFactory, code: Path
) -> None:
    name = pipeline_name("ll-add")
    _adder(sdk, name, code)
    before = datetime.now(UTC)

    created = sdk.create_deployment(name, name, "endpoint", mode="low_latency")

    assert created["status"] == "up"
    assert created["mode"] == "low_latency"
    assert created["max_parallel_executions_per_pod"] == 6
    [pod] = created["pods"]
    assert pod["status"] == "Running"
    token = created["endpoint_token"]
    with_sdk_token = sdk.trigger_endpoint(name, inputs={"a": 2, "b": 3})
    with_endpoint_token = sdk.trigger_endpoint(name, endpoint_token=token, inputs={"a": 2})
    assert with_sdk_token["outputs"]["total"] == 5
    assert with_endpoint_token["outputs"]["total"] == 3
    # One warm process served both calls.
    assert with_sdk_token["outputs"]["pid"] == with_endpoint_token["outputs"]["pid"]

    executions = sdk.list_pipeline_executions(name)
    assert {e["execution_id"] for e in executions} == {
        with_sdk_token["execution_id"],
        with_endpoint_token["execution_id"],
    }
    assert {(e["deployment_name"], e["status"]) for e in executions} == {(name, "Succeeded")}
    detail = sdk.get_pipeline_execution(with_endpoint_token["execution_id"])
    sources = {i["pipeline_input_name"]: (i["source"], i["value"]) for i in detail["inputs"]}
    assert sources == {"a": ("endpoint", 2), "b": ("endpoint", None)}
    assert {o["pipeline_output_name"]: o["value"] for o in detail["outputs"]} == {
        "total": 3,
        "pid": with_sdk_token["outputs"]["pid"],
    }
    assert [step["status"] for step in detail["steps"]] == ["Succeeded"]
    logs = sdk.get_pipeline_execution_logs(with_endpoint_token["execution_id"])
    assert [line["message"] for line in logs] == ["adding 2 and 1"]
    assert sdk.get_deployment(name)["last_execution_id"] == with_endpoint_token["execution_id"]

    pod_logs = sdk.get_deployment_logs(name)
    pid = with_sdk_token["outputs"]["pid"]
    assert [line["message"] for line in pod_logs] == [
        f"worker {pid} imported",
        "adding 2 and 3",
        "adding 2 and 1",
    ]
    assert {(line["pod_id"], line["type"], line["stream"]) for line in pod_logs} == {
        (pod["pod_id"], "deployment", "stdout")
    }
    assert [line["message"] for line in sdk.get_deployment_logs(name, limit=1)] == [
        "adding 2 and 1"
    ]
    first = datetime.fromisoformat(pod_logs[1]["timestamp"])
    assert [line["message"] for line in sdk.get_deployment_logs(name, from_datetime=first)] == [
        "adding 2 and 3",
        "adding 2 and 1",
    ]
    assert sdk.get_deployment_logs(name, to_datetime=before) == []


def test_a_call_that_raises_fails_that_execution_only(
    sdk: Any, pipeline_name: NameFactory, code: Path
) -> None:
    name = pipeline_name("ll-fail")
    _pipeline(sdk, name, code, "fail", [Input("reason", T.STRING)], outputs=[])
    token = sdk.create_deployment(name, name, "endpoint", mode="low_latency")["endpoint_token"]

    with pytest.raises(SdkException) as failed:
        sdk.trigger_endpoint(name, endpoint_token=token, inputs={"reason": "bad input"})
    with pytest.raises(SdkException) as again:
        sdk.trigger_endpoint(name, inputs={"reason": "worse input"})

    assert "function 'fail' raised RuntimeError" in failed.value.message
    assert "function 'fail' raised RuntimeError" in again.value.message
    [second, first] = sdk.list_pipeline_executions(name)
    assert (first["status"], second["status"]) == ("Failed", "Failed")
    logs = [line["message"] for line in sdk.get_pipeline_execution_logs(first["execution_id"])]
    assert logs[0] == "about to fail"
    assert "RuntimeError: bad input" in logs
    assert logs[-1] == "tender: function 'fail' raised RuntimeError"
    # The worker lives on: both calls ran in the pod the deployment started with.
    assert [p["status"] for p in sdk.get_deployment(name)["pods"]] == ["Running"]
    imported = [m for m in _messages(sdk, name) if m.endswith(" imported")]
    assert len(imported) == 1


def _messages(sdk: Any, deployment: str) -> list[str]:
    return [line["message"] for line in sdk.get_deployment_logs(deployment)]


def test_a_worker_killed_mid_call_fails_its_call_and_is_started_again(
    sdk: Any, pipeline_name: NameFactory, code: Path, tmp_path: Path
) -> None:
    name = pipeline_name("ll-kill")
    _holder(sdk, name, code)
    sdk.create_deployment(name, name, "endpoint", mode="low_latency")
    release = tmp_path / "release"

    started = sdk.trigger_endpoint(
        name, inputs={"release": str(release), "number": 1}, wait_for_completion=False
    )
    pid = _held_pid(sdk, name, set())
    os.kill(pid, signal.SIGKILL)

    with pytest.raises(SdkException) as lost:
        sdk.retrieve_endpoint_results(name, started["execution_id"])
    assert "ended while it ran the call (killed by SIGKILL, exit code 137)" in lost.value.message
    assert sdk.get_pipeline_execution(started["execution_id"])["status"] == "Error"
    _eventually(
        "the pod running again",
        lambda: [p["status"] for p in sdk.get_deployment(name)["pods"]] == ["Running"],
    )
    release.touch()
    after = sdk.trigger_endpoint(name, inputs={"release": str(release), "number": 4})
    assert after["outputs"]["doubled"] == 8
    assert after["outputs"]["pid"] != pid
    assert any("starting it again" in message for message in _messages(sdk, name))


def test_fifty_concurrent_calls_each_become_an_execution(
    sdk: Any, gateway: Gateway, pipeline_name: NameFactory, code: Path
) -> None:
    name = pipeline_name("ll-many")
    _adder(sdk, name, code)
    token = sdk.create_deployment(name, name, "endpoint", mode="low_latency")["endpoint_token"]

    def call(number: int) -> tuple[int, dict[str, Any]]:
        with requests.Session() as session:
            answer = session.post(
                f"{gateway.base_url}/endpoints/{name}",
                json={"a": number, "b": 1000},
                headers={"Authorization": f"EndpointToken {token}"},
                timeout=120,
            )
        assert answer.status_code == 200, answer.text
        return number, answer.json()

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(call, range(50)))

    assert {n: a["outputs"]["total"]["value"] for n, a in answers} == {
        n: n + 1000 for n in range(50)
    }
    executions = sdk.list_pipeline_executions(name)
    assert {e["execution_id"] for e in executions} == {a["execution_id"] for _, a in answers}
    assert {(e["status"], e["deployment_name"]) for e in executions} == {("Succeeded", name)}


def test_files_mappings_variables_and_updates(
    sdk: Any, pipeline_name: NameFactory, code: Path
) -> None:
    name = pipeline_name("ll-files")
    variable = f"LL_KEY_{name.replace('-', '_').upper()}"
    sdk.create_or_update_environment_variable(variable, "first key")
    inputs = [Input("document", T.FILE), Input("label", T.STRING), Input("key", T.STRING)]
    outputs = [
        Output("size", T.NUMBER),
        Output("reversed", T.FILE),
        Output("archived", T.FILE),
        Output("seen", T.JSON),
    ]
    _pipeline(sdk, name, code, "describe", inputs, outputs=outputs)
    try:
        token = sdk.create_deployment(
            name,
            name,
            "endpoint",
            mode="low_latency",
            inputs_mapping=[
                InputSource(pipeline_input_name="label", constant_value="first label"),
                InputSource(pipeline_input_name="key", environment_variable_name=variable),
            ],
            outputs_mapping=[
                OutputDestination(
                    pipeline_output_name="archived", datastore_path=f"{name}/{{execution_id}}.bin"
                )
            ],
        )["endpoint_token"]

        first = sdk.trigger_endpoint(name, endpoint_token=token, inputs={"document": b"abc"})
        sdk.update_deployment(
            name, inputs_mapping=[InputSource(pipeline_input_name="label", constant_value="new")]
        )
        sdk.create_or_update_environment_variable(variable, "second key")
        second = sdk.trigger_endpoint(name, inputs={"document": b"wxyz"})
    finally:
        sdk.delete_environment_variable(variable)

    assert first["outputs"] == {
        "size": 3,
        "reversed": b"cba",
        "seen": {"label": "first label", "key": "first key"},
    }
    assert second["outputs"] == {
        "size": 4,
        "reversed": b"zyxw",
        "archived": None,  # with the SDK's token every output is listed, as for a run
        "seen": {"label": "new", "key": "second key"},
    }
    stored = sdk.get_data_store_object_information(f"{name}/{first['execution_id']}.bin")
    assert stored["path"] == f"{name}/{first['execution_id']}.bin"
    detail = sdk.get_pipeline_execution(first["execution_id"])
    sources = {i["pipeline_input_name"]: i["source"] for i in detail["inputs"]}
    assert sources == {"document": "endpoint", "label": "constant", "key": "environment_variable"}
    assert sdk.get_pipeline_execution_input(first["execution_id"], "document")["value"] == b"abc"


def test_disabling_stops_the_workers_and_enabling_starts_them(
    sdk: Any, pipeline_name: NameFactory, code: Path
) -> None:
    name = pipeline_name("ll-switch")
    _adder(sdk, name, code)
    sdk.create_deployment(name, name, "endpoint", mode="low_latency")
    pid = sdk.trigger_endpoint(name, inputs={"a": 1})["outputs"]["pid"]

    disabled = sdk.update_deployment(name, is_enabled=False)
    assert (disabled["status"], disabled["pods"]) == ("disabled", [])
    assert not _is_alive(pid)
    with pytest.raises(SdkException) as refused:
        sdk.trigger_endpoint(name, inputs={"a": 1})
    assert refused.value.status_code == 409

    enabled = sdk.update_deployment(name, is_enabled=True)
    assert enabled["status"] == "up"
    assert sdk.trigger_endpoint(name, inputs={"a": 1})["outputs"]["total"] == 2


def test_deleting_stops_the_workers_and_a_pipeline_keeps_its_deployment_unless_forced(
    sdk: Any, pipeline_name: NameFactory, code: Path
) -> None:
    name = pipeline_name("ll-delete")
    _adder(sdk, name, code)
    sdk.create_deployment(name, f"{name}-a", "endpoint", mode="low_latency")
    sdk.create_deployment(name, f"{name}-b", "endpoint", mode="low_latency")
    pid_a = sdk.trigger_endpoint(f"{name}-a", inputs={"a": 1})["outputs"]["pid"]
    pid_b = sdk.trigger_endpoint(f"{name}-b", inputs={"a": 1})["outputs"]["pid"]
    assert pid_a != pid_b

    sdk.delete_deployment(f"{name}-a")
    assert not _is_alive(pid_a)
    assert _is_alive(pid_b)
    with pytest.raises(SdkException) as refused:
        sdk.delete_pipeline(name)
    assert refused.value.status_code == 409
    assert _is_alive(pid_b)
    sdk.delete_pipeline(name, force_deployments_deletion=True)
    assert not _is_alive(pid_b)


def test_calls_one_at_a_time_without_parallel_executions(
    sdk: Any, pipeline_name: NameFactory, code: Path, tmp_path: Path
) -> None:
    name = pipeline_name("ll-serial")
    _holder(sdk, name, code)
    sdk.create_deployment(
        name, name, "endpoint", mode="low_latency", enable_parallel_executions=False
    )
    release = tmp_path / "release"
    inputs = {"release": str(release), "number": 2}
    held = sdk.trigger_endpoint(name, inputs=inputs, wait_for_completion=False)
    _held_pid(sdk, name, set())

    with pytest.raises(SdkException) as refused:
        sdk.trigger_endpoint(name, inputs=inputs, wait_for_completion=False)
    release.touch()

    assert refused.value.status_code == 409
    assert sdk.retrieve_endpoint_results(name, held["execution_id"])["outputs"]["doubled"] == 4


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA is Linux's")
def test_ram_request_limits_each_worker(sdk: Any, pipeline_name: NameFactory, code: Path) -> None:
    name = pipeline_name("ll-ram")
    inputs, outputs = [Input("megabytes", T.NUMBER)], [Output("size", T.NUMBER)]
    _pipeline(sdk, name, code, "grab", inputs, outputs=outputs)
    created = sdk.create_deployment(
        name, name, "endpoint", mode="low_latency", ram_request="256MiB"
    )
    assert created["ram_request"] == "256MiB"

    small = sdk.trigger_endpoint(name, inputs={"megabytes": 16})
    with pytest.raises(SdkException) as too_much:
        sdk.trigger_endpoint(name, inputs={"megabytes": 512})

    assert small["outputs"]["size"] == 16 * 1024 * 1024
    assert "raised MemoryError" in too_much.value.message


def test_a_worker_that_cannot_import_its_function_fails_the_creation(
    sdk: Any, pipeline_name: NameFactory, tmp_path: Path
) -> None:
    name = pipeline_name("ll-broken")
    folder = write_folder(tmp_path / "broken", {"src/broken.py": BROKEN})
    sdk.create_pipeline(
        name,
        function_path="src/broken.py",
        function_name="nothing",
        container_config={"local_folder": str(folder)},
    )

    with pytest.raises(SdkException) as failed:
        sdk.create_deployment(name, name, "endpoint", mode="low_latency")

    assert failed.value.name == "CreationFailedException"
    messages = _messages(sdk, name)
    assert "ModuleNotFoundError: No module named 'not_a_module_anywhere'" in messages
    assert messages[-1] == (
        "tender: the worker could not start: importing src/broken.py raised ModuleNotFoundError"
    )


@contextlib.contextmanager
def _serve(data_dir: Path, port: int, **settings: str) -> Iterator[str]:
    """A ``tender serve`` of its own, on SQLite in ``data_dir``, stopped as an operator would;
    ``settings`` are extra ``TENDER_*`` variables."""
    url = f"http://127.0.0.1:{port}"
    stderr = data_dir.parent / f"serve-{port}.stderr"
    with stderr.open("ab") as err_file:
        process = subprocess.Popen(
            [*TENDER, "serve", "--port", str(port), "--data-dir", str(data_dir)],
            env={**_server_env(None), **settings},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err_file,
        )
    try:
        wait_until_serving(process, url, stderr)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    assert "Traceback" not in stderr.read_text(errors="replace")


def _sdk_token(data_dir: Path) -> str:
    """An SDK token for the gateway of ``data_dir``, made as a user would (``tender token``)."""
    created = subprocess.run(
        [*TENDER, "token", "create", "--data-dir", str(data_dir)],
        env=_server_env(None),
        capture_output=True,
        text=True,
        check=True,
    )
    return created.stdout.strip()


def test_a_restarted_gateway_ends_the_calls_it_held_and_starts_the_workers_again(
    tmp_path: Path, code: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from craft_ai_sdk import CraftAiSdk

    monkeypatch.setenv("SDK_VERBOSE_LOG", "false")
    data_dir = tmp_path / "data"
    token, port = _sdk_token(data_dir), free_port()
    release = tmp_path / "release"
    with _serve(data_dir, port) as url:
        sdk = CraftAiSdk(sdk_token=token, environment_url=url, control_url=url)
        _holder(sdk, "held", code)
        sdk.create_deployment("held", "held", "endpoint", mode="low_latency")
        held = sdk.trigger_endpoint(
            "held", inputs={"release": str(release), "number": 1}, wait_for_completion=False
        )
        pid = _held_pid(sdk, "held", set())
    assert not _is_alive(pid)

    with _serve(data_dir, port) as url:
        sdk = CraftAiSdk(sdk_token=token, environment_url=url, control_url=url)
        again = sdk.get_deployment("held", wait_for_completion=True)
        assert (again["status"], [p["status"] for p in again["pods"]]) == ("up", ["Running"])
        with pytest.raises(SdkException) as lost:
            sdk.retrieve_endpoint_results("held", held["execution_id"])
        assert "the gateway restarted while the call ran" in lost.value.message
        release.touch()
        after = sdk.trigger_endpoint("held", inputs={"release": str(release), "number": 5})
        assert after["outputs"]["doubled"] == 10


def test_calls_beyond_the_bound_in_progress_are_refused_at_once_with_429(
    tmp_path: Path, code: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from craft_ai_sdk import CraftAiSdk

    monkeypatch.setenv("SDK_VERBOSE_LOG", "false")
    data_dir = tmp_path / "data"
    token, release = _sdk_token(data_dir), tmp_path / "release"
    with _serve(data_dir, free_port(), TENDER_LOW_LATENCY_MAX_CALLS="2") as url:
        sdk = CraftAiSdk(sdk_token=token, environment_url=url, control_url=url)
        _holder(sdk, "bounded", code)
        endpoint = sdk.create_deployment("bounded", "bounded", "endpoint", mode="low_latency")
        inputs = {"release": str(release), "number": 3}
        held = [
            sdk.trigger_endpoint("bounded", inputs=inputs, wait_for_completion=False)
            for _ in range(2)
        ]

        refused = requests.post(
            f"{url}/endpoints/bounded",
            json=inputs,
            headers={"Authorization": f"EndpointToken {endpoint['endpoint_token']}"},
            timeout=30,
        )
        assert refused.status_code == 429, refused.text
        assert refused.headers["Retry-After"] == "1"
        assert refused.json()["name"] == "TooManyCalls"
        assert refused.json()["additional_data"] == {"deployment": "bounded", "limit": 2}
        assert len(sdk.list_pipeline_executions("bounded")) == 2  # nothing recorded for it

        release.touch()
        for call in held:
            done = sdk.retrieve_endpoint_results("bounded", call["execution_id"])
            assert done["outputs"]["doubled"] == 6
        again = sdk.trigger_endpoint("bounded", inputs=inputs)
        assert again["outputs"]["doubled"] == 6


def test_a_call_past_its_execution_timeout_fails(
    sdk: Any, pipeline_name: NameFactory, code: Path, tmp_path: Path
) -> None:
    name = pipeline_name("ll-slow")
    _holder(sdk, name, code)
    sdk.create_deployment(name, name, "endpoint", mode="low_latency", execution_timeout_s=1)
    release = tmp_path / "release"

    with pytest.raises(SdkException) as late:
        sdk.trigger_endpoint(name, inputs={"release": str(release), "number": 1})
    release.touch()

    assert "the call did not end within execution_timeout_s (1 s)" in late.value.message
    [execution] = sdk.list_pipeline_executions(name)
    assert execution["status"] == "Failed"
    assert (
        sdk.trigger_endpoint(name, inputs={"release": str(release), "number": 2})["outputs"][
            "doubled"
        ]
        == 4
    )
