"""dia_pipe: difference-image analysis for LSST DESC-style data challenges.

Subpackages follow the layers of the architecture: ``cli`` and ``execution`` (command line, workers, batch),
``tasks`` (PipelineTasks, thin), ``diffim``, ``detection``, ``measurement``, ``association`` (pixel and
catalog algorithms, free of butler I/O), ``skymap``, ``repo`` and ``sim`` (repositories and the simulated
survey), ``imaging`` (adapters between numpy arrays and ``lsst.images`` types).
"""

from .version import __version__

__all__ = ["__version__"]
