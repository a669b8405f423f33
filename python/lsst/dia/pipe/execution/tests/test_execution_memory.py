"""`retain_freed_memory`: image-sized arrays reuse freed heap memory instead of page-faulting fresh pages."""

import subprocess
import sys

import pytest

_SCRIPT = """
import resource, sys
import numpy as np
from lsst.dia.pipe.execution import retain_freed_memory
applied = retain_freed_memory() if sys.argv[1] == "retain" else False
np.ones((4096, 4096), np.float32)  # allocated, touched and freed
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
np.ones((4096, 4096), np.float32)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _second_allocation_faults(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, check=True)
    applied, faults = out.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_freed_planes_are_reused_without_page_faults():
    # A 64 MB plane is 16384 pages of 4 kB or 32 transparent huge pages of 2 MB: without the setting each
    # faults again on reallocation.
    applied, default_faults = _second_allocation_faults("default")
    assert applied == "False" and default_faults >= 32
    applied, retained_faults = _second_allocation_faults("retain")
    assert applied == "True" and retained_faults < 0.1 * default_faults
