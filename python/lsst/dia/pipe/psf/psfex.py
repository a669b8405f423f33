"""PSFEx PSF models: read the model files and evaluate them without lsst.afw.

A PSFEx model is a set of basis images ``B_k`` (the ``PSF_MASK`` array) combined with polynomial weights of
the image position: ``PSF(x, y) = sum_k P_k(X, Y) B_k`` with ``X = (x_image - POLZERO1) / POLSCAL1`` and
``Y = (y_image - POLZERO2) / POLSCAL2``, where ``x_image, y_image`` are PSFEx's ``X_IMAGE, Y_IMAGE`` (FITS,
1-based pixels). The terms ``P_k`` run over ``X**i * Y**j`` with ``i + j <= POLDEG1``, ``j`` in the outer loop
and ``i`` in the inner one (``1, X, X², Y, XY, Y²`` for degree 2). The basis images are sampled every
``PSF_SAMP`` image pixels and centred on pixel ``(w // 2, h // 2)``.

Two file layouts are read:

- classic PSFEx output (``.psf``): a ``PSF_DATA`` binary table with one row holding ``PSF_MASK``, and the
  model parameters (``POLNAXIS``, ``POLNAME1``, ``POLZERO1``, ``POLSCAL1``, ``POLDEG1``, ``PSF_SAMP``, …) in
  its header;
- legacypipe's merged per-exposure files: one row per CCD, with ``psf_mask`` and the same parameters as
  lower-case columns (``ccdname``, ``polzero1``, ``poldeg1``, ``psf_samp``, …).
"""

from __future__ import annotations

import dataclasses
import functools
import os

import numpy as np
from astropy.io import fits

from .models import GridPsf, psf_moments_sigma

__all__ = ["PsfexFormatError", "PsfexModel", "read_psfex", "psfex_to_grid"]

_LANCZOS_ORDER = 3


class PsfexFormatError(ValueError):
    """A PSFEx file cannot be interpreted.

    Parameters
    ----------
    path : `str`
        File name.
    reason : `str`
        What is wrong with it.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"PSFEx model {path}: {reason}")


def _lanczos_matrix(n_in: int, n_out: int, sampling: float) -> np.ndarray:
    """``(n_out, n_in)`` Lanczos-3 weights resampling a centred axis from basis pixels to image pixels.

    Output pixel ``k`` sits ``k - n_out // 2`` image pixels from the centre, i.e. at basis pixel
    ``n_in // 2 + (k - n_out // 2) / sampling``. Rows are normalised to sum 1 (flux-conserving interpolation).
    """
    position = n_in // 2 + (np.arange(n_out) - n_out // 2) / sampling
    t = position[:, None] - np.arange(n_in)[None, :]
    weights = np.where(np.abs(t) < _LANCZOS_ORDER, np.sinc(t) * np.sinc(t / _LANCZOS_ORDER), 0.0)
    sums = weights.sum(axis=1, keepdims=True)
    return np.divide(weights, sums, out=np.zeros_like(weights), where=sums != 0)


@dataclasses.dataclass(frozen=True, eq=False)
class PsfexModel:
    """A PSFEx model, evaluated in image pixels (a `~lsst.dia.pipe.psf.PsfModel`).

    Attributes
    ----------
    basis : `numpy.ndarray`
        ``(n_terms, h, w)`` basis images, ``n_terms = (degree + 1) (degree + 2) / 2``.
    degree : `int`
        Polynomial degree (0: constant PSF).
    zero, scale : `tuple` [`float`, `float`]
        ``POLZERO1/2`` and ``POLSCAL1/2`` [FITS pixels].
    sampling : `float`
        ``PSF_SAMP``: image pixels per basis pixel.
    fwhm : `float` or `None`
        ``PSF_FWHM`` recorded by PSFEx [image pixels].
    stamp_size : `int` or `None`
        Odd side of the evaluated stamps [image pixels]; `None` chooses the largest odd stamp inside the
        basis footprint.
    """

    basis: np.ndarray
    degree: int
    zero: tuple[float, float] = (0.0, 0.0)
    scale: tuple[float, float] = (1.0, 1.0)
    sampling: float = 1.0
    fwhm: float | None = None
    stamp_size: int | None = None

    def __post_init__(self) -> None:
        basis = np.asarray(self.basis, dtype=float)
        if basis.ndim != 3:
            raise ValueError(f"PSFEx basis must be (n_terms, h, w), got shape {basis.shape}.")
        n_terms = (self.degree + 1) * (self.degree + 2) // 2
        if basis.shape[0] != n_terms:
            raise ValueError(f"PSFEx degree {self.degree} needs {n_terms} basis images, got {basis.shape[0]}.")
        if not (self.sampling > 0 and np.isfinite(self.sampling)):
            raise ValueError(f"PSF_SAMP must be positive and finite, got {self.sampling!r}.")
        if not all(s != 0 and np.isfinite(s) for s in self.scale) or not np.all(np.isfinite(self.zero)):
            raise ValueError(f"Invalid PSFEx polynomial zero {self.zero} / scale {self.scale}.")
        if not np.all(np.isfinite(basis)):
            raise ValueError("PSFEx basis images contain non-finite values.")
        if self.stamp_size is None:
            half = int(np.floor(min(basis.shape[1] // 2, basis.shape[2] // 2) * self.sampling))
            object.__setattr__(self, "stamp_size", 2 * max(half, 1) + 1)
        elif self.stamp_size < 3 or self.stamp_size % 2 != 1:
            raise ValueError(f"PSF stamp size must be odd and >= 3, got {self.stamp_size}.")
        object.__setattr__(self, "basis", basis)

    @functools.cached_property
    def _image_basis(self) -> np.ndarray:
        """Basis images resampled to centred image-pixel stamps, ``(n_terms, size, size)``."""
        _, h, w = self.basis.shape
        wy = _lanczos_matrix(h, self.stamp_size, self.sampling)
        wx = _lanczos_matrix(w, self.stamp_size, self.sampling)
        return np.einsum("ya,kab,xb->kyx", wy, self.basis, wx)

    @functools.cached_property
    def _powers(self) -> np.ndarray:
        """``(n_terms, 2)`` powers of (X, Y) in PSFEx order: Y power outer, X power inner."""
        d = self.degree
        return np.array([(i, j) for j in range(d + 1) for i in range(d + 1 - j)], dtype=int)

    @property
    def size(self) -> int:
        """Side of the evaluated stamps [image pixels]."""
        return int(self.stamp_size)

    def terms(self, x: float, y: float) -> np.ndarray:
        """Polynomial weights of the basis images at array pixel ``(x, y)`` (0-based)."""
        big_x = (x + 1.0 - self.zero[0]) / self.scale[0]
        big_y = (y + 1.0 - self.zero[1]) / self.scale[1]
        return big_x ** self._powers[:, 0] * big_y ** self._powers[:, 1]

    def kernel_image(self, x: float, y: float) -> np.ndarray:
        """The PSF at array pixel ``(x, y)``: ``(size, size)`` stamp, sum 1, centred on the central pixel.

        Raises
        ------
        ValueError
            If the model has no positive flux at this position.
        """
        stamp = np.tensordot(self.terms(x, y), self._image_basis, axes=1)
        total = stamp.sum()
        if not np.isfinite(total) or total <= 0:
            raise ValueError(f"PSFEx model has no positive flux at (x={x}, y={y}).")
        return stamp / total

    def sigma(self, x: float, y: float) -> float:
        """Gaussian-equivalent width [pixels] at array pixel ``(x, y)``."""
        return psf_moments_sigma(self.kernel_image(x, y))


def _table_hdu(hdus: fits.HDUList, path: str) -> fits.BinTableHDU:
    candidates = [
        hdu for hdu in hdus
        if isinstance(hdu, fits.BinTableHDU) and "psf_mask" in (n.lower() for n in hdu.columns.names)
    ]
    if not candidates:
        raise PsfexFormatError(path, "no binary table with a PSF_MASK column")
    named = [hdu for hdu in candidates if hdu.name.upper() == "PSF_DATA"]
    return (named or candidates)[0]


def _select_row(table: fits.FITS_rec, names: dict[str, str], ccdname: str | None, path: str) -> int:
    if ccdname is None:
        if len(table) != 1:
            raise PsfexFormatError(path, f"{len(table)} rows: pass ccdname to choose one")
        return 0
    if "ccdname" not in names:
        raise PsfexFormatError(path, "no ccdname column to select a CCD from")
    available = [str(v).strip() for v in table[names["ccdname"]]]
    if ccdname.strip() not in available:
        raise PsfexFormatError(path, f"no row for CCD {ccdname!r} (has {available})")
    return available.index(ccdname.strip())


def read_psfex(path: str | os.PathLike, ccdname: str | None = None, stamp_size: int | None = None) -> PsfexModel:
    """Read a PSFEx model from a classic PSFEx file or a legacypipe merged file.

    Parameters
    ----------
    path : `str` or `os.PathLike`
        FITS file (``.psf``, ``-psfex.fits``).
    ccdname : `str`, optional
        CCD to select in a multi-row (merged) file; not needed for single-row files.
    stamp_size : `int`, optional
        Odd side of the evaluated stamps [image pixels]; default: the basis footprint.

    Returns
    -------
    model : `PsfexModel`

    Raises
    ------
    PsfexFormatError
        If the file has no PSF_MASK table, the row is ambiguous or missing, or the polynomial is not a single
        group in (X_IMAGE, Y_IMAGE).
    """
    path = os.fspath(path)
    with fits.open(path) as hdus:
        hdu = _table_hdu(hdus, path)
        header = hdu.header
        table = hdu.data
        names = {n.lower(): n for n in hdu.columns.names}
        row = _select_row(table, names, ccdname, path)
        # parameters: columns of the selected row (merged layout) override header cards (classic layout)
        params = {k.upper(): header[k] for k in header}
        params.update({k.upper(): table[n][row] for k, n in names.items() if k != "psf_mask"})
        basis = np.array(table[names["psf_mask"]][row], dtype=float)
    if basis.ndim == 2:
        basis = basis[None]

    def number(key: str, default: float | None = None) -> float:
        value = params.get(key, default)
        if value is None:
            raise PsfexFormatError(path, f"missing {key}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise PsfexFormatError(path, f"{key}={value!r} is not a number") from None

    n_axes = int(number("POLNAXIS", 2 if "POLNAME1" in params else 0))
    fake = str(params.get("POLNAME1", "")).strip().lower() == "fake"
    if n_axes == 0 or fake:
        degree, zero, scale = 0, (0.0, 0.0), (1.0, 1.0)
    else:
        polnames = (str(params.get("POLNAME1", "")).strip(), str(params.get("POLNAME2", "")).strip())
        if n_axes != 2 or polnames != ("X_IMAGE", "Y_IMAGE"):
            raise PsfexFormatError(path, f"only X_IMAGE, Y_IMAGE polynomials are supported, got {polnames}")
        if int(number("POLNGRP", 1)) != 1 or int(number("POLGRP1", 1)) != int(number("POLGRP2", 1)):
            raise PsfexFormatError(path, "only a single polynomial group is supported")
        degree = int(number("POLDEG1"))
        zero = (number("POLZERO1"), number("POLZERO2"))
        scale = (number("POLSCAL1"), number("POLSCAL2"))
    fwhm = number("PSF_FWHM", float("nan"))
    try:
        return PsfexModel(
            basis=basis,
            degree=degree,
            zero=zero,
            scale=scale,
            sampling=number("PSF_SAMP", 1.0),
            fwhm=fwhm if np.isfinite(fwhm) else None,
            stamp_size=stamp_size,
        )
    except ValueError as err:
        raise PsfexFormatError(path, str(err)) from None


def psfex_to_grid(
    model: PsfexModel, image_shape: tuple[int, int], n_x: int = 5, n_y: int = 5, stamp_size: int | None = None
) -> GridPsf:
    """Sample a PSFEx model on an ``n_y`` × ``n_x`` grid spanning an image.

    Parameters
    ----------
    model : `PsfexModel`
        The model.
    image_shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the image the model describes; nodes run from pixel 0 to ``n - 1`` on each axis.
    n_x, n_y : `int`
        Number of grid nodes along x and y.
    stamp_size : `int`, optional
        Odd stamp side [pixels]; default ``model.size``.

    Returns
    -------
    grid : `GridPsf`
        In array pixel coordinates of the image.
    """
    if stamp_size is not None and stamp_size != model.size:
        model = dataclasses.replace(model, stamp_size=stamp_size)
    ny, nx = image_shape
    return GridPsf.from_function(model.kernel_image, (0.0, nx - 1.0), (0.0, ny - 1.0), n_x, n_y)
