"""``-C FILE`` and ``-c name=value`` overrides, applied in the order given on the command line.

The driver's config is seen as in Gen2: ``config.field`` is a field of the driver's main task (the first
of `DriverSpec.config_labels`), and ``config.<label>.field`` a field of another of its tasks.  Values of
``-c`` are parsed as by ``pipetask -c`` (Python literals; other text stays a string).
"""

from __future__ import annotations

__all__ = [
    "ConfigOverride",
    "ConfigOverrideError",
    "DriverConfigView",
    "apply_overrides",
    "configure_pipeline",
]

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence

from lsst.pex.config import Config
from lsst.pipe.base import Pipeline
from lsst.pipe.base.configOverrides import ConfigOverrides
from lsst.pipe.base.pipeline_graph import PipelineGraph


class ConfigOverrideError(ValueError):
    """An override that cannot be applied (unknown field, bad value, unreadable file, invalid config)."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class ConfigOverride:
    """One command-line override.

    Attributes
    ----------
    kind : `str`
        ``"file"`` (``-C``) or ``"value"`` (``-c``).
    text : `str`
        The file name, or ``name=value``.
    """

    kind: str
    text: str

    def __str__(self) -> str:
        return f"-C {self.text}" if self.kind == "file" else f"-c {self.text}"


class DriverConfigView:
    """The ``config`` object seen by ``-C`` files: the main task's config, plus the other tasks by label.

    Parameters
    ----------
    configs : `dict` [`str`, `lsst.pex.config.Config`]
        Config per task label.
    main : `str`
        Label of the main task.
    labels : `tuple` [`str`, ...]
        Labels reachable as attributes.
    """

    def __init__(self, configs: Mapping[str, Config], main: str, labels: Sequence[str]):
        object.__setattr__(self, "_configs", configs)
        object.__setattr__(self, "_main", main)
        object.__setattr__(self, "_labels", tuple(labels))

    def _route(self, name: str) -> Config | None:
        if name in self._labels and name != self._main and not hasattr(self._configs[self._main], name):
            return self._configs[name]
        return None

    def __getattr__(self, name: str):
        routed = self._route(name)
        return routed if routed is not None else getattr(self._configs[self._main], name)

    def __setattr__(self, name: str, value) -> None:
        if self._route(name) is not None:
            raise AttributeError(f"cannot replace the config of task {name!r}; set its fields instead")
        setattr(self._configs[self._main], name, value)


def _split_target(
    name: str, main: str, labels: Sequence[str], configs: Mapping[str, Config]
) -> tuple[str, str]:
    """Return (label, field) for a ``-c`` name, routing ``<label>.field`` to that task."""
    head, dot, rest = name.partition(".")
    if dot and head in labels and (head == main or not hasattr(configs[main], head)):
        return head, rest
    return main, name


def apply_overrides(
    configs: dict[str, Config], overrides: Sequence[ConfigOverride], labels: Sequence[str]
) -> None:
    """Apply ``overrides`` in order to ``configs`` (modified in place).

    Parameters
    ----------
    configs : `dict` [`str`, `lsst.pex.config.Config`]
        Unfrozen config per task label.
    overrides : `list` [`ConfigOverride`]
        In command-line order.
    labels : `tuple` [`str`, ...]
        Tasks the overrides may reach; the first is the main task.

    Raises
    ------
    ConfigOverrideError
        Unknown field, invalid value, missing or failing file.
    """
    main = labels[0]
    for override in overrides:
        try:
            if override.kind == "file":
                if not os.path.isfile(override.text):
                    raise ConfigOverrideError(str(override), "no such file")
                view = DriverConfigView(configs, main, labels)
                with open(override.text) as stream:
                    code = stream.read()
                # The file's ``config`` is the view; the main config records the file's imports.
                configs[main].loadFromString(
                    code, root="__dia_pipe_main__", filename=override.text, extraLocals={"config": view}
                )
            else:
                name, sep, value = override.text.partition("=")
                if not sep or not name:
                    raise ConfigOverrideError(str(override), "expected name=value")
                label, field = _split_target(name.strip(), main, labels, configs)
                single = ConfigOverrides()
                single.addValueOverride(field, value)
                single.applyTo(configs[label])
        except ConfigOverrideError:
            raise
        except Exception as exc:  # noqa: BLE001 - pex_config raises many types for bad overrides
            raise ConfigOverrideError(str(override), _describe(exc)) from exc


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def configure_pipeline(
    pipeline: Pipeline,
    overrides: Sequence[ConfigOverride],
    labels: Sequence[str],
    extra: Callable[[dict[str, Config]], None] | None = None,
) -> PipelineGraph:
    """Return the pipeline graph with ``overrides`` (then ``extra``) applied and every config validated.

    Parameters
    ----------
    pipeline : `lsst.pipe.base.Pipeline`
        The driver's pipeline (its own config overrides are applied first).
    overrides : `list` [`ConfigOverride`]
        Command-line overrides, in order.
    labels : `tuple` [`str`, ...]
        Tasks the overrides may reach (first: main task).
    extra : callable, optional
        Further changes, ``extra(configs)``.

    Raises
    ------
    ConfigOverrideError
        An override fails, a label is not in the pipeline, or a config does not validate.
    """
    base = pipeline.to_graph()
    missing = [label for label in labels if label not in base.tasks]
    if missing:
        raise ConfigOverrideError(
            "driver", f"task label(s) {missing} not in the pipeline ({', '.join(base.tasks)})"
        )
    configs = {label: node.config.copy() for label, node in base.tasks.items()}
    apply_overrides(configs, overrides, labels)
    if extra is not None:
        extra(configs)
    for label, config in configs.items():
        try:
            config.validate()
        except Exception as exc:  # noqa: BLE001 - pex_config validation errors have several types
            raise ConfigOverrideError(f"config of {label}", _describe(exc)) from exc
    try:
        base.reconfigure_tasks(**configs)
    except Exception as exc:  # noqa: BLE001 - connection construction may reject a config
        raise ConfigOverrideError("pipeline", _describe(exc)) from exc
    return base
