"""The engine's records in the shared store, on SQLite and (when configured) PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect

from gateway.store import (
    CronWorkflowRepository,
    Database,
    LogLine,
    ObjectRecord,
    StepLogRepository,
    WorkflowRecord,
    WorkflowRepository,
    WorkflowTemplateRepository,
)

NOW = datetime(2025, 1, 2, 3, 4, 5, 123000, tzinfo=UTC)  # the store keeps milliseconds


def _workflow(name: str, created: datetime = NOW, phase: str = "Running") -> WorkflowRecord:
    return WorkflowRecord(
        name=name,
        namespace="default",
        uid=f"uid-{name}",
        labels={"app": "tender"},
        # As the engine writes them: the labels column holds the manifest's labels.
        manifest={"metadata": {"name": name, "labels": {"app": "tender"}}, "spec": {}},
        status={"phase": phase, "nodes": {"n": {"phase": phase}}},
        phase=phase,
        created_at=created,
        finished_at=None,
    )


def test_migrations_create_the_engine_tables_and_are_idempotent(database: Database) -> None:
    database.upgrade()
    tables = set(inspect(database.engine).get_table_names())
    assert {"workflows", "workflow_templates", "cron_workflows", "step_logs"} <= tables


def test_workflow_records_round_trip(database: Database) -> None:
    repository = WorkflowRepository(database)
    assert repository.insert(_workflow("a"))
    assert not repository.insert(_workflow("a"))
    stored = repository.get("a")
    assert stored == _workflow("a")
    assert stored is not None
    assert stored.created_at.tzinfo is not None
    done = WorkflowRecord(
        **{
            **stored.__dict__,
            "phase": "Succeeded",
            "status": {"phase": "Succeeded"},
            "finished_at": NOW,
        }
    )
    repository.save(done)
    assert repository.get("a") == done
    assert repository.get("missing") is None


def test_workflow_listing(database: Database) -> None:
    repository = WorkflowRepository(database)
    for index, phase in enumerate(["Running", "Pending", "Succeeded"]):
        repository.insert(_workflow(f"w{index}", NOW + timedelta(seconds=index), phase))
    assert [name for name, _, _ in repository.list_summaries()] == ["w2", "w1", "w0"]
    assert {r.name for r in repository.list_in_phases(["Running", "Pending"])} == {"w0", "w1"}
    assert {r.name for r in repository.get_many(["w0", "w2", "nope"])} == {"w0", "w2"}


def test_times_are_kept_to_the_millisecond(database: Database) -> None:
    """So that a date the database formats and one Python formats agree (docs, "Dates")."""
    repository = WorkflowRepository(database)
    repository.insert(_workflow("ms", created=NOW + timedelta(microseconds=999)))
    stored = repository.get("ms")
    assert stored is not None
    assert stored.created_at == NOW


def test_deleting_a_workflow_deletes_its_logs(database: Database) -> None:
    workflows, logs = WorkflowRepository(database), StepLogRepository(database)
    workflows.insert(_workflow("a"))
    lines = [
        LogLine("a", "a-1", "a-main-1", NOW + timedelta(milliseconds=i), "stdout", f"l{i}")
        for i in range(3)
    ]
    logs.append(lines)
    logs.append([])
    assert logs.list("a") == lines
    assert workflows.delete("a")
    assert not workflows.delete("a")
    assert logs.list("a") == []


def test_templates_and_cron_workflows(database: Database) -> None:
    templates, crons = WorkflowTemplateRepository(database), CronWorkflowRepository(database)
    record = ObjectRecord("t", "default", "uid-t", {"metadata": {"name": "t"}}, NOW)
    assert templates.insert(record)
    assert not templates.insert(record)
    assert templates.replace("t", {"metadata": {"name": "t"}, "spec": {}})
    assert not templates.replace("missing", {})
    assert templates.get("t") == ObjectRecord(
        "t", "default", "uid-t", {"metadata": {"name": "t"}, "spec": {}}, NOW
    )
    assert crons.insert(ObjectRecord("c", "default", "uid-c", {"spec": {}}, NOW))
    crons.set_last_scheduled("c", NOW + timedelta(minutes=1))
    cron = crons.get("c")
    assert cron is not None
    assert cron.last_scheduled_at == NOW + timedelta(minutes=1)
    assert [r.name for r in crons.list()] == ["c"]
    assert templates.get("c") is None
    assert crons.delete("c")
    assert crons.get("c") is None
