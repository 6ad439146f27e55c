"""The Argo engine's pure parts: the settings it writes into specs, log times, the Role."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.engines.argo.logs import _split_time
from gateway.engines.argo.objects import STOP_MESSAGE_ANNOTATION, WORKFLOWS, readable
from gateway.engines.argo.permissions import ROLE_RULES, Permission, permissions, role
from gateway.engines.argo.settings import ArgoEngineSettings
from gateway.engines.naming import node_id, node_id_of_pod, pod_name


def test_installation_settings_fill_only_what_a_spec_leaves_out() -> None:
    settings = ArgoEngineSettings(
        namespace="team",
        ttl_s=60,
        pod_gc="OnPodCompletion",
        service_account="steps",
        artifact_repository="tender",
    )

    amended = settings.amend_spec({"entrypoint": "main", "ttlStrategy": {"secondsAfterSuccess": 5}})

    assert amended == {
        "entrypoint": "main",
        "ttlStrategy": {"secondsAfterSuccess": 5},
        "archiveLogs": True,
        "podGC": {"strategy": "OnPodCompletion"},
        "serviceAccountName": "steps",
        "artifactRepositoryRef": {"configMap": "artifact-repositories", "key": "tender"},
    }


def test_without_ttl_or_pod_gc_argo_keeps_workflows_and_pods() -> None:
    amended = ArgoEngineSettings(namespace="team", ttl_s=None, pod_gc=None).amend_spec({})

    assert amended == {"archiveLogs": True}


def test_the_ui_link_names_namespace_and_workflow() -> None:
    settings = ArgoEngineSettings(namespace="team", ui_url="https://argo.example/")

    assert settings.ui_link("hello-x1") == "https://argo.example/workflows/team/hello-x1"
    assert ArgoEngineSettings(namespace="team").ui_link("hello-x1") is None


def test_log_lines_keep_the_kubelets_nanosecond_timestamps() -> None:
    default = datetime(2020, 1, 1, tzinfo=UTC)

    when, text = _split_time("2026-05-04T10:11:12.123456789Z hello world", default)
    assert (when, text) == (datetime(2026, 5, 4, 10, 11, 12, 123456, tzinfo=UTC), "hello world")

    when, text = _split_time("2026-05-04T10:11:12+02:00 x", default)
    assert when == datetime(2026, 5, 4, 8, 11, 12, tzinfo=UTC)
    assert text == "x"


def test_a_line_without_a_timestamp_takes_the_default_time() -> None:
    default = datetime(2020, 1, 1, tzinfo=UTC)

    assert _split_time("2026 was a year", default) == (default, "2026 was a year")
    assert _split_time("", default) == (default, "")


def test_a_pods_node_is_found_from_its_name_alone() -> None:
    workflow, node = "hello-x1", "hello-x1.greet"

    assert node_id_of_pod(workflow, pod_name(workflow, "step-greet", node)) == node_id(
        workflow, node
    )


def test_every_verb_of_the_role_is_one_permission_to_check() -> None:
    checked = permissions()

    assert Permission("watch", "argoproj.io", "workflows") in checked
    assert Permission("get", "", "pods", "log") in checked
    assert Permission("update", "", "secrets", name="tender-environment") in checked
    assert str(Permission("get", "", "pods", "log")) == "get pods/log"
    assert str(Permission("patch", "argoproj.io", "cronworkflows")) == (
        "patch cronworkflows.argoproj.io"
    )
    expected = sum(
        len(r["verbs"]) * len(r["resources"]) * len(r.get("resourceNames") or [""])
        for r in ROLE_RULES
    )
    assert len(checked) == expected
    assert role("tender", "team")["rules"] == ROLE_RULES


def test_the_nodes_a_stop_ended_read_with_the_stops_message() -> None:
    nodes = {
        "w-1": {
            "type": "Pod",
            "phase": "Failed",
            "message": "workflow shutdown with strategy:  Stop",
        },
        "w-2": {"type": "Pod", "phase": "Failed", "message": "main: Error (exit code 1)"},
    }
    workflow = {
        "metadata": {"name": "w", "annotations": {STOP_MESSAGE_ANNOTATION: "no such variable"}},
        "status": {"phase": "Failed", "nodes": nodes},
    }

    read = readable(workflow, WORKFLOWS)["status"]["nodes"]

    assert read["w-1"]["message"] == "no such variable"
    assert read["w-2"]["message"] == "main: Error (exit code 1)"  # ended by itself
    assert readable({**workflow, "metadata": {"name": "w"}}, WORKFLOWS)["status"]["nodes"] == nodes


def test_a_node_whose_kill_was_seen_before_the_stop_reads_as_stopped() -> None:
    """On spec.shutdown the pod may report its SIGTERM before the controller marks its node."""
    nodes = {
        "w-1": {"type": "Pod", "phase": "Failed", "message": "main: Error (exit code 143)"},
        "w-2": {"type": "Pod", "phase": "Failed", "message": "main: Error (exit code 1)"},
    }
    stopped = {
        "metadata": {"name": "w"},
        "spec": {"shutdown": "Stop"},
        "status": {"phase": "Failed", "nodes": nodes},
    }

    read = readable(stopped, WORKFLOWS)["status"]["nodes"]

    assert read["w-1"]["message"] == "workflow shutdown with strategy:  Stop"
    assert read["w-2"]["message"] == "main: Error (exit code 1)"
    not_stopped = readable({**stopped, "spec": {}}, WORKFLOWS)["status"]["nodes"]
    assert not_stopped["w-1"]["message"] == "main: Error (exit code 143)"
