"""Tests of the Gen2 argument grammar: --id ranges and unions, override order, option conflicts."""

from __future__ import annotations

import pytest
from lsst.daf.butler import DimensionUniverse
from lsst.dia.pipe.cli import (
    CCD_KEYS,
    ConfigOverride,
    ConfigOverrideError,
    DataIdError,
    build_query,
    configure_pipeline,
    parse_arguments,
    parse_id_tokens,
    parse_id_values,
    parse_walltime,
)
from lsst.dia.pipe.cli.tests.toy_driver import TOY_SPEC
from lsst.dia.pipe.execution.tests.toy_tasks import make_toy_pipeline
from lsst.pex.config import FieldValidationError

LABELS = ("toyScale", "toySum")


def test_id_values_ranges_steps_and_carets():
    assert parse_id_values("1^2..5^7..11:2") == (1, 2, 3, 4, 5, 7, 9, 11)
    assert parse_id_values("3") == (3,)
    assert parse_id_values("g^r^LSST-i") == ("g", "r", "LSST-i")
    # Duplicates collapse, first occurrence order kept.
    assert parse_id_values("5^1..3^2") == (5, 1, 2, 3)
    assert parse_id_values("-2..1") == (-2, -1, 0, 1)


@pytest.mark.parametrize("bad", ["5..3", "1..5:0", "1...3", "1..b", "", "1^^2", "1..2:x"])
def test_id_values_rejects_malformed(bad):
    with pytest.raises(DataIdError):
        parse_id_values(bad)


def test_id_tokens_unknown_key_lists_known_keys():
    with pytest.raises(DataIdError) as info:
        parse_id_tokens(["visit=1", "raft=2"], CCD_KEYS)
    message = str(info.value)
    assert "unknown key 'raft'" in message
    for key in ("visit", "detector", "ccd", "filter"):
        assert key in message


@pytest.mark.parametrize("tokens", [["visit"], ["=3"], ["visit=1", "visit=2"], ["visit=1..0"]])
def test_id_tokens_rejects(tokens):
    with pytest.raises(DataIdError):
        parse_id_tokens(tokens, CCD_KEYS)


def test_query_cross_product_and_union():
    universe = DimensionUniverse()
    first = parse_id_tokens(["visit=1^3..5:2", "ccd=0..1"], CCD_KEYS)
    second = parse_id_tokens(["visit=9", "filter=g"], CCD_KEYS)
    where, bind = build_query([first, second], CCD_KEYS, universe)
    assert where == (
        "(visit IN (:id0_visit_visit) AND detector IN (:id0_ccd_detector)) OR "
        "(visit IN (:id1_visit_visit) AND (band IN (:id1_filter_band) OR "
        "physical_filter IN (:id1_filter_physical_filter)))"
    )
    assert bind == {
        "id0_visit_visit": [1, 3, 5],
        "id0_ccd_detector": [0, 1],
        "id1_visit_visit": [9],
        "id1_filter_band": ["g"],
        "id1_filter_physical_filter": ["g"],
    }


def test_query_empty_id_selects_everything_and_types_are_checked():
    universe = DimensionUniverse()
    assert build_query([], CCD_KEYS, universe) == ("", {})
    assert build_query([parse_id_tokens([], CCD_KEYS)], CCD_KEYS, universe) == ("", {})
    with pytest.raises(DataIdError, match="integers"):
        build_query([parse_id_tokens(["visit=abc"], CCD_KEYS)], CCD_KEYS, universe)


def test_arguments_keep_override_order_and_parse_everything():
    args = parse_arguments(
        TOY_SPEC,
        [
            "/repo",
            "--rerun",
            "in:out",
            "--input",
            "a,b",
            "--input",
            "c",
            "-C",
            "one.py",
            "-c",
            "scale=3",
            "offset=1",
            "-C",
            "two.py",
            "-c",
            "toySum.saveLogOutput=False",
            "--id",
            "visit=1..3",
            "ccd=0",
            "--id",
            "visit=7",
            "--selectId",
            "visit=2",
            "--show",
            "config=*scale*",
            "tasks",
            "run",
            "-L",
            "DEBUG",
            "lsst.dia=warn",
            "--longlog",
            "-j",
            "3",
            "--timeout",
            "30",
            "--doraise",
            "--clobber-output",
        ],
    )
    assert [str(o) for o in args.overrides] == [
        "-C one.py",
        "-c scale=3",
        "-c offset=1",
        "-C two.py",
        "-c toySum.saveLogOutput=False",
    ]
    assert (args.input_rerun, args.output) == ("in", "out")
    assert args.inputs == ("a", "b", "c")
    assert [dict(s.values) for s in args.ids] == [{"visit": (1, 2, 3), "ccd": (0,)}, {"visit": (7,)}]
    assert [dict(s.values) for s in args.select_ids] == [{"visit": (2,)}]
    assert args.show.config_globs == ("*scale*",) and args.show.tasks and args.show.run
    assert not args.show.stop_after
    assert args.log_settings.levels == (("", 10), ("lsst.dia", 30)) and args.log_settings.long_format
    assert (args.local.cores, args.local.timeout, args.local.doraise) == (3, 30.0, True)
    assert args.clobber_output and not args.clobber_config
    assert args.batch is None
    assert args.inputs != TOY_SPEC.default_inputs


def test_arguments_defaults():
    args = parse_arguments(TOY_SPEC, ["/repo", "--rerun", "out"])
    assert args.input_rerun is None and args.inputs == TOY_SPEC.default_inputs
    assert args.ids == () and args.local.cores == 1 and args.local.in_process
    assert not args.show.anything


@pytest.mark.parametrize(
    "argv, message",
    [
        (["/r"], "--rerun"),
        (["/r", "--rerun", "x", "--cores", "0"], "must be >= 1"),
        (["/r", "--rerun", "x", "--batch-type", "pbs", "--cores", "2"], "--cores is for local runs"),
        (["/r", "--rerun", "x", "--batch-type", "slurm", "--timeout", "5"], "--timeout is for local runs"),
        (["/r", "--rerun", "x", "--nodes", "2", "--queue", "q"], "--nodes, --queue need --batch-type"),
        (["/r", "--rerun", "x", "--batch-type", "slurm", "--time", "5", "--walltime", "10"], "not both"),
        (["/r", "--rerun", "x", "--batch-type", "smp", "--nodes", "2"], "--nodes must be 1"),
        (["/r", "--rerun", "x", "--batch-type", "lsf"], "invalid choice"),
        (["/r", "--rerun", "x", "--id", "foo=1"], "unknown key 'foo'"),
        (["/r", "--rerun", "x", "--id", "visit=2..1"], "empty range"),
        (["/r", "--rerun", "x", "--show", "everything"], "invalid item"),
        (["/r", "--rerun", "x", "-L", "LOUD"], "unknown level"),
        (["/r", "--rerun", "a b"], "Invalid rerun name"),
        (["/r", "--rerun", "x", "--walltime", "1:xx"], "--walltime"),
    ],
)
def test_argument_errors_exit_2_with_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        parse_arguments(TOY_SPEC, argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("toyDriver.py: error: ")
    assert message in err


def test_walltime_formats():
    assert parse_walltime("90") == 90.0
    assert parse_walltime("1:30:00") == 5400.0
    assert parse_walltime("45:00") == 2700.0
    assert parse_walltime("1-02:00:00") == 93600.0


def _scale_after(overrides, tmp_path):
    graph = configure_pipeline(make_toy_pipeline(), overrides, LABELS)
    return graph.tasks["toyScale"].config


def test_overrides_apply_in_command_line_order(tmp_path):
    five = tmp_path / "five.py"
    five.write_text("config.scale = 5.0\nconfig.toySum.saveLogOutput = False\n")
    seven = tmp_path / "seven.py"
    seven.write_text("config.scale = 7.0\nconfig.offset = config.scale + 1\n")
    file_ = lambda p: ConfigOverride("file", str(p))  # noqa: E731
    value = lambda t: ConfigOverride("value", t)  # noqa: E731
    assert _scale_after([file_(five), value("scale=3")], tmp_path).scale == 3.0
    assert _scale_after([value("scale=3"), file_(five)], tmp_path).scale == 5.0
    config = _scale_after([file_(five), value("scale=3"), file_(seven)], tmp_path)
    assert (config.scale, config.offset) == (7.0, 8.0)
    config = _scale_after([file_(seven), value("offset=-1"), value("toyScale.scale=2.5")], tmp_path)
    assert (config.scale, config.offset) == (2.5, -1.0)
    graph = configure_pipeline(make_toy_pipeline(), [file_(five), value("failVisits=[1, 3]")], LABELS)
    assert graph.tasks["toySum"].config.saveLogOutput is False
    assert list(graph.tasks["toyScale"].config.failVisits) == [1, 3]
    # Frozen and ready for execution.
    with pytest.raises(FieldValidationError):
        graph.tasks["toyScale"].config.scale = 1.0


@pytest.mark.parametrize(
    "override, message",
    [
        (ConfigOverride("value", "nosuch=1"), "no attribute nosuch"),
        (ConfigOverride("value", "toySum.nosuch=1"), "ToySumConfig has no attribute nosuch"),
        (ConfigOverride("value", "scale=abc"), "incorrect type"),
        (ConfigOverride("value", "scale"), "expected name=value"),
        (ConfigOverride("file", "/no/such/file.py"), "no such file"),
    ],
)
def test_bad_overrides_are_rejected(override, message):
    with pytest.raises(ConfigOverrideError, match=message):
        configure_pipeline(make_toy_pipeline(), [override], LABELS)


def test_bad_override_file_field_is_rejected(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("config.scale = 2.0\nconfig.toySum.nosuch = 1\n")
    with pytest.raises(ConfigOverrideError, match="nosuch"):
        configure_pipeline(make_toy_pipeline(), [ConfigOverride("file", str(path))], LABELS)
