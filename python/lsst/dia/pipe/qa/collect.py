"""Read a rerun's outputs (and the simulation truth, when present) from a butler repository.

The only butler-facing module of `lsst.dia.pipe.qa`: it turns datasets into plain astropy Tables and
`~lsst.dia.pipe.exposure.Exposure` objects for the pure metric and figure code.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from astropy.table import Table, vstack
from lsst.daf.butler import Butler, DatasetRef, MissingDatasetTypeError

from ..execution import ExecutionSummary
from ..execution.progress import FAILURE_STATUSES
from ..exposure import Exposure
from ..imaging.visit import visit_image_to_exposure
from ..repo.collections import DEFAULT_INPUT_COLLECTION, rerun_collection

__all__ = [
    "CCD_QUALITY_KEYS",
    "RunCatalogs",
    "failures_from_summary",
    "open_rerun",
    "load_run",
    "iter_differences",
    "read_cutout",
    "read_light_curve",
]

_log = logging.getLogger(__name__)

#: Per-CCD table columns and the task-metadata keys they are read from (first key present wins).
CCD_QUALITY_KEYS: dict[str, tuple[str, ...]] = {
    "kernelSum": ("kernel_sum", "kernelSum"),
    "residualNoiseRatio": ("residual_noise_ratio", "residualNoiseRatio"),
    "nKernelSources": ("n_kernel_used", "nKernelSources", "n_kernel_sources"),
    "templateCoverage": ("templateCoverage", "template_coverage"),
    "nDiaSources": ("nDiaSources",),
    "algorithm": ("algorithm",),
}

_DIFFERENCE_TASK = "imageDifference"


@dataclasses.dataclass
class RunCatalogs:
    """Everything a rerun produced, as tables.

    Attributes
    ----------
    repo, rerun : `str`
        Repository and rerun name.
    ccds : `astropy.table.Table`
        One row per visit/detector expected in the rerun: ``instrument``, ``visit``, ``detector``, ``band``,
        ``status``
        (``done``, ``no work`` or ``failed``), ``reason`` and the `CCD_QUALITY_KEYS` columns (NaN / "" when
        the task did not record them).
    dia_sources : `astropy.table.Table`
        All ``deepDiff_diaSrc`` rows.
    dia_objects : `astropy.table.Table`
        All ``deepDiff_diaObject`` rows plus ``skymap``, ``tract`` and ``patch``.
    object_sources : `astropy.table.Table`
        ``diaObjectId``, ``diaSourceId`` pairs from ``deepDiff_diaObjectId``.
    forced : `astropy.table.Table`
        All ``deepDiff_forced_diaSrc`` rows.
    n_forced_ccds, n_light_curve_patches : `int`
        Visit/detectors with forced photometry, patches with light curves.
    truth_visit : `astropy.table.Table` or `None`
        ``truth_visit`` of the expected CCDs with ``visit`` and ``detector`` columns added.
    truth_objects : `astropy.table.Table` or `None`
        ``truth_objects``.
    """

    repo: str
    rerun: str
    ccds: Table
    dia_sources: Table
    dia_objects: Table
    object_sources: Table
    forced: Table
    n_forced_ccds: int
    n_light_curve_patches: int
    truth_visit: Table | None
    truth_objects: Table | None

    @property
    def has_truth(self) -> bool:
        """Whether simulation truth is available."""
        return self.truth_visit is not None and self.truth_objects is not None


def open_rerun(repo: str, rerun: str) -> Butler:
    """Read-only butler searching ``rerun/<rerun>`` then the repository's inputs.

    Raises
    ------
    lsst.daf.butler.MissingCollectionError
        If the rerun does not exist.
    """
    butler = Butler.from_config(repo, writeable=False)
    butler.collections.query_info(rerun_collection(rerun))  # raises MissingCollectionError
    return Butler.from_config(repo, collections=[rerun_collection(rerun), DEFAULT_INPUT_COLLECTION],
                              writeable=False)


def failures_from_summary(summary: ExecutionSummary, task_label: str = _DIFFERENCE_TASK) -> dict[tuple[int, int], str]:
    """Failure reasons of one task's visit/detector quanta from a driver's execution summary.

    Parameters
    ----------
    summary : `~lsst.dia.pipe.execution.ExecutionSummary`
        Outcomes of a run.
    task_label : `str`
        Task whose failures are wanted.

    Returns
    -------
    failures : `dict` [`tuple` [`int`, `int`], `str`]
        ``"<status>: <reason>"`` by ``(visit, detector)``, for `load_run` / ``write_report``.
    """
    out = {}
    for outcome in summary.outcomes:
        if outcome.task_label != task_label or outcome.status not in FAILURE_STATUSES:
            continue
        keys = dict(item.split("=", 1) for item in outcome.data_id.split() if "=" in item)
        if "visit" in keys and "detector" in keys:
            out[(int(keys["visit"]), int(keys["detector"]))] = f"{outcome.status.value}: {outcome.reason}"
    return out


def _refs(butler: Butler, dataset_type: str, collections: list[str] | str) -> list[DatasetRef]:
    try:
        return list(butler.query_datasets(dataset_type, collections=collections, find_first=True,
                                          explain=False))
    except MissingDatasetTypeError:
        return []


def _stack(tables: list[Table]) -> Table:
    tables = [t for t in tables if len(t)]
    if not tables:
        return Table()
    return vstack(tables, metadata_conflicts="silent", join_type="outer")


def _ccd(ref: DatasetRef) -> tuple[int, int]:
    return int(ref.dataId["visit"]), int(ref.dataId["detector"])


def _task_values(metadata) -> dict:
    """The difference task's own metadata values from an ``imageDifference_metadata`` dataset."""
    content = metadata.to_dict() if hasattr(metadata, "to_dict") else dict(metadata)
    values = content.get(_DIFFERENCE_TASK, content)
    return {k: v for k, v in values.items() if isinstance(v, (int, float, str, bool))}


def _quality_columns(values: Mapping) -> dict:
    row = {}
    for column, keys in CCD_QUALITY_KEYS.items():
        value = next((values[k] for k in keys if k in values), None)
        if column == "algorithm":
            row[column] = "" if value is None else str(value)
        else:
            row[column] = np.nan if value is None else float(value)
    return row


def _ccd_table(butler: Butler, chain: str, failures: Mapping[tuple[int, int], str]) -> Table:
    """The expected CCDs: every calexp of a visit the rerun touched (or that a failure names)."""
    done = {_ccd(r) for r in _refs(butler, "deepDiff_diaSrc", chain)}
    metadata_refs = {_ccd(r): r for r in _refs(butler, f"{_DIFFERENCE_TASK}_metadata", chain)}
    visits = {v for v, _ in done | set(metadata_refs) | set(failures)}
    calexps = [r for r in _refs(butler, "calexp", butler.collections.defaults) if r.dataId["visit"] in visits]
    rows = []
    for ref in sorted(calexps, key=_ccd):
        key = _ccd(ref)
        values = _task_values(butler.get(metadata_refs[key])) if key in metadata_refs else {}
        if key in done:
            status, reason = "done", ""
        elif key in metadata_refs:
            status, reason = "no work", "the task found nothing to do (e.g. ignoreCcdList, no template)"
        else:
            status = "failed"
            reason = failures.get(key, "no outputs in the rerun (reason not recorded in the repository)")
        rows.append({"instrument": str(ref.dataId["instrument"]), "visit": key[0], "detector": key[1],
                     "band": str(ref.dataId["band"]), "status": status,
                     "reason": reason, **_quality_columns(values)})
    names = ["instrument", "visit", "detector", "band", "status", "reason", *CCD_QUALITY_KEYS]
    if not rows:
        dtypes = ["U16", np.int64, np.int64, "U8", "U8", "U80"] + [
            "U16" if c == "algorithm" else np.float64 for c in CCD_QUALITY_KEYS
        ]
        return Table(names=names, dtype=dtypes)
    return Table(rows=rows, names=names)


def _flatten_id_tables(tables: list[pa.Table]) -> Table:
    pairs = [(np.zeros(0, np.int64), np.zeros(0, np.int64))]
    for table in tables:
        lists = table.column("diaSourceIds").combine_chunks()
        parents = pc.list_parent_indices(lists).to_numpy()
        object_ids = table.column("diaObjectId").to_numpy()
        pairs.append((object_ids[parents].astype(np.int64),
                      pc.list_flatten(lists).to_numpy().astype(np.int64)))
    return Table({"diaObjectId": np.concatenate([p[0] for p in pairs]),
                  "diaSourceId": np.concatenate([p[1] for p in pairs])})


def _with_columns(table: Table, **values) -> Table:
    for name, value in values.items():
        table[name] = np.full(len(table), value)
    return table


def load_run(
    repo: str, rerun: str, failures: Mapping[tuple[int, int], str] | None = None, truth: bool = True
) -> RunCatalogs:
    """Read the catalogs of a rerun.

    Parameters
    ----------
    repo, rerun : `str`
        Repository and rerun (collection ``rerun/<rerun>``).
    failures : mapping, optional
        Known failure reasons by ``(visit, detector)`` (e.g. from an
        `~lsst.dia.pipe.execution.ExecutionSummary`); other missing CCDs get a generic reason.
    truth : `bool`
        Also read the simulation truth (``truth_visit``, ``truth_objects``) when the repository has it.

    Returns
    -------
    catalogs : `RunCatalogs`
    """
    butler = open_rerun(repo, rerun)
    chain = rerun_collection(rerun)
    ccds = _ccd_table(butler, chain, failures or {})
    sources = _stack([butler.get(r) for r in _refs(butler, "deepDiff_diaSrc", chain)])
    objects = _stack([_with_columns(butler.get(r), skymap=str(r.dataId["skymap"]), tract=int(r.dataId["tract"]),
                                    patch=int(r.dataId["patch"]))
                      for r in _refs(butler, "deepDiff_diaObject", chain)])
    object_sources = _flatten_id_tables([butler.get(r) for r in _refs(butler, "deepDiff_diaObjectId", chain)])
    forced_refs = _refs(butler, "deepDiff_forced_diaSrc", chain)
    forced = _stack([butler.get(r) for r in forced_refs])
    n_curves = len(_refs(butler, "deepDiff_forced_diaObject", chain))
    truth_visit = truth_objects = None
    if truth:
        expected = {(int(r["visit"]), int(r["detector"])) for r in ccds}
        truth_refs = [r for r in _refs(butler, "truth_visit", butler.collections.defaults) if _ccd(r) in expected]
        object_refs = _refs(butler, "truth_objects", butler.collections.defaults)
        if truth_refs and object_refs:
            truth_visit = _stack([_with_columns(butler.get(r), visit=_ccd(r)[0], detector=_ccd(r)[1])
                                  for r in truth_refs])
            truth_objects = butler.get(object_refs[0])
    return RunCatalogs(repo, rerun, ccds, sources, objects, object_sources, forced, len(forced_refs), n_curves,
                       truth_visit, truth_objects)


def iter_differences(repo: str, rerun: str, ccds: list[tuple[int, int]],
                     psf_grid: int = 5) -> Iterator[tuple[tuple[int, int], Exposure]]:
    """Yield ``((visit, detector), difference)`` for the given CCDs, one image in memory at a time.

    Parameters
    ----------
    repo, rerun : `str`
        Repository and rerun.
    ccds : `list` [`tuple` [`int`, `int`]]
        ``(visit, detector)`` pairs; those without a difference image are skipped.
    psf_grid : `int`
        The difference PSF is sampled on ``psf_grid`` × ``psf_grid`` nodes.
    """
    butler = open_rerun(repo, rerun)
    refs = {_ccd(r): r for r in _refs(butler, "deepDiff_differenceExp", rerun_collection(rerun))}
    for key in ccds:
        if key in refs:
            yield key, visit_image_to_exposure(butler.get(refs[key]), psf_grid=psf_grid)


def read_cutout(butler: Butler, dataset_type: str, data_id: Mapping, ra: float, dec: float,
                half_size: int) -> Exposure | None:
    """A square cutout of an image dataset centred on a sky position, or `None` if absent or off the image.

    Only the cutout pixels are read (butler ``bbox`` parameter, after reading the ``bbox`` and
    ``sky_projection`` components); it is clipped to the image.  Works for visit images (``calexp``,
    ``deepDiff_differenceExp``) and coadd patches alike.

    Parameters
    ----------
    butler : `lsst.daf.butler.Butler`
        Butler with default collections.
    dataset_type : `str`
        Image dataset type.
    data_id : mapping
        Data ID.
    ra, dec : `float`
        Centre [deg].
    half_size : `int`
        The cutout is ``2 half_size + 1`` pixels on a side (less where clipped).
    """
    import lsst.images as li

    try:
        ref = butler.find_dataset(dataset_type, data_id)
    except MissingDatasetTypeError:
        return None
    if ref is None:
        return None
    bbox = butler.get(ref.makeComponentRef("bbox"))
    projection = butler.get(ref.makeComponentRef("sky_projection"))
    wcs = projection.as_fits_wcs(bbox, allow_approximation=True)
    x, y = (float(v) for v in wcs.world_to_pixel_values(ra, dec))
    if not (np.isfinite(x) and np.isfinite(y)):
        return None
    xc, yc = int(round(x)) + bbox.x.start, int(round(y)) + bbox.y.start
    x_lo, x_hi = max(bbox.x.start, xc - half_size), min(bbox.x.stop, xc + half_size + 1)
    y_lo, y_hi = max(bbox.y.start, yc - half_size), min(bbox.y.stop, yc + half_size + 1)
    if x_lo >= x_hi or y_lo >= y_hi:
        return None
    image = butler.get(ref, parameters={"bbox": li.Box.factory[y_lo:y_hi, x_lo:x_hi]})
    return visit_image_to_exposure(image, psf_grid=1)


def read_light_curve(butler: Butler, rerun: str, tract: int, patch: int, dia_object_id: int) -> Table:
    """Forced light curve of one DIAObject from its patch's ``deepDiff_forced_diaObject`` (empty if absent)."""
    refs = [r for r in _refs(butler, "deepDiff_forced_diaObject", rerun_collection(rerun))
            if int(r.dataId["tract"]) == tract and int(r.dataId["patch"]) == patch]
    if not refs:
        return Table()
    curves = butler.get(refs[0])
    return curves[np.asarray(curves["diaObjectId"]) == dia_object_id]
