"""The gateway's settings: ``TENDER_*`` environment variables, overridden by CLI flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]

# A gateway listening on every address is reached by its own steps on loopback.
_LOOPBACK_FOR = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TENDER_", extra="forbid", frozen=True, env_parse_none_str="none"
    )

    data_dir: Path = Path(".tender")
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    # Absolute URLs the gateway hands out (signed URLs, endpoint file outputs) start with this;
    # by default the address it listens on.
    external_url: str | None = None
    # The gateway's URL as running steps reach it (their CRAFT_AI_ENVIRONMENT_URL and
    # CRAFT_AI_CONTROL_URL); by default the address it listens on, on loopback if that is any.
    internal_url: str | None = None
    # Default: an SQLite file in the data dir. PostgreSQL: postgresql://user:pw@host/db
    database_url: str | None = None
    # Where executions run: the embedded engine, or an Argo Workflows cluster (the Kubernetes
    # API of one namespace, reached through KUBECONFIG or the pod's service account).
    engine: Literal["local", "argo"] = "local"
    # Steps that may run at once on the embedded engine (default: the number of cores).
    concurrency: int | None = Field(default=None, ge=1)
    # The SDK refreshes a token 120 s before it expires: a lifetime of an hour costs one
    # refresh an hour (craft-api.md section 2.3).
    token_lifetime_s: int = Field(default=3600, ge=300)
    # How long the long-polls (?wait_for_completion=true) hold a request before answering.
    long_poll_s: float = Field(default=30.0, gt=0)
    # Request bodies held in memory (JSON, urlencoded forms), refused with 413 beyond this.
    max_body_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    # Bodies that carry files (code archives, file inputs, data store uploads and parts) stream
    # to storage: S3 takes at most 5 GiB in one upload or one part.
    max_upload_bytes: int = Field(default=5 * 1024 * 1024 * 1024, gt=0)
    # The uncompressed size of a pipeline's code archive (the SDK documents 5 MB of folders).
    max_code_bytes: int = Field(default=50 * 1024 * 1024, gt=0)
    pip_timeout_s: float = Field(default=600.0, gt=0)
    # Whether a pipeline may be cloned from a path or file:// URL on the gateway's own machine.
    # Off by default: it would let any caller read repositories the operator keeps there.
    allow_local_repositories: bool = False
    git_timeout_s: float = Field(default=300.0, gt=0)
    # How long a data store URL (upload, part, download) stays valid once handed out.
    signed_url_lifetime_s: int = Field(default=3600, ge=1)
    # Objects per page of GET /data-store/list (S3's page is 1000 at most).
    datastore_page_size: int = Field(default=1000, ge=1, le=1000)
    # Worker processes ("pods") of each low-latency deployment, each serving
    # max_parallel_executions_per_pod calls at once.
    low_latency_pods: int = Field(default=1, ge=1, le=64)
    # How long a low-latency worker may take to import the function before it counts as failed.
    low_latency_start_timeout_s: float = Field(default=300.0, gt=0)

    # Pipeline files offered as pipeline templates (default: tender's own examples/ folder,
    # when tender runs from its source tree; none otherwise).
    pipeline_templates_dir: Path | None = None
    # How often the resource metrics of executions are sampled; 0 turns sampling off.
    resource_sample_s: float = Field(default=10.0, ge=0)
    # Samples older than this are deleted.
    resource_retention_days: float = Field(default=7.0, gt=0)

    # Where objects live: a folder in the data dir, or an S3 bucket (AWS, MinIO, any S3 server)
    # that a cluster's Argo shares as its artifact repository.
    storage: Literal["local", "s3"] = "local"
    s3_endpoint_url: str = ""  # empty for AWS
    s3_bucket: str = ""
    s3_region: str = ""  # empty: the AWS configuration's, else us-east-1
    s3_prefix: str = ""  # every key starts with it; a trailing "/" is added
    s3_addressing_style: Literal["path", "virtual"] | None = None  # default: botocore's
    # Both, or neither for the standard AWS credential chain (environment, profile, role).
    s3_access_key_id: str = ""
    s3_secret_access_key: SecretStr = SecretStr("")
    # The endpoint in the URLs handed to clients, when they reach S3 by another address than
    # the gateway does (an in-cluster service name, say). Default: s3_endpoint_url.
    s3_public_endpoint_url: str = ""

    # The Argo engine (TENDER_ENGINE=argo). The namespace defaults to the kubeconfig context's,
    # or the pod's own.
    argo_namespace: str | None = None
    # The image of steps whose pipeline names no `container_config.language`.
    argo_step_image: str = "python:3.12-slim"
    # The platforms the dependency archives are built for (pip --platform), comma-separated.
    argo_step_platform: str = "manylinux_2_28_x86_64"
    argo_step_service_account: str | None = None
    # Argo deletes a finished Workflow this long after its end (records, outputs and logs stay);
    # "none": never. Likewise "none" for no podGC (pods then go with their Workflow).
    argo_ttl_s: int | None = Field(default=86400, ge=0)
    argo_pod_gc: (
        Literal["OnPodCompletion", "OnPodSuccess", "OnWorkflowCompletion", "OnWorkflowSuccess"]
        | None
    ) = "OnPodSuccess"
    # A key of the namespace's `artifact-repositories` ConfigMap: Argo's repository for tender's
    # Workflows, which must be the S3 bucket (TENDER_S3_BUCKET). Unset: Argo's default one.
    argo_artifact_repository: str | None = None
    # The Argo UI, to log each execution's link when it starts (https://argo.example.com).
    argo_ui_url: str | None = None

    @field_validator("s3_prefix")
    @classmethod
    def _folder_prefix(cls, prefix: str) -> str:
        folders = prefix.strip("/")
        if not folders:
            return ""
        if any(part in ("", ".", "..") for part in folders.split("/")) or "\\" in folders:
            raise ValueError("must be a relative folder such as 'tender/' (no '.', '..' or '//')")
        return folders + "/"

    @model_validator(mode="after")
    def _absolute_data_dir(self) -> Settings:
        object.__setattr__(self, "data_dir", self.data_dir.expanduser().resolve())
        return self

    @model_validator(mode="after")
    def _complete_s3(self) -> Settings:
        if self.storage != "s3":
            return self
        if not self.s3_bucket:
            raise ValueError("TENDER_S3_BUCKET must name a bucket when TENDER_STORAGE=s3")
        if bool(self.s3_access_key_id) != bool(self.s3_secret_access_key.get_secret_value()):
            raise ValueError(
                "set both TENDER_S3_ACCESS_KEY_ID and TENDER_S3_SECRET_ACCESS_KEY, or neither "
                "(for the standard AWS credential chain)"
            )
        return self

    @model_validator(mode="after")
    def _argo_needs_s3(self) -> Settings:
        if self.engine == "argo" and self.storage != "s3":
            raise ValueError(
                "TENDER_ENGINE=argo needs TENDER_STORAGE=s3: Argo's steps read code and files "
                "from its artifact repository, which must be tender's bucket"
            )
        return self

    @property
    def samples_resources(self) -> bool:
        """The gateway samples its own descendants: the steps only on the embedded engine."""
        return self.engine == "local" and self.resource_sample_s > 0

    @property
    def argo_platforms(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.argo_step_platform.split(",") if p.strip())

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'tender.db'}"

    @property
    def resolved_external_url(self) -> str:
        return (self.external_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def resolved_internal_url(self) -> str:
        if self.internal_url:
            return self.internal_url.rstrip("/")
        host = _LOOPBACK_FOR.get(self.host, self.host)
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def resolved_pipeline_templates_dir(self) -> Path | None:
        if self.pipeline_templates_dir is not None:
            return self.pipeline_templates_dir.expanduser().resolve()
        examples = Path(__file__).resolve().parents[1] / "examples"
        return examples if examples.is_dir() else None

    @property
    def key_prefix(self) -> str:
        """What every storage key starts with in the bucket (manifests carry it)."""
        return self.s3_prefix if self.storage == "s3" else ""

    @property
    def storage_dir(self) -> Path:
        return self.data_dir / "storage"

    @property
    def environments_dir(self) -> Path:
        return self.data_dir / "environments"

    @property
    def work_dir(self) -> Path:
        return self.data_dir / "work"
