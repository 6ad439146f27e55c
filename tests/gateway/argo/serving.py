"""``tender serve`` on the test cluster, as a process a test may stop and start again.

The acceptance suite's gateway lives as long as its package; the tests here need their own:
with other settings (a short TTL, a narrower Role, an API server behind a proxy), or to kill it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from argo_gateway import ArgoGateway, gateway_env
from loopback import free_port, wait_until_serving
from tests.gateway.acceptance.folders import write_folder

__all__ = ["TENDER", "Served", "base_env", "create_pipeline", "served"]

TENDER = [sys.executable, "-c", "from gateway.cli import app; app()"]


@dataclass
class Served:
    root: Path
    env: dict[str, str]
    port: int
    token: str = ""
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "serve.stderr"

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*TENDER, *args, "--data-dir", str(self.data_dir)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    def start(self) -> None:
        with self.log.open("ab") as err:
            self.process = subprocess.Popen(
                [*TENDER, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir)],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        wait_until_serving(self.process, self.base_url, self.log)

    def stop(self) -> None:
        """SIGTERM, as an orchestrator stops a pod; SIGKILL if it does not go."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def sdk(self) -> Any:
        from craft_ai_sdk import CraftAiSdk

        os.environ["SDK_VERBOSE_LOG"] = "false"
        return CraftAiSdk(
            sdk_token=self.token, environment_url=self.base_url, control_url=self.base_url
        )


def base_env() -> dict[str, str]:
    """This process's environment without the settings that would leak into a gateway."""
    return {
        k: v for k, v in os.environ.items() if not k.startswith("TENDER_") and k != "KUBECONFIG"
    }


@contextlib.contextmanager
def served(argo: ArgoGateway, root: Path, **settings: str) -> Iterator[Served]:
    """A started gateway on the cluster (``settings`` override ``TENDER_*``); stopped after.
    Fails if it wrote a traceback."""
    env = base_env() | gateway_env(argo)
    env |= {"TENDER_LONG_POLL_S": "1", **settings}
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    server = Served(root, env, port)
    created = server.run("token", "create", "--name", f"argo-{secrets.token_hex(3)}")
    assert created.returncode == 0, created.stderr
    server.token = created.stdout.strip()
    server.start()
    try:
        yield server
    finally:
        server.stop()
    assert "Traceback" not in server.logs(), server.logs()


def create_pipeline(
    sdk: Any, name: str, folder: Path, files: dict[str, str], function: str, **options: Any
) -> None:
    """A one-step pipeline whose function is ``src/<function>.py:<function>``."""
    write_folder(folder, files)
    sdk.create_pipeline(
        name,
        function_path=f"src/{function}.py",
        function_name=function,
        container_config={"local_folder": str(folder)},
        **options,
    )


NameFactory = Callable[[str], str]
