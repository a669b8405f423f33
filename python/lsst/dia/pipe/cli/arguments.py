"""The Gen2 command-line grammar shared by every dia_pipe driver.

Modelled on ``lsst.pipe.base.argumentParser`` (Gen2 CmdLineTask) and ``lsst.ctrl.pool.parallel``
(BatchArgumentParser)::

    driver.py REPO --rerun [IN:]OUT [--input COLL ...] [--id k=v^v a..b a..b:step ...] [--selectId ...]
              [-C FILE ...] [-c name=value ...] [--show config[=GLOB]|data|tasks|pipeline|run ...]
              [-L [comp=]LEVEL ...] [--longlog] [--doraise] [--profile FILE]
              [--clobber-output] [--clobber-config] [--cores N | -j N] [--timeout SEC]
              [--batch-type none|smp|slurm|pbs] [--nodes N] [--procs N] [--time SEC | --walltime T]
              [--queue Q] [--job NAME] [--batch-output DIR] [--batch-submit FLAGS] [--batch-options OPTS]
              [--batch-verbose] [--dry-run]

`make_parser` builds the `argparse.ArgumentParser`; `parse_arguments` parses and checks everything that
can be checked without the repository, returning a `DriverArguments`.  Any error exits with status 2 and
a one-line ``prog: error: ...`` message before anything is read or written.
"""

from __future__ import annotations

__all__ = [
    "DriverArguments",
    "LOG_LEVELS",
    "ShowRequest",
    "make_parser",
    "parse_arguments",
    "parse_walltime",
]

import argparse
import dataclasses
import logging
import re
import shlex
from collections.abc import Sequence

from lsst.utils.logging import TRACE, VERBOSE

from ..execution.request import BATCH_TYPES, BatchOptions, LocalOptions
from ..execution.worker import LogSettings
from ..repo.collections import rerun_collection
from .config_overrides import ConfigOverride
from .data_ids import DataIdError, IdSelection, parse_id_tokens
from .spec import DriverSpec

#: Accepted ``-L`` level names (case-insensitive).
LOG_LEVELS = {
    "TRACE": TRACE,
    "DEBUG": logging.DEBUG,
    "VERBOSE": VERBOSE,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
    "CRITICAL": logging.CRITICAL,
}

_SHOW_CHOICES = ("config", "data", "tasks", "pipeline", "run")

#: Options that only make sense with a batch system.
_BATCH_ONLY = (
    ("nodes", "--nodes"),
    ("procs", "--procs"),
    ("time", "--time"),
    ("walltime", "--walltime"),
    ("queue", "--queue"),
    ("job", "--job"),
    ("batch_output", "--batch-output"),
    ("batch_submit", "--batch-submit"),
    ("batch_options", "--batch-options"),
    ("batch_verbose", "--batch-verbose"),
)


@dataclasses.dataclass(frozen=True)
class ShowRequest:
    """What ``--show`` asked for.

    Attributes
    ----------
    config_globs : `tuple` [`str`, ...] or `None`
        Glob patterns of config fields to print (``("*",)`` for ``--show config``); `None`: no config.
    data, tasks, pipeline : `bool`
        Print the data IDs to process, the task hierarchy, the pipeline.
    run : `bool`
        Carry on with the run after showing (``--show run``).
    """

    config_globs: tuple[str, ...] | None = None
    data: bool = False
    tasks: bool = False
    pipeline: bool = False
    run: bool = False

    @property
    def anything(self) -> bool:
        """Whether anything is to be shown."""
        return self.config_globs is not None or self.data or self.tasks or self.pipeline

    @property
    def stop_after(self) -> bool:
        """Whether to stop after showing."""
        return self.anything and not self.run


@dataclasses.dataclass(frozen=True)
class DriverArguments:
    """Everything the command line said, checked for consistency.

    Attributes
    ----------
    repo : `str`
        Repository.
    output, input_rerun : `str`, `str` or `None`
        ``OUT`` and ``IN`` of ``--rerun [IN:]OUT``.
    inputs : `tuple` [`str`, ...]
        Input collections.
    ids, select_ids : `list` [`IdSelection`]
        ``--id`` and ``--selectId`` options.
    overrides : `tuple` [`ConfigOverride`, ...]
        ``-C``/``-c`` in command-line order.
    show : `ShowRequest`
        ``--show``.
    log_settings : `LogSettings`
        ``-L`` and ``--longlog``.
    profile : `str` or `None`
        ``--profile`` output file.
    clobber_output, clobber_config, dry_run : `bool`
        As named.
    local : `LocalOptions`
        ``--cores``, ``--timeout``, ``--doraise``.
    batch : `BatchOptions` or `None`
        Batch options (`None` for ``--batch-type none``).
    namespace : `argparse.Namespace`
        The raw namespace (driver-specific options live here).
    """

    repo: str
    output: str
    input_rerun: str | None
    inputs: tuple[str, ...]
    ids: tuple[IdSelection, ...]
    select_ids: tuple[IdSelection, ...]
    overrides: tuple[ConfigOverride, ...]
    show: ShowRequest
    log_settings: LogSettings
    profile: str | None
    clobber_output: bool
    clobber_config: bool
    dry_run: bool
    local: LocalOptions
    batch: BatchOptions | None
    namespace: argparse.Namespace

    @property
    def selection(self) -> str:
        """The data selection as typed (for messages)."""
        parts = [f"--id {s}" for s in self.ids] + [f"--selectId {s}" for s in self.select_ids]
        return " ".join(parts) or "all data"


class _OrderedOverrideAction(argparse.Action):
    """Append ``-C`` files and ``-c`` values to one list, keeping their command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        overrides = list(getattr(namespace, self.dest) or [])
        overrides.extend(ConfigOverride(self.const, value) for value in values)
        setattr(namespace, self.dest, overrides)


class _AppendGroupAction(argparse.Action):
    """Append the list of tokens of one ``--id`` (possibly empty) to a list of groups."""

    def __call__(self, parser, namespace, values, option_string=None):
        groups = list(getattr(namespace, self.dest) or [])
        groups.append(list(values))
        setattr(namespace, self.dest, groups)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid integer {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def parse_walltime(text: str) -> float:
    """Parse a walltime given as seconds (``5400``) or ``[[D-]HH:]MM:SS`` into seconds.

    Raises
    ------
    argparse.ArgumentTypeError
        Malformed or non-positive value.
    """
    match = re.fullmatch(r"(?:(\d+)-)?(?:(\d+):)?(\d+):(\d+)", text.strip())
    if match:
        days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
        value = ((days * 24 + hours) * 60 + minutes) * 60 + seconds
    else:
        value = _positive_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"walltime must be > 0, got {text!r}")
    return float(value)


class _DriverArgumentParser(argparse.ArgumentParser):
    """An `argparse.ArgumentParser` whose errors are one line: ``prog: error: message (see --help)``."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def make_parser(spec: DriverSpec) -> argparse.ArgumentParser:
    """Return the argument parser of the driver described by ``spec``."""
    parser = _DriverArgumentParser(
        prog=spec.name,
        description=spec.description or None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "--id grammar: key=v1^v2^a..b^a..b:step; keys in one --id are ANDed, several --id are ORed.\n"
            f"--id keys: {', '.join(spec.id_keys)}"
            + (f"; --selectId keys: {', '.join(spec.select_keys)}" if spec.select_keys else "")
            + ".\nfilter= matches either the band (g) or the physical filter name of the instrument."
        ),
    )
    parser.add_argument("repo", metavar="REPO", help="butler repository root")
    parser.add_argument(
        "--rerun", metavar="[IN:]OUT", required=True, help="output rerun OUT (reading rerun IN)"
    )
    parser.add_argument(
        "--input",
        metavar="COLL",
        action="append",
        help="input collection(s), repeatable or comma-separated "
        f"(default: {', '.join(spec.default_inputs)})",
    )
    parser.add_argument(
        "--id",
        dest="ids",
        nargs="*",
        action=_AppendGroupAction,
        metavar="KEY=VALUE",
        help="data IDs to process",
    )
    if spec.select_keys:
        parser.add_argument(
            "--selectId",
            dest="select_ids",
            nargs="*",
            action=_AppendGroupAction,
            metavar="KEY=VALUE",
            help="restrict the inputs (e.g. visits) that contribute",
        )
    parser.add_argument(
        "-C",
        "--configfile",
        dest="overrides",
        nargs="+",
        action=_OrderedOverrideAction,
        const="file",
        metavar="FILE",
        help="config override file(s), applied in command-line order",
    )
    parser.add_argument(
        "-c",
        "--config",
        dest="overrides",
        nargs="+",
        action=_OrderedOverrideAction,
        const="value",
        metavar="NAME=VALUE",
        help="config override(s); NAME may start with a task label",
    )
    parser.add_argument(
        "--show",
        nargs="+",
        action="extend",
        default=[],
        metavar="ITEM",
        help="print config[=GLOB], data, tasks or pipeline, then exit unless 'run' is also given",
    )
    parser.add_argument(
        "-L",
        "--loglevel",
        nargs="+",
        action="extend",
        default=[],
        metavar="[COMP=]LEVEL",
        help=f"logging level, globally or for a logger ({', '.join(LOG_LEVELS)})",
    )
    parser.add_argument("--longlog", action="store_true", help="long log line format")
    parser.add_argument("--doraise", action="store_true", help="stop and raise at the first failure")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the run to FILE")
    parser.add_argument(
        "--clobber-output", action="store_true", help="redo data IDs already done in the rerun"
    )
    parser.add_argument(
        "--clobber-config",
        action="store_true",
        help="accept a config different from the one stored in the rerun",
    )
    parser.add_argument(
        "--cores",
        "-j",
        "--processes",
        dest="cores",
        type=_positive_int,
        metavar="N",
        help="number of local worker processes (default 1)",
    )
    parser.add_argument(
        "--timeout", type=_positive_float, metavar="SEC", help="time limit per data ID (local)"
    )
    batch = parser.add_argument_group("batch submission (ctrl_pool options; bps + Parsl)")
    batch.add_argument("--batch-type", choices=("none", *BATCH_TYPES), default="none", help="batch system")
    batch.add_argument("--nodes", type=_positive_int, metavar="N", help="nodes per batch job")
    batch.add_argument("--procs", type=_positive_int, metavar="N", help="processes (cores) per node")
    batch.add_argument("--time", type=_positive_float, metavar="SEC", help="expected seconds per data ID")
    batch.add_argument(
        "--walltime", type=parse_walltime, metavar="T", help="job time limit: seconds or HH:MM:SS"
    )
    batch.add_argument("--queue", help="queue (PBS) or partition (Slurm)")
    batch.add_argument("--job", help="batch job name")
    batch.add_argument("--batch-output", metavar="DIR", help="directory for submission files and logs")
    batch.add_argument("--batch-submit", metavar="FLAGS", help="extra scheduler flags, e.g. '--account=dia'")
    batch.add_argument("--batch-options", metavar="OPTS", help="extra scheduler directives, e.g. '--mem=8G'")
    batch.add_argument("--batch-verbose", action="store_true", help="echo bps/Parsl output")
    batch.add_argument("--dry-run", action="store_true", help="plan (and write batch files) without running")
    if spec.add_arguments is not None:
        spec.add_arguments(parser)
    return parser


def _parse_rerun(text: str) -> tuple[str | None, str]:
    head, sep, tail = text.partition(":")
    input_rerun, output = (head, tail) if sep else (None, head)
    for name in (input_rerun, output) if sep else (output,):
        rerun_collection(name or "")  # raises ValueError for an invalid name
    return input_rerun, output


def _parse_show(items: Sequence[str]) -> ShowRequest:
    globs: list[str] | None = None
    flags = dict.fromkeys(("data", "tasks", "pipeline", "run"), False)
    for item in items:
        name, sep, pattern = item.partition("=")
        if name not in _SHOW_CHOICES or (sep and name != "config"):
            raise ValueError(
                f"--show: invalid item {item!r} (choose from config[=GLOB], data, tasks, pipeline, run)"
            )
        if name == "config":
            globs = (globs or []) + [pattern if sep else "*"]
        else:
            flags[name] = True
    return ShowRequest(tuple(globs) if globs is not None else None, **flags)


def _parse_log_levels(items: Sequence[str], long_format: bool) -> LogSettings:
    levels = []
    for item in items:
        component, sep, level = item.rpartition("=")
        if level.upper() not in LOG_LEVELS:
            raise ValueError(f"-L: unknown level {level!r} (choose from {', '.join(LOG_LEVELS)})")
        levels.append((component if sep else "", LOG_LEVELS[level.upper()]))
    return LogSettings(tuple(levels), long_format)


def _batch_options(ns: argparse.Namespace) -> BatchOptions | None:
    given = [flag for attr, flag in _BATCH_ONLY if getattr(ns, attr) not in (None, False)]
    if ns.batch_type == "none":
        if given:
            verb = "needs" if len(given) == 1 else "need"
            raise ValueError(f"{', '.join(given)} {verb} --batch-type slurm, pbs or smp")
        return None
    if ns.cores is not None:
        raise ValueError(f"--cores is for local runs; with --batch-type {ns.batch_type} use --nodes/--procs")
    if ns.timeout is not None:
        raise ValueError(
            f"--timeout is for local runs; with --batch-type {ns.batch_type} use --time or --walltime"
        )
    if ns.time is not None and ns.walltime is not None:
        raise ValueError("give either --time (per data ID) or --walltime (per job), not both")
    if ns.batch_type == "smp":
        if (ns.nodes or 1) > 1:
            raise ValueError("--batch-type smp runs on this machine: --nodes must be 1")
        if ns.queue is not None:
            raise ValueError("--batch-type smp has no queue (--queue)")
    return BatchOptions(
        batch_type=ns.batch_type,
        nodes=ns.nodes or 1,
        procs=ns.procs,
        time_per_quantum=ns.time,
        walltime=ns.walltime,
        queue=ns.queue,
        job_name=ns.job,
        output_dir=ns.batch_output,
        submit_options=tuple(shlex.split(ns.batch_submit or "")),
        scheduler_options=tuple(shlex.split(ns.batch_options or "")),
        verbose=ns.batch_verbose,
    )


def parse_arguments(spec: DriverSpec, argv: Sequence[str] | None = None) -> DriverArguments:
    """Parse and check a driver command line.

    Parameters
    ----------
    spec : `DriverSpec`
        The driver.
    argv : `list` [`str`], optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    arguments : `DriverArguments`
        The checked arguments.

    Raises
    ------
    SystemExit
        Status 2 (argparse style message) for any error; status 0 after ``--help``.
    """
    parser = make_parser(spec)
    ns = parser.parse_args(argv)
    try:
        input_rerun, output = _parse_rerun(ns.rerun)
        ids = tuple(parse_id_tokens(tokens, spec.id_keys, "--id") for tokens in (ns.ids or []))
        select_ids = tuple(
            parse_id_tokens(tokens, spec.select_keys, "--selectId")
            for tokens in (getattr(ns, "select_ids", None) or [])
        )
        inputs = tuple(c.strip() for item in (ns.input or []) for c in item.split(",") if c.strip())
        show = _parse_show(ns.show)
        log_settings = _parse_log_levels(ns.loglevel, ns.longlog)
        batch = _batch_options(ns)
        local = LocalOptions(cores=ns.cores or 1, timeout=ns.timeout, doraise=ns.doraise)
    except (DataIdError, ValueError) as exc:
        parser.error(str(exc))
    return DriverArguments(
        repo=ns.repo,
        output=output,
        input_rerun=input_rerun,
        inputs=inputs or spec.default_inputs,
        ids=ids,
        select_ids=select_ids,
        overrides=tuple(ns.overrides or ()),
        show=show,
        log_settings=log_settings,
        profile=ns.profile,
        clobber_output=ns.clobber_output,
        clobber_config=ns.clobber_config,
        dry_run=ns.dry_run,
        local=local,
        batch=batch,
        namespace=ns,
    )
