"""Command line of ``ingestImages.py``: arguments -> `IngestOptions` -> `ingest_images`.

The exit status is the number of input files that were not ingested (at most 255); 0 means all were.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .dq import DQ_CONVENTIONS
from .metadata import parse_band_rule
from .options import IngestOptions

__all__ = ["build_parser", "main"]

_EPILOG = """\
Inputs
  Each FILE is an image file, optionally with per-file companions and overrides:
      IMAGE[,weight=FILE][,variance=FILE][,mask=FILE][,psf=FILE][,zp=MAG]
  Without them, companions are found by --weight-suffix/--variance-suffix/--mask-suffix, by Community
  Pipeline names (c4d_..._ooi_... image, _oow_ inverse variance, _ood_ data quality), or as WEIGHT/VARIANCE/
  MASK HDUs of the image file. Every 2-d image HDU of a file is one detector (DECam CCDs N4, S5, ... map to
  their CCDNUM). lsst-images VisitImage files are stored as they are.

What is stored
  science images  -> calexp (instrument, visit, detector), sky-subtracted, in nJy, with a PSF and TAN-SIP WCS
  template images -> deepCoadd_calexp (skymap, tract, patch, band) on the patches of a local rings sky map
  both in RUN collections <run>/calexp, <run>/templates (and <run>/skymap), appended to the repository's
  default input chain, so the drivers read them with no extra option.

Calibration
  nJy per count = 10**((31.4 - ZP) / 2.5). ZP comes from zp= of the input, else --zeropoint, else the first
  --zeropoint-keyword in the header; with --calibrate-to-template, images without one are calibrated on the
  stars of a calibrated template of the same band.

Example (DECam Community Pipeline crops, PSFEx models from legacypipe)
  ingestImages.py repo --template c4d_170316_062107_ooi_z_ls9.N2.fits \\
      --science c4d_170419_042827_ooi_z_ls9.S1.fits --psfex-dir calib/ --calibrate-to-template

Exit status: number of files that were not ingested (capped at 255).
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``ingestImages.py`` argument parser."""
    p = argparse.ArgumentParser(
        prog="ingestImages.py",
        description="Ingest survey FITS images into a dia_pipe repository: science images as calexps, "
        "templates as deepCoadd_calexp patches of a local sky map.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("repo", help="Butler repository (created if it does not exist).")
    p.add_argument("--science", nargs="+", action="extend", default=[], metavar="FILE",
                   help="Science images (stored as calexp).")
    p.add_argument("--template", nargs="+", action="extend", default=[], metavar="FILE",
                   help="Template images (reprojected onto sky-map patches, stored as deepCoadd_calexp).")

    g = p.add_argument_group("metadata")
    g.add_argument("--instrument", help="Instrument name (default: header INSTRUME).")
    g.add_argument("--filter-keyword", metavar="KEY", help="Header keyword of the filter (default FILTER).")
    g.add_argument("--band-map", action="append", default=[], metavar="RULE",
                   help="Physical filter -> band rule, 'BAND=REGEX' or 'BAND REGEX' (e.g. 'r DECam r.*'); "
                   "repeatable, first match wins; default: the filter's first word if it is a band name.")

    g = p.add_argument_group("calibration")
    zp = g.add_mutually_exclusive_group()
    zp.add_argument("--zeropoint-keyword", action="append", metavar="KEY",
                    help="Header keyword of the exposure's magnitude zero point (repeatable; default MAGZERO).")
    zp.add_argument("--zeropoint", type=float, metavar="MAG", help="Zero point for every image.")
    g.add_argument("--calibrate-to-template", action="store_true",
                   help="Calibrate images without a zero point on the stars of same-band templates.")
    g.add_argument("--min-calibration-stars", type=int, default=3, metavar="N",
                   help="Fewest matched stars of such a calibration (default 3).")

    g = p.add_argument_group("planes")
    g.add_argument("--weight-suffix", metavar="SUFFIX",
                   help="Inverse-variance file: image name with .fits replaced by SUFFIX (e.g. .weight.fits).")
    g.add_argument("--variance-suffix", metavar="SUFFIX", help="Variance file suffix (as --weight-suffix).")
    g.add_argument("--mask-suffix", metavar="SUFFIX", help="Mask/DQ file suffix (as --weight-suffix).")
    g.add_argument("--no-cp-names", action="store_true",
                   help="Do not pair Community Pipeline _ooi_/_oow_/_ood_ file names.")
    g.add_argument("--dq-convention", choices=DQ_CONVENTIONS, default="auto",
                   help="Meaning of the DQ plane (default auto: from the CP version PLVER, else non-zero = bad).")
    g.add_argument("--background", choices=("mesh", "none"), default="mesh",
                   help="Subtract a smooth sky (mesh, default) or keep the pixels (none: already sky-subtracted).")
    g.add_argument("--background-box", type=int, default=128, metavar="PX", help="Sky mesh cell (default 128).")

    g = p.add_argument_group("PSF")
    g.add_argument("--psf", nargs="+", action="extend", default=[], metavar="FILE",
                   help="PSFEx files, matched to images by name (exposure stem and CCD name).")
    g.add_argument("--psfex-dir", type=Path, metavar="DIR", help="Directory searched for *psfex.fits / *.psf.")
    g.add_argument("--psf-grid", type=int, default=3, metavar="N", help="PSF grid nodes per axis (default 3).")
    g.add_argument("--psf-min-stars", type=int, default=3, metavar="N",
                   help="Fewest stars for a PSF estimated from the image (default 3).")
    g.add_argument("--psf-star-snr", type=float, default=30.0, metavar="SNR", help="S/N of PSF stars (default 30).")
    g.add_argument("--psf-stamp-size", type=int, metavar="PX", help="Odd PSF stamp side (default 2 ceil(3.5 FWHM)+1).")

    g = p.add_argument_group("sky map and output")
    g.add_argument("--skymap-name", default="ingest_rings", help="Sky map name (reused if it exists).")
    g.add_argument("--pixel-scale", type=float, metavar="ARCSEC",
                   help="Sky-map pixel scale (default: median template pixel scale).")
    g.add_argument("--patch-size", type=int, default=1000, metavar="PX", help="Inner patch side (default 1000).")
    g.add_argument("--patch-border", type=int, default=50, metavar="PX", help="Patch border (default 50).")
    g.add_argument("--num-rings", type=int, default=120, help="Declination rings of the sky map (default 120).")
    g.add_argument("--cell-size", type=int, default=100, metavar="PX", help="Coadd PSF cell side (default 100).")
    g.add_argument("--wcs-tolerance", type=float, default=0.01, metavar="PX",
                   help="Largest TPV -> TAN-SIP fit residual (default 0.01 px).")
    g.add_argument("--run", help="Output RUN prefix (default ingest/<UTC timestamp>).")
    g.add_argument("-q", "--quiet", action="store_true", help="Print only failures and the summary.")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ingestImages.py``; return the number of files not ingested (at most 255)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.science and not args.template:
        parser.error("give at least one --science or --template file")
    try:
        band_rules = tuple(parse_band_rule(r) for r in args.band_map)
        options = IngestOptions(
            instrument=args.instrument,
            filter_keyword=args.filter_keyword,
            band_rules=band_rules,
            zeropoint_keywords=tuple(args.zeropoint_keyword or ("MAGZERO",)),
            zeropoint=args.zeropoint,
            calibrate_to_template=args.calibrate_to_template,
            psf_files=tuple(Path(f) for f in args.psf),
            psfex_dir=args.psfex_dir,
            weight_suffix=args.weight_suffix,
            variance_suffix=args.variance_suffix,
            mask_suffix=args.mask_suffix,
            community_pipeline_names=not args.no_cp_names,
            dq_convention=args.dq_convention,
            background=args.background,
            background_box=args.background_box,
            psf_grid=args.psf_grid,
            psf_min_stars=args.psf_min_stars,
            psf_star_snr=args.psf_star_snr,
            psf_stamp_size=args.psf_stamp_size,
            wcs_tolerance_px=args.wcs_tolerance,
            skymap_name=args.skymap_name,
            pixel_scale=args.pixel_scale,
            num_rings=args.num_rings,
            patch_size=args.patch_size,
            patch_border=args.patch_border,
            cell_size=args.cell_size,
            min_calibration_stars=args.min_calibration_stars,
            run=args.run,
        )
    except ValueError as err:
        parser.error(str(err))
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    from .ingest import ingest_images  # imports the butler: not needed for --help

    report = ingest_images(args.repo, args.science, args.template, options)
    *details, summary = report.lines()
    for line in details:
        if line.startswith("FAILED"):
            print(line, file=sys.stderr)
        elif not args.quiet:
            print(line)
    print(summary)
    return min(report.n_failed, 255)
