"""tools/argolint: Argo Workflows' own offline linter (`argo lint --offline`).

The binary is built once per session by the `argolint` fixture (tools/argolint/build, cached
in .cache/bin, so later sessions reuse it). The tests check that it accepts valid upstream
examples and that it catches errors the JSON schema cannot see: a DAG task naming a missing
template, and a CronWorkflow name longer than Argo's 52-character limit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from argo_schema import ARGO_DIR

# The session fixture (tests/conftest.py) may build the binary: minutes on a cold machine.
pytestmark = pytest.mark.timeout(1900)

VALID_EXAMPLES = (
    "hello-world.yaml",
    "steps.yaml",
    "dag-diamond.yaml",
    "cron-workflow.yaml",
    "workflow-template/templates.yaml",
    "cluster-workflow-template/clustertemplates.yaml",
)

MISSING_TEMPLATE_WORKFLOW = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata:
  generateName: dag-missing-template-
spec:
  entrypoint: main
  templates:
    - name: main
      dag:
        tasks:
          - name: a
            template: echo
          - name: b
            depends: a
            template: does-not-exist
    - name: echo
      container:
        image: alpine:3.20
        command: [echo, hello]
"""

LONG_CRON_NAME = "c" * 53

LONG_NAME_CRON_WORKFLOW = f"""\
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata:
  name: {LONG_CRON_NAME}
spec:
  schedules:
    - "*/5 * * * *"
  workflowSpec:
    entrypoint: main
    templates:
      - name: main
        container:
          image: alpine:3.20
          command: [echo, hello]
"""


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return ARGO_DIR / "examples"


def run_lint(binary: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(binary), "--no-color", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("example", VALID_EXAMPLES)
def test_valid_upstream_example_passes(argolint: Path, examples_dir: Path, example: str) -> None:
    result = run_lint(argolint, examples_dir / example)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no linting errors found!" in result.stdout


def test_several_files_in_one_run_pass(argolint: Path, examples_dir: Path) -> None:
    files = [examples_dir / name for name in VALID_EXAMPLES]
    result = run_lint(argolint, "--output", "simple", *files)
    assert result.returncode == 0, result.stdout + result.stderr


def test_template_ref_resolves_only_with_the_template_file(
    argolint: Path, examples_dir: Path
) -> None:
    workflow = examples_dir / "workflow-template" / "dag.yaml"
    alone = run_lint(argolint, workflow)
    assert alone.returncode != 0
    assert 'couldn\'t find workflow template "workflow-template-print-message"' in alone.stdout

    with_template = run_lint(
        argolint, workflow, examples_dir / "workflow-template" / "templates.yaml"
    )
    assert with_template.returncode == 0, with_template.stdout + with_template.stderr


@pytest.mark.parametrize("output", ["pretty", "simple"])
def test_dag_task_with_missing_template_fails(argolint: Path, tmp_path: Path, output: str) -> None:
    manifest = tmp_path / "missing-template.yaml"
    manifest.write_text(MISSING_TEMPLATE_WORKFLOW)
    result = run_lint(argolint, "--output", output, manifest)
    assert result.returncode == 1, result.stdout + result.stderr
    assert str(manifest) in result.stdout
    assert "templates.main.tasks.b template name 'does-not-exist' undefined" in result.stdout


@pytest.mark.parametrize("output", ["pretty", "simple"])
def test_cron_workflow_name_over_52_chars_fails(
    argolint: Path, tmp_path: Path, output: str
) -> None:
    manifest = tmp_path / "long-cron-name.yaml"
    manifest.write_text(LONG_NAME_CRON_WORKFLOW)
    result = run_lint(argolint, "--output", output, manifest)
    assert result.returncode == 1, result.stdout + result.stderr
    assert str(manifest) in result.stdout
    assert (
        f'cron workflow name "{LONG_CRON_NAME}" must not be more than 52 characters long'
        " (currently 53)"
    ) in result.stdout


def test_cron_workflow_name_of_52_chars_passes(argolint: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "cron-52.yaml"
    manifest.write_text(LONG_NAME_CRON_WORKFLOW.replace(LONG_CRON_NAME, "c" * 52))
    result = run_lint(argolint, manifest)
    assert result.returncode == 0, result.stdout + result.stderr


def test_missing_file_is_an_error(argolint: Path, tmp_path: Path) -> None:
    result = run_lint(argolint, tmp_path / "nope.yaml")
    assert result.returncode != 0
    assert "no such file or directory" in result.stderr
