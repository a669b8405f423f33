"""Observation metadata of survey images from their FITS headers: instrument, visit, detector, filter, time.

Header keywords are configurable (`HeaderKeywords`); the defaults follow the NOIRLab Community Pipeline
(DECam, Mosaic, 90Prime) and most ground-based archives. DECam CCD names (``N4``, ``S5``, …) map to the
``CCDNUM`` numbering of the DECam focal plane (1 … 62), which obs_decam also uses as detector ids.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import astropy.time
import numpy as np
from astropy.io import fits

from .errors import MissingMetadataError

__all__ = [
    "DECAM_CCD_IDS",
    "HeaderKeywords",
    "ObservationMetadata",
    "BandRule",
    "parse_band_rule",
    "band_for_filter",
    "visit_from_mjd",
    "read_observation_metadata",
]

_DECAM_ORDER = (
    "S29 S30 S31 S25 S26 S27 S28 S20 S21 S22 S23 S24 S14 S15 S16 S17 S18 S19 S8 S9 S10 S11 S12 S13 "
    "S1 S2 S3 S4 S5 S6 S7 "
    "N1 N2 N3 N4 N5 N6 N7 N8 N9 N10 N11 N12 N13 N14 N15 N16 N17 N18 N19 N20 N21 N22 N23 N24 N25 N26 N27 "
    "N28 N29 N30 N31"
).split()

#: DECam CCD name -> CCDNUM (detector id).
DECAM_CCD_IDS: dict[str, int] = {name: i + 1 for i, name in enumerate(_DECAM_ORDER)}

#: Bands recognised from the first word of a filter name when no ``--band-map`` rule matches.
_KNOWN_BANDS = ("u", "g", "r", "i", "z", "y", "vr")

#: Reference epoch and tick of visit ids made from the exposure start when there is no exposure number.
_VISIT_MJD0 = 50000.0
_VISIT_TICK_S = 2.0


@dataclasses.dataclass(frozen=True)
class HeaderKeywords:
    """Header keywords read for each quantity, in order of preference (first present wins).

    Attributes
    ----------
    instrument, filter, visit, mjd, date, exposure_time : `tuple` [`str`]
        Keywords of each quantity. ``mjd`` and ``date`` give the exposure START (MJD or ISO date, UTC).
    detector_name, detector_id, saturation, target : `tuple` [`str`]
        Keywords of the detector name and id, the saturation level [counts] and the field name.
    zeropoint : `tuple` [`str`]
        Magnitude zero point of the whole exposure (magnitude of one count).
    """

    instrument: tuple[str, ...] = ("INSTRUME",)
    filter: tuple[str, ...] = ("FILTER", "FILTNAM", "BAND")
    visit: tuple[str, ...] = ("EXPNUM", "EXPID", "VISIT")
    mjd: tuple[str, ...] = ("MJD-OBS",)
    date: tuple[str, ...] = ("DATE-OBS",)
    exposure_time: tuple[str, ...] = ("EXPTIME", "EXPOSURE")
    detector_name: tuple[str, ...] = ("DETPOS", "CCDNAME", "EXTNAME")
    detector_id: tuple[str, ...] = ("CCDNUM",)
    saturation: tuple[str, ...] = ("SATURATE",)
    zeropoint: tuple[str, ...] = ("MAGZERO",)
    target: tuple[str, ...] = ("OBJECT",)


@dataclasses.dataclass(frozen=True)
class BandRule:
    """``band`` applies to physical filters matching ``pattern`` (a regular expression, `re.search`)."""

    band: str
    pattern: re.Pattern[str]


def parse_band_rule(text: str) -> BandRule:
    """Parse a band-map rule ``BAND=REGEX`` or ``"BAND REGEX"``, e.g. ``"r=^r DECam"`` or ``"r DECam r.*"``.

    The regular expression is searched (`re.search`) in the physical filter name.

    Raises
    ------
    ValueError
        If the text has no band and expression, or the regular expression is invalid.
    """
    text = text.strip()
    head = text.split(None, 1)[0] if text else ""
    if "=" in head:
        band, _, pattern = text.partition("=")
    else:
        band, _, pattern = text.partition(" ")
    band, pattern = band.strip(), pattern.strip()
    if not band or not pattern:
        raise ValueError(f"Band-map rule {text!r} is not BAND=REGEX or 'BAND REGEX'.")
    try:
        return BandRule(band, re.compile(pattern))
    except re.error as err:
        raise ValueError(f"Band-map rule {text!r}: invalid regular expression ({err}).") from None


@dataclasses.dataclass(frozen=True)
class ObservationMetadata:
    """What the registry and the calexp need to know of one detector image.

    Attributes
    ----------
    instrument : `str`
        Instrument name.
    physical_filter, band : `str`
        Filter name as in the header, and its band.
    visit : `int`
        Visit id (exposure number, or 2-s ticks since MJD 50000 when there is none).
    detector_id : `int`
        Detector id.
    detector_name : `str`
        Detector name (e.g. DECam ``N4``).
    mjd : `float`
        Mid-exposure MJD (TAI).
    exposure_time : `float`
        Exposure time [s].
    saturation : `float` or `None`
        Saturation level [counts].
    detector_center_px : `tuple` [`float`, `float`] or `None`
        Centre of the detector in focal-plane pixels (from ``DETSEC``), when known.
    target : `str`
        Field name (``OBJECT``).
    """

    instrument: str
    physical_filter: str
    band: str
    visit: int
    detector_id: int
    detector_name: str
    mjd: float
    exposure_time: float
    saturation: float | None
    detector_center_px: tuple[float, float] | None
    target: str = "field"


def _first(header: fits.Header, keys: Sequence[str]):
    for key in keys:
        value = header.get(key)
        if value is not None and not (isinstance(value, str) and not value.strip()):
            return value
    return None


def band_for_filter(physical_filter: str, rules: Sequence[BandRule] = ()) -> str | None:
    """Band of a physical filter: the first matching rule, else the filter's first word if it is a band."""
    for rule in rules:
        if rule.pattern.search(physical_filter):
            return rule.band
    words = physical_filter.split()
    if words and words[0].lower() in _KNOWN_BANDS:
        return words[0].lower()
    return None


def visit_from_mjd(mjd_start_utc: float) -> int:
    """Visit id of an exposure without an exposure number: 2-s ticks since MJD 50000 (unique per camera)."""
    return int(round((mjd_start_utc - _VISIT_MJD0) * 86400.0 / _VISIT_TICK_S))


def _detsec_center(value: str | None) -> tuple[float, float] | None:
    if not value:
        return None
    match = re.fullmatch(r"\s*\[(\d+):(\d+),(\d+):(\d+)\]\s*", str(value))
    if match is None:
        return None
    x0, x1, y0, y1 = (int(g) for g in match.groups())
    return 0.5 * (x0 + x1) - 1.0, 0.5 * (y0 + y1) - 1.0


def read_observation_metadata(
    header: fits.Header,
    source: str,
    *,
    hdu_index: int,
    keywords: HeaderKeywords = HeaderKeywords(),
    instrument: str | None = None,
    band_rules: Sequence[BandRule] = (),
    physical_filter: str | None = None,
) -> ObservationMetadata:
    """Read the observation metadata of one detector image.

    Parameters
    ----------
    header : `astropy.io.fits.Header`
        Merged header (extension keywords over the primary header's).
    source : `str`
        Name used in error messages.
    hdu_index : `int`
        Index of the image HDU in its file (last-resort detector id).
    keywords : `HeaderKeywords`
        Keywords to read.
    instrument : `str`, optional
        Instrument name; default the header's.
    band_rules : sequence of `BandRule`
        Physical filter -> band rules, tried in order.
    physical_filter : `str`, optional
        Physical filter overriding the header's.

    Raises
    ------
    MissingMetadataError
        If the filter, band or exposure start cannot be determined.
    """
    instrument = instrument or str(_first(header, keywords.instrument) or "").strip() or "Generic"
    physical_filter = physical_filter or str(_first(header, keywords.filter) or "").strip()
    if not physical_filter:
        raise MissingMetadataError(source, "filter", keywords.filter)
    band = band_for_filter(physical_filter, band_rules)
    if band is None:
        raise MissingMetadataError(source, f"band for filter {physical_filter!r} (add a --band-map rule)",
                                   keywords.filter)
    mjd_value = _first(header, keywords.mjd)
    try:
        if mjd_value is not None:
            start = astropy.time.Time(float(mjd_value), format="mjd", scale="utc")
        else:
            date_value = _first(header, keywords.date)
            if date_value is None:
                raise MissingMetadataError(source, "exposure start time", keywords.mjd + keywords.date)
            start = astropy.time.Time(str(date_value).strip(), format="isot", scale="utc")
    except ValueError:
        raise MissingMetadataError(source, "parseable exposure start time", keywords.mjd + keywords.date) from None
    exposure_time = float(_first(header, keywords.exposure_time) or 0.0)
    mid_tai = float(start.tai.mjd + 0.5 * exposure_time / 86400.0)
    visit_value = _first(header, keywords.visit)
    visit = int(visit_value) if visit_value is not None else visit_from_mjd(float(start.utc.mjd))
    name = str(_first(header, keywords.detector_name) or f"D{hdu_index}").strip()
    id_value = _first(header, keywords.detector_id)
    if id_value is not None:
        detector_id = int(id_value)
    elif instrument.upper() == "DECAM" and name in DECAM_CCD_IDS:
        detector_id = DECAM_CCD_IDS[name]
    else:
        detector_id = int(hdu_index)
    saturation = _first(header, keywords.saturation)
    return ObservationMetadata(
        instrument=instrument,
        physical_filter=physical_filter,
        band=band,
        visit=visit,
        detector_id=detector_id,
        detector_name=name,
        mjd=mid_tai,
        exposure_time=exposure_time,
        saturation=float(saturation) if saturation is not None and np.isfinite(float(saturation)) else None,
        detector_center_px=_detsec_center(header.get("DETSEC")),
        target=str(_first(header, keywords.target) or "field").strip(),
    )
