"""Read survey FITS images with their variance/weight and data-quality planes.

An input is an image file plus, optionally, a weight (inverse variance) or variance file and a DQ/mask file.
They are paired, in order of precedence:

1. explicitly, in the input spec ``IMAGE[,weight=FILE][,variance=FILE][,mask=FILE][,psf=FILE][,zp=MAG]``;
2. by suffix rules (`PlaneNaming`): replace the image file's ``.fits``/``.fits.fz`` ending by a suffix;
3. by NOIRLab Community Pipeline names: ``…_ooi_…`` image, ``…_oow_…`` weight, ``…_ood_…`` DQ (any
   ``_o?i_`` product code);
4. inside the image file itself: HDUs named ``WEIGHT``/``WHT``/``IVAR``, ``VARIANCE``/``VAR`` and
   ``MASK``/``DQ``/``BPM`` next to the image HDU.

Every other 2-d image HDU of an image file is one detector (a multi-extension DECam file holds one CCD per
HDU); plane files are matched to it by EXTNAME, else by HDU index.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from .errors import IngestError, PlaneShapeMismatchError

__all__ = ["InputSpec", "PlaneNaming", "RawImage", "resolve_planes", "read_raw_images", "is_lsst_visit_image"]

_IMAGE_NAMES = ("SCI", "IMAGE", "IMG")
_WEIGHT_NAMES = ("WEIGHT", "WHT", "IVAR", "INVVAR")
_VARIANCE_NAMES = ("VARIANCE", "VAR")
_MASK_NAMES = ("MASK", "DQ", "BPM", "FLAGS")
_CP_PATTERN = re.compile(r"_(o[a-z])i_")


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """One input image and its companion files and per-file overrides.

    Attributes
    ----------
    image : `pathlib.Path`
        Image file.
    weight, variance, mask : `pathlib.Path` or `None`
        Inverse-variance, variance and DQ/mask files (at most one of weight/variance).
    psf : `pathlib.Path` or `None`
        PSFEx file of this image.
    zeropoint : `float` or `None`
        Magnitude zero point of this image (overrides the header).
    """

    image: Path
    weight: Path | None = None
    variance: Path | None = None
    mask: Path | None = None
    psf: Path | None = None
    zeropoint: float | None = None

    @classmethod
    def parse(cls, text: str) -> InputSpec:
        """Parse ``IMAGE[,weight=FILE][,variance=FILE][,mask=FILE][,psf=FILE][,zp=MAG]``.

        Raises
        ------
        ValueError
            For an unknown key, a bad zero point, or both a weight and a variance.
        """
        head, *items = text.split(",")
        values: dict = {"image": Path(head)}
        for item in items:
            key, sep, value = item.partition("=")
            key = key.strip().lower()
            if not sep or key not in ("weight", "variance", "mask", "psf", "zp"):
                raise ValueError(f"Input {text!r}: expected KEY=VALUE with KEY in weight, variance, mask, psf, zp.")
            if key == "zp":
                try:
                    values["zeropoint"] = float(value)
                except ValueError:
                    raise ValueError(f"Input {text!r}: zero point {value!r} is not a number.") from None
            else:
                values[key] = Path(value)
        if "weight" in values and "variance" in values:
            raise ValueError(f"Input {text!r}: give a weight or a variance file, not both.")
        return cls(**values)

    @property
    def name(self) -> str:
        """File name used in messages."""
        return str(self.image)


@dataclasses.dataclass(frozen=True)
class PlaneNaming:
    """Suffix rules that find companion files next to an image file.

    Attributes
    ----------
    weight_suffix, variance_suffix, mask_suffix : `str` or `None`
        Replace the image's ``.fits``/``.fits.fz`` ending by this (e.g. ``".weight.fits"``).
    community_pipeline : `bool`
        Also pair ``_ooi_`` / ``_oow_`` / ``_ood_`` Community Pipeline names.
    """

    weight_suffix: str | None = None
    variance_suffix: str | None = None
    mask_suffix: str | None = None
    community_pipeline: bool = True


@dataclasses.dataclass
class RawImage:
    """The planes of one detector as read from disk (counts, no calibration).

    Attributes
    ----------
    source : `str`
        ``file[EXTNAME]`` for messages.
    spec : `InputSpec`
        The input it came from.
    hdu_index : `int`
        Index of the image HDU.
    image : `numpy.ndarray`
        ``(ny, nx)`` float32 pixels [counts].
    variance : `numpy.ndarray` or `None`
        ``(ny, nx)`` float32 variance [counts²]; NaN where the weight was zero or not finite.
    dq : `numpy.ndarray` or `None`
        ``(ny, nx)`` integer DQ plane.
    header : `astropy.io.fits.Header`
        Extension header with the primary header's keywords it lacks.
    primary_header : `astropy.io.fits.Header`
        Primary header.
    """

    source: str
    spec: InputSpec
    hdu_index: int
    image: np.ndarray
    variance: np.ndarray | None
    dq: np.ndarray | None
    header: fits.Header
    primary_header: fits.Header


def _strip_fits_ending(path: Path) -> str:
    name = str(path)
    for ending in (".fits.fz", ".fits.gz", ".fits", ".fit", ".fz"):
        if name.lower().endswith(ending):
            return name[: -len(ending)]
    return name


def resolve_planes(spec: InputSpec, naming: PlaneNaming) -> InputSpec:
    """Fill in the weight/variance and mask files of an input from the naming rules (explicit ones win)."""
    weight, variance, mask = spec.weight, spec.variance, spec.mask
    stem = _strip_fits_ending(spec.image)
    if weight is None and variance is None:
        if naming.weight_suffix and Path(stem + naming.weight_suffix).exists():
            weight = Path(stem + naming.weight_suffix)
        elif naming.variance_suffix and Path(stem + naming.variance_suffix).exists():
            variance = Path(stem + naming.variance_suffix)
    if mask is None and naming.mask_suffix and Path(stem + naming.mask_suffix).exists():
        mask = Path(stem + naming.mask_suffix)
    if naming.community_pipeline and _CP_PATTERN.search(spec.image.name):
        def sibling(code: str) -> Path:
            return spec.image.with_name(_CP_PATTERN.sub(lambda m: f"_{m.group(1)}{code}_", spec.image.name, 1))

        if weight is None and variance is None and sibling("w").exists():
            weight = sibling("w")
        if mask is None and sibling("d").exists():
            mask = sibling("d")
    return dataclasses.replace(spec, weight=weight, variance=variance, mask=mask)


def is_lsst_visit_image(path: Path) -> bool:
    """True if ``path`` is an lsst-images ``VisitImage`` FITS file (``DATAMODL`` … ``visit_image``)."""
    try:
        header = fits.getheader(path, 0)
    except (OSError, ValueError):
        return False
    return "visit_image" in str(header.get("DATAMODL", ""))


def _image_hdus(hdul: fits.HDUList) -> list[int]:
    return [i for i, h in enumerate(hdul) if h.is_image and h.header.get("NAXIS", 0) == 2]


def _named(hdul: fits.HDUList, names: tuple[str, ...]) -> int | None:
    for i in _image_hdus(hdul):
        if str(hdul[i].header.get("EXTNAME", "")).strip().upper() in names:
            return i
    return None


def _merged_header(hdul: fits.HDUList, index: int) -> fits.Header:
    header = hdul[index].header.copy()
    if index != 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", VerifyWarning)
            for card in hdul[0].header.cards:
                if card.keyword and card.keyword not in header and card.keyword not in ("COMMENT", "HISTORY", ""):
                    header[card.keyword] = (card.value, card.comment)
    return header


def _companion_hdu(hdul: fits.HDUList, extname: str, index: int, source: str, kind: str) -> np.ndarray:
    """The HDU of a companion file that matches an image HDU: same EXTNAME, else same index."""
    if extname:
        for i in _image_hdus(hdul):
            if str(hdul[i].header.get("EXTNAME", "")).strip() == extname:
                return hdul[i].data
    if index < len(hdul) and hdul[index].is_image and hdul[index].data is not None:
        return hdul[index].data
    raise IngestError(f"{source}: the {kind} file has no HDU {extname or index}.")


def _variance_from(weight: np.ndarray | None, variance: np.ndarray | None) -> np.ndarray | None:
    if weight is not None:
        w = np.asarray(weight, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            var = np.where(np.isfinite(w) & (w > 0), 1.0 / w, np.nan)
        return var.astype(np.float32)
    if variance is not None:
        v = np.asarray(variance, dtype=np.float32)
        return np.where(np.isfinite(v) & (v > 0), v, np.float32(np.nan)).astype(np.float32)
    return None


def read_raw_images(spec: InputSpec) -> list[RawImage]:
    """Read every detector of an input: image, variance (from weight or variance) and DQ planes.

    Parameters
    ----------
    spec : `InputSpec`
        Input with its companion files resolved (`resolve_planes`).

    Returns
    -------
    images : `list` [`RawImage`]
        One per detector.

    Raises
    ------
    IngestError
        If a file cannot be opened or holds no 2-d image.
    PlaneShapeMismatchError
        If the planes of a detector differ in shape.
    """
    try:
        hdul = fits.open(spec.image, memmap=False)
    except (OSError, ValueError) as err:
        raise IngestError(f"{spec.name}: cannot read FITS file ({err}).") from None
    with hdul:
        image_hdus = _image_hdus(hdul)
        if not image_hdus:
            raise IngestError(f"{spec.name}: no 2-d image HDU.")
        in_file_image = _named(hdul, _IMAGE_NAMES)
        in_file_planes = {
            "weight": _named(hdul, _WEIGHT_NAMES),
            "variance": _named(hdul, _VARIANCE_NAMES),
            "mask": _named(hdul, _MASK_NAMES),
        }
        if any(v is not None for v in in_file_planes.values()):
            image_hdus = [in_file_image if in_file_image is not None else image_hdus[0]]
        companions = {}
        for kind in ("weight", "variance", "mask"):
            path = getattr(spec, kind)
            if path is not None:
                try:
                    companions[kind] = fits.open(path, memmap=False)
                except (OSError, ValueError) as err:
                    for c in companions.values():
                        c.close()
                    raise IngestError(f"{spec.name}: cannot read {kind} file {path} ({err}).") from None
        try:
            out = []
            for index in image_hdus:
                extname = str(hdul[index].header.get("EXTNAME", "")).strip()
                source = f"{spec.name}[{extname or index}]"
                planes: dict[str, np.ndarray | None] = {"image": hdul[index].data}
                for kind in ("weight", "variance", "mask"):
                    if kind in companions:
                        planes[kind] = _companion_hdu(companions[kind], extname, index, source, kind)
                    elif in_file_planes[kind] is not None:
                        planes[kind] = hdul[in_file_planes[kind]].data
                shapes = {k: tuple(np.shape(v)) for k, v in planes.items() if v is not None}
                if len(set(shapes.values())) > 1:
                    raise PlaneShapeMismatchError(source, shapes)
                out.append(
                    RawImage(
                        source=source,
                        spec=spec,
                        hdu_index=index,
                        image=np.asarray(planes["image"], dtype=np.float32),
                        variance=_variance_from(planes.get("weight"), planes.get("variance")),
                        dq=None if planes.get("mask") is None else np.asarray(planes["mask"]).astype(np.int64),
                        header=_merged_header(hdul, index),
                        primary_header=hdul[0].header.copy(),
                    )
                )
            return out
        finally:
            for c in companions.values():
                c.close()
