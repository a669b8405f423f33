"""Kernel-fit linear algebra: the block (Kronecker) spatial assembly equals the dense ``Σ Eᵀ N E`` it replaces;
threaded stamp systems equal serial ones."""

from __future__ import annotations

import numpy as np

from lsst.dia.pipe.diffim.basis import make_alard_lupton_basis
from lsst.dia.pipe.diffim.config import AlardLuptonConfig
from lsst.dia.pipe.diffim.kernel_fit import (
    _local_coefficients,
    _spatial_groups,
    _spatial_normal,
    build_stamp_systems,
)
from lsst.dia.pipe.diffim.spatial import ChebyshevSpatialModel
from lsst.dia.pipe.diffim.synthetic import star_field_pair


def _dense_map(x, y, n_basis, kernel_model, background_model):
    """Each stamp's ``(m, G)`` map from global to local coefficients, written out element by element."""
    p, q = kernel_model.design(x, y), background_model.design(x, y)
    s, n_bg = kernel_model.n_terms, background_model.n_terms
    g = 1 + (n_basis - 1) * s + n_bg
    e = np.zeros((x.size, n_basis + 1, g))
    e[:, 0, 0] = 1.0
    for i in range(1, n_basis):
        e[:, i, 1 + (i - 1) * s : 1 + i * s] = p
    e[:, -1, g - n_bg :] = q
    return e


def test_block_assembly_matches_dense():
    rng = np.random.default_rng(4)
    n, n_basis, shape = 40, 7, (500, 700)
    x, y = rng.uniform(0, shape[1], n), rng.uniform(0, shape[0], n)
    a = rng.normal(size=(n, n_basis + 1, n_basis + 1))
    normal = a @ a.transpose(0, 2, 1)
    rhs = rng.normal(size=(n, n_basis + 1))
    for order in (0, 1, 2):
        kernel_model, background_model = ChebyshevSpatialModel(order, shape), ChebyshevSpatialModel(1, shape)
        e = _dense_map(x, y, n_basis, kernel_model, background_model)
        dense = np.einsum("nmg,nmk,nkh->gh", e, normal, e)
        groups = _spatial_groups(x, y, n_basis, kernel_model, background_model)
        block, block_rhs = _spatial_normal(normal, rhs, groups)
        np.testing.assert_allclose(block, dense, rtol=1e-10, atol=1e-9)
        np.testing.assert_allclose(block_rhs, np.einsum("nmg,nm->g", e, rhs), rtol=1e-10, atol=1e-9)
        g = rng.normal(size=e.shape[2])
        np.testing.assert_allclose(_local_coefficients(g, groups, n_basis + 1), e @ g, rtol=1e-10, atol=1e-12)


def test_stamp_systems_threaded_equal_serial():
    pair = star_field_pair((400, 400), n_stars=150, seed=2)
    basis = make_alard_lupton_basis(1.7, 2.1, AlardLuptonConfig())
    half_fit = basis.half_size + 7
    margin = half_fit + basis.half_size + 1
    rng = np.random.default_rng(1)
    x = rng.integers(margin, 400 - margin, 150)
    y = rng.integers(margin, 400 - margin, 150)
    serial = build_stamp_systems(pair.science, pair.template, x, y, basis, half_fit, True, workers=1)
    threaded = build_stamp_systems(pair.science, pair.template, x, y, basis, half_fit, True, workers=2)
    for name in ("normal", "rhs", "design_sqrt_w", "y_w_y", "sqrt_w_y"):
        np.testing.assert_array_equal(getattr(threaded, name), getattr(serial, name))
