"""Forced PSF photometry at given positions, with simultaneous fits of overlapping neighbours.

Model and estimator
-------------------
For an isolated object this is meas_base ``PsfFlux``: with ``P`` the PSF placed at the sub-pixel position on a
stamp, ``D`` the data and ``V`` the variance over the usable pixels of the stamp,
``flux = ΣPD / ΣP²`` and ``err = sqrt(ΣP²V) / ΣP²`` (an unweighted least-squares fit, which stays unbiased when
the variance plane contains the source's own photon noise).

Objects whose PSF stamps overlap enough (normalised overlap ``ΣP_iP_j / sqrt(ΣP_i² ΣP_j²)`` at least
``config.blendCoupling``; with a background fit also when that fraction of one's PSF flux falls on the other's
stamp) are linked; each connected group is fitted simultaneously with the same unweighted
least squares over the union of the group's stamps: ``M F = b`` with ``M_ij = ΣP_iP_j``, ``b_i = ΣP_iD``, and
covariance ``M⁻¹ C M⁻¹`` with ``C_ij = ΣP_iP_jV``. With ``config.fitBackground`` a constant background joins
each group (one per isolated object). All groups of one size are solved in one batched call.

Positions off the image give a row with NaN flux and ``pixelFlags_offimage``; no object is dropped.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.table import Table
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from ..detection.config import mask_bits
from ..exposure import Exposure
from .config import ForcedPhotometryConfig
from .pixel_flags import center_bits, pixel_flag_columns
from .psf_stamps import PsfStampSampler
from .schema import empty_table, forced_columns
from .stamps import Stamps, cut_stamps, pixel_centres, usable_pixels

__all__ = ["forced_psf_photometry", "PositionShapeError"]


class PositionShapeError(ValueError):
    """``x`` and ``y`` do not have the same 1-d shape."""

    def __init__(self, x_shape: tuple[int, ...], y_shape: tuple[int, ...]) -> None:
        self.x_shape = x_shape
        self.y_shape = y_shape
        super().__init__(f"Forced positions x {x_shape} and y {y_shape} must be 1-d arrays of equal length.")


@dataclasses.dataclass
class _Pairs:
    """Linked pairs ``i < j`` of objects, their centre offsets and ``P_j`` seen on stamp ``i``."""

    i: np.ndarray
    j: np.ndarray
    dx: np.ndarray  # cx[j] - cx[i]
    dy: np.ndarray
    pj_on_i: np.ndarray  # (n_pairs, k, k)


def _shifted(stack: np.ndarray, src: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """``stack[src]`` seen from a stamp whose centre is ``(dx, dy)`` pixels before it; 0 where not covered."""
    k = stack.shape[-1]
    r = np.arange(k)
    rows = r[None, :] - dy[:, None]
    cols = r[None, :] - dx[:, None]
    out = stack[src[:, None, None], rows.clip(0, k - 1)[:, :, None], cols.clip(0, k - 1)[:, None, :]]
    out *= ((rows >= 0) & (rows < k))[:, :, None]
    out *= ((cols >= 0) & (cols < k))[:, None, :]
    return out


def _overlap_rect(k: int, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Pixels of a stamp that are also covered by a stamp centred ``(dx, dy)`` pixels away."""
    r = np.arange(k)
    rows = (r[None, :] - dy[:, None] >= 0) & (r[None, :] - dy[:, None] < k)
    cols = (r[None, :] - dx[:, None] >= 0) & (r[None, :] - dx[:, None] < k)
    return rows[:, :, None] & cols[:, None, :]


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-stamp sum of ``a * b`` over the last two axes (float32 accumulation, float64 result)."""
    return np.einsum("nij,nij->n", a, b).astype(float)


def _scatter_add(target: np.ndarray, index: np.ndarray, values: np.ndarray) -> None:
    """``target[index] += values`` with repeated indices accumulated (``np.add.at`` semantics).

    Runs in rounds of distinct indices: as many rounds as the largest repeat count (the number of jointly
    fitted neighbours of one object), each a plain vectorised fancy-index update.
    """
    order = np.argsort(index, kind="stable")
    sorted_index = index[order]
    first = np.searchsorted(sorted_index, sorted_index, side="left")
    rank = np.arange(len(index)) - first
    for r in range(int(rank.max(initial=-1)) + 1):
        sel = order[rank == r]
        target[index[sel]] += values[sel]


def _candidate_pairs(
    cx: np.ndarray, cy: np.ndarray, coupling_table: np.ndarray, min_coupling: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``i < j`` whose stamps overlap and whose expected coupling reaches ``min_coupling``.

    ``coupling_table`` (`PsfStampSampler.overlap_table` or `~PsfStampSampler.spill_table` for the stamp size)
    gives the coupling at integer offsets for a typical PSF; it only skips pairs that cannot matter before the
    exact overlaps are computed.
    """
    k = (coupling_table.shape[0] + 1) // 2
    if len(cx) < 2:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty
    pairs = cKDTree(np.column_stack([cx, cy])).query_pairs(r=k - 1, p=np.inf, output_type="ndarray")
    i, j = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    dx = cx[j] - cx[i]
    dy = cy[j] - cy[i]
    keep = coupling_table[dy + k - 1, dx + k - 1] >= min_coupling
    return i[keep], j[keep], dx[keep], dy[keep]


def _link_pairs(
    sampler: PsfStampSampler,
    stamps: Stamps,
    good: np.ndarray,
    psf: np.ndarray,
    psf_good: np.ndarray,
    no_good: np.ndarray,
    pp: np.ndarray,
    config: ForcedPhotometryConfig,
) -> tuple[_Pairs, np.ndarray]:
    """Pairs coupled at least ``config.blendCoupling``, and their ``ΣP_iP_j``.

    The coupling is the normalised PSF overlap; with a background term also the fraction of either object's
    PSF flux that falls on the other's stamp (that light would otherwise bias the background).
    """
    k = stamps.size
    table = sampler.overlap_table(k)
    if config.fitBackground:
        table = np.maximum(table, sampler.spill_table(k))
    pi, pj, dx, dy = _candidate_pairs(stamps.cx, stamps.cy, table, 0.5 * config.blendCoupling)
    pj_on_i = _shifted(psf, pj, dx, dy)
    pair_pp = _dot(psf_good[pi], pj_on_i)
    with np.errstate(divide="ignore", invalid="ignore"):
        coupling = pair_pp / np.sqrt(pp[pi] * pp[pj])
    if config.fitBackground:
        spill_ji = _dot(good[pi], pj_on_i)  # flux fraction of j on stamp i
        spill_ij = _dot(psf_good[pi], _overlap_rect(k, dx, dy))  # of i on stamp j
        coupling = np.maximum(coupling, np.maximum(spill_ji, spill_ij))
    linked = (coupling >= config.blendCoupling) & ~no_good[pi] & ~no_good[pj]
    return _Pairs(pi[linked], pj[linked], dx[linked], dy[linked], pj_on_i[linked]), pair_pp[linked]


def _chi2(
    model: np.ndarray,
    psf: np.ndarray,
    flux: np.ndarray,
    pairs: _Pairs,
    group: np.ndarray,
    data: np.ndarray,
    var: np.ndarray,
    good: np.ndarray,
) -> np.ndarray:
    """chi² over each object's own stamp, adding the light of jointly fitted neighbours to ``model``.

    ``model`` holds each object's own model (and background) on entry; ``model`` and ``var`` are overwritten.
    """
    joint = group[pairs.i] == group[pairs.j]
    if np.any(joint):
        ji, jj = pairs.i[joint], pairs.j[joint]
        pi_on_j = _shifted(psf, ji, -pairs.dx[joint], -pairs.dy[joint])
        _scatter_add(model, ji, pairs.pj_on_i[joint] * flux[jj].astype(np.float32)[:, None, None])
        _scatter_add(model, jj, pi_on_j * flux[ji].astype(np.float32)[:, None, None])
    model -= data
    model *= model
    return _dot(model, np.divide(np.float32(1), var, out=var, where=good))


@dataclasses.dataclass
class _Sums:
    """Per-object sums over the usable pixels of its own stamp (``Pg`` = PSF × usable)."""

    pp: np.ndarray  # ΣP²
    pd: np.ndarray  # ΣPD
    ppv: np.ndarray  # ΣP²V
    p: np.ndarray  # ΣP
    pv: np.ndarray  # ΣPV
    n_union: np.ndarray | None = None  # usable pixels not already in a lower-index stamp of the same group
    d_union: np.ndarray | None = None  # ΣD over those
    v_union: np.ndarray | None = None  # ΣV over those


def _solve_groups(
    group: np.ndarray,
    sums: _Sums,
    pairs: _Pairs,
    pair_pp: np.ndarray,
    pair_ppv: np.ndarray,
    fit_background: bool,
    min_eigenvalue: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Solve every group's normal equations, batched by group size.

    Returns flux, flux error, background, background error (per object, NaN-free where solved) and a boolean
    per object marking groups found degenerate (left unsolved, NaN).
    """
    n = len(group)
    _, group = np.unique(group, return_inverse=True)
    flux = np.full(n, np.nan)
    flux_err = np.full(n, np.nan)
    bkg = np.full(n, np.nan)
    bkg_err = np.full(n, np.nan)
    degenerate = np.zeros(n, bool)
    order = np.argsort(group, kind="stable")
    labels, starts, sizes = np.unique(group[order], return_index=True, return_counts=True)
    local = np.empty(n, np.int64)
    local[order] = np.arange(n) - np.repeat(starts, sizes)
    nb = int(fit_background)
    same = group[pairs.i] == group[pairs.j]
    pi, pj = pairs.i[same], pairs.j[same]
    p_pp, p_ppv = pair_pp[same], pair_ppv[same]
    # One batched solve per distinct group size (a handful of sizes).
    for m in np.unique(sizes):
        sel = sizes == m
        g_labels = labels[sel]
        rank = np.full(labels.size, -1, np.int64)
        rank[g_labels] = np.arange(g_labels.size)
        members = order[(starts[sel][:, None] + np.arange(m)[None, :])]  # (g, m)
        g = g_labels.size
        npar = m + nb
        mat = np.zeros((g, npar, npar))
        cov_data = np.zeros((g, npar, npar))
        rhs = np.zeros((g, npar))
        rows = np.repeat(np.arange(g), m)
        li = np.tile(np.arange(m), g)
        obj = members.ravel()
        mat[rows, li, li] = sums.pp[obj]
        cov_data[rows, li, li] = sums.ppv[obj]
        rhs[rows, li] = sums.pd[obj]
        in_size = rank[group[pi]] >= 0
        if np.any(in_size):
            gp = rank[group[pi[in_size]]]
            a, b = local[pi[in_size]], local[pj[in_size]]
            mat[gp, a, b] = mat[gp, b, a] = p_pp[in_size]
            cov_data[gp, a, b] = cov_data[gp, b, a] = p_ppv[in_size]
        if nb:
            mat[rows, li, m] = mat[rows, m, li] = sums.p[obj]
            cov_data[rows, li, m] = cov_data[rows, m, li] = sums.pv[obj]
            mat[:, m, m] = np.bincount(rows, sums.n_union[obj], minlength=g)
            cov_data[:, m, m] = np.bincount(rows, sums.v_union[obj], minlength=g)
            rhs[:, m] = np.bincount(rows, sums.d_union[obj], minlength=g)
        diag = np.einsum("gii->gi", mat)
        has_pixels = np.all(diag > 0, axis=1)  # objects without usable pixels are left NaN
        scale = 1.0 / np.sqrt(np.where(diag > 0, diag, 1.0))
        normalised = mat * scale[:, :, None] * scale[:, None, :]
        ok = has_pixels.copy()
        if npar > 1:
            ok[has_pixels] = np.linalg.eigvalsh(normalised[has_pixels])[:, 0] >= min_eigenvalue
        degenerate[members[has_pixels & ~ok].ravel()] = True
        if not ok.any():
            continue
        inv = np.linalg.inv(normalised[ok]) * scale[ok][:, :, None] * scale[ok][:, None, :]
        sol = np.einsum("gij,gj->gi", inv, rhs[ok])
        var = np.einsum("gij,gjk,gik->gi", inv, cov_data[ok], inv)
        good_members = members[ok]
        flux[good_members] = sol[:, :m]
        flux_err[good_members] = np.sqrt(var[:, :m])
        if nb:
            bkg[good_members] = sol[:, m][:, None]
            bkg_err[good_members] = np.sqrt(var[:, m])[:, None]
    return flux, flux_err, bkg, bkg_err, degenerate


def _union_sums(stamps: Stamps, good: np.ndarray, group: np.ndarray, pairs: _Pairs) -> tuple[np.ndarray, ...]:
    """Per object: usable pixel count, ΣD and ΣV over pixels not covered by a lower-index stamp of its group."""
    first = good.copy()
    same = group[pairs.i] == group[pairs.j]
    if np.any(same):
        covered = _overlap_rect(stamps.size, -pairs.dx[same], -pairs.dy[same])
        np.logical_and.at(first, pairs.j[same], ~covered)
    return (
        first.sum(axis=(1, 2)).astype(float),
        np.einsum("nij,nij->n", first, stamps.image, dtype=float),  # zero where unusable
        np.einsum("nij,nij->n", first, stamps.variance, dtype=float),
    )


def forced_psf_photometry(
    exposure: Exposure, x: np.ndarray, y: np.ndarray, config: ForcedPhotometryConfig | None = None
) -> Table:
    """PSF fluxes at fixed pixel positions, fitting overlapping neighbours simultaneously.

    Parameters
    ----------
    exposure : `~lsst.dia.pipe.exposure.Exposure`
        Calibrated image [nJy] (difference or science) with variance, mask and PSF.
    x, y : `numpy.ndarray`
        Positions in the exposure's array pixel frame (``exposure.sky_to_pixel``) [pixels].
    config : `ForcedPhotometryConfig`, optional
        Defaults if omitted.

    Returns
    -------
    table : `astropy.table.Table`
        One row per input position, in input order, with the `forced_columns` (SDM ``DiaForcedSource`` names
        where they exist: ``psfFlux``, ``psfFluxErr`` [nJy]; plus ``x``, ``y``, ``psfChi2``, ``psfNdata``,
        ``psfFlux_flag*``, ``pixelFlags_*``, ``blendSize`` and, with ``fitBackground``, ``localBackground``,
        ``localBackgroundErr`` [nJy per pixel]). To store fluxes of the science image as ``scienceFlux``,
        rename the columns.

    Raises
    ------
    PositionShapeError
        If ``x`` and ``y`` are not 1-d arrays of the same length.
    """
    config = config if config is not None else ForcedPhotometryConfig()
    x = np.asarray(x, float)
    y = np.asarray(y, float)
    if x.ndim != 1 or x.shape != y.shape:
        raise PositionShapeError(x.shape, y.shape)
    n = len(x)
    table = empty_table(forced_columns(config.fitBackground), n)
    table["x"][:] = x
    table["y"][:] = y
    ny, nx = exposure.shape
    on = np.isfinite(x) & np.isfinite(y) & (x >= -0.5) & (x < nx - 0.5) & (y >= -0.5) & (y < ny - 0.5)
    idx = np.flatnonzero(on)
    flags = pixel_flag_columns(np.zeros(n, np.uint32), np.zeros(n, np.uint32), ~on, ~on)
    for name in ("psfFlux_flag", "psfFlux_flag_edge", "psfFlux_flag_noGoodPixels"):
        table[name][:] = ~on
    if idx.size == 0:
        for name, values in flags.items():
            table[name][:] = values
        return table

    xo, yo = x[idx], y[idx]
    cx, cy = pixel_centres(xo, yo)
    sampler = PsfStampSampler(exposure.psf, exposure.shape, config.psfGridSize)
    k = sampler.stamp_size(config.psfStampRadius)
    stamps = cut_stamps(exposure, cx, cy, k)
    good = usable_pixels(stamps, mask_bits(config.badMaskPlanes))
    unusable = ~good
    data, var = stamps.image, stamps.variance  # zeroed in place where unusable (they may hold NaN)
    data[unusable] = 0
    var[unusable] = 0
    psf = sampler.render(xo, yo, cx, cy, k)
    psf_good = psf * good
    psf_var = psf_good * var
    sums = _Sums(
        pp=_dot(psf_good, psf),
        pd=_dot(psf_good, data),
        ppv=_dot(psf_var, psf),
        p=psf_good.sum(axis=(1, 2)).astype(float),
        pv=psf_var.sum(axis=(1, 2)).astype(float),
    )
    no_good = sums.pp <= 0
    pairs, pair_pp = _link_pairs(sampler, stamps, good, psf, psf_good, no_good, sums.pp, config)
    pair_ppv = _dot(psf_var[pairs.i], pairs.pj_on_i)
    m = len(idx)
    _, group = connected_components(
        coo_matrix((np.ones(len(pairs.i)), (pairs.i, pairs.j)), shape=(m, m)), directed=False
    )
    fallback = np.bincount(group)[group] > config.maxBlendSize
    group = np.where(fallback, m + np.arange(m), group)  # oversized groups are split into singletons

    def solve(group: np.ndarray) -> tuple[np.ndarray, ...]:
        if config.fitBackground:
            sums.n_union, sums.d_union, sums.v_union = _union_sums(stamps, good, group, pairs)
        return _solve_groups(
            group, sums, pairs, pair_pp, pair_ppv, config.fitBackground, config.blendMinEigenvalue
        )

    flux, flux_err, bkg, bkg_err, degenerate = solve(group)
    if degenerate.any():
        # Objects (nearly) on top of each other: fit them one by one and flag them.
        fallback |= degenerate
        group = np.where(degenerate, m + np.arange(m), group)
        single = solve(group)
        for values, refit in zip((flux, flux_err, bkg, bkg_err), single):
            values[degenerate] = refit[degenerate]

    model = psf * np.nan_to_num(flux).astype(np.float32)[:, None, None]
    if config.fitBackground:
        model += np.nan_to_num(bkg).astype(np.float32)[:, None, None]
    chi2 = _chi2(model, psf, flux, pairs, group, data, var, good)
    chi2[no_good] = np.nan

    blend_size = np.bincount(group)[group]
    footprint = np.bitwise_or.reduce(stamps.mask.reshape(m, -1), axis=1)  # 0 off the image
    clipped = stamps.clipped
    sub = pixel_flag_columns(footprint, center_bits(exposure.mask, cx, cy), clipped, np.zeros(m, bool))
    for name, values in flags.items():
        values[idx] = sub[name]
        table[name][:] = values
    table["psfFlux"][idx] = flux
    table["psfFluxErr"][idx] = flux_err
    table["psfChi2"][idx] = chi2
    table["psfNdata"][idx] = good.sum(axis=(1, 2))
    table["psfFlux_flag_edge"][idx] = clipped
    table["psfFlux_flag_noGoodPixels"][idx] = no_good
    table["psfFlux_flag"][idx] = clipped | no_good | fallback | ~np.isfinite(flux)
    table["blendSize"][idx] = blend_size
    if config.fitBackground:
        table["localBackground"][idx] = bkg
        table["localBackgroundErr"][idx] = bkg_err
    return table
