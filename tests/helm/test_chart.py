"""The chart as helm sees it, without a cluster: `helm lint --strict` and `helm template` over the
values matrix (helm/tender/ci), what values.schema.json refuses, and the knowledge the chart
shares with the gateway (its settings, the engine's Role, the version)."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.engines.argo.permissions import ROLE_RULES
from gateway.settings import Settings
from tests.helm.chart import CHART, REPO, Helm, values_files

MATRIX = [pytest.param(path, id=path.stem) for path in values_files()]
DEFAULTS = CHART / "ci" / "default-values.yaml"

# Settings the chart sets itself rather than through `config` (values.yaml says which).
CHART_SET = {
    "data_dir": "a volume, /var/lib/tender",
    "host": "0.0.0.0: the pod's own address",
    "port": "the container port, 8080",
    "engine": "argo: the chart installs tender next to Argo",
    "storage": "s3: the Argo engine needs the artifact repository's bucket",
    "database_url": "from database.postgresql's Secret, or SQLite in the data dir",
    "s3_access_key_id": "from s3Credentials' Secret",
    "s3_secret_access_key": "from s3Credentials' Secret",
    "argo_step_service_account": "the chart's stepServiceAccount",
}
# Settings a cluster install has no use for.
LEFT_OUT = {
    "concurrency": "the embedded engine's: steps run on Argo",
    "allow_local_repositories": "clones from the gateway's own filesystem: nothing there in a pod",
    "low_latency_pods": "low-latency deployments are refused on Argo",
    "low_latency_start_timeout_s": "low-latency deployments are refused on Argo",
    "low_latency_max_calls": "low-latency deployments are refused on Argo",
    "resource_sample_s": "resource metrics are sampled on the embedded engine only",
    "resource_retention_days": "resource metrics are sampled on the embedded engine only",
    "pipeline_templates_dir": "the image holds no pipeline files to offer as templates",
}


def _objects(helm: Helm, *values: Path, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return helm.template(*values, sets=sets)


def _one(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} rendered"
    return found[0]


def _gateway(objects: list[dict[str, Any]]) -> dict[str, Any]:
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    return {c["name"]: c for c in pod["containers"] + pod.get("initContainers", [])}


def _settings_env(objects: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, str]:
    """The TENDER_* environment the container gets, secrets given placeholder values."""
    env: dict[str, str] = {}
    configmaps = {o["metadata"]["name"]: o["data"] for o in objects if o["kind"] == "ConfigMap"}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(configmaps.get(source["configMapRef"]["name"], {}))
    for variable in container.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        elif variable["name"] == "TENDER_DATABASE_URL":
            env[variable["name"]] = "postgresql://tender:secret@db:5432/tender"
        else:
            env[variable["name"]] = "placeholder"
    return env


@pytest.mark.parametrize("values", MATRIX)
def test_lint_strict_passes(helm: Helm, values: Path) -> None:
    done = helm.run("lint", "--strict", CHART, "--values", values)
    assert "0 chart(s) failed" in done.stdout


@pytest.mark.parametrize("values", MATRIX)
def test_every_object_carries_the_standard_labels(helm: Helm, values: Path) -> None:
    for thing in _objects(helm, values):
        labels = thing["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "tender", thing["metadata"]["name"]
        assert labels["app.kubernetes.io/instance"] == "tender"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"] == _chart()["appVersion"]
        assert labels["helm.sh/chart"] == f"tender-{_chart()['version']}"


@pytest.mark.parametrize("values", MATRIX)
def test_rendered_settings_are_settings_the_gateway_accepts(
    helm: Helm, values: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    objects = _objects(helm, values)
    containers = _gateway(objects)
    env = _settings_env(objects, containers["gateway"])
    # The migrations run on exactly the gateway's settings.
    assert _settings_env(objects, containers["migrate"]) == env
    for name in [n for n in os.environ if n.startswith("TENDER_")]:
        monkeypatch.delenv(name)
    tender = {k: v for k, v in env.items() if k.startswith("TENDER_")}
    fields = {f"TENDER_{name.upper()}" for name in Settings.model_fields}
    assert set(tender) <= fields, f"not settings: {set(tender) - fields}"
    for name, value in tender.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.engine == "argo"
    assert settings.storage == "s3"
    assert settings.s3_bucket == "argo-artifacts"


def test_values_set_in_the_matrix_reach_the_settings(helm: Helm) -> None:
    """Every `config` key of ci/postgresql-values.yaml, as TENDER_*, with numbers kept whole."""
    values = CHART / "ci" / "postgresql-values.yaml"
    config = yaml.safe_load(values.read_text())["config"]
    data = _one(_objects(helm, values), "ConfigMap")["data"]
    for key, value in config.items():
        name = "TENDER_" + re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).upper()
        assert data[name] == str(value), name
    assert data["TENDER_MAX_CODE_BYTES"] == "104857600"  # not 1.048576e+08


def test_every_setting_is_a_value_set_by_the_chart_or_left_out_for_a_reason() -> None:
    schema = json_schema()
    config = {
        re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()
        for key in schema["properties"]["config"]["properties"]
    }
    fields = set(Settings.model_fields)
    assert config <= fields, f"config keys that are no setting: {config - fields}"
    unaccounted = fields - config - set(CHART_SET) - set(LEFT_OUT)
    assert not unaccounted, f"settings the chart says nothing about: {unaccounted}"
    assert not (config & set(CHART_SET)), "a setting is both a value and set by the chart"


def test_values_yaml_lists_every_config_key_with_the_gateways_default() -> None:
    """values.yaml documents each key; a trailing comment on a null one is the gateway's
    default, which must be the default gateway/settings.py really has."""
    schema_keys = set(json_schema()["properties"]["config"]["properties"])
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    assert set(values["config"]) == schema_keys
    block = text.split("\nconfig:\n", 1)[1].split("\n\n# ", 1)[0]
    commented = re.findall(r"^  (\w+): null # (.+)$", block, re.MULTILINE)
    assert len(commented) >= 10
    for key, default in commented:
        field = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", key).lower()
        assert yaml.safe_load(default) == Settings.model_fields[field].default, key


def test_the_gateways_role_is_the_engines_own() -> None:
    rules = CHART / "files" / "gateway-role-rules.yaml"
    assert rules.read_text() == yaml.safe_dump(ROLE_RULES, sort_keys=False), (
        "regenerate: tender argo role --rules > " + str(rules.relative_to(REPO))
    )


@pytest.mark.parametrize("values", MATRIX)
def test_roles_grant_the_engines_rules_and_the_executors(helm: Helm, values: Path) -> None:
    objects = _objects(helm, values)
    config = yaml.safe_load(values.read_text()).get("config", {})
    namespace = config.get("argoNamespace") or "argo"
    gateway_account = _one(objects, "Deployment")["spec"]["template"]["spec"]
    gateway = _one(objects, "Role", "tender")
    assert gateway["metadata"]["namespace"] == namespace
    assert gateway["rules"] == ROLE_RULES
    binding = _one(objects, "RoleBinding", "tender")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": gateway_account["serviceAccountName"],
            "namespace": "argo",
        }
    ]
    step_account = _one(objects, "ConfigMap")["data"]["TENDER_ARGO_STEP_SERVICE_ACCOUNT"]
    steps = _one(objects, "Role", step_account)
    assert steps["metadata"]["namespace"] == namespace
    assert steps["rules"] == [
        {
            "apiGroups": ["argoproj.io"],
            "resources": ["workflowtaskresults"],
            "verbs": ["create", "patch"],
        }
    ]
    step_binding = _one(objects, "RoleBinding", step_account)
    assert step_binding["subjects"][0]["name"] == step_account


def test_existing_service_accounts_are_bound_not_created(helm: Helm) -> None:
    objects = _objects(helm, CHART / "ci" / "service-accounts-values.yaml")
    assert not [o for o in objects if o["kind"] == "ServiceAccount"]
    pod = _one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "platform-tender"
    data = _one(objects, "ConfigMap")["data"]
    assert data["TENDER_ARGO_STEP_SERVICE_ACCOUNT"] == "platform-steps"
    assert data["TENDER_ARGO_NAMESPACE"] == "workflows"


def test_the_defaults_run_on_postgresql_with_probes_and_migrations_first(helm: Helm) -> None:
    objects = _objects(helm, DEFAULTS)
    deployment = _one(objects, "Deployment")
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    pod = deployment["spec"]["template"]["spec"]
    containers = _gateway(objects)
    gateway, migrate = containers["gateway"], containers["migrate"]
    assert gateway["image"] == f"tender:{_chart()['appVersion']}"
    assert migrate["image"] == gateway["image"]
    assert [c["name"] for c in pod["initContainers"]] == ["migrate"]
    assert migrate["args"] == ["database", "upgrade"]
    assert gateway["args"] == ["serve"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert gateway[probe]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert gateway["env"][0]["valueFrom"]["secretKeyRef"] == {
        "name": "tender-database",
        "key": "url",
    }
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["data"]
    assert not [o for o in objects if o["kind"] in ("PersistentVolumeClaim", "Ingress")]
    data = _one(objects, "ConfigMap")["data"]
    assert data["TENDER_EXTERNAL_URL"] == "http://tender.argo.svc:8080"


def test_sqlite_keeps_its_claim_and_recreates_the_pod(helm: Helm) -> None:
    objects = _objects(helm, CHART / "ci" / "sqlite-values.yaml")
    deployment = _one(objects, "Deployment")
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["spec"]["replicas"] == 1
    claim = _one(objects, "PersistentVolumeClaim")
    assert claim["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}
    assert claim["spec"]["storageClassName"] == "standard"
    pod = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    claim_name = claim["metadata"]["name"]
    assert volumes["data"]["persistentVolumeClaim"] == {"claimName": claim_name}
    assert "TENDER_DATABASE_URL" not in str(_gateway(objects)["gateway"])


def test_an_ingress_gives_the_external_url(helm: Helm) -> None:
    objects = _objects(helm, CHART / "ci" / "ingress-values.yaml")
    ingress = _one(objects, "Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]
    assert backend == {"service": {"name": "tender", "port": {"name": "http"}}}
    data = _one(objects, "ConfigMap")["data"]
    assert data["TENDER_EXTERNAL_URL"] == "https://tender.example.com"
    # Steps are pods of the cluster: they reach the gateway through its Service, not the ingress.
    assert data["TENDER_INTERNAL_URL"] == "http://tender.argo.svc:8080"


def test_a_change_of_settings_rolls_the_pods(helm: Helm) -> None:
    def checksum(*sets: str) -> str:
        deployment = _one(_objects(helm, DEFAULTS, sets=sets), "Deployment")
        annotations: dict[str, str] = deployment["spec"]["template"]["metadata"]["annotations"]
        return annotations["checksum/config"]

    assert checksum() == checksum()
    assert checksum() != checksum("config.tokenLifetimeS=7200")


def test_the_helm_test_pod_checks_the_service(helm: Helm) -> None:
    pod = _one(_objects(helm, DEFAULTS), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    (container,) = pod["spec"]["containers"]
    assert container["env"] == [{"name": "TENDER_URL", "value": "http://tender.argo.svc:8080"}]


@pytest.mark.parametrize(
    ("sets", "complaint"),
    [
        (["replicas=2"], "additional properties 'replicas' not allowed"),
        (["config.s3Bukcet=x"], "additional properties 's3Bukcet' not allowed"),
        (["database.type=sqlite", "replicaCount=2"], "/replicaCount': maximum: got 2, want 1"),
        (["database.postgresql.existingSecret="], "/database/postgresql/existingSecret"),
        (["config.argoTtlS=-1"], "/config/argoTtlS"),
        (["config.argoPodGc=Sometimes"], "/config/argoPodGc"),
        (["config.longPollS=0"], "/config/longPollS"),
        (["database.type=mysql"], "/database/type"),
        (["config.externalUrl=tender.example.com"], "/config/externalUrl"),
    ],
)
def test_the_schema_refuses_bad_values_naming_them(
    helm: Helm, sets: list[str], complaint: str
) -> None:
    args: list[str | Path] = ["template", "tender", CHART, "--values", DEFAULTS]
    for item in sets:
        args += ["--set", item]
    done = helm.run(*args, check=False)
    assert done.returncode != 0
    assert complaint in done.stderr


def test_the_bucket_and_the_database_are_required(helm: Helm) -> None:
    done = helm.run("template", "tender", CHART, check=False)
    assert done.returncode != 0
    assert "/config/s3Bucket" in done.stderr
    assert "/database/postgresql/existingSecret" in done.stderr


def test_the_charts_app_version_is_the_gateways() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert _chart()["appVersion"] == project["project"]["version"]


def _chart() -> dict[str, Any]:
    chart: dict[str, Any] = yaml.safe_load((CHART / "Chart.yaml").read_text())
    return chart


def json_schema() -> dict[str, Any]:
    schema: dict[str, Any] = yaml.safe_load((CHART / "values.schema.json").read_text())
    return schema


@pytest.mark.parametrize(
    ("values", "url"),
    [
        (DEFAULTS, "http://127.0.0.1:8080"),
        (CHART / "ci" / "ingress-values.yaml", "https://tender.example.com"),
    ],
)
def test_notes_say_how_to_get_a_token_and_which_urls_to_set(
    helm: Helm, values: Path, url: str
) -> None:
    done = helm.run(
        "install", "tender", CHART, "-n", "argo", "--values", values, "--dry-run=client"
    )
    notes = done.stdout.split("NOTES:", 1)[1]
    assert "kubectl -n argo exec deployment/tender -c gateway -- tender token create" in notes
    assert f"export CRAFT_AI_ENVIRONMENT_URL={url}" in notes
    assert f"export CRAFT_AI_CONTROL_URL={url}" in notes
