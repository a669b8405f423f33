"""PSF images at many sub-pixel positions at once.

A `PsfStampSampler` samples the PSF model once on a grid of nodes (a `GridPsf` is used as is; other models are
evaluated on ``grid_size`` × ``grid_size`` nodes over the image; a constant PSF collapses to one node) and keeps
the Fourier transforms of the node stamps. Rendering ``n`` sources is then: bilinear blend of the node spectra
(linear, so identical to blending the stamps), a Fourier phase ramp for the (arbitrary, real) offset of each
source from its stamp centre, one batched inverse FFT. Gradients with respect to the source position come from
the same spectra multiplied by ``-2πi·frequency``.

The FFT grid is the requested stamp plus `PAD` pixels on each side, so the wrap-around of the periodic shift
only moves PSF wings that lie outside the returned stamp.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal

from ..psf import GridPsf, PsfModel, psf_moments_sigma

__all__ = ["PsfStampSampler", "PAD"]

#: Extra pixels on each side of the FFT grid beyond the returned stamp.
PAD = 1

#: Sources rendered per batch (bounds the size of the complex temporaries).
_BLOCK = 4096


def _embed(stamps: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop or zero-pad the last two axes of odd square ``stamps`` to ``size`` (odd)."""
    k = stamps.shape[-1]
    if k >= size:
        lo = (k - size) // 2
        return stamps[..., lo : lo + size, lo : lo + size]
    out = np.zeros(stamps.shape[:-2] + (size, size), stamps.dtype)
    lo = (size - k) // 2
    out[..., lo : lo + k, lo : lo + k] = stamps
    return out


def _axis_weights(nodes: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower node index, upper node index and fraction for linear interpolation (constant outside)."""
    if len(nodes) == 1:
        zero = np.zeros(v.shape, np.int64)
        return zero, zero, np.zeros(v.shape)
    vc = np.clip(v, nodes[0], nodes[-1])
    i = np.clip(np.searchsorted(nodes, vc) - 1, 0, len(nodes) - 2)
    t = (vc - nodes[i]) / (nodes[i + 1] - nodes[i])
    return i, i + 1, t


class PsfStampSampler:
    """Render PSF stamps for many sources at sub-pixel positions (vectorised).

    Parameters
    ----------
    psf : `~lsst.dia.pipe.psf.PsfModel`
        PSF model in the pixel frame of the image.
    shape : `tuple` [`int`, `int`]
        ``(ny, nx)`` of the image, to place the sampling grid of models that are not a `GridPsf`.
    grid_size : `int`
        Nodes per axis for sampling models that are not a `GridPsf`.
    """

    def __init__(self, psf: PsfModel, shape: tuple[int, int], grid_size: int = 5) -> None:
        if isinstance(psf, GridPsf):
            x_nodes, y_nodes, stamps = psf.x_nodes, psf.y_nodes, psf.stamps
        else:
            ny, nx = shape
            x_nodes = np.linspace(0.0, nx - 1.0, grid_size)
            y_nodes = np.linspace(0.0, ny - 1.0, grid_size)
            # A loop over the grid nodes only.
            stamps = np.array([[psf.kernel_image(float(x), float(y)) for x in x_nodes] for y in y_nodes])
            stamps /= stamps.sum(axis=(2, 3), keepdims=True)
        stamps = np.asarray(stamps, float)
        if np.all(stamps == stamps[:1, :1]):
            x_nodes, y_nodes, stamps = x_nodes[:1], y_nodes[:1], stamps[:1, :1]
        self._x_nodes = np.asarray(x_nodes, float)
        self._y_nodes = np.asarray(y_nodes, float)
        self._stamps = stamps
        self._sigmas = np.array([[psf_moments_sigma(s) for s in row] for row in stamps])
        self._spectra: dict[int, np.ndarray] = {}

    @property
    def model_size(self) -> int:
        """Side of the PSF model stamps [pixels]."""
        return int(self._stamps.shape[-1])

    @property
    def sigma_max(self) -> float:
        """Largest Gaussian-equivalent sigma over the sampling nodes [pixels]."""
        return float(self._sigmas.max())

    def stamp_size(self, radius_sigma: float) -> int:
        """Odd stamp side reaching ``radius_sigma`` × `sigma_max` from the centre, at most `model_size`."""
        half = int(np.ceil(radius_sigma * self.sigma_max))
        return int(min(2 * half + 1, self.model_size))

    def overlap_table(self, size: int) -> np.ndarray:
        """Normalised overlap ``ΣP(p)P(p-d) / ΣP²`` of PSF stamps of side ``size`` for integer offsets ``d``.

        Returns a ``(2 size - 1, 2 size - 1)`` array indexed ``[dy + size - 1, dx + size - 1]``, for the node
        stamp nearest the middle of the sampling grid (a cheap proxy for pairs anywhere on the image).
        """
        stamp = self._middle_stamp(size)
        table = scipy.signal.correlate(stamp, stamp, mode="full", method="direct")
        return table / table[size - 1, size - 1]

    def spill_table(self, size: int) -> np.ndarray:
        """Fraction of a PSF stamp's flux on a stamp (same ``size``) whose centre is ``d`` pixels away.

        Indexed like `overlap_table`; symmetrised (the larger of ``d`` and ``-d``).
        """
        stamp = self._middle_stamp(size)
        table = scipy.signal.correlate(np.ones_like(stamp), stamp, mode="full", method="direct")
        return np.maximum(table, table[::-1, ::-1])

    def _middle_stamp(self, size: int) -> np.ndarray:
        return _embed(self._stamps[len(self._y_nodes) // 2, len(self._x_nodes) // 2], size)

    def _node_spectra(self, fft_size: int) -> np.ndarray:
        """rfft2 of the node stamps embedded in ``fft_size`` squares, ``(n_nodes, fft_size, fft_size//2+1)``."""
        if fft_size not in self._spectra:
            nodes = _embed(self._stamps, fft_size).reshape(-1, fft_size, fft_size)
            self._spectra[fft_size] = scipy.fft.rfft2(nodes).astype(np.complex64)
        return self._spectra[fft_size]

    def render(
        self,
        x: np.ndarray,
        y: np.ndarray,
        cx: np.ndarray,
        cy: np.ndarray,
        size: int,
        gradients: bool = False,
    ) -> np.ndarray | tuple[np.ndarray, np.ndarray, np.ndarray]:
        """PSF images of sources at ``(x, y)`` on stamps of side ``size`` centred on pixels ``(cx, cy)``.

        Parameters
        ----------
        x, y : `numpy.ndarray`
            Source positions [pixels] (they also select the PSF for a spatially varying model).
        cx, cy : `numpy.ndarray`
            Integer pixel at the centre of each stamp.
        size : `int`
            Odd stamp side; the source may sit anywhere such that its PSF core stays on the stamp.
        gradients : `bool`
            Also return the derivatives of the stamps with respect to ``x`` and ``y``.

        Returns
        -------
        psf : `numpy.ndarray`
            ``(n, size, size)`` float32; the PSF model's own normalisation (sum 1 before cropping).
        d_dx, d_dy : `numpy.ndarray`
            Only with ``gradients``: derivatives of ``psf`` with respect to the source position [1/pixel].
        """
        if size % 2 != 1:
            raise ValueError(f"PSF stamp size must be odd, got {size}.")
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        cx = np.asarray(cx, float)
        cy = np.asarray(cy, float)
        n = len(x)
        outputs = [np.empty((n, size, size), np.float32) for _ in range(3 if gradients else 1)]
        # Blocks of sources keep the complex temporaries small; the loop runs n / _BLOCK times.
        for lo in range(0, n, _BLOCK):
            block = slice(lo, min(lo + _BLOCK, n))
            stamps = self._render_block(x[block], y[block], cx[block], cy[block], size, gradients)
            for out, stamp in zip(outputs, stamps):
                out[block] = stamp
        return tuple(outputs) if gradients else outputs[0]

    def _render_block(
        self, x: np.ndarray, y: np.ndarray, cx: np.ndarray, cy: np.ndarray, size: int, gradients: bool
    ) -> list[np.ndarray]:
        m = size + 2 * PAD
        spectra = self._node_spectra(m)
        n_x = len(self._x_nodes)
        if spectra.shape[0] == 1:
            blended = spectra[:1]
        else:
            iy0, iy1, ty = _axis_weights(self._y_nodes, y)
            ix0, ix1, tx = _axis_weights(self._x_nodes, x)
            blended = (
                ((1 - ty) * (1 - tx)).astype(np.float32)[:, None, None] * spectra[iy0 * n_x + ix0]
                + ((1 - ty) * tx).astype(np.float32)[:, None, None] * spectra[iy0 * n_x + ix1]
                + (ty * (1 - tx)).astype(np.float32)[:, None, None] * spectra[iy1 * n_x + ix0]
                + (ty * tx).astype(np.float32)[:, None, None] * spectra[iy1 * n_x + ix1]
            )
        fy = scipy.fft.fftfreq(m)
        fx = scipy.fft.rfftfreq(m)
        ramp_y = np.exp(-2j * np.pi * np.outer(y - cy, fy)).astype(np.complex64)
        ramp_x = np.exp(-2j * np.pi * np.outer(x - cx, fx)).astype(np.complex64)
        shifted = ramp_y[:, :, None] * blended
        shifted *= ramp_x[:, None, :]
        crop = (slice(None), slice(PAD, PAD + size), slice(PAD, PAD + size))
        out = [scipy.fft.irfft2(shifted, (m, m))[crop]]
        if gradients:
            two_pi_i = np.complex64(-2j * np.pi)
            out.append(scipy.fft.irfft2(shifted * (two_pi_i * fx.astype(np.float32))[None, None, :], (m, m))[crop])
            out.append(scipy.fft.irfft2(shifted * (two_pi_i * fy.astype(np.float32))[None, :, None], (m, m))[crop])
        return out
