"""Tests of FFT convolution, spatially varying convolution, mask dilation, cells and Chebyshev models."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.ndimage

from lsst.dia.pipe.diffim.cells import cell_layout, process_in_cells
from lsst.dia.pipe.diffim.convolution import (
    TiledSpectra,
    convolve,
    convolve_spatial,
    dilate,
    dilate_bits,
    flag_edges,
    footprint_radius,
    kernel_rfft2,
)
from lsst.dia.pipe.diffim.spatial import ChebyshevSpatialModel
from lsst.dia.pipe.masks import MaskBit


@pytest.mark.parametrize("shape,tile", [((96, 80), 512), ((700, 530), 128), ((60, 900), 256)])
def test_convolve_matches_direct_convolution(shape, tile):
    """Overlap-save tiles (several, partial ones at the edges) equal a direct convolution with zero padding."""
    rng = np.random.default_rng(0)
    image = rng.normal(size=shape).astype(np.float32)
    kernel = rng.normal(size=(7, 9))[:, 1:8]
    expected = scipy.ndimage.convolve(image.astype(float), kernel, mode="constant")
    np.testing.assert_allclose(TiledSpectra(image, 5, tile=tile).convolve(kernel), expected, atol=2e-4)
    np.testing.assert_allclose(convolve(image, kernel), expected, atol=2e-4)
    with pytest.raises(ValueError, match="margin"):
        TiledSpectra(image, 2).convolve(kernel)


def test_kernel_rfft2_centres_the_kernel():
    rng = np.random.default_rng(4)
    image = rng.normal(size=(64, 50)).astype(np.float32)
    kernel = rng.normal(size=(5, 5))
    spectrum = kernel_rfft2(kernel, image.shape) * np.fft.rfft2(image)
    circular = np.fft.irfft2(spectrum, s=image.shape)
    np.testing.assert_allclose(circular, scipy.ndimage.convolve(image.astype(float), kernel, mode="wrap"), atol=1e-4)


def test_convolve_spatial_matches_per_pixel_kernel():
    """At sample pixels, Σ_s p_s(x, y) (I ⊗ K_s) equals the convolution by the local kernel K(x, y)."""
    rng = np.random.default_rng(1)
    shape = (640, 720)
    image = rng.normal(size=shape).astype(np.float32)
    model = ChebyshevSpatialModel(2, shape)
    kernels = rng.normal(size=(model.n_terms, 5, 5))
    out = convolve_spatial(image, kernels, model)
    for x, y in ((10, 10), (40, 30), (600, 550), (511, 512), (700, 100)):
        p = model.design(np.array([x]), np.array([y]))[0]
        local = np.tensordot(p, kernels, axes=1)
        patch = image[y - 2 : y + 3, x - 2 : x + 3][::-1, ::-1]
        assert out[y, x] == pytest.approx((local * patch).sum(), abs=1e-4)


def test_dilate_bits_is_per_bit_square_dilation():
    rng = np.random.default_rng(2)
    mask = np.zeros((50, 60), np.uint32)
    mask[rng.integers(0, 50, 8), rng.integers(0, 60, 8)] |= np.uint32(MaskBit.BAD)
    mask[rng.integers(0, 50, 5), rng.integers(0, 60, 5)] |= np.uint32(MaskBit.NO_DATA)
    out = dilate_bits(mask, 3)
    square = np.ones((7, 7), bool)
    for bit in (MaskBit.BAD, MaskBit.NO_DATA):
        expected = scipy.ndimage.binary_dilation((mask & np.uint32(bit)) != 0, structure=square)
        np.testing.assert_array_equal((out & np.uint32(bit)) != 0, expected)
    only_bad = dilate_bits(mask, 3, bits=int(MaskBit.BAD))
    np.testing.assert_array_equal(only_bad & np.uint32(MaskBit.NO_DATA), mask & np.uint32(MaskBit.NO_DATA))
    np.testing.assert_array_equal(dilate(mask != 0, 3), scipy.ndimage.binary_dilation(mask != 0, structure=square))


def test_footprint_radius_and_edges():
    kernel = np.zeros((11, 11))
    kernel[5, 5] = 1.0
    kernel[5, 8] = 0.01
    assert footprint_radius(kernel) == 3
    assert footprint_radius(kernel, threshold=0.1) == 0
    mask = np.zeros((20, 30), np.uint32)
    flag_edges(mask, 4)
    edge = (mask & np.uint32(MaskBit.DETECTION_EDGE)) != 0
    assert edge[:4].all() and edge[:, -4:].all() and not edge[4:-4, 4:-4].any()


@pytest.mark.parametrize("cell_size,overlap", [(0, 0), (100, 10), (128, 0)])
def test_cell_weights_partition_unity(cell_size, overlap):
    shape = (300, 250)
    cells = cell_layout(shape, cell_size, overlap, pad=5)
    (total,) = process_in_cells(shape, cells, lambda cell: (np.ones(cell.weight.shape, np.float32),))
    np.testing.assert_allclose(total, 1.0, atol=1e-6)
    if cell_size:
        assert len(cells) > 1


def test_chebyshev_model_matches_lsst_images_field():
    """Coefficient matrices follow lsst.images' ChebyshevField convention ([p, q] -> T_p(y') T_q(x'))."""
    import lsst.images as li
    from lsst.images.fields import ChebyshevField

    shape = (40, 70)
    model = ChebyshevSpatialModel(2, shape)
    coefficients = np.arange(1.0, model.n_terms + 1)
    field = ChebyshevField(li.Box.factory[0:40, 0:70], model.coefficient_matrix(coefficients))
    x, y = np.array([0.0, 13.0, 69.0]), np.array([0.0, 27.0, 39.0])
    np.testing.assert_allclose(field(x=x, y=y), model.evaluate(coefficients, x, y))
    np.testing.assert_allclose(model.image(coefficients)[27, 13], model.evaluate(coefficients, [13.0], [27.0])[0],
                               rtol=1e-5)
