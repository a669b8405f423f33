"""Tests of the rings sky map: exact tiling, ownership, RA wrap, patch geometry and regions."""

import numpy as np
import pytest
from lsst.sphgeom import LonLat, UnitVector3d

from lsst.dia.pipe.skymap import RingsSkyMap, SkyMapDefinition


@pytest.fixture(scope="module")
def skymap():
    return RingsSkyMap(SkyMapDefinition(name="t", num_rings=120, patch_inner_nx=2000, patch_inner_ny=2000,
                                        patch_border=100))


def _random_sky(rng, n):
    ra = rng.uniform(0, 360, n)
    dec = np.rad2deg(np.arcsin(rng.uniform(-1, 1, n)))
    return ra, dec


def test_every_point_has_one_tract_whose_inner_box_contains_it(skymap):
    rng = np.random.default_rng(1)
    ra, dec = _random_sky(rng, 20000)
    tracts = skymap.find_tracts(ra, dec)
    assert tracts.min() >= 0 and tracts.max() < skymap.n_tracts
    for t in np.unique(tracts)[:200]:
        sel = tracts == t
        _, _, ra_lo, ra_hi, dec_lo, dec_hi = skymap.inner_bounds(int(t))
        assert np.all((dec[sel] >= dec_lo) & (dec[sel] < dec_hi + 1e-12))
        if 0 < t < skymap.n_tracts - 1:
            dra = (ra[sel] - ra_lo) % 360.0
            assert np.all(dra < ra_hi - ra_lo + 1e-9)


def test_inner_tract_lies_inside_tract_pixels_and_owned_patch_exists(skymap):
    rng = np.random.default_rng(2)
    ra, dec = _random_sky(rng, 5000)
    dec = np.clip(dec, -80, 80)
    tracts, patches = skymap.owners(ra, dec)
    assert np.all(patches >= 0)
    for t in np.unique(tracts)[:100]:
        tract = skymap.tract(int(t))
        assert np.all(patches[tracts == t] < tract.n_patches)


def test_ra_wrap_is_consistent(skymap):
    dec = np.array([10.0, 10.0, -45.0, -45.0])
    ra = np.array([0.0, 360.0, 359.9999999, -1e-7])
    t = skymap.find_tracts(ra, dec)
    assert t[0] == t[1]
    assert t[2] == t[3]
    tracts, patches = skymap.owners(np.array([0.0, 360.0]), np.array([10.0, 10.0]))
    assert tracts[0] == tracts[1] and patches[0] == patches[1]


def test_neighbouring_tracts_straddling_ra0_both_cover_the_boundary(skymap):
    # points just either side of RA=0 in the equatorial ring belong to different tracts whose outer
    # regions both contain the boundary (overlap), but ownership is unique
    ra = np.array([359.999, 0.001])
    dec = np.array([0.3, 0.3])
    t = skymap.find_tracts(ra, dec)
    tracts = [skymap.tract(int(x)) for x in np.unique(t)]
    for tract in tracts:
        region = tract.outer_region()
        for r, d in zip(ra, dec):
            assert region.contains(UnitVector3d(LonLat.fromDegrees(r, d)))


def test_patches_tile_the_tract(skymap):
    tract = skymap.tract(int(skymap.find_tracts(56.0, -30.0)))
    inner = np.zeros((tract.ny, tract.nx), dtype=np.int16)
    for p in range(tract.n_patches):
        x0, y0, nx, ny = tract.patch(p).inner_bbox
        inner[y0:y0 + ny, x0:x0 + nx] += 1
    assert np.all(inner == 1)
    assert tract.n_patches_x >= 3 and tract.n_patches_y >= 3
    patch = tract.patch(tract.n_patches_x + 1)  # interior: (ix, iy) = (1, 1)
    ox0, oy0, onx, ony = patch.outer_bbox
    x0, y0, nx, ny = patch.inner_bbox
    assert ox0 == x0 - 100 and oy0 == y0 - 100 and onx == nx + 200


def test_patch_of_pixel_and_sky_agree(skymap):
    tract = skymap.tract(int(skymap.find_tracts(56.0, -30.0)))
    rng = np.random.default_rng(3)
    x = rng.uniform(0, tract.nx - 1, 1000)
    y = rng.uniform(0, tract.ny - 1, 1000)
    ra, dec = tract.wcs.pixel_to_world_values(x, y)
    assert np.array_equal(tract.patch_ids_of_pixels(x, y), tract.patch_ids_of_sky(ra, dec))
    assert tract.patch_ids_of_pixels(np.array([-5.0]), np.array([3.0]))[0] == -1


def test_find_tract_patch_list_covers_a_corner(skymap):
    t = skymap.tract(int(skymap.find_tracts(56.0, -30.0)))
    _, _, ra_lo, _, dec_lo, _ = skymap.inner_bounds(t.id)
    ra = ra_lo + np.array([-0.05, 0.05, 0.05, -0.05])
    dec = dec_lo + np.array([-0.05, -0.05, 0.05, 0.05])
    result = skymap.find_tract_patch_list(ra, dec)
    assert len(result) >= 3  # a tract corner touches several tracts
    owned = set(zip(*skymap.owners(ra_lo + np.linspace(-0.04, 0.04, 9), dec_lo + np.linspace(-0.04, 0.04, 9))))
    listed = {(tract.id, p.id) for tract, patches in result for p in patches}
    assert {(int(a), int(b)) for a, b in owned} <= listed


def test_bad_definitions_are_rejected():
    with pytest.raises(ValueError):
        SkyMapDefinition(num_rings=0)
    with pytest.raises(ValueError):
        SkyMapDefinition(pixel_scale_arcsec=-1)
    with pytest.raises(ValueError):
        RingsSkyMap(SkyMapDefinition()).tract(-3)
