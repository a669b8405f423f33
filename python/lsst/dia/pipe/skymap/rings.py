"""A rings sky map: declination rings cut into tracts of equal RA width, plus two polar caps.

Inner tract regions are RA/Dec boxes that tile the sphere with no gaps and no overlaps (the lookup
`RingsSkyMap.find_tracts` is exact); each tract's pixel grid is a TAN projection about the tract centre that
covers the inner region plus an overlap margin, cut into patches whose inner boxes tile the tract grid.
A sky position is *owned* by exactly one (tract, patch): its tract by `find_tracts`, its patch by the inner
patch box containing it in that tract's pixels (`RingsSkyMap.owners`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import numpy as np

from .geometry import PatchInfo, TractInfo, tan_wcs

__all__ = ["SkyMapDefinition", "RingsSkyMap"]


@dataclasses.dataclass(frozen=True)
class SkyMapDefinition:
    """Parameters of a `RingsSkyMap`.

    Attributes
    ----------
    name : `str`
        Butler ``skymap`` dimension value.
    num_rings : `int`
        Number of declination rings between the polar caps.
    pixel_scale_arcsec : `float`
        Tract pixel scale [arcsec].
    patch_inner_nx, patch_inner_ny : `int`
        Inner patch size [pixels].
    patch_border : `int`
        Patch overlap border [pixels].
    tract_overlap_deg : `float`
        Margin added around each tract's inner region [deg].
    ra_start_deg : `float`
        RA of the centre of the first tract of each ring [deg].
    """

    name: str = "dia_rings"
    num_rings: int = 120
    pixel_scale_arcsec: float = 0.2
    patch_inner_nx: int = 4000
    patch_inner_ny: int = 4000
    patch_border: int = 100
    tract_overlap_deg: float = 1.0 / 60.0
    ra_start_deg: float = 0.0

    def __post_init__(self) -> None:
        if self.num_rings < 1:
            raise ValueError(f"num_rings must be >= 1, got {self.num_rings}.")
        if not self.pixel_scale_arcsec > 0:
            raise ValueError(f"pixel_scale_arcsec must be > 0, got {self.pixel_scale_arcsec}.")
        if min(self.patch_inner_nx, self.patch_inner_ny) < 16 or self.patch_border < 0:
            raise ValueError("Patches must be at least 16 px and the border non-negative.")
        if self.tract_overlap_deg < 0:
            raise ValueError("tract_overlap_deg must be non-negative.")


class RingsSkyMap:
    """A rings sky map built from a `SkyMapDefinition`.

    Tract 0 is the south polar cap, then the rings from south to north, each cut into tracts starting at
    ``ra_start_deg``; the last tract is the north polar cap.
    """

    def __init__(self, definition: SkyMapDefinition) -> None:
        self.definition = definition
        d = definition
        self._ring_size = 180.0 / (d.num_rings + 1)
        # dec_edges[k] .. dec_edges[k+1] is ring k
        self._dec_edges = -90.0 + (np.arange(d.num_rings + 1) + 0.5) * self._ring_size
        n_tracts = []
        for k in range(d.num_rings):
            lo, hi = self._dec_edges[k], self._dec_edges[k + 1]
            widest = 0.0 if lo <= 0.0 <= hi else min(abs(lo), abs(hi))
            n_tracts.append(max(1, int(np.ceil(360.0 * np.cos(np.deg2rad(widest)) / self._ring_size))))
        self._ring_ntracts = np.array(n_tracts, dtype=np.int64)
        # id of the first tract of ring k
        self._ring_first = 1 + np.concatenate([[0], np.cumsum(self._ring_ntracts)[:-1]])
        self._n_tracts = int(2 + self._ring_ntracts.sum())

    @property
    def name(self) -> str:
        """The butler ``skymap`` name."""
        return self.definition.name

    @property
    def n_tracts(self) -> int:
        """Number of tracts."""
        return self._n_tracts

    @functools.cached_property
    def hash(self) -> bytes:
        """A stable hash of the definition (the butler ``skymap.hash``)."""
        return hashlib.sha1(repr(dataclasses.astuple(self.definition)).encode()).digest()

    @functools.cached_property
    def max_patches_per_side(self) -> int:
        """Upper bound on the patch grid size of any tract (tracts are widest on the equator)."""
        d = self.definition
        side_deg = self._ring_size * 1.5 + 2 * d.tract_overlap_deg
        return int(np.ceil(side_deg * 3600.0 / d.pixel_scale_arcsec / min(d.patch_inner_nx, d.patch_inner_ny))) + 1

    def find_tracts(self, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
        """Return the id of the tract whose INNER region contains each position.

        Parameters
        ----------
        ra, dec : array-like
            Positions [deg]; RA is taken modulo 360.
        """
        ra = np.mod(np.asarray(ra, float), 360.0)
        dec = np.asarray(dec, float)
        ring = np.searchsorted(self._dec_edges, dec, side="right") - 1  # -1: south cap, num_rings: north cap
        out = np.empty(np.broadcast(ra, dec).shape, dtype=np.int64)
        south = ring < 0
        north = ring >= self.definition.num_rings
        mid = ~(south | north)
        out[south] = 0
        out[north] = self._n_tracts - 1
        r = ring[mid]
        n = self._ring_ntracts[r]
        width = 360.0 / n
        j = np.floor(np.mod(ra[mid] - self.definition.ra_start_deg + 0.5 * width, 360.0) / width).astype(np.int64)
        out[mid] = self._ring_first[r] + np.mod(j, n)
        return out

    def inner_bounds(self, tract_id: int) -> tuple[float, float, float, float, float, float]:
        """Inner region of a tract: ``(ra_center, dec_center, ra_lo, ra_hi, dec_lo, dec_hi)`` [deg].

        ``ra_lo`` may be negative and ``ra_hi`` above 360 for tracts straddling RA = 0.
        """
        if not 0 <= tract_id < self._n_tracts:
            raise ValueError(f"Tract {tract_id} does not exist in sky map {self.name!r} (0..{self._n_tracts - 1}).")
        if tract_id == 0:
            return 0.0, -90.0, 0.0, 360.0, -90.0, float(self._dec_edges[0])
        if tract_id == self._n_tracts - 1:
            return 0.0, 90.0, 0.0, 360.0, float(self._dec_edges[-1]), 90.0
        k = int(np.searchsorted(self._ring_first, tract_id, side="right") - 1)
        j = tract_id - int(self._ring_first[k])
        width = 360.0 / int(self._ring_ntracts[k])
        ra_c = (self.definition.ra_start_deg + j * width) % 360.0
        lo, hi = float(self._dec_edges[k]), float(self._dec_edges[k + 1])
        return ra_c, 0.5 * (lo + hi), ra_c - 0.5 * width, ra_c + 0.5 * width, lo, hi

    @functools.lru_cache(maxsize=4096)
    def tract(self, tract_id: int) -> TractInfo:
        """Return the `TractInfo` of a tract id."""
        d = self.definition
        ra_c, dec_c, ra_lo, ra_hi, dec_lo, dec_hi = self.inner_bounds(int(tract_id))
        # sample the inner boundary densely, project about the centre, take the pixel bounding box
        t = np.linspace(0.0, 1.0, 33)
        ra_s = np.concatenate([ra_lo + (ra_hi - ra_lo) * t, np.full_like(t, ra_hi), ra_hi - (ra_hi - ra_lo) * t, np.full_like(t, ra_lo)])
        dec_s = np.concatenate([np.full_like(t, dec_lo), dec_lo + (dec_hi - dec_lo) * t, np.full_like(t, dec_hi), dec_hi - (dec_hi - dec_lo) * t])
        probe = tan_wcs(ra_c, dec_c, 0.0, 0.0, d.pixel_scale_arcsec)
        if abs(dec_c) == 90.0:
            radius = (90.0 - abs(dec_hi if dec_c < 0 else dec_lo)) * 3600.0 / d.pixel_scale_arcsec
            x_min, x_max, y_min, y_max = -radius, radius, -radius, radius
        else:
            x, y = probe.world_to_pixel_values(ra_s, dec_s)
            x_min, x_max, y_min, y_max = x.min(), x.max(), y.min(), y.max()
        margin = d.tract_overlap_deg * 3600.0 / d.pixel_scale_arcsec
        x0 = np.floor(x_min - margin)
        y0 = np.floor(y_min - margin)
        nx = int(np.ceil(x_max + margin) - x0) + 1
        ny = int(np.ceil(y_max + margin) - y0) + 1
        wcs = tan_wcs(ra_c, dec_c, -x0, -y0, d.pixel_scale_arcsec)
        return TractInfo(
            id=int(tract_id),
            ra_center=ra_c,
            dec_center=dec_c,
            wcs=wcs,
            nx=nx,
            ny=ny,
            n_patches_x=int(np.ceil(nx / d.patch_inner_nx)),
            n_patches_y=int(np.ceil(ny / d.patch_inner_ny)),
            patch_inner_nx=d.patch_inner_nx,
            patch_inner_ny=d.patch_inner_ny,
            patch_border=d.patch_border,
        )

    def owners(self, ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(tract, patch)`` ids owning each position: inner tract and inner patch (vectorised)."""
        ra = np.asarray(ra, float)
        dec = np.asarray(dec, float)
        tracts = self.find_tracts(ra, dec)
        patches = np.full(tracts.shape, -1, dtype=np.int64)
        for t in np.unique(tracts):
            sel = tracts == t
            patches[sel] = self.tract(int(t)).patch_ids_of_sky(ra[sel], dec[sel])
        return tracts, patches

    def in_inner(self, ra: np.ndarray, dec: np.ndarray, tract_id: int, patch_id: int) -> np.ndarray:
        """True where a position lies in the inner region of ``tract_id`` AND of its patch ``patch_id``."""
        ra = np.asarray(ra, float)
        dec = np.asarray(dec, float)
        ok = self.find_tracts(ra, dec) == tract_id
        out = np.zeros(ok.shape, dtype=bool)
        if ok.any():
            out[ok] = self.tract(int(tract_id)).patch_ids_of_sky(ra[ok], dec[ok]) == patch_id
        return out

    def find_tract_patch_list(self, ra: np.ndarray, dec: np.ndarray) -> list[tuple[TractInfo, list[PatchInfo]]]:
        """Tracts and patches whose OUTER boxes overlap the convex polygon with the given vertices [deg].

        The equivalent of the Gen2 ``findTractPatchList``: used to gather every template patch (from every
        tract) that overlaps a detector.
        """
        from .geometry import polygon_from_radec

        region = polygon_from_radec(np.asarray(ra, float), np.asarray(dec, float))
        # candidate tracts: those owning any sampled point of the polygon, and their neighbours in RA/Dec
        c = region.getBoundingCircle()
        center = c.getCenter()
        from lsst.sphgeom import LonLat

        ll = LonLat(center)
        ra_c, dec_c = ll.getLon().asDegrees(), ll.getLat().asDegrees()
        radius = c.getOpeningAngle().asDegrees() + self.definition.tract_overlap_deg + self._ring_size
        grid = np.linspace(-1.0, 1.0, 9)
        dd = dec_c + radius * grid
        cosd = max(np.cos(np.deg2rad(min(abs(dec_c) + radius, 89.9))), 1e-3)
        rr = ra_c + radius / cosd * grid
        R, D = np.meshgrid(rr, np.clip(dd, -90.0, 90.0))
        candidates = np.unique(self.find_tracts(R.ravel(), D.ravel()))
        result = []
        for t in candidates:
            tract = self.tract(int(t))
            if not tract.outer_region().relate(region) & 1:  # sphgeom DISJOINT bit
                patches = [
                    tract.patch(p)
                    for p in range(tract.n_patches)
                    if not (tract.patch_outer_region(tract.patch(p)).relate(region) & 1)
                ]
                if patches:
                    result.append((tract, patches))
        return result
