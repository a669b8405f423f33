"""Small PNG figures of the QA report and the quality benchmark (matplotlib, Agg canvas, no pyplot state).

Every function draws one figure from plain arrays/tables, writes it to ``path`` and returns the path.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
from astropy.table import Table
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .metrics import CompletenessCurve, LogisticFit

__all__ = [
    "DPI",
    "plot_artifact_causes",
    "plot_completeness",
    "plot_cutouts",
    "plot_light_curve",
    "plot_noise_maps",
    "plot_pull_histograms",
    "plot_sky_map",
]

#: Resolution of every PNG (small files).
DPI = 80

#: Plot colours of bands (others fall back to grey).
BAND_COLORS = {"u": "#56b4e9", "g": "#009e73", "r": "#d55e00", "i": "#cc79a7", "z": "#7f3c8d", "y": "#444444"}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    path = Path(path)
    fig.savefig(path, dpi=DPI, format="png")
    return path


def plot_completeness(
    curves: Mapping[str, tuple[CompletenessCurve, LogisticFit | None]],
    path: str | Path,
    xlabel: str = "true S/N on the difference image",
    log_x: bool = True,
) -> Path:
    """Completeness curves (binned points with binomial errors, optional logistic fits).

    Parameters
    ----------
    curves : mapping of `str` to (`CompletenessCurve`, `LogisticFit` or `None`)
        One curve per label (e.g. ``{"AL": (...), "ZOGY": (...)}``).
    path : path-like
        Output PNG.
    xlabel : `str`
        Axis label of the binned quantity.
    log_x : `bool`
        Logarithmic x axis (S/N) or linear (magnitude).
    """
    fig = _figure(5.0, 3.4)
    ax = fig.add_subplot()
    for (label, (curve, fit)), color in zip(curves.items(), ("C0", "C3", "C2", "C1")):
        ok = curve.n > 0
        ax.errorbar(curve.centers[ok], curve.completeness[ok], yerr=curve.error[ok], fmt="o", ms=3, color=color,
                    label=f"{label} (N={int(curve.n.sum())})")
        if fit is not None:
            grid = np.geomspace(curve.edges[0], curve.edges[-1], 200)
            ax.plot(grid, fit(grid), color=color, lw=1)
            ax.axvline(fit.snr50, color=color, ls=":", lw=1)
            ax.text(fit.snr50, 0.05 + 0.08 * list(curves).index(label), f" S/N50={fit.snr50:.2f}", color=color,
                    fontsize=8)
    if log_x:
        ax.set_xscale("log")
    ax.axhline(0.5, color="grey", lw=0.5)
    ax.set_ylim(-0.03, 1.05)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("completeness")
    ax.legend(fontsize=8, loc="center right" if log_x else "lower left")
    return _save(fig, path)


def plot_pull_histograms(pulls: Mapping[str, np.ndarray], path: str | Path, limit: float = 6.0) -> Path:
    """Histograms of flux pulls with a unit Gaussian for reference.

    Parameters
    ----------
    pulls : mapping of `str` to `numpy.ndarray`
        Pull values per label (e.g. ``{"difference": ..., "science": ...}``).
    path : path-like
        Output PNG.
    limit : `float`
        Histogram range ``[-limit, limit]`` (values beyond are counted in the edge bins).
    """
    fig = _figure(5.0, 3.2)
    ax = fig.add_subplot()
    bins = np.linspace(-limit, limit, 49)
    x = np.linspace(-limit, limit, 200)
    ax.plot(x, np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi), color="k", lw=1, label="N(0, 1)")
    for (label, values), color in zip(pulls.items(), ("C0", "C3", "C2", "C1")):
        values = np.clip(np.asarray(values, float), -limit, limit)
        if values.size:
            ax.hist(values, bins=bins, density=True, histtype="step", color=color, lw=1.5,
                    label=f"{label} (N={values.size})")
    ax.set_xlabel("(measured − true) / error")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_noise_maps(maps: Mapping[str, np.ndarray], path: str | Path, vmin: float = 0.8,
                    vmax: float = 1.4) -> Path:
    """Residual noise ratio maps (blocks) of a few difference images.

    Parameters
    ----------
    maps : mapping of `str` to `numpy.ndarray`
        Block maps by panel title.
    path : path-like
        Output PNG.
    vmin, vmax : `float`
        Colour scale limits.
    """
    n = max(len(maps), 1)
    ncol = min(n, 4)
    nrow = -(-n // ncol)
    fig = _figure(1.6 * ncol + 0.8, 1.6 * nrow + 0.3)
    axes = np.atleast_1d(fig.subplots(nrow, ncol, squeeze=False)).ravel()
    image = None
    for ax, (title, values) in zip(axes, maps.items()):
        image = ax.imshow(values, origin="lower", vmin=vmin, vmax=vmax, cmap="viridis")
        ax.set_title(title, fontsize=7)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    if image is not None:
        fig.colorbar(image, ax=list(axes), shrink=0.8, label="robust std(D/√V)")
    return _save(fig, path)


def plot_artifact_causes(rates: Mapping[str, Mapping[str, float]], path: str | Path) -> Path:
    """Grouped bar chart of artifact rates per cause.

    Parameters
    ----------
    rates : mapping of `str` to mapping of `str` to `float`
        Per label (e.g. algorithm), artifacts per 4k CCD-equivalent for each cause.
    path : path-like
        Output PNG.
    """
    fig = _figure(5.0, 3.0)
    ax = fig.add_subplot()
    causes = list(next(iter(rates.values()), {}))
    width = 0.8 / max(len(rates), 1)
    x = np.arange(len(causes))
    for k, ((label, values), color) in enumerate(zip(rates.items(), ("C0", "C3", "C2", "C1"))):
        ax.bar(x + (k - (len(rates) - 1) / 2) * width, [values[c] for c in causes], width, color=color, label=label)
    ax.set_xticks(x, [c.replace("_", " ") for c in causes], fontsize=8)
    ax.set_ylabel("artifacts per 4k×4k CCD")
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_sky_map(sources: Table, objects: Table, path: str | Path) -> Path:
    """DIASource positions by band, DIAObject positions as open circles.

    Parameters
    ----------
    sources : `astropy.table.Table`
        ``ra``, ``dec``, ``band`` of the DIASources.
    objects : `astropy.table.Table`
        ``ra``, ``dec`` of the DIAObjects (may be empty).
    path : path-like
        Output PNG.
    """
    fig = _figure(5.0, 4.2)
    ax = fig.add_subplot()
    if len(sources):
        ra = np.asarray(sources["ra"], float)
        ra0 = float(np.rad2deg(np.angle(np.mean(np.exp(1j * np.deg2rad(ra))))))
        bands = np.asarray(sources["band"]).astype(str)
        for band in sorted(set(bands)):
            sel = bands == band
            ax.scatter(((ra[sel] - ra0 + 180) % 360) - 180 + ra0, np.asarray(sources["dec"], float)[sel], s=3,
                       color=BAND_COLORS.get(band, "grey"), label=f"{band} ({int(sel.sum())})")
        if len(objects):
            oa = np.asarray(objects["ra"], float)
            ax.scatter(((oa - ra0 + 180) % 360) - 180 + ra0, np.asarray(objects["dec"], float), s=14,
                       facecolors="none", edgecolors="k", lw=0.4, label=f"DIAObjects ({len(objects)})")
        ax.invert_xaxis()
        ax.legend(fontsize=7, markerscale=2, loc="upper right")
    ax.set_xlabel("RA [deg]")
    ax.set_ylabel("Dec [deg]")
    ax.set_aspect(1.0 / max(np.cos(np.deg2rad(np.nanmedian(sources["dec"]) if len(sources) else 0.0)), 1e-3))
    return _save(fig, path)


def _stretch(image: np.ndarray, symmetric: bool) -> tuple[float, float]:
    """Display limits: robust range of the finite pixels (symmetric about 0 for differences)."""
    finite = image[np.isfinite(image)]
    if finite.size == 0:
        return -1.0, 1.0
    lo, hi = np.percentile(finite, [1.0, 99.5])
    if symmetric:
        hi = max(abs(lo), abs(hi))
        lo = -hi
    return float(lo), float(hi if hi > lo else lo + 1.0)


def plot_cutouts(panels: Mapping[str, np.ndarray | None], title: str, path: str | Path) -> Path:
    """Side-by-side image cutouts (e.g. science, template, difference) of one object.

    Parameters
    ----------
    panels : mapping of `str` to `numpy.ndarray` or `None`
        Cutout per panel title; `None` draws an empty "not available" panel.  A panel titled
        ``difference`` is displayed symmetric about zero.
    title : `str`
        Figure title.
    path : path-like
        Output PNG.
    """
    fig = _figure(1.5 * len(panels), 1.8)
    axes = np.atleast_1d(fig.subplots(1, len(panels), squeeze=False)).ravel()
    for ax, (name, image) in zip(axes, panels.items()):
        if image is None:
            ax.text(0.5, 0.5, "n/a", ha="center", va="center", transform=ax.transAxes)
        else:
            lo, hi = _stretch(image, symmetric=name == "difference")
            ax.imshow(image, origin="lower", cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=8)
    return _save(fig, path)


def plot_light_curve(curve: Table, title: str, path: str | Path) -> Path:
    """Forced-photometry light curve by band: difference flux (top) and science flux (bottom).

    Parameters
    ----------
    curve : `astropy.table.Table`
        ``midpointMjdTai``, ``band``, ``psfFlux``, ``psfFluxErr``, ``scienceFlux``, ``scienceFluxErr`` [nJy].
    title : `str`
        Figure title.
    path : path-like
        Output PNG.
    """
    fig = _figure(4.6, 3.4)
    top, bottom = fig.subplots(2, 1, sharex=True)
    if len(curve):
        bands = np.asarray(curve["band"]).astype(str)
        mjd = np.asarray(curve["midpointMjdTai"], float)
        for band in sorted(set(bands)):
            sel = bands == band
            color = BAND_COLORS.get(band, "grey")
            for ax, flux in ((top, "psfFlux"), (bottom, "scienceFlux")):
                ax.errorbar(mjd[sel], np.asarray(curve[flux], float)[sel], yerr=np.asarray(curve[f"{flux}Err"],
                            float)[sel], fmt="o", ms=3, color=color, label=band)
        top.legend(fontsize=7, ncol=len(set(bands)))
    top.axhline(0.0, color="grey", lw=0.5)
    top.set_ylabel("difference [nJy]", fontsize=8)
    bottom.set_ylabel("science [nJy]", fontsize=8)
    bottom.set_xlabel("MJD (TAI)", fontsize=8)
    fig.suptitle(title, fontsize=8)
    return _save(fig, path)
