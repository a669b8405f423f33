#!/usr/bin/env python
"""Run peer difference-imaging codes (SFFT, properimage, HOTPANTS) on the image pair dia_pipe is timed on.

Peers are benchmark-only: they are never runtime dependencies of dia_pipe. The Python peers live in their own
virtual environment, ``bench/.peers-venv`` (``python bench/peers.py --setup`` creates it and installs ``sfft``
and ``properimage``; see ``/work/shared/docs/peers.md``). HOTPANTS is used only when a ``hotpants`` binary is
already on ``PATH`` (it is neither built nor shipped here).

The parent (dia_pipe's environment) writes the science image and the template, already warped onto the
science grid, as plain FITS files (`write_pair`) and runs each peer in a subprocess (`run_peer`); the peer
writes its difference image as FITS and a small JSON with its own compute time (input reading and imports
excluded). The parent reads the subprocess's peak resident memory from ``wait4``. A peer that cannot be
installed or fails is reported with its error, never with a number.

This file is also the peers' entry point inside the peer venv (``python peers.py run NAME ...``): that side
imports only numpy, astropy and the peer package.

Usage::

    python bench/peers.py --setup                 # create bench/.peers-venv and install the peers
    python bench/peers.py --status                # what is installed / on PATH
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

__all__ = [
    "PEER_VENV",
    "PYTHON_PEERS",
    "PairFiles",
    "PeerRun",
    "peer_python",
    "run_peer",
    "setup_venv",
    "write_pair",
]

BENCH = Path(__file__).resolve().parent
#: The peers' virtual environment (git-ignored through its own ``.gitignore``).
PEER_VENV = BENCH / ".peers-venv"
#: Peers run through the peer venv's Python (HOTPANTS is a binary).
PYTHON_PEERS = ("sfft", "properimage")
#: SFFT set-up (as in peers.md): kernel half-width, kernel and background polynomial orders, CPU threads.
SFFT_OPTIONS = {"GKerHW": 8, "KerPolyOrder": 2, "BGPolyOrder": 2, "threads": 2}

#: pip steps of `setup_venv`. tinynpydb (a properimage dependency) runs ez_setup, which downloads an old
#: setuptools unless ``pkg_resources`` is importable: an older setuptools and no build isolation avoid that.
SETUP_STEPS = (
    ("sfft",),
    ("setuptools<70", "wheel"),
    ("--no-build-isolation", "tinynpydb"),
    ("properimage",),
)


# --- parent side ---------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class PairFiles:
    """FITS files of one image pair on a common pixel grid (written by `write_pair`).

    Attributes
    ----------
    science, template : `pathlib.Path`
        Images [nJy]; pixels without data in either image are NaN.
    science_sigma, template_sigma : `pathlib.Path`
        Per-pixel noise standard deviation [nJy].
    bad : `pathlib.Path`
        ``uint8``: 1 where either image is unusable (masked, saturated, no data).
    """

    science: Path
    template: Path
    science_sigma: Path
    template_sigma: Path
    bad: Path


@dataclasses.dataclass
class PeerRun:
    """Outcome of one peer run.

    Attributes
    ----------
    name : `str`
        Peer name.
    compute_s : `float` or `None`
        Seconds of the subtraction itself as the peer's runner timed it (after reading its inputs).
    wall_s : `float` or `None`
        Wall-clock seconds of the whole subprocess (interpreter start, imports, FITS I/O included).
    max_rss_gb : `float` or `None`
        Peak resident memory of the subprocess [GB].
    difference : `numpy.ndarray` or `None`
        The peer's difference image (NaN where it has none).
    details : `dict`
        Peer-specific numbers (e.g. SFFT's own subtraction time) and settings.
    error : `str` or `None`
        Why there is no result.
    """

    name: str
    compute_s: float | None = None
    wall_s: float | None = None
    max_rss_gb: float | None = None
    difference: np.ndarray | None = None
    details: dict = dataclasses.field(default_factory=dict)
    error: str | None = None


def peer_python() -> Path:
    """The peer venv's Python interpreter."""
    return PEER_VENV / "bin" / "python"


def setup_venv(python: str = sys.executable) -> None:
    """Create `PEER_VENV` with ``python -m venv`` and pip-install the peers into it (see `SETUP_STEPS`).

    Raises
    ------
    subprocess.CalledProcessError
        If a step fails.
    """
    if not peer_python().exists():
        subprocess.run([python, "-m", "venv", str(PEER_VENV)], check=True)
        (PEER_VENV / ".gitignore").write_text("*\n")
    for step in SETUP_STEPS:
        subprocess.run([str(peer_python()), "-m", "pip", "install", *step], check=True)


def write_pair(
    directory: Path,
    science: np.ndarray,
    science_variance: np.ndarray,
    template: np.ndarray,
    template_variance: np.ndarray,
    bad: np.ndarray,
) -> PairFiles:
    """Write an aligned image pair as the FITS files the peers read.

    Parameters
    ----------
    directory : `pathlib.Path`
        Existing directory.
    science, template : `numpy.ndarray`
        ``(ny, nx)`` images [nJy].
    science_variance, template_variance : `numpy.ndarray`
        Their variances [nJy²].
    bad : `numpy.ndarray` of `bool`
        Pixels unusable in either image.
    """
    files = PairFiles(*(directory / f"{name}.fits" for name in
                        ("science", "template", "science_sigma", "template_sigma", "bad")))
    undefined = bad | ~np.isfinite(science) | ~np.isfinite(template)
    for path, data in ((files.science, science), (files.template, template)):
        fits.writeto(path, np.where(undefined, np.nan, data).astype(np.float32), overwrite=True)
    for path, data in ((files.science_sigma, science_variance), (files.template_sigma, template_variance)):
        fits.writeto(path, np.sqrt(np.maximum(data, 0)).astype(np.float32), overwrite=True)
    fits.writeto(files.bad, undefined.astype(np.uint8), overwrite=True)
    return files


def _run_measured(command: list[str], timeout: float, log: Path) -> tuple[int, float, float]:
    """Run ``command`` (temporary files in the log's directory); return (exit status, wall seconds, peak RSS
    [GB]) of that one child."""
    start = time.perf_counter()
    env = dict(os.environ, TMPDIR=str(log.parent))  # properimage leaves a temporary directory behind
    with open(log, "w") as stream:
        process = subprocess.Popen(command, stdout=stream, stderr=subprocess.STDOUT, env=env)
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, time.perf_counter() - start, usage.ru_maxrss / 2**20


def _tail(path: Path, n: int = 3) -> str:
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(lines[-n:])[-400:]


def _hotpants_command(files: PairFiles, out: Path) -> list[str]:
    """HOTPANTS with its default kernel basis, template convolved, output normalised to the science image,
    noise and bad-pixel images given (untested here: no binary on this machine)."""
    return [
        "hotpants", "-inim", str(files.science), "-tmplim", str(files.template), "-outim", str(out),
        "-ini", str(files.science_sigma), "-tni", str(files.template_sigma),
        "-imi", str(files.bad), "-tmi", str(files.bad),
        "-il", "-1e10", "-tl", "-1e10", "-iu", "1e10", "-tu", "1e10",
        "-c", "t", "-n", "i", "-ko", "2", "-bgo", "1",
    ]


def run_peer(name: str, files: PairFiles, work: Path, timeout: float = 1800.0) -> PeerRun:
    """Run one peer on an image pair in a subprocess and read back its difference image.

    Parameters
    ----------
    name : `str`
        ``"sfft"``, ``"properimage"`` or ``"hotpants"``.
    files : `PairFiles`
        The pair (`write_pair`).
    work : `pathlib.Path`
        Directory for the peer's outputs and log.
    timeout : `float`
        Seconds before the peer is killed.

    Returns
    -------
    run : `PeerRun`
        With ``error`` set (and no numbers) when the peer is not installed, fails or times out.
    """
    out, report, log = work / f"{name}_diff.fits", work / f"{name}.json", work / f"{name}.log"
    if name == "hotpants":
        if shutil.which("hotpants") is None:
            return PeerRun(name, error="no hotpants binary on PATH (not built here; see peers.md)")
        command = _hotpants_command(files, out)
    elif name in PYTHON_PEERS:
        if not peer_python().exists():
            return PeerRun(name, error=f"peer venv missing: run `python bench/peers.py --setup` ({PEER_VENV})")
        command = [str(peer_python()), str(Path(__file__).resolve()), "run", name,
                   "--pair", json.dumps({k: str(v) for k, v in dataclasses.asdict(files).items()}),
                   "--out", str(out), "--report", str(report)]
    else:
        raise ValueError(f"Unknown peer {name!r}; choose sfft, properimage or hotpants.")
    status, wall, rss = _run_measured(command, timeout, log)
    run = PeerRun(name, wall_s=round(wall, 3), max_rss_gb=round(rss, 3))
    if wall > timeout:
        run.error = f"killed after {timeout:.0f} s timeout"
    elif status != 0:
        run.error = f"exit status {status}" + (" (killed: out of memory?)" if status in (-9, 137) else "")
        run.error += f": {_tail(log)}"
    elif not out.exists():
        run.error = f"no difference image written: {_tail(log)}"
    if run.error:
        return run
    run.difference = fits.getdata(out).astype(np.float32)
    if report.exists():
        measured = json.loads(report.read_text())
        run.compute_s = measured.pop("compute_s")
        run.details = measured
    else:  # a binary: its compute time is the process's wall time
        run.compute_s = run.wall_s
    return run


# --- peer side (runs in the peer venv: numpy, astropy and the peer package only) ----------------------------
def _sfft(pair: dict, out: Path, work: Path) -> dict:
    """SFFT (Customized_Packet, numpy backend): template convolved, every unmasked pixel used in the fit."""
    from sfft.CustomizedPacket import Customized_Packet

    bad = fits.getdata(pair["bad"]).astype(bool)
    masked = {}
    for key in ("template", "science"):
        data = fits.getdata(pair[key]).astype(np.float64)
        masked[key] = work / f"sfft_masked_{key}.fits"
        fits.writeto(masked[key], np.where(bad, 0.0, data), overwrite=True)
    captured = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(captured):
        Customized_Packet.CP(
            FITS_REF=pair["template"], FITS_SCI=pair["science"], FITS_mREF=str(masked["template"]),
            FITS_mSCI=str(masked["science"]), ForceConv="REF", GKerHW=SFFT_OPTIONS["GKerHW"],
            FITS_DIFF=str(out), KerPolyOrder=SFFT_OPTIONS["KerPolyOrder"], BGPolyOrder=SFFT_OPTIONS["BGPolyOrder"],
            ConstPhotRatio=True, BACKEND_4SUBTRACT="Numpy", NUM_CPU_THREADS_4SUBTRACT=SFFT_OPTIONS["threads"],
            VERBOSE_LEVEL=1,
        )
    seconds = time.perf_counter() - start
    text = captured.getvalue()
    (work / "sfft_stdout.log").write_text(text)

    def reported(pattern: str) -> float | None:
        found = re.search(pattern + r" TAKES \[([0-9.]+) s\]", text)
        return float(found.group(1)) if found else None

    return {"compute_s": round(seconds, 3),
            "configure_s": reported("Function Compilations of SFFT-SUBTRACTION"),
            "subtraction_only_s": reported(r"\nMeLOn Report: SFFT-SUBTRACTION"),
            "settings": dict(SFFT_OPTIONS, backend="Numpy", ForceConv="REF", ConstPhotRatio=True)}


def _properimage(pair: dict, out: Path, work: Path) -> dict:
    """properimage ZOGY (`properimage.operations.subtract`, Gaussian-fitted PSFs, flux ratio fitted)."""
    from properimage.operations import subtract
    from properimage.single_image import SingleImageGaussPSF

    bad = fits.getdata(pair["bad"]).astype(bool)
    images = {key: np.nan_to_num(fits.getdata(pair[key]).astype(np.float64)) for key in ("template", "science")}
    start = time.perf_counter()
    ref = SingleImageGaussPSF(images["template"], mask=bad)
    new = SingleImageGaussPSF(images["science"], mask=bad)
    difference = subtract(ref=ref, new=new, smooth_psf=False, fitted_psf=True, beta=True, shift=False,
                          iterative=False)[0]
    seconds = time.perf_counter() - start
    difference = np.real(difference).astype(np.float32)
    difference[bad] = np.nan
    fits.writeto(out, difference, overwrite=True)
    return {"compute_s": round(seconds, 3),
            "settings": {"fitted_psf": True, "beta": True, "shift": False, "iterative": False,
                         "output": "ZOGY D"}}


_RUNNERS = {"sfft": _sfft, "properimage": _properimage}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true", help="create bench/.peers-venv and install the peers")
    parser.add_argument("--status", action="store_true", help="show which peers are available")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="(inside the peer venv) run one peer on a pair of FITS files")
    run.add_argument("peer", choices=sorted(_RUNNERS))
    run.add_argument("--pair", required=True, help="JSON of PairFiles paths")
    run.add_argument("--out", required=True, type=Path)
    run.add_argument("--report", required=True, type=Path)
    args = parser.parse_args()
    if args.setup:
        setup_venv()
    if args.status or args.setup:
        installed = {}
        for name in PYTHON_PEERS:
            check = subprocess.run([str(peer_python()), "-c", f"import {name}"], capture_output=True) \
                if peer_python().exists() else None
            installed[name] = bool(check and check.returncode == 0)
        installed["hotpants"] = shutil.which("hotpants") is not None
        print(json.dumps(installed))
    if args.command == "run":
        result = _RUNNERS[args.peer](json.loads(args.pair), args.out, args.out.parent)
        args.report.write_text(json.dumps(result))


if __name__ == "__main__":
    main()
