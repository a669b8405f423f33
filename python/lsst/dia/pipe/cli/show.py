"""``--show config[=GLOB] | tasks | pipeline | data``: print what a run would use, Gen2 style."""

from __future__ import annotations

__all__ = ["format_configs", "format_data", "format_pipeline", "format_tasks"]

import fnmatch
from collections.abc import Mapping, Sequence

from lsst.pex.config import Config
from lsst.pipe.base.pipeline_graph import PipelineGraph

from .config_overrides import ConfigOverride


def _value(config: Config, dotted: str):
    for part in dotted.split("."):
        config = getattr(config, part)
    return config


def format_configs(graph: PipelineGraph, globs: Sequence[str]) -> str:
    """Return ``label.field = value`` lines for the config fields matching any of ``globs``.

    A pattern matches the dotted field name with or without its task label, case-insensitively
    (``--show config=*.scale``, ``--show config=toyScale.sc*``).
    """
    lines = []
    for label, node in graph.tasks.items():
        for name in sorted(node.config.names()):
            full = f"{label}.{name}"
            if any(fnmatch.fnmatch(n.lower(), g.lower()) for g in globs for n in (name, full)):
                lines.append(f"{full} = {_value(node.config, name)!r}")
    return "\n".join(lines) if lines else f"no config field matches {', '.join(globs)}"


def _subtasks(config: Config, prefix: str) -> list[str]:
    lines = []
    for name in config:
        value = getattr(config, name)
        target = getattr(value, "target", None)
        if target is not None and isinstance(getattr(value, "value", None), Config):
            lines.append(f"{prefix}.{name}: {target.__module__}.{target.__qualname__}")
            lines.extend(_subtasks(value.value, f"{prefix}.{name}"))
    return lines


def format_tasks(graph: PipelineGraph) -> str:
    """Return the task hierarchy: each task and its configurable subtasks, with their classes."""
    lines = []
    for label, node in graph.tasks.items():
        lines.append(f"{label}: {node.task_class_name}")
        lines.extend(_subtasks(node.config, label))
    return "\n".join(lines)


def format_pipeline(graph: PipelineGraph, overrides: Sequence[ConfigOverride]) -> str:
    """Return the pipeline: tasks, their inputs and outputs, and the overrides applied (in order)."""
    lines = ["tasks:"]
    for label, node in graph.tasks.items():
        lines.append(f"  {label}: {node.task_class_name}")
        lines.append(f"    dimensions: {', '.join(sorted(node.dimensions.names)) or '(none)'}")
        inputs = sorted(edge.parent_dataset_type_name for edge in node.inputs.values())
        outputs = sorted(edge.parent_dataset_type_name for edge in node.outputs.values())
        lines.append(f"    inputs: {', '.join(inputs)}")
        lines.append(f"    outputs: {', '.join(outputs)}")
    if overrides:
        lines.append("overrides (in order):")
        lines.extend(f"  {o}" for o in overrides)
    return "\n".join(lines)


def format_data(data_ids: Mapping[str, Sequence[str]], skipped: Mapping[str, int]) -> str:
    """Return the data IDs to process, per task, and how many are already done."""
    lines = []
    for label, ids in data_ids.items():
        done = skipped.get(label, 0)
        lines.append(f"{label}: {len(ids)} data IDs to process" + (f" ({done} already done)" if done else ""))
        lines.extend(f"  {data_id}" for data_id in ids)
    return "\n".join(lines)
