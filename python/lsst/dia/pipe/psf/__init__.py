"""PSF models as seen by the algorithms: a kernel image at any position, cheap to evaluate."""

from .models import GaussianPsf, GridPsf, PsfModel, psf_moments_sigma

__all__ = ["GaussianPsf", "GridPsf", "PsfModel", "psf_moments_sigma"]
