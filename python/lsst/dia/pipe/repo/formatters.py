"""Butler formatters for dia_pipe repositories."""

from __future__ import annotations

from lsst.images.fits import FitsCompressionOptions
from lsst.images.formatters import GenericFormatter

__all__ = ["UncompressedImageFormatter"]


class UncompressedImageFormatter(GenericFormatter):
    """lsst-images `GenericFormatter` that writes the pixel planes without compression.

    The files are ordinary lsst-images FITS files (any lsst-images reader opens them); only the
    ``image``, ``variance`` and ``mask`` HDUs are written as plain ``ImageHDU`` s, which makes a 4k × 4k
    write ~8× faster than the default lossless GZIP_2.
    """

    def _get_compression_options(self) -> dict[str, FitsCompressionOptions | None]:
        return {"image": None, "variance": None, "mask": None}
