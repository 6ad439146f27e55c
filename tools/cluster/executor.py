"""What Argo's executor (argoexec) does around a pod's `main` container, done on the host.

argoexec does not build from its Go module (see README), so the process kubelet does its work:
the template comes from the pod (`ARGO_TEMPLATE`), input artifacts come from S3 and are unpacked
as argoexec unpacks them, output parameters, artifacts and the `main` log go back as argoexec
sends them, in a WorkflowTaskResult. A pod has no filesystem of its own here, so every absolute
path the template declares is moved into the pod's folder, in the command, env and script alike.
"""

from __future__ import annotations

import base64
import copy
import json
import re
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import botocore.config
import botocore.session
from botocore.exceptions import ClientError

from tools.cluster.kube import Kube, KubeError, Object

SCRIPT_PATH = "/argo/staging/script"
S3Client = Any  # botocore's generated client class


class ExecutorError(Exception):
    """A step that argoexec would fail, with argoexec's kind of message."""


@dataclass(frozen=True)
class S3Location:
    """An S3 artifact resolved against the template's archive location."""

    endpoint: str
    insecure: bool
    bucket: str
    region: str
    key: str
    access_key_secret: Object
    secret_key_secret: Object


class Executor:
    """One pod's template, with its paths moved under `root` and its S3 and Secret access."""

    def __init__(
        self, kube: Kube, namespace: str, pod: Object, root: Path, s3: Callable[..., S3Client]
    ):
        self.kube = kube
        self.namespace = namespace
        self.pod = pod
        self.root = root
        self._s3 = s3
        self.template = self._read_template()
        paths = [SCRIPT_PATH] if "script" in self.template else []
        paths += [
            a["path"] for a in self.template.get("inputs", {}).get("artifacts", []) if "path" in a
        ]
        outputs = self.template.get("outputs", {})
        paths += [a["path"] for a in outputs.get("artifacts", []) if "path" in a]
        paths += [
            p["valueFrom"]["path"]
            for p in outputs.get("parameters", [])
            if p.get("valueFrom", {}).get("path")
        ]
        # Their folders move too (a script makes /tmp/out before writing /tmp/out/x), down to
        # two levels: /tmp/out moves, /tmp and / stay where they are.
        moved = {
            str(folder)
            for p in paths
            for folder in PurePosixPath(p).parents
            if len(folder.parts) > 2
        }
        moved.update(p.rstrip("/") for p in paths)
        alternatives = "|".join(re.escape(p) for p in sorted(moved, key=len, reverse=True))
        self._pattern = re.compile(rf"(?<![\w./-])({alternatives})(?![\w.-])") if moved else None

    def local(self, path: str) -> Path:
        """Where a path of the container lives on the host."""
        return self.root / path.lstrip("/")

    def rewrite(self, text: str) -> str:
        """Move every declared path in text into the pod's folder."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: str(self.local(m.group(1))), text)

    def _read_template(self) -> Object:
        for container in (
            self.pod["spec"].get("initContainers", []) + self.pod["spec"]["containers"]
        ):
            for env in container.get("env", []):
                if env["name"] == "ARGO_TEMPLATE":
                    text = env.get("value", "")
                    if text == "offloaded":  # over 128 KB: in a ConfigMap named after the pod
                        name = self.pod["metadata"]["name"]
                        config = self.kube.get(
                            f"/api/v1/namespaces/{self.namespace}/configmaps/{name}"
                        )
                        text = config["data"]["ARGO_TEMPLATE"]
                    template: Object = json.loads(text)
                    return template
        raise ExecutorError("the pod has no ARGO_TEMPLATE: not a pod of Argo's controller")

    # --- what argoexec's init container does ---

    def stage(self) -> None:
        """Write the script and load the input artifacts (argoexec's `init`)."""
        self.root.mkdir(parents=True, exist_ok=True)
        # An image has its top folders (/tmp, ...); deeper ones are the step's to make.
        outputs = self.template.get("outputs", {})
        declared = [a.get("path", "") for a in outputs.get("artifacts", [])]
        declared += [p.get("valueFrom", {}).get("path", "") for p in outputs.get("parameters", [])]
        for path in filter(None, declared):
            top = PurePosixPath(path).parents[-2] if len(PurePosixPath(path).parts) > 2 else None
            self.local(str(top or "/")).mkdir(parents=True, exist_ok=True)
        if "script" in self.template:
            script = self.local(SCRIPT_PATH)
            script.parent.mkdir(parents=True, exist_ok=True)
            script.write_text(self.rewrite(self.template["script"].get("source", "")))
        for artifact in self.template.get("inputs", {}).get("artifacts", []):
            self._load_input(artifact)

    def _load_input(self, artifact: Object) -> None:
        name, destination = artifact["name"], self.local(artifact["path"])
        destination.parent.mkdir(parents=True, exist_ok=True)
        if "raw" in artifact:
            destination.write_text(artifact["raw"]["data"])
            return
        if "s3" not in artifact or not artifact["s3"].get("key"):
            if artifact.get("optional") or not _has_location(artifact):
                if artifact.get("optional"):
                    return
                raise ExecutorError(f"required artifact '{name}' not supplied")
            raise ExecutorError(f"artifact {name}: only s3 and raw artifacts are emulated")
        location = self.resolve(artifact["s3"])
        download = destination.with_name(destination.name + ".tmp")
        if not self._download(location, download):
            if artifact.get("optional"):
                return
            raise ExecutorError(
                f"artifact {name} failed to load: failed to get file: the key {location.key!r} "
                f"does not exist in bucket {location.bucket!r}"
            )
        archive = artifact.get("archive", {})
        if "none" not in archive and download.is_file() and _is_tarball(download):
            _untar(download, destination)
            download.unlink()
        else:
            download.rename(destination)

    def _download(self, location: S3Location, target: Path) -> bool:
        """Fetch a key, or every key under it as a folder; False when neither exists."""
        client = self.client(location)
        try:
            _get(client, location.bucket, location.key, target)
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] not in {"404", "NoSuchKey"}:
                raise
        prefix = location.key.rstrip("/") + "/"
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=prefix
        )
        keys = [item["Key"] for page in pages for item in page.get("Contents", [])]
        for key in keys:
            _get(client, location.bucket, key, target / key[len(prefix) :])
        return bool(keys)

    # --- what argoexec's wait container does ---

    def collect(self, stdout: str, log: Path) -> Object:
        """The pod's outputs as argoexec reports them: parameters, result, artifacts, logs."""
        declared = copy.deepcopy(self.template.get("outputs", {}))
        outputs: Object = {}
        parameters = [self._output_parameter(p) for p in declared.get("parameters", [])]
        if parameters:
            outputs["parameters"] = parameters
        if _container_env(self.main, "ARGO_INCLUDE_SCRIPT_OUTPUT") == "true":
            outputs["result"] = stdout.removesuffix("\n")
        artifacts = [a for a in (self._save_output(a) for a in declared.get("artifacts", [])) if a]
        if self.template.get("archiveLocation", {}).get("archiveLogs"):
            artifacts.append(self._save_file("main-logs", log, "main.log"))
        if artifacts:
            outputs["artifacts"] = artifacts
        return outputs

    @property
    def main(self) -> Object:
        main: Object = next(c for c in self.pod["spec"]["containers"] if c["name"] == "main")
        return main

    def _output_parameter(self, parameter: Object) -> Object:
        source = parameter.get("valueFrom", {})
        if not source.get("path"):
            return parameter
        try:
            value = self.local(source["path"]).read_text()
        except OSError:
            if "default" not in source:
                raise ExecutorError(f"open {source['path']}: no such file or directory") from None
            value = source["default"]
        return {**parameter, "value": value.removesuffix("\n")}

    def _save_output(self, artifact: Object) -> Object | None:
        if "path" not in artifact:
            return artifact  # `from` or a location only: nothing to upload
        source = self.local(artifact["path"])
        if not source.exists():
            if artifact.get("optional"):
                return None
            raise ExecutorError(f"path {artifact['path']} does not exist in the main container")
        archive = artifact.get("archive", {})
        if "zip" in archive:
            raise ExecutorError(f"artifact {artifact['name']}: zip archives are not emulated")
        if "none" in archive:
            return self._save_file(artifact["name"], source, source.name, artifact)
        with tempfile.TemporaryDirectory() as scratch:
            packed = Path(scratch) / f"{artifact['name']}.tgz"
            with tarfile.open(packed, "w:gz") as tar:
                tar.add(source, arcname=source.name)
            return self._save_file(artifact["name"], packed, packed.name, artifact)

    def _save_file(
        self, name: str, source: Path, file_name: str, artifact: Object | None = None
    ) -> Object:
        """Upload to the artifact's own key, else under the archive location's key."""
        reported: Object = copy.deepcopy(artifact) if artifact else {"name": name}
        if not reported.get("s3", {}).get("key"):
            repository = copy.deepcopy(self.template.get("archiveLocation", {}).get("s3"))
            if not repository:
                raise ExecutorError(f"artifact {name}: no key and no archive location")
            repository["key"] = f"{repository['key'].rstrip('/')}/{file_name}"
            reported["s3"] = repository
        location = self.resolve(reported["s3"])
        client = self.client(location)
        if source.is_dir():
            for file in sorted(p for p in source.rglob("*") if p.is_file()):
                key = f"{location.key.rstrip('/')}/{file.relative_to(source)}"
                _put(client, location.bucket, key, file)
        else:
            _put(client, location.bucket, location.key, source)
        return reported

    def report(self, outputs: Object) -> None:
        """Create the WorkflowTaskResult the controller waits for before it reads the pod."""
        meta = self.pod["metadata"]
        [owner] = [o for o in meta.get("ownerReferences", []) if o["kind"] == "Workflow"]
        workflow = meta["labels"]["workflows.argoproj.io/workflow"]
        name = meta["annotations"]["workflows.argoproj.io/node-id"]
        body = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "WorkflowTaskResult",
            "metadata": {
                "name": name,
                "labels": {
                    "workflows.argoproj.io/workflow": workflow,
                    "workflows.argoproj.io/report-outputs-completed": "true",
                },
                "ownerReferences": [{k: owner[k] for k in ("apiVersion", "kind", "name", "uid")}],
            },
            "outputs": outputs,
        }
        path = f"/apis/argoproj.io/v1alpha1/namespaces/{self.namespace}/workflowtaskresults"
        try:
            self.kube.create(path, body)
        except KubeError as error:
            if error.status != 409:
                raise
            self.kube.patch(f"{path}/{name}", body)

    # --- S3 and Secrets ---

    def resolve(self, s3: Object) -> S3Location:
        """An artifact's S3 fields, completed by the template's archive location (key-only)."""
        base = self.template.get("archiveLocation", {}).get("s3", {})
        merged = {**base, **{k: v for k, v in s3.items() if v not in (None, "")}}
        missing = [k for k in ("endpoint", "bucket") if not merged.get(k)]
        if missing:
            raise ExecutorError(
                f"s3 artifact without {' or '.join(missing)} and no artifact repository"
            )
        return S3Location(
            endpoint=merged["endpoint"],
            insecure=bool(merged.get("insecure")),
            bucket=merged["bucket"],
            region=merged.get("region") or "us-east-1",
            key=merged.get("key", ""),
            access_key_secret=merged.get("accessKeySecret", {}),
            secret_key_secret=merged.get("secretKeySecret", {}),
        )

    def client(self, location: S3Location) -> S3Client:
        scheme = "http" if location.insecure else "https"
        return self._s3(
            f"{scheme}://{location.endpoint}",
            location.region,
            self.secret_value(location.access_key_secret),
            self.secret_value(location.secret_key_secret),
        )

    def secret_value(self, reference: Object) -> str:
        if not reference:
            raise ExecutorError("s3 artifact without accessKeySecret/secretKeySecret")
        secret = self.kube.get(f"/api/v1/namespaces/{self.namespace}/secrets/{reference['name']}")
        return base64.b64decode(secret["data"][reference["key"]]).decode()


def new_s3_client(endpoint_url: str, region: str, access_key: str, secret_key: str) -> S3Client:
    return botocore.session.get_session().create_client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )


def _get(client: S3Client, bucket: str, key: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    with body, target.open("wb") as sink:
        for chunk in body.iter_chunks(1 << 20):
            sink.write(chunk)


def _put(client: S3Client, bucket: str, key: str, source: Path) -> None:
    with source.open("rb") as body:
        client.put_object(Bucket=bucket, Key=key, Body=body)


def _has_location(artifact: Object) -> bool:
    kinds = ("s3", "raw", "http", "git", "gcs", "oss", "hdfs", "artifactory", "azure", "plugin")
    return any(kind in artifact for kind in kinds)


def _container_env(container: Object, name: str) -> str | None:
    return next((e.get("value") for e in container.get("env", []) if e["name"] == name), None)


def _is_tarball(path: Path) -> bool:
    try:
        with tarfile.open(path, "r:gz") as tar:
            return tar.next() is not None
    except (tarfile.TarError, OSError, EOFError):
        return False


def _untar(archive: Path, destination: Path) -> None:
    """argoexec's rule: one top-level entry becomes the destination, several fill it."""
    staging = destination.with_name(destination.name + ".tmpdir")
    staging.mkdir(parents=True)
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(staging, filter="data")  # refuses absolute paths, `..` and devices
    entries = list(staging.iterdir())
    if len(entries) == 1:
        entries[0].rename(destination)
        staging.rmdir()
    else:
        staging.rename(destination)
