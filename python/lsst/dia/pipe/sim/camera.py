"""Geometry of SimCam, the simulated camera: a grid of detectors in a distortion-free focal plane.

Every detector of one visit shares the visit's tangent plane, so each detector WCS is an exact TAN projection
about the pointing whose reference pixel is the optical axis expressed in that detector's pixels. WCSs follow
the project's ARRAY pixel convention: pixel ``(x, y)`` is the centre of array element ``[y, x]``, 0-based.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from astropy.wcs import WCS

from ..imaging.camera import DetectorLayout
from ..skymap.geometry import tan_wcs

__all__ = ["SimCam", "UnknownDetectorError"]


class UnknownDetectorError(KeyError):
    """A detector id is not part of the camera.

    Parameters
    ----------
    detector_id : `int`
        The requested id.
    known : `tuple` [`int`, ...]
        Ids of the camera's detectors.
    """

    def __init__(self, detector_id: int, known: tuple[int, ...]):
        self.detector_id = detector_id
        self.known = known
        super().__init__(f"Detector {detector_id} is not in the camera (known ids: {list(known)}).")


@dataclasses.dataclass(frozen=True)
class SimCam:
    """A simulated camera: detector layouts plus the pixel scale.

    Attributes
    ----------
    detectors : `tuple` [`~lsst.dia.pipe.imaging.camera.DetectorLayout`, ...]
        Detectors, indexed by position in the tuple (ids need not equal positions).
    pixel_scale : `float`
        Pixel scale [arcsec/pixel], the same on every detector.
    name : `str`
        Instrument name (butler ``instrument`` dimension value).
    """

    detectors: tuple[DetectorLayout, ...]
    pixel_scale: float = 0.2
    name: str = "SimCam"

    @classmethod
    def grid(
        cls,
        n_x: int,
        n_y: int,
        detector_shape: tuple[int, int],
        gap: int,
        *,
        pixel_scale: float = 0.2,
        pixel_size_mm: float = 0.01,
        name: str = "SimCam",
    ) -> SimCam:
        """Build a camera of ``n_x`` × ``n_y`` identical detectors centred on the optical axis.

        Parameters
        ----------
        n_x, n_y : `int`
            Number of detector columns and rows.
        detector_shape : `tuple` [`int`, `int`]
            ``(ny, nx)`` of each detector [pixels].
        gap : `int`
            Gap between neighbouring detectors [pixels].
        pixel_scale : `float`
            Pixel scale [arcsec/pixel].
        pixel_size_mm : `float`
            Physical pixel size [mm].
        name : `str`
            Instrument name.

        Notes
        -----
        Detector ids run row by row from the bottom-left, ``id = iy * n_x + ix``; names are ``"S{iy}{ix}"``.
        """
        if n_x < 1 or n_y < 1:
            raise ValueError(f"Camera grid must have at least one detector, got {n_x}x{n_y}.")
        ny_pix, nx_pix = detector_shape
        pitch_x = (nx_pix + gap) * pixel_size_mm
        pitch_y = (ny_pix + gap) * pixel_size_mm
        layouts = []
        for iy in range(n_y):
            for ix in range(n_x):
                layouts.append(
                    DetectorLayout(
                        id=iy * n_x + ix,
                        name=f"S{iy}{ix}",
                        nx=nx_pix,
                        ny=ny_pix,
                        center_x_mm=(ix - (n_x - 1) / 2.0) * pitch_x,
                        center_y_mm=(iy - (n_y - 1) / 2.0) * pitch_y,
                        pixel_size_mm=pixel_size_mm,
                    )
                )
        return cls(detectors=tuple(layouts), pixel_scale=pixel_scale, name=name)

    @property
    def detector_ids(self) -> tuple[int, ...]:
        """Ids of all detectors."""
        return tuple(d.id for d in self.detectors)

    @property
    def plate_scale_arcsec_per_mm(self) -> float:
        """Plate scale [arcsec/mm] (pixel scale over pixel size)."""
        return self.pixel_scale / self.detectors[0].pixel_size_mm

    @property
    def field_radius_arcsec(self) -> float:
        """Largest distance of any detector corner from the optical axis [arcsec]."""
        radius_mm = 0.0
        for d in self.detectors:
            half_x = 0.5 * d.nx * d.pixel_size_mm
            half_y = 0.5 * d.ny * d.pixel_size_mm
            radius_mm = max(radius_mm, np.hypot(abs(d.center_x_mm) + half_x, abs(d.center_y_mm) + half_y))
        return float(radius_mm * self.plate_scale_arcsec_per_mm)

    def detector(self, detector_id: int) -> DetectorLayout:
        """Return the layout of detector ``detector_id``.

        Raises
        ------
        UnknownDetectorError
            If no detector has that id.
        """
        for d in self.detectors:
            if d.id == detector_id:
                return d
        raise UnknownDetectorError(detector_id, self.detector_ids)

    def pixel_to_focal_plane(
        self, detector: DetectorLayout, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Detector array pixel coordinates -> focal-plane position [mm] (vectorised)."""
        fx = detector.center_x_mm + (np.asarray(x, float) - (detector.nx - 1) / 2.0) * detector.pixel_size_mm
        fy = detector.center_y_mm + (np.asarray(y, float) - (detector.ny - 1) / 2.0) * detector.pixel_size_mm
        return fx, fy

    def detector_wcs(
        self, pointing_ra: float, pointing_dec: float, rotation_deg: float, detector: DetectorLayout
    ) -> WCS:
        """TAN WCS of one detector of a visit, in the array pixel convention.

        Parameters
        ----------
        pointing_ra, pointing_dec : `float`
            Sky position of the optical axis [deg].
        rotation_deg : `float`
            Position angle of the focal-plane +y axis, east of north [deg].
        detector : `~lsst.dia.pipe.imaging.camera.DetectorLayout`
            The detector.

        Returns
        -------
        wcs : `astropy.wcs.WCS`
            Maps array pixel ``(x, y)`` (0-based, centre of element ``[y, x]``) to ICRS degrees.
        """
        x_axis = (detector.nx - 1) / 2.0 - detector.center_x_mm / detector.pixel_size_mm
        y_axis = (detector.ny - 1) / 2.0 - detector.center_y_mm / detector.pixel_size_mm
        return tan_wcs(pointing_ra, pointing_dec, x_axis, y_axis, self.pixel_scale, rotation_deg)

    def detector_corners_sky(
        self, pointing_ra: float, pointing_dec: float, rotation_deg: float, detector: DetectorLayout
    ) -> tuple[np.ndarray, np.ndarray]:
        """Sky positions [deg] of the four outer pixel corners of a detector, counter-clockwise in pixels.

        The corners are the outer edges of the edge pixels (``-0.5`` and ``n - 0.5``), so the polygon
        covers every pixel completely; RA is wrapped to ``[0, 360)``.
        """
        x = np.array([-0.5, detector.nx - 0.5, detector.nx - 0.5, -0.5])
        y = np.array([-0.5, -0.5, detector.ny - 0.5, detector.ny - 0.5])
        ra, dec = self.detector_wcs(pointing_ra, pointing_dec, rotation_deg, detector).pixel_to_world_values(x, y)
        return np.asarray(ra) % 360.0, np.asarray(dec)
