"""Run a test cluster by hand (see README.md).

    python -m tools.cluster up DIR --s3-endpoint-url URL ...   # in the foreground, Ctrl-C stops it
    python -m tools.cluster start DIR --s3-endpoint-url URL ... # in the background
    python -m tools.cluster stop DIR

`up` and `start` print the cluster's description (kubeconfig, namespace, API URL, token, S3)
as JSON, also kept in DIR/cluster.json. `stop` signals only the runner recorded there, which
stops the processes it started.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tools.cluster.cluster import (
    ArtifactRepository,
    ClusterError,
    describe,
    start_cluster,
    write_description,
)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tools.cluster", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("up", "start"):
        command = commands.add_parser(name)
        command.add_argument("directory", type=Path)
        command.add_argument("--namespace", default="argo")
        command.add_argument("--s3-endpoint-url", required=True, help="e.g. http://127.0.0.1:7070")
        command.add_argument("--s3-bucket", default="argo-artifacts")
        command.add_argument("--s3-access-key-id", required=True)
        command.add_argument(
            "--s3-secret-access-key", default=os.environ.get("S3_SECRET_ACCESS_KEY")
        )
        command.add_argument("--s3-region", default="us-east-1")
    commands.add_parser("stop").add_argument("directory", type=Path)
    args = parser.parse_args()
    try:
        if args.command == "up":
            _up(args)
        elif args.command == "start":
            _start(args)
        else:
            _stop(args.directory)
    except ClusterError as error:
        sys.exit(f"cluster: {error}")


def _up(args: argparse.Namespace) -> None:
    if not args.s3_secret_access_key:
        raise ClusterError("give --s3-secret-access-key or set S3_SECRET_ACCESS_KEY")
    repository = ArtifactRepository(
        endpoint_url=args.s3_endpoint_url,
        bucket=args.s3_bucket,
        access_key_id=args.s3_access_key_id,
        secret_access_key=args.s3_secret_access_key,
        region=args.s3_region,
    )
    args.directory.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    cluster = start_cluster(args.directory.resolve(), repository, namespace=args.namespace)
    try:
        write_description(cluster)
        print(json.dumps(describe(cluster), indent=2), flush=True)
        while not stopping.wait(1):
            for name, process in cluster.processes.items():
                if process.poll() is not None:
                    print(f"cluster: {name} exited with {process.returncode}", file=sys.stderr)
                    stopping.set()
    finally:
        cluster.stop()
        (args.directory / "cluster.json").unlink(missing_ok=True)


def _start(args: argparse.Namespace) -> None:
    """`up` in a new session, detached; returns when it has written cluster.json."""
    described = args.directory / "cluster.json"
    if described.exists():
        raise ClusterError(f"{described} exists: a cluster runs there (stop it first)")
    args.directory.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "tools.cluster", "up", str(args.directory)]
    for option in ("namespace", "s3_endpoint_url", "s3_bucket", "s3_access_key_id", "s3_region"):
        argv += [f"--{option.replace('_', '-')}", getattr(args, option)]
    # The secret goes through the environment, not the command line that `ps` shows.
    env = {**os.environ, "S3_SECRET_ACCESS_KEY": args.s3_secret_access_key or ""}
    with (args.directory / "runner.log").open("ab") as log:
        runner = subprocess.Popen(
            argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env, start_new_session=True
        )
    while not described.exists():
        if runner.poll() is not None:
            raise ClusterError(f"the cluster did not start; see {args.directory / 'runner.log'}")
        time.sleep(0.3)
    print(described.read_text())


def _stop(directory: Path) -> None:
    described = directory / "cluster.json"
    if not described.exists():
        raise ClusterError(f"no cluster runs in {directory} (no cluster.json)")
    pid = json.loads(described.read_text())["runner_pid"]
    cmdline = Path(f"/proc/{pid}/cmdline")
    # Only signal the runner this directory recorded, never a process that reused its pid.
    if not cmdline.exists() or b"tools.cluster" not in cmdline.read_bytes():
        described.unlink()
        raise ClusterError(f"the runner ({pid}) is gone; removed {described}")
    os.kill(pid, signal.SIGTERM)
    while described.exists() and cmdline.exists():
        time.sleep(0.2)


if __name__ == "__main__":
    main()
