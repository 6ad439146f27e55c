"""A pipeline's steps as a DAG: who feeds whom, in which order, and the checks on the wiring."""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from compiler.errors import CompileError
from compiler.models import Pipeline, Step, StepInput

__all__ = ["Plan", "StepOutputRef", "plan_pipeline"]


@dataclass(frozen=True)
class StepOutputRef:
    step: str
    output: str


# A step input is fed either by the pipeline input of that name (a str) or by a step's output.
Feed = str | StepOutputRef


@dataclass(frozen=True)
class Plan:
    """Steps in dependency order, the feed of each step input, the source of each output."""

    steps: tuple[Step, ...]
    feeds: dict[tuple[str, str], Feed]
    outputs: dict[str, StepOutputRef]

    def upstream(self, step: Step) -> list[str]:
        """The steps whose outputs ``step`` reads, in declaration order, without repeats."""
        names = [
            feed.step
            for i in step.inputs
            if isinstance(feed := self.feeds[(step.name, i.name)], StepOutputRef)
        ]
        return list(dict.fromkeys(names))


def plan_pipeline(pipeline: Pipeline) -> Plan:
    steps = pipeline.all_steps()
    single = not pipeline.steps
    by_name = {s.name: s for s in steps}
    feeds: dict[tuple[str, str], Feed] = {}
    for s_index, step in enumerate(steps):
        for i_index, step_input in enumerate(step.inputs):
            field = f"pipeline.steps[{s_index}].inputs[{i_index}]"
            feeds[(step.name, step_input.name)] = _feed(
                pipeline, by_name, step, step_input=step_input, field=field, single=single
            )
    outputs = {
        o.name: _pipeline_output(pipeline, steps, o_index, single)
        for o_index, o in enumerate(pipeline.outputs)
    }
    return Plan(steps=tuple(_in_dependency_order(steps, feeds)), feeds=feeds, outputs=outputs)


def _feed(
    pipeline: Pipeline,
    by_name: dict[str, Step],
    step: Step,
    *,
    step_input: StepInput,
    field: str,
    single: bool,
) -> Feed:
    if step_input.source is None:
        declared = pipeline.input(step_input.name)
        if declared is None:
            raise CompileError(
                f"{field}.name",
                "missing_input",
                f"step {step.name!r} reads input {step_input.name!r}, which the pipeline "
                "does not declare; declare it or give a source",
            )
        if not single and declared.data_type != step_input.data_type:
            _type_mismatch(field, step_input.data_type, declared.data_type, "pipeline input")
        return step_input.name
    ref = _parse_source(step_input.source, f"{field}.source")
    producer = by_name.get(ref.step)
    output = (
        None
        if producer is None
        else next((o for o in producer.outputs if o.name == ref.output), None)
    )
    if output is None:
        raise CompileError(
            f"{field}.source",
            "missing_output",
            f"step {step.name!r} is wired to {step_input.source!r}, which no step produces",
        )
    if output.data_type != step_input.data_type:
        _type_mismatch(field, step_input.data_type, output.data_type, step_input.source)
    return ref


def _type_mismatch(field: str, wanted: str, given: str, what: str) -> None:
    raise CompileError(
        f"{field}.data_type",
        "type_mismatch",
        f"input of type {wanted} is fed by {what} of type {given}",
    )


def _parse_source(source: str, field: str) -> StepOutputRef:
    step, dot, output = source.partition(".")
    if not dot or not step or not output:
        raise CompileError(field, "source_format", f"source {source!r} is not '<step>.<output>'")
    return StepOutputRef(step, output)


def _pipeline_output(
    pipeline: Pipeline, steps: list[Step], index: int, single: bool
) -> StepOutputRef:
    output = pipeline.outputs[index]
    field = f"pipeline.outputs[{index}]"
    if single:
        return StepOutputRef(steps[0].name, output.name)
    if output.source is not None:
        ref = _parse_source(output.source, f"{field}.source")
        candidates = [s for s in steps if s.name == ref.step]
    else:
        ref = StepOutputRef("", output.name)
        candidates = [s for s in steps if any(o.name == output.name for o in s.outputs)]
        if len(candidates) > 1:
            raise CompileError(
                f"{field}.source",
                "ambiguous_output",
                f"several steps produce {output.name!r}: give source '<step>.<output>'",
            )
    for step in candidates:
        for produced in step.outputs:
            if produced.name == ref.output:
                if produced.data_type != output.data_type:
                    _type_mismatch(
                        field, output.data_type, produced.data_type, f"{step.name}.{ref.output}"
                    )
                return StepOutputRef(step.name, ref.output)
    raise CompileError(
        f"{field}.source",
        "missing_output",
        f"pipeline output {output.name!r} is not produced by any step",
    )


def _in_dependency_order(steps: list[Step], feeds: dict[tuple[str, str], Feed]) -> list[Step]:
    """Kahn's algorithm, ties broken by declaration order so that the output is deterministic."""
    index = {s.name: n for n, s in enumerate(steps)}
    waiting_on = [0] * len(steps)
    consumers: list[list[int]] = [[] for _ in steps]
    for n, step in enumerate(steps):
        producers = {
            f.step
            for i in step.inputs
            if isinstance(f := feeds[(step.name, i.name)], StepOutputRef)
        }
        waiting_on[n] = len(producers)
        for producer in producers:
            consumers[index[producer]].append(n)
    ready = [n for n, count in enumerate(waiting_on) if count == 0]
    heapq.heapify(ready)
    ordered: list[Step] = []
    while ready:
        n = heapq.heappop(ready)
        ordered.append(steps[n])
        for consumer in consumers[n]:
            waiting_on[consumer] -= 1
            if waiting_on[consumer] == 0:
                heapq.heappush(ready, consumer)
    if len(ordered) < len(steps):
        stuck = sorted(s.name for n, s in enumerate(steps) if waiting_on[n] > 0)
        raise CompileError(
            "pipeline.steps",
            "cycle",
            f"the steps {', '.join(stuck)} depend on each other in a cycle",
        )
    return ordered
