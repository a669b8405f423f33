"""DIAObject summary statistics against direct per-object formulas, SDM schema, and the id table."""

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from astropy import units as u
from astropy.table import Table

import lsst.sdm.schemas
from lsst.dia.pipe.association import (
    MissingColumnsError,
    make_dia_object_id_arrow,
    make_dia_object_id_table,
    radec_to_unit,
    summarize_dia_objects,
)

APDB_YAML = f"{lsst.sdm.schemas.__path__[0]}/apdb.yaml"
SDM_DTYPES = {"double": np.float64, "float": np.float32, "int": np.int32, "long": np.int64}


def _catalog():
    """Three objects: 0 (g and r, with NaNs; RA straddling 0), 1 (g, one point), 2 (only NaN fluxes)."""
    rng = np.random.default_rng(21)
    n0 = 12
    obj = np.r_[np.zeros(n0, int), 1, 2, 2, -1]
    n = len(obj)
    ra = np.r_[rng.normal(0, 0.1, n0) / 3600 % 360, 10.0, 20.0, 20.0, 30.0]
    dec = np.r_[-5 + rng.normal(0, 0.1, n0) / 3600, 1.0, 2.0, 2.0, 3.0]
    mjd = 60000.0 + rng.permutation(np.arange(n)) * 1.7
    band = np.array(["g", "r"] * (n0 // 2) + ["g", "g", "g", "r"])
    flux = rng.normal(1000.0, 300.0, n) + 20.0 * (mjd - 60000.0)
    err = rng.uniform(50.0, 150.0, n)
    flux[[1, 4]] = np.nan  # skipped
    err[6] = np.nan  # skipped
    flux[[13, 14]] = np.nan
    sci = flux + 5000.0
    sci[2] = np.nan
    table = Table(
        {
            "diaSourceId": np.arange(n, dtype=np.int64) * 7 + 3,
            "band": band,
            "midpointMjdTai": mjd,
            "ra": ra,
            "dec": dec,
            "psfFlux": flux,
            "psfFluxErr": err,
            "scienceFlux": sci,
            "scienceFluxErr": err * 1.5,
        }
    )
    return table, obj


def _stetson_j_direct(f, e):
    """Stetson (1996) J for unpaired points with his robust iterated mean (plain loop reference)."""
    n = len(f)
    w = 1 / e**2
    mean = np.sum(w * f) / np.sum(w)
    for _ in range(1000):
        delta = np.sqrt(n / (n - 1)) * (f - mean) / e
        new = np.average(f, weights=w / (1 + (np.abs(delta) / 2.0) ** 2))
        if abs(new - mean) < 1e-10:
            break
        mean = new
    delta = np.sqrt(n / (n - 1)) * (f - new) / e
    p = delta**2 - 1
    return np.mean(np.sign(p) * np.sqrt(np.abs(p)))


def test_statistics_match_direct_formulas():
    table, obj = _catalog()
    ids = np.array([101, 102, 103], dtype=np.int64)
    out = summarize_dia_objects(table, obj, ["g", "r", "i"], ids)
    assert len(out) == 3
    np.testing.assert_array_equal(out["diaObjectId"], ids)
    np.testing.assert_array_equal(out["nDiaSources"], [12, 1, 2])
    for band in "gr":
        sel = (obj == 0) & (np.asarray(table["band"]) == band)
        f, e, t = (np.asarray(table[c])[sel] for c in ("psfFlux", "psfFluxErr", "midpointMjdTai"))
        ok = np.isfinite(f) & np.isfinite(e)
        f, e, t = f[ok], e[ok], t[ok]
        assert len(f) >= 3
        w = 1 / e**2
        mean = np.sum(w * f) / np.sum(w)
        row = out[0]
        assert row[f"{band}_psfFluxNdata"] == len(f)
        assert row[f"{band}_psfFluxMean"] == pytest.approx(mean, rel=1e-6)
        assert row[f"{band}_psfFluxMeanErr"] == pytest.approx(1 / np.sqrt(np.sum(w)), rel=1e-6)
        assert row[f"{band}_psfFluxSigma"] == pytest.approx(np.std(f, ddof=1), rel=1e-6)
        assert row[f"{band}_psfFluxChi2"] == pytest.approx(np.sum(w * (f - mean) ** 2), rel=1e-9)
        assert row[f"{band}_psfFluxMin"] == pytest.approx(f.min(), rel=1e-6)
        assert row[f"{band}_psfFluxMax"] == pytest.approx(f.max(), rel=1e-6)
        assert row[f"{band}_psfFluxErrMean"] == pytest.approx(e.mean(), rel=1e-6)
        order = np.argsort(t)
        assert row[f"{band}_psfFluxMaxSlope"] == pytest.approx(
            np.max(np.diff(f[order]) / np.diff(t[order])), rel=1e-5
        )
        slope, intercept = np.polyfit(t, f, 1, w=1 / e)
        assert row[f"{band}_psfFluxLinearSlope"] == pytest.approx(slope, rel=1e-8)
        assert row[f"{band}_psfFluxLinearIntercept"] == pytest.approx(intercept, rel=1e-8)
        assert row[f"{band}_psfFluxStetsonJ"] == pytest.approx(_stetson_j_direct(f, e), rel=1e-5, abs=1e-7)
        s, se = (np.asarray(table[c])[sel] for c in ("scienceFlux", "scienceFluxErr"))
        ok = np.isfinite(s) & np.isfinite(se)
        ws = 1 / se[ok] ** 2
        assert row[f"{band}_scienceFluxMean"] == pytest.approx(np.sum(ws * s[ok]) / np.sum(ws), rel=1e-6)
        assert row[f"{band}_scienceFluxMeanErr"] == pytest.approx(1 / np.sqrt(np.sum(ws)), rel=1e-6)


def test_single_point_nan_points_and_absent_band():
    table, obj = _catalog()
    out = summarize_dia_objects(table, obj, ["g", "r", "i"], np.array([1, 2, 3]))
    single = out[1]
    assert single["g_psfFluxNdata"] == 1
    assert single["g_psfFluxMean"] == pytest.approx(table["psfFlux"][12], rel=1e-6)
    assert single["g_psfFluxChi2"] == 0.0
    for name in ("g_psfFluxSigma", "g_psfFluxLinearSlope", "g_psfFluxStetsonJ", "g_psfFluxMaxSlope", "raErr"):
        assert np.isnan(single[name]), name
    all_nan = out[2]  # two g points, both NaN flux: nothing usable, no NaN leaks into other objects
    assert all_nan["g_psfFluxNdata"] == 0 and np.isnan(all_nan["g_psfFluxMean"])
    assert all_nan["nDiaSources"] == 2
    assert np.all(out["i_psfFluxNdata"] == 0) and np.all(np.isnan(out["i_psfFluxMean"]))
    assert np.all(np.isfinite(out["g_psfFluxMean"][:2]))


def test_masked_flux_is_skipped_like_nan():
    table, obj = _catalog()
    ids = np.array([1, 2, 3])
    reference = summarize_dia_objects(table, obj, ["g"], ids)
    masked = Table(table, masked=True)
    masked["psfFlux"].mask[0] = True  # a g point of object 0
    out = summarize_dia_objects(masked, obj, ["g"], ids)
    assert out["g_psfFluxNdata"][0] == reference["g_psfFluxNdata"][0] - 1
    assert np.isfinite(out["g_psfFluxMean"][0])
    assert out["g_psfFluxMean"][0] != reference["g_psfFluxMean"][0]


def test_position_is_spherical_mean_across_ra_zero():
    table, obj = _catalog()
    out = summarize_dia_objects(table, obj, ["g"], np.array([1, 2, 3]))
    sel = obj == 0
    vectors = radec_to_unit(table["ra"][sel], table["dec"][sel])
    mean = vectors.sum(0) / np.linalg.norm(vectors.sum(0))
    got = radec_to_unit(out["ra"][0], out["dec"][0])
    assert np.linalg.norm(got - mean) < 1e-12
    assert out["ra"][0] > 359.9 or out["ra"][0] < 0.1  # not ~180 from a linear RA average
    # Standard error of the mean from the scatter: ~0.1"/sqrt(12) per axis.
    err_arcsec = np.array([out["raErr"][0], out["decErr"][0]]) * 3600
    assert np.all((err_arcsec > 0.01) & (err_arcsec < 0.06))
    dec_direct = np.std(np.asarray(table["dec"])[sel], ddof=1) / np.sqrt(sel.sum()) * 3600
    assert err_arcsec[1] == pytest.approx(dec_direct, rel=1e-3)
    assert out["firstDiaSourceMjdTai"][0] == table["midpointMjdTai"][sel].min()
    assert out["lastDiaSourceMjdTai"][0] == table["midpointMjdTai"][sel].max()


def test_position_weighted_by_diasource_errors():
    """Three precise detections (0.01") at the true position and three poor ones (0.2") 0.3" east: the mean sits
    within 0.01" of the truth (the plain mean would be 0.15" off) and its error is the formal 0.01"/sqrt(3)
    where the scatter is smaller; a single detection keeps its own error."""
    dec0 = 10.0
    offset = 0.3 / 3600 / np.cos(np.radians(dec0))
    table = Table({
        "ra": np.r_[np.full(3, 50.0), np.full(3, 50.0 + offset), 60.0],
        "dec": np.full(7, dec0),
        "raErr": np.r_[np.full(3, 0.01), np.full(3, 0.2), 0.05] / 3600,
        "decErr": np.r_[np.full(3, 0.01), np.full(3, 0.2), 0.05] / 3600,
        "midpointMjdTai": 60000.0 + np.arange(7.0),
        "band": ["g"] * 7,
        "psfFlux": np.full(7, 100.0), "psfFluxErr": np.full(7, 10.0),
        "scienceFlux": np.full(7, 100.0), "scienceFluxErr": np.full(7, 10.0),
    })
    out = summarize_dia_objects(table, np.r_[np.zeros(6, int), 1], ["g"], np.array([1, 2]))
    east = (out["ra"][0] - 50.0) * np.cos(np.radians(dec0)) * 3600
    assert abs(east) < 0.01 and abs(out["dec"][0] - dec0) * 3600 < 1e-6
    assert out["decErr"][0] * 3600 == pytest.approx(0.01 / np.sqrt(3), rel=0.01)
    assert out["raErr"][0] * 3600 > out["decErr"][0] * 3600  # the 0.3" scatter of the poor detections
    assert out["raErr"][1] * 3600 == pytest.approx(0.05, rel=1e-6)


def test_columns_follow_apdb_schema():
    table, obj = _catalog()
    out = summarize_dia_objects(table, obj, list("ugrizy"), np.array([1, 2, 3]))
    with open(APDB_YAML) as stream:
        schema = yaml.safe_load(stream)
    columns = {c["name"]: c for t in schema["tables"] if t["name"] == "DiaObject" for c in t["columns"]}
    in_schema = [name for name in out.colnames if name in columns]
    assert len(in_schema) == 9 + 6 * 10
    for name in in_schema:
        assert out[name].dtype == SDM_DTYPES[columns[name]["datatype"]], name
        unit = columns[name].get("fits:tunit")
        assert (out[name].unit is None) == (unit is None), name
        assert unit is None or out[name].unit == u.Unit(unit), name
    extra = sorted({name.split("_", 1)[1] for name in out.colnames if name not in columns})
    assert extra == ["psfFluxChi2", "psfFluxLinearIntercept", "psfFluxLinearSlope", "psfFluxStetsonJ"]


def test_missing_column_and_bad_index():
    table, obj = _catalog()
    with pytest.raises(ValueError, match="object_index"):
        summarize_dia_objects(table, obj, ["g"], np.array([1, 2]))
    del table["scienceFluxErr"]
    with pytest.raises(MissingColumnsError, match="scienceFluxErr"):
        summarize_dia_objects(table, obj, ["g"], np.array([1, 2, 3]))


def test_id_table_parquet_round_trip(tmp_path):
    table, obj = _catalog()
    ids = np.array([11, 12, 13, 14], dtype=np.int64)  # object 14 has no source
    id_table = make_dia_object_id_table(ids, table, obj)
    expected = [
        np.asarray(table["diaSourceId"])[obj == k][np.argsort(np.asarray(table["midpointMjdTai"])[obj == k])]
        for k in range(4)
    ]
    for got, want in zip(id_table["diaSourceIds"], expected):
        np.testing.assert_array_equal(got, want)
    path = tmp_path / "dia_object_ids.parquet"
    id_table.write(path, format="parquet")
    assert str(pq.read_schema(path).field("diaSourceIds").type) == "list<element: int64>"
    back = Table.read(path)
    np.testing.assert_array_equal(back["diaObjectId"], ids)
    for got, want in zip(back["diaSourceIds"], expected):
        np.testing.assert_array_equal(got, want)
        assert np.asarray(got).dtype == np.int64

    arrow = make_dia_object_id_arrow(ids, table, obj)
    pq.write_table(arrow, tmp_path / "arrow.parquet")
    from_arrow = Table.read(tmp_path / "arrow.parquet")
    for got, want in zip(from_arrow["diaSourceIds"], expected):
        np.testing.assert_array_equal(got, want)
