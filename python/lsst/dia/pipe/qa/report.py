"""Static HTML QA report of one rerun: run summary, per-CCD quality, sky map, top DIAObjects, truth metrics.

The page is plain HTML + CSS with local PNG figures (no scripts, no external resources), written by
`write_report` into an output directory (``index.html``, ``*.png`` and ``summary.json``).
"""

from __future__ import annotations

import dataclasses
import html
import json
import math
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy.table import Table

from ..repo.collections import rerun_collection
from . import figures
from .collect import CCD_QUALITY_KEYS, RunCatalogs, iter_differences, load_run, open_rerun, read_cutout
from .collect import read_light_curve
from .cutouts import resample_onto
from .evaluate import RunQuality, evaluate_run
from .metrics import binned_completeness

__all__ = ["TopObject", "top_objects", "write_report"]

_CSS = """
body { font-family: sans-serif; margin: 1.5em; color: #222; max-width: 75em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
td, th { border: 1px solid #ddd; padding: 2px 6px; text-align: right; }
th { background: #f3f3f3; } td.text { text-align: left; }
tr.failed td { background: #fde2e2; } tr.nowork td { background: #fff5d6; }
figure { display: inline-block; margin: 0.3em; vertical-align: top; }
figcaption { font-size: 0.8em; max-width: 32em; }
.object { border: 1px solid #ddd; padding: 0.4em; margin: 0.4em 0; }
"""

#: Cutout half side [pixels].
CUTOUT_HALF_SIZE = 15

#: S/N bin edges of the completeness figure.
SNR_EDGES = np.geomspace(1.0, 100.0, 21)


@dataclasses.dataclass(frozen=True)
class TopObject:
    """A DIAObject of the report's "most significant" list and its most significant DIASource.

    Attributes
    ----------
    dia_object_id : `int`
        The DIAObject.
    skymap : `str`
        Its sky map.
    tract, patch : `int`
        Its patch.
    ra, dec : `float`
        DIAObject position [deg].
    n_dia_sources : `int`
        Its DIASources.
    max_snr : `float`
        Largest ``snr`` of its DIASources.
    visit, detector : `int`
        Visit/detector of that DIASource.
    band : `str`
        Its band.
    """

    dia_object_id: int
    skymap: str
    tract: int
    patch: int
    ra: float
    dec: float
    n_dia_sources: int
    max_snr: float
    visit: int
    detector: int
    band: str


#: DIASources with any of these flags do not rank their DIAObject (saturation and edge residuals).
RANKING_EXCLUDED_FLAGS = ("pixelFlags_saturated", "pixelFlags_edge", "pixelFlags_nodata", "pixelFlags_offimage",
                          "pixelFlags_bad")


def top_objects(catalogs: RunCatalogs, n: int) -> list[TopObject]:
    """The ``n`` DIAObjects with the most significant clean DIASources, most significant first.

    A DIAObject ranks by the largest ``|snr|`` of its DIASources that have none of `RANKING_EXCLUDED_FLAGS`.

    Parameters
    ----------
    catalogs : `~lsst.dia.pipe.qa.collect.RunCatalogs`
        The rerun's catalogs.
    n : `int`
        How many.
    """
    links, sources, objects = catalogs.object_sources, catalogs.dia_sources, catalogs.dia_objects
    if n <= 0 or not len(links) or not len(sources) or not len(objects):
        return []
    ids = np.asarray(sources["diaSourceId"], np.int64)
    order = np.argsort(ids)
    link_src = np.asarray(links["diaSourceId"], np.int64)
    pos = np.clip(np.searchsorted(ids[order], link_src), 0, len(ids) - 1)
    found = ids[order][pos] == link_src
    src_rows = order[pos[found]]
    link_obj = np.asarray(links["diaObjectId"], np.int64)[found]
    snr = np.abs(np.nan_to_num(np.asarray(sources["snr"], float)[src_rows]))
    for flag in RANKING_EXCLUDED_FLAGS:
        if flag in sources.colnames:
            snr[np.asarray(sources[flag], bool)[src_rows]] = -1.0
    # per object, its best source: sort by (object, -snr) and keep the first row of each object
    by = np.lexsort((-snr, link_obj))
    first = by[np.r_[True, link_obj[by][1:] != link_obj[by][:-1]]]
    best = first[np.argsort(-snr[first], kind="stable")][:n]
    best = best[snr[best] >= 0]
    obj_ids = np.asarray(objects["diaObjectId"], np.int64)
    obj_index = {int(i): k for k, i in enumerate(obj_ids)}
    out = []
    for k in best:
        o = objects[obj_index[int(link_obj[k])]]
        s = sources[src_rows[k]]
        out.append(TopObject(int(o["diaObjectId"]), str(o["skymap"]), int(o["tract"]), int(o["patch"]),
                             float(o["ra"]), float(o["dec"]), int(o["nDiaSources"]), float(snr[k]),
                             int(s["visit"]), int(s["detector"]), str(s["band"])))
    return out


# --- HTML helpers ----------------------------------------------------------------------------------------
def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value, digits: int = 3) -> str:
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not math.isfinite(value):
            return "–"
        if value == int(value) and abs(value) < 1e9:  # counts stored as floats
            return str(int(value))
        return f"{value:.{digits}g}"
    return str(value)


def _table(headers: list[str], rows: list[list], table_id: str, row_classes: list[str] | None = None) -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = []
    for k, row in enumerate(rows):
        cls = f' class="{row_classes[k]}"' if row_classes and row_classes[k] else ""
        cells = "".join(
            f'<td class="text">{_esc(v)}</td>' if isinstance(v, str) else f"<td>{_esc(_fmt(v))}</td>" for v in row
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _figure(src: Path, caption: str, alt: str) -> str:
    return (f'<figure><img src="{_esc(src.name)}" alt="{_esc(alt)}">'
            f"<figcaption>{caption}</figcaption></figure>")


def _count(element_id: str, value: int) -> str:
    return f'<span id="{element_id}">{int(value)}</span>'


# --- sections --------------------------------------------------------------------------------------------
def _summary_section(catalogs: RunCatalogs) -> str:
    status = np.asarray(catalogs.ccds["status"]).astype(str) if len(catalogs.ccds) else np.zeros(0, str)
    n_done, n_failed, n_nowork = (int((status == s).sum()) for s in ("done", "failed", "no work"))
    items = [
        f"Difference imaging: {_count('n-ccds-done', n_done)} CCDs done, {_count('n-ccds-failed', n_failed)} "
        f"failed, {_count('n-ccds-nowork', n_nowork)} with nothing to do",
        f"DIASources: {_count('n-dia-sources', len(catalogs.dia_sources))}",
        f"DIAObjects: {_count('n-dia-objects', len(catalogs.dia_objects))} "
        f"({_count('n-associated-sources', len(catalogs.object_sources))} DIASources associated)",
        f"Forced measurements: {_count('n-forced', len(catalogs.forced))} on "
        f"{_count('n-forced-ccds', catalogs.n_forced_ccds)} CCDs; light curves in "
        f"{_count('n-light-curve-patches', catalogs.n_light_curve_patches)} patches",
    ]
    out = ["<h2>Run summary</h2><ul>", *(f"<li>{i}</li>" for i in items), "</ul>"]
    problems = catalogs.ccds[status != "done"] if len(catalogs.ccds) else []
    if len(problems):
        out.append("<p>CCDs without a difference image:</p>")
        out.append(_table(["visit", "detector", "status", "reason"],
                          [[int(r["visit"]), int(r["detector"]), str(r["status"]), str(r["reason"])] for r in problems],
                          "failure-table"))
    return "\n".join(out)


_CCD_HEADERS = {
    "kernelSum": "kernel sum", "residualNoiseRatio": "residual noise ratio", "nKernelSources": "# kernel stars",
    "templateCoverage": "template coverage", "nDiaSources": "# DIASources", "algorithm": "algorithm",
}


def _ccd_section(catalogs: RunCatalogs, noise: Table | None) -> str:
    ccds = catalogs.ccds
    columns = list(CCD_QUALITY_KEYS)
    headers = ["visit", "detector", "band", "status", *(_CCD_HEADERS[c] for c in columns)]
    measured = {}
    if noise is not None:
        headers.append("residual noise ratio (source-free, truth-masked)")
        measured = {(int(r["visit"]), int(r["detector"])): float(r["residualNoiseRatio"]) for r in noise}
    rows, classes = [], []
    for r in ccds:
        row = [int(r["visit"]), int(r["detector"]), str(r["band"]), str(r["status"])]
        row += [str(r[c]) if c == "algorithm" else float(r[c]) for c in columns]
        if noise is not None:
            row.append(measured.get((int(r["visit"]), int(r["detector"])), float("nan")))
        rows.append(row)
        classes.append({"failed": "failed", "no work": "nowork"}.get(str(r["status"]), ""))
    note = ("<p>Numbers recorded by the image-difference task (task metadata); – where it did not record "
            "them.</p>")
    return "<h2>Per-CCD quality</h2>" + note + _table(headers, rows, "ccd-table", classes)


def _sky_section(catalogs: RunCatalogs, out: Path) -> str:
    path = figures.plot_sky_map(catalogs.dia_sources, catalogs.dia_objects, out / "sky_map.png")
    bands = np.asarray(catalogs.dia_sources["band"]).astype(str) if len(catalogs.dia_sources) else np.zeros(0, str)
    per_band = ", ".join(f'{_esc(b)}: {_count(f"sky-n-{b}", int((bands == b).sum()))}' for b in sorted(set(bands)))
    caption = (f"{_count('sky-n-sources', len(catalogs.dia_sources))} DIASources ({per_band}) and "
               f"{_count('sky-n-objects', len(catalogs.dia_objects))} DIAObjects (open circles).")
    return "<h2>DIASource sky map</h2>" + _figure(path, caption, "DIASource sky map")


def _cutout_panels(butler, obj: TopObject, instrument: str) -> dict[str, np.ndarray | None]:
    data_id = {"instrument": instrument, "visit": obj.visit, "detector": obj.detector}
    science = read_cutout(butler, "calexp", data_id, obj.ra, obj.dec, CUTOUT_HALF_SIZE)
    difference = read_cutout(butler, "deepDiff_differenceExp", data_id, obj.ra, obj.dec, CUTOUT_HALF_SIZE)
    template = read_cutout(butler, "deepDiff_matchedExp", data_id, obj.ra, obj.dec, CUTOUT_HALF_SIZE)
    template_image = None if template is None else template.image
    if template is None and science is not None:
        # no matched template written: the coadd patch resampled onto the science cutout (not PSF-matched)
        coadd_id = {"skymap": obj.skymap, "tract": obj.tract, "patch": obj.patch, "band": obj.band}
        coadd = read_cutout(butler, "deepCoadd_calexp", coadd_id, obj.ra, obj.dec, 2 * CUTOUT_HALF_SIZE)
        template_image = None if coadd is None else resample_onto(coadd, science)
    return {"science": None if science is None else science.image, "template": template_image,
            "difference": None if difference is None else difference.image}


def _objects_section(catalogs: RunCatalogs, n: int, out: Path) -> str:
    chosen = top_objects(catalogs, n)
    parts = [f"<h2>The {len(chosen)} most significant DIAObjects</h2>"]
    if not chosen:
        return parts[0] + "<p>No DIAObjects.</p>"
    butler = open_rerun(catalogs.repo, catalogs.rerun)
    template_note = ("template: the PSF-matched deepDiff_matchedExp when written, else the coadd resampled onto "
                     "the science pixels (not PSF-matched)")
    instruments = {(int(r["visit"]), int(r["detector"])): str(r["instrument"]) for r in catalogs.ccds}
    parts.append(_table(
        ["diaObjectId", "tract", "patch", "RA", "Dec", "nDiaSources", "max S/N", "visit", "detector", "band"],
        [[o.dia_object_id, o.tract, o.patch, f"{o.ra:.6f}", f"{o.dec:.6f}", o.n_dia_sources, o.max_snr, o.visit,
          o.detector, o.band] for o in chosen], "top-objects"))
    for rank, obj in enumerate(chosen):
        title = f"diaObjectId {obj.dia_object_id}: visit {obj.visit} detector {obj.detector} ({obj.band})"
        panels = _cutout_panels(butler, obj, instruments[(obj.visit, obj.detector)])
        cut = figures.plot_cutouts(panels, title, out / f"object{rank:02d}_cutouts.png")
        curve = read_light_curve(butler, catalogs.rerun, obj.tract, obj.patch, obj.dia_object_id)
        lc = figures.plot_light_curve(curve, f"diaObjectId {obj.dia_object_id}", out / f"object{rank:02d}_lc.png")
        lc_caption = (f"Forced photometry: {_count(f'lc-n-{obj.dia_object_id}', len(curve))} measurements "
                      "(difference flux top, science flux bottom).")
        parts.append(f'<div class="object" id="object-{obj.dia_object_id}">'
                     + _figure(cut, f"Science, template, difference ({2 * CUTOUT_HALF_SIZE + 1} px) of the "
                               f"most significant DIASource (S/N {obj.max_snr:.1f}); {template_note}.", "cutouts")
                     + _figure(lc, lc_caption, "light curve") + "</div>")
    return "\n".join(parts)


def _truth_section(quality: RunQuality, out: Path) -> str:
    inj = quality.injected
    curve = binned_completeness(inj["trueSnr"], inj["detected"], SNR_EDGES)
    comp = figures.plot_completeness({quality.label or "run": (curve, quality.completeness_fit)},
                                     out / "completeness.png")
    pulls = figures.plot_pull_histograms({"difference": quality.pull_values_diff,
                                          "science": quality.pull_values_sci}, out / "forced_pulls.png")
    n_det = int(np.count_nonzero(inj["detected"]))
    caption = (f"{_count('completeness-n-injected', len(inj))} injected transients/variables on usable pixels, "
               f"{_count('completeness-n-detected', n_det)} detected within 1″; "
               f"S/N50 = {_fmt(quality.snr50)}" + (f" ({_esc(quality.completeness_fit_error)})"
                                                   if quality.completeness_fit is None else "") + ".")
    summary = quality.summary()
    rows = [[k, v] for k, v in summary.items() if not isinstance(v, dict)]
    rows += [[f"artifacts per 4k CCD: {cause}", v] for cause, v in quality.artifacts_by_cause().items()]
    bins = _table(["S/N from", "S/N to", "N", "detected", "completeness"],
                  [[float(a), float(b), int(k), int(d), float(c)] for a, b, k, d, c in
                   zip(curve.edges[:-1], curve.edges[1:], curve.n, curve.n_detected, curve.completeness)],
                  "completeness-table")
    return ("<h2>Quality against simulation truth</h2>"
            + _figure(comp, caption, "completeness curve")
            + _figure(pulls, "Forced-photometry pulls of injected objects (unflagged, unsaturated).", "pulls")
            + _table(["metric", "value"], rows, "truth-metrics") + bins)


def write_report(
    repo: str,
    rerun: str,
    out_dir: str | Path,
    top: int = 10,
    failures: Mapping[tuple[int, int], str] | None = None,
    truth: bool = True,
) -> Path:
    """Write the static HTML QA report of a rerun.

    Parameters
    ----------
    repo : `str`
        Butler repository.
    rerun : `str`
        Rerun name (collection ``rerun/<rerun>``).
    out_dir : path-like
        Output directory (created); holds ``index.html``, the PNGs and ``summary.json``.
    top : `int`
        Number of most significant DIAObjects shown with cutouts and light curves.
    failures : mapping, optional
        Known failure reasons by ``(visit, detector)``.
    truth : `bool`
        Evaluate against the simulation truth when the repository has it (reads every difference image).

    Returns
    -------
    index : `pathlib.Path`
        The ``index.html`` written.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    catalogs = load_run(repo, rerun, failures=failures, truth=truth)
    quality = None
    if truth and catalogs.has_truth:
        done = [(int(r["visit"]), int(r["detector"])) for r in catalogs.ccds if r["status"] == "done"]
        quality = evaluate_run(catalogs, iter_differences(repo, rerun, done), label="")
    sections = [
        _summary_section(catalogs),
        _ccd_section(catalogs, quality.ccd_noise if quality else None),
        _sky_section(catalogs, out),
        _objects_section(catalogs, top, out),
    ]
    if quality is not None:
        sections.append(_truth_section(quality, out))
    title = f"dia_pipe QA: {rerun_collection(rerun)}"
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
            f"<style>{_CSS}</style></head><body>\n<h1>{_esc(title)}</h1>\n<p>Repository {_esc(repo)}</p>\n"
            + "\n".join(sections) + "\n</body></html>\n")
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    numbers = {"repo": str(repo), "rerun": rerun, "n_dia_sources": len(catalogs.dia_sources),
               "n_dia_objects": len(catalogs.dia_objects), "n_forced": len(catalogs.forced),
               "ccd_status": {s: int(np.sum(np.asarray(catalogs.ccds["status"]).astype(str) == s))
                              for s in ("done", "failed", "no work")}}
    if quality is not None:
        numbers.update(quality.summary())
    (out / "summary.json").write_text(json.dumps(numbers, indent=1, default=float) + "\n", encoding="utf-8")
    return index
