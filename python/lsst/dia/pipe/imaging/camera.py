"""Build `lsst.images.cameras.Detector` objects for instruments defined without lsst.afw.

lsst-images only creates cameras from storage or from afw; its `CameraFrameSet` constructor and AST wrappers
are private API. Their use is isolated here: one function builds the AST FrameSet (FOCAL_PLANE in mm,
FIELD_ANGLE in radians, one DETECTOR_<id> frame per detector) from a plain detector layout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import astropy.units as u
import lsst.images as li
import starlink.Ast as Ast
from lsst.images._transforms import _ast as li_ast
from lsst.images.cameras import Detector, DetectorAttributes, DetectorType, Orientation
from lsst.images.cameras._camera_frame_set import CameraFrameSet

__all__ = ["DetectorLayout", "make_camera_frames", "make_detector"]


@dataclasses.dataclass(frozen=True)
class DetectorLayout:
    """Where a detector sits in the focal plane.

    Attributes
    ----------
    id : `int`
        Detector id (butler ``detector`` dimension value).
    name : `str`
        Detector name (e.g. ``"S01"``).
    nx, ny : `int`
        Detector size in pixels.
    center_x_mm, center_y_mm : `float`
        Focal-plane position of the detector centre [mm].
    pixel_size_mm : `float`
        Physical pixel size [mm].
    """

    id: int
    name: str
    nx: int
    ny: int
    center_x_mm: float
    center_y_mm: float
    pixel_size_mm: float = 0.01


def make_camera_frames(
    instrument: str, layouts: Sequence[DetectorLayout], plate_scale_arcsec_per_mm: float
) -> CameraFrameSet:
    """Build the camera coordinate frames of a simple (distortion-free) instrument.

    Parameters
    ----------
    instrument : `str`
        Instrument name.
    layouts : sequence of `DetectorLayout`
        Detector positions.
    plate_scale_arcsec_per_mm : `float`
        Plate scale [arcsec/mm]; field angle = focal-plane position × plate scale.
    """
    focal_plane = Ast.Frame(2, "Ident=FOCAL_PLANE,Unit(1)=mm,Unit(2)=mm,Domain=FOCAL_PLANE")
    frame_set = Ast.FrameSet(focal_plane)
    rad_per_mm = (plate_scale_arcsec_per_mm * u.arcsec).to_value(u.rad)
    field_angle = Ast.Frame(2, "Ident=FIELD_ANGLE,Unit(1)=rad,Unit(2)=rad,Domain=FIELD_ANGLE")
    frame_set.addframe(1, Ast.ZoomMap(2, rad_per_mm), field_angle)
    for layout in layouts:
        pixel = Ast.Frame(2, f"Ident=DETECTOR_{layout.id},Domain=PIXELS")
        # pixel (x, y), centre of the detector at ((nx-1)/2, (ny-1)/2) -> focal plane mm
        to_pixel = Ast.CmpMap(
            Ast.ShiftMap([-layout.center_x_mm, -layout.center_y_mm]),
            Ast.CmpMap(
                Ast.ZoomMap(2, 1.0 / layout.pixel_size_mm),
                Ast.ShiftMap([(layout.nx - 1) / 2.0, (layout.ny - 1) / 2.0]),
                True,
            ),
            True,
        )
        frame_set.addframe(1, to_pixel, pixel)
    frame_set.Current = 1
    return CameraFrameSet(instrument, li_ast.FrameSet._wrap(frame_set))


def make_detector(
    instrument: str,
    layout: DetectorLayout,
    frames: CameraFrameSet,
    visit: int | None = None,
) -> Detector:
    """Return the `lsst.images.cameras.Detector` of one detector of a layout."""
    attributes = DetectorAttributes(
        name=layout.name,
        id=layout.id,
        type=DetectorType.SCIENCE,
        serial=f"{instrument}-{layout.name}",
        bbox=li.Box.factory[0 : layout.ny, 0 : layout.nx],
        orientation=Orientation(
            focal_plane_x=layout.center_x_mm,
            focal_plane_y=layout.center_y_mm,
            focal_plane_z=0.0,
            pixel_reference_x=(layout.nx - 1) / 2.0,
            pixel_reference_y=(layout.ny - 1) / 2.0,
        ),
        pixel_size=layout.pixel_size_mm,
        physical_type="CCD",
    )
    return Detector(attributes, amplifiers=[], frames=frames, visit=visit)
