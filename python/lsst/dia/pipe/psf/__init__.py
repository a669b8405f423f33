"""PSF models as seen by the algorithms: a kernel image at any position, cheap to evaluate.

The models (`PsfModel`, `GaussianPsf`, `GridPsf`) import only numpy. The converters to and from file PSFs
(`conversion`: lsst-images, Piff, GalSim) and the PSFEx reader (`psfex`: astropy) are exported here too but
imported on first use, so algorithm code that only needs the models does not pay for those imports.
"""

from importlib import import_module

from .models import GaussianPsf, GridPsf, PsfModel, psf_moments_sigma

_LAZY = {
    "PsfConversionError": "conversion",
    "embed_stamp": "conversion",
    "grid_to_cell_psf": "conversion",
    "grid_to_lsst_psf": "conversion",
    "lsst_psf_to_grid": "conversion",
    "PsfexFormatError": "psfex",
    "PsfexModel": "psfex",
    "psfex_to_grid": "psfex",
    "read_psfex": "psfex",
}

__all__ = ["GaussianPsf", "GridPsf", "PsfModel", "psf_moments_sigma", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{module}", __name__), name)
