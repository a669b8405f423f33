"""The HTML QA report of a small simulated survey: renders in headless Chromium, numbers match the catalogs."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from lsst.daf.butler import Butler

from lsst.dia.pipe.cli.driver import run_driver
from lsst.dia.pipe.drivers import ASSOCIATION, FORCED_PHOT_CCD_DIA, IMAGE_DIFFERENCE
from lsst.dia.pipe.qa.collect import RunCatalogs, load_run
from lsst.dia.pipe.qa.report import top_objects, write_report
from lsst.dia.pipe.repo.collections import DEFAULT_INPUT_COLLECTION
from lsst.dia.pipe.repo.simulate import make_sim_repo

ENSURE_CHROMIUM = Path(__file__).resolve().parents[6] / "scripts" / "ensure-chromium.sh"

#: Appended to a copy of the page (the report itself has no scripts): lists every image's natural width.
IMAGE_CHECK = """<pre id="img-check"></pre><script>
window.addEventListener("load", function () {
  var rows = Array.prototype.map.call(document.images, function (im) {
    return im.getAttribute("src") + " " + im.naturalWidth; });
  document.getElementById("img-check").textContent = rows.join("\\n");
});
</script>"""


@dataclasses.dataclass
class Reported:
    root: str
    rerun: str
    index: Path
    status: dict[str, int]


@pytest.fixture(scope="module")
def reported(tmp_path_factory) -> Reported:
    """A 2-band x 2-visit survey processed by the three drivers, and its report (3 top objects)."""
    base = tmp_path_factory.mktemp("qa_report")
    root = str(base / "repo")
    summary = make_sim_repo(root, "demo", seed=5, workers=2, visits_per_band=2, bands=("g", "r"))
    visits = "^".join(str(v) for v in range(1, summary.n_visits + 1))
    common = [root, "--rerun", "qa", "--cores", "2"]
    status = {
        "imageDifference": run_driver(IMAGE_DIFFERENCE, [*common, "--id", f"visit={visits}"]),
        "association": run_driver(ASSOCIATION, [*common, "--id", f"tract={'^'.join(map(str, summary.tracts))}",
                                                "filter=g^r"]),
        "forcedPhotCcdDia": run_driver(FORCED_PHOT_CCD_DIA, [*common, "--id", f"visit={visits}"]),
    }
    index = write_report(root, "qa", base / "report", top=3)
    return Reported(root, "qa", index, status)


@pytest.fixture(scope="module")
def chromium() -> str:
    done = subprocess.run(["bash", str(ENSURE_CHROMIUM)], capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not done.stdout.strip():
        pytest.skip(f"chromium unavailable: {done.stderr.strip()[-300:]}")
    return done.stdout.strip().splitlines()[-1]


class _Elements(HTMLParser):
    """Text of elements with an id, image sources, and table rows by table id."""

    def __init__(self):
        super().__init__()
        self.text: dict[str, str] = {}
        self.images: list[str] = []
        self.rows: dict[str, list[list[str]]] = {}
        self._open: list[str] = []
        self._table: str | None = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "table":
            self._table = attrs.get("id")
            self.rows[self._table] = []
        if tag == "tbody":
            self._in_body = True
        if tag == "tr" and self._in_body:
            self.rows[self._table].append([])
        if tag == "td" and self._in_body:
            self.rows[self._table][-1].append("")
        if "id" in attrs and tag != "table":
            self._open.append(attrs["id"])
            self.text[attrs["id"]] = ""

    def handle_endtag(self, tag):
        if tag in ("span", "pre") and self._open:
            self._open.pop()
        if tag == "tbody":
            self._in_body = False

    def handle_data(self, data):
        for element in self._open:
            self.text[element] += data
        if self._in_body and self._table and self.rows[self._table] and self.rows[self._table][-1]:
            self.rows[self._table][-1][-1] += data


def _parse(text: str) -> _Elements:
    parser = _Elements()
    parser.feed(text)
    return parser


def _catalogs(butler: Butler, dataset_type: str) -> list[tuple]:
    return [(ref, butler.get(ref)) for ref in butler.query_datasets(dataset_type, collections="rerun/qa",
                                                                    explain=False)]


def test_drivers_succeeded(reported):
    assert reported.status == {"imageDifference": 0, "association": 0, "forcedPhotCcdDia": 0}


def test_page_renders_with_every_image(reported, chromium, tmp_path):
    page = reported.index.read_text()
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")  # no scripts, no remote URLs
    check = reported.index.with_name("render_check.html")
    check.write_text(page.replace("</body>", IMAGE_CHECK + "</body>"))
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
         "--allow-file-access-from-files", "--virtual-time-budget=10000", "--dump-dom", check.as_uri()],
        capture_output=True, text=True, timeout=120)
    rendered = _parse(done.stdout)
    assert "img-check" in rendered.text, done.stderr[-500:]
    loaded = dict(line.rsplit(" ", 1) for line in rendered.text["img-check"].strip().splitlines())
    expected = set(_parse(page).images)
    # sky map, completeness, pulls, and cutouts + light curve of each of the 3 top objects
    assert len(expected) == 3 + 2 * 3
    assert set(loaded) == expected
    assert all(int(width) > 0 for width in loaded.values()), loaded
    assert all((reported.index.parent / name).stat().st_size < 150_000 for name in expected)


def test_page_numbers_match_the_catalogs(reported):
    page = _parse(reported.index.read_text())
    butler = Butler.from_config(reported.root, collections=["rerun/qa", DEFAULT_INPUT_COLLECTION])
    sources = _catalogs(butler, "deepDiff_diaSrc")
    n_sources = sum(len(t) for _, t in sources)
    objects = _catalogs(butler, "deepDiff_diaObject")
    forced = _catalogs(butler, "deepDiff_forced_diaSrc")
    count = {k: int(v) for k, v in page.text.items() if re.fullmatch(r"\d+", v.strip())}
    assert count["n-dia-sources"] == count["sky-n-sources"] == n_sources > 0
    assert count["n-dia-objects"] == count["sky-n-objects"] == sum(len(t) for _, t in objects) > 0
    assert count["n-forced"] == sum(len(t) for _, t in forced) > 0
    assert count["n-forced-ccds"] == len(forced)
    assert count["n-ccds-done"] == len(sources) == 16 and count["n-ccds-failed"] == 0
    for band in ("g", "r"):
        assert count[f"sky-n-{band}"] == sum(len(t) for ref, t in sources if ref.dataId["band"] == band)
    # per-CCD table: one row per CCD, the task's DIASource count equals the catalog length
    rows = page.rows["ccd-table"]
    assert len(rows) == 16
    lengths = {(ref.dataId["visit"], ref.dataId["detector"]): len(t) for ref, t in sources}
    assert {(int(r[0]), int(r[1])): int(float(r[8])) for r in rows} == lengths
    # light curves: the printed number of forced measurements of each top object
    all_forced = np.concatenate([np.asarray(t["diaObjectId"]) for _, t in forced])
    top = page.rows["top-objects"]
    assert len(top) == 3
    for row in top:
        object_id = int(row[0])
        assert count[f"lc-n-{object_id}"] == int(np.count_nonzero(all_forced == object_id)) > 0
    # completeness: every injected transient/variable with a non-zero difference flux is counted
    truth = [butler.get(ref) for ref in butler.query_datasets("truth_visit", explain=False)]
    injected = sum(int(np.count_nonzero(np.isin(t["objectType"], ["transient", "variable"]) & (t["diffFlux"] != 0)))
                   for t in truth)
    coverage = [float(r[7]) for r in rows]
    assert count["completeness-n-injected"] == injected if min(coverage) == 1.0 else injected > 0
    bins = page.rows["completeness-table"]
    assert sum(int(r[3]) for r in bins) <= count["completeness-n-detected"] <= count["completeness-n-injected"]
    metrics = {r[0]: r[1] for r in page.rows["truth-metrics"]}
    assert 3.0 < float(metrics["snr50"]) < 8.0


def test_report_lists_a_failed_ccd(reported, tmp_path):
    """A CCD whose calexp is unreadable is reported as failed, the others as done."""
    butler = Butler.from_config(reported.root, collections=[DEFAULT_INPUT_COLLECTION])
    path = Path(butler.getURI(butler.find_dataset("calexp", instrument="SimCam", visit=1, detector=2)).ospath)
    saved = tmp_path / "calexp.fits"
    shutil.copy(path, saved)
    try:
        path.write_bytes(b"not a FITS file")
        status = run_driver(IMAGE_DIFFERENCE, [reported.root, "--rerun", "broken", "--id", "visit=1", "--cores", "2"])
    finally:
        shutil.copy(saved, path)
    assert status == 1
    index = write_report(reported.root, "broken", tmp_path / "report", top=2, truth=False)
    page = _parse(index.read_text())
    assert (page.text["n-ccds-done"], page.text["n-ccds-failed"]) == ("3", "1")
    failures = page.rows["failure-table"]
    assert [(r[0], r[1], r[2]) for r in failures] == [("1", "2", "failed")]
    catalogs = load_run(reported.root, "broken", failures={(1, 2): "unreadable calexp"}, truth=False)
    assert list(catalogs.ccds["reason"][catalogs.ccds["status"] == "failed"]) == ["unreadable calexp"]


def test_top_objects_ranks_by_clean_significance():
    sources = Table({"diaSourceId": [1, 2, 3, 4, 5], "snr": [50.0, 8.0, 900.0, 20.0, -30.0],
                     "pixelFlags_saturated": [False, False, True, False, False],
                     "visit": [1, 2, 1, 2, 3], "detector": [0, 0, 1, 1, 0], "band": ["g", "r", "g", "r", "g"]})
    objects = Table({"diaObjectId": [10, 11, 12], "skymap": ["s"] * 3, "tract": [0, 0, 0], "patch": [1, 1, 2],
                     "ra": [1.0, 2.0, 3.0], "dec": [0.0, 0.0, 0.0], "nDiaSources": [2, 2, 1]})
    links = Table({"diaObjectId": [10, 10, 11, 11, 12], "diaSourceId": [1, 2, 3, 4, 5]})
    catalogs = RunCatalogs("repo", "r", Table(), sources, objects, links, Table(), 0, 0, None, None)
    ranked = top_objects(catalogs, 5)
    # object 11's 900-sigma source is saturated: it ranks by its 20-sigma one; |snr| of negatives counts
    assert [(o.dia_object_id, o.max_snr, o.visit) for o in ranked] == [(10, 50.0, 1), (12, 30.0, 3), (11, 20.0, 2)]
    assert [o.dia_object_id for o in top_objects(catalogs, 1)] == [10]
