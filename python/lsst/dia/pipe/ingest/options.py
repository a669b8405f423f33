"""Options of an image ingest (what the ``ingestImages.py`` command line sets)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .dq import DQ_CONVENTIONS
from .metadata import BandRule, HeaderKeywords

__all__ = ["IngestOptions"]


@dataclasses.dataclass(frozen=True)
class IngestOptions:
    """How to read, calibrate and store survey images.

    Attributes
    ----------
    instrument : `str` or `None`
        Instrument name; default the header's ``INSTRUME``.
    filter_keyword : `str` or `None`
        Header keyword of the physical filter (default ``FILTER``, ``FILTNAM``, ``BAND``).
    band_rules : `tuple` [`BandRule`, ...]
        Physical filter -> band rules; unmatched filters use their first word when it is a band name.
    zeropoint_keywords : `tuple` [`str`, ...]
        Header keywords of the exposure's magnitude zero point, first present wins.
    zeropoint : `float` or `None`
        Zero point for every image (overrides the header; per-file ``zp=`` overrides this).
    calibrate_to_template : `bool`
        Calibrate images without a zero point against the stars of calibrated same-band templates.
    psf_files : `tuple` [`pathlib.Path`, ...]
        PSFEx files, matched to images by name (exposure stem and CCD name).
    psfex_dir : `pathlib.Path` or `None`
        Directory searched recursively for PSFEx files (``*psfex.fits``, ``*.psf``).
    weight_suffix, variance_suffix, mask_suffix : `str` or `None`
        Companion files: the image's ``.fits`` ending replaced by the suffix.
    community_pipeline_names : `bool`
        Pair ``_ooi_``/``_oow_``/``_ood_`` Community Pipeline file names.
    dq_convention : `str`
        ``auto`` (from the CP version ``PLVER``), ``cp-codes``, ``cp-bits`` or ``nonzero``.
    background : `str`
        ``mesh`` (subtract a smooth sky) or ``none`` (images are already sky-subtracted).
    background_box : `int`
        Background mesh cell [pixels].
    psf_grid : `int`
        PSF grid nodes per axis (PSFEx sampling, and the most the star-based estimate uses).
    psf_min_stars : `int`
        Fewest stars for a star-based PSF.
    psf_star_snr : `float`
        Matched-filter S/N of PSF stars.
    psf_stamp_size : `int` or `None`
        Odd PSF stamp side [pixels]; default ``2 ceil(3.5 FWHM) + 1``.
    wcs_tolerance_px : `float`
        Largest accepted TPV -> SIP residual [pixels].
    skymap_name : `str`
        Name of the local sky map (reused when the repository already has it).
    pixel_scale : `float` or `None`
        Sky-map pixel scale [arcsec]; default the median template pixel scale.
    num_rings : `int`
        Declination rings of the sky map.
    patch_size : `int`
        Inner patch side [pixels].
    patch_border : `int`
        Patch overlap border [pixels].
    cell_size : `int`
        Cell side of the template coadd PSF [pixels].
    min_calibration_stars : `int`
        Fewest matched stars of a relative calibration.
    run : `str` or `None`
        Prefix of the output RUN collections (``<run>/calexp``, ``<run>/templates``, ``<run>/skymap``);
        default ``ingest/<UTC timestamp>``.
    """

    instrument: str | None = None
    filter_keyword: str | None = None
    band_rules: tuple[BandRule, ...] = ()
    zeropoint_keywords: tuple[str, ...] = ("MAGZERO",)
    zeropoint: float | None = None
    calibrate_to_template: bool = False
    psf_files: tuple[Path, ...] = ()
    psfex_dir: Path | None = None
    weight_suffix: str | None = None
    variance_suffix: str | None = None
    mask_suffix: str | None = None
    community_pipeline_names: bool = True
    dq_convention: str = "auto"
    background: str = "mesh"
    background_box: int = 128
    psf_grid: int = 3
    psf_min_stars: int = 3
    psf_star_snr: float = 30.0
    psf_stamp_size: int | None = None
    wcs_tolerance_px: float = 0.01
    skymap_name: str = "ingest_rings"
    pixel_scale: float | None = None
    num_rings: int = 120
    patch_size: int = 1000
    patch_border: int = 50
    cell_size: int = 100
    min_calibration_stars: int = 3
    run: str | None = None

    def __post_init__(self) -> None:
        if self.dq_convention not in DQ_CONVENTIONS:
            raise ValueError(f"dq_convention must be one of {DQ_CONVENTIONS}, got {self.dq_convention!r}.")
        if self.background not in ("mesh", "none"):
            raise ValueError(f"background must be 'mesh' or 'none', got {self.background!r}.")
        if self.psf_stamp_size is not None and (self.psf_stamp_size < 3 or self.psf_stamp_size % 2 == 0):
            raise ValueError(f"psf_stamp_size must be odd and >= 3, got {self.psf_stamp_size}.")
        if self.psf_grid < 1 or self.psf_min_stars < 1 or self.min_calibration_stars < 1:
            raise ValueError("psf_grid, psf_min_stars and min_calibration_stars must be >= 1.")
        if self.patch_size < 16 or self.patch_border < 0 or self.cell_size < 8:
            raise ValueError("patch_size must be >= 16, patch_border >= 0 and cell_size >= 8.")

    def header_keywords(self) -> HeaderKeywords:
        """The header keywords to read, with this ingest's overrides."""
        keywords = HeaderKeywords(zeropoint=self.zeropoint_keywords)
        if self.filter_keyword:
            keywords = dataclasses.replace(keywords, filter=(self.filter_keyword,))
        return keywords
