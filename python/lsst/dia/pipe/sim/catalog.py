"""The simulated sky: stars, galaxies, transients (on hosts or hostless) and variable stars, with truth.

Every object has a band-dependent base flux from an r-band magnitude and a colour
(``m_band = m_r + slope_band * colour``, `BAND_COLOR_SLOPES`). What the base flux means depends on the type:

============ ======================================================== =========================================
objectType   flux at time ``t``                                       in the template
============ ======================================================== =========================================
star         base flux                                                base flux
galaxy       base flux (a Sersic profile)                             base flux
variable     ``base * (1 + amplitude * sin(2π (t - phaseMjd) / period))`` base flux (the mean)
transient    ``base * lc(t)``, ``lc`` rises as a parabola over          0
             ``riseTime`` to 1 at ``peakMjd``, then declines by
             ``declineRate`` mag/day; 0 before ``peakMjd - riseTime``
============ ======================================================== =========================================

Fluxes are in nJy (AB: ``m = 31.4 - 2.5 log10(flux / nJy)``).
"""

from __future__ import annotations

import dataclasses

import astropy.units as u
import numpy as np
from astropy.table import Table

__all__ = [
    "BAND_COLOR_SLOPES",
    "OBJECT_TYPES",
    "SkyModelConfig",
    "UnknownBandError",
    "flux_from_mag",
    "mag_from_flux",
    "offset_positions",
    "make_sky_catalog",
    "true_flux",
    "template_flux",
]

#: ``m_band - m_r`` per unit of an object's colour (≈ g - r).
BAND_COLOR_SLOPES: dict[str, float] = {"u": 2.2, "g": 1.0, "r": 0.0, "i": -0.45, "z": -0.7, "y": -0.85}

#: Values of the ``objectType`` column.
OBJECT_TYPES: tuple[str, ...] = ("star", "galaxy", "transient", "variable")

_AB_NJY_ZERO_POINT = 31.4


class UnknownBandError(KeyError):
    """A band has no colour model or no flux column.

    Parameters
    ----------
    band : `str`
        The requested band.
    known : `tuple` [`str`, ...]
        Bands that are available.
    """

    def __init__(self, band: str, known: tuple[str, ...]):
        self.band = band
        self.known = known
        super().__init__(f"Band {band!r} is not simulated (available: {list(known)}).")


def flux_from_mag(mag: np.ndarray) -> np.ndarray:
    """AB magnitude -> flux [nJy]."""
    return 10.0 ** (0.4 * (_AB_NJY_ZERO_POINT - np.asarray(mag, float)))


def mag_from_flux(flux: np.ndarray) -> np.ndarray:
    """Flux [nJy] -> AB magnitude (NaN for non-positive flux)."""
    flux = np.asarray(flux, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0, _AB_NJY_ZERO_POINT - 2.5 * np.log10(flux), np.nan)


@dataclasses.dataclass(frozen=True)
class SkyModelConfig:
    """Densities and distributions of the simulated objects.

    Densities are per square arcminute over the whole field; magnitudes are r-band AB; power-law number
    counts follow ``dN/dm ∝ 10**(slope * m)`` between the limits.
    """

    star_density: float = 15.0
    star_mag_range: tuple[float, float] = (12.5, 25.0)
    star_slope: float = 0.2
    star_color_range: tuple[float, float] = (0.3, 1.5)
    galaxy_density: float = 20.0
    galaxy_mag_range: tuple[float, float] = (18.0, 25.5)
    galaxy_slope: float = 0.35
    galaxy_color_range: tuple[float, float] = (0.4, 1.1)
    #: Median half-light radius of an r = 22 galaxy [arcsec]; scales as 10**(-0.1 (m - 22)).
    galaxy_hlr_at_22: float = 0.6
    galaxy_hlr_range: tuple[float, float] = (0.1, 3.0)
    #: Sersic indices drawn with `galaxy_sersic_weights` (a few discrete values keep GalSim's caches warm).
    galaxy_sersic_indices: tuple[float, ...] = (1.0, 2.0, 4.0)
    galaxy_sersic_weights: tuple[float, ...] = (0.6, 0.15, 0.25)
    galaxy_shear_rms: float = 0.25
    transient_density: float = 3.0
    transient_peak_mag_range: tuple[float, float] = (20.5, 25.0)
    transient_color_range: tuple[float, float] = (-0.2, 0.4)
    transient_hosted_fraction: float = 0.7
    #: Hosts are galaxies brighter than this r magnitude.
    transient_host_mag_limit: float = 23.5
    transient_rise_time_range: tuple[float, float] = (10.0, 20.0)
    transient_decline_rate_range: tuple[float, float] = (0.02, 0.06)
    #: Peak times are drawn within the survey MJD range grown by this margin [days] on both sides.
    transient_peak_margin: float = 15.0
    variable_density: float = 1.0
    variable_mag_range: tuple[float, float] = (17.0, 22.5)
    variable_color_range: tuple[float, float] = (0.3, 1.2)
    variable_amplitude_range: tuple[float, float] = (0.05, 0.5)
    variable_period_range: tuple[float, float] = (0.3, 20.0)


def offset_positions(
    ra0: np.ndarray, dec0: np.ndarray, separation_deg: np.ndarray, position_angle_deg: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions at given separations and position angles (east of north) from reference points.

    Exact spherical trigonometry, vectorised; RA is wrapped to ``[0, 360)`` (safe at RA = 0).

    Parameters
    ----------
    ra0, dec0 : `numpy.ndarray`
        Reference positions [deg].
    separation_deg, position_angle_deg : `numpy.ndarray`
        Offsets [deg].

    Returns
    -------
    ra, dec : `numpy.ndarray`
        Offset positions [deg].
    """
    ra0r = np.deg2rad(ra0)
    dec0r = np.deg2rad(dec0)
    rho = np.deg2rad(separation_deg)
    pa = np.deg2rad(position_angle_deg)
    sin_dec = np.sin(dec0r) * np.cos(rho) + np.cos(dec0r) * np.sin(rho) * np.cos(pa)
    dec = np.arcsin(np.clip(sin_dec, -1.0, 1.0))
    ra = ra0r + np.arctan2(np.sin(pa) * np.sin(rho) * np.cos(dec0r), np.cos(rho) - np.sin(dec0r) * sin_dec)
    return np.rad2deg(ra) % 360.0, np.rad2deg(dec)


def _power_law_mags(rng: np.random.Generator, n: int, mag_range: tuple[float, float], slope: float) -> np.ndarray:
    """Magnitudes with ``dN/dm ∝ 10**(slope m)`` (inverse-CDF sampling)."""
    lo, hi = 10.0 ** (slope * np.asarray(mag_range, float))
    return np.log10(lo + rng.uniform(size=n) * (hi - lo)) / slope


def _uniform_in_cap(
    rng: np.random.Generator, n: int, ra0: float, dec0: float, radius_deg: float
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` positions uniform on the sphere within ``radius_deg`` of ``(ra0, dec0)``."""
    cos_r = np.cos(np.deg2rad(radius_deg))
    separation = np.rad2deg(np.arccos(1.0 - rng.uniform(size=n) * (1.0 - cos_r)))
    return offset_positions(np.full(n, ra0), np.full(n, dec0), separation, rng.uniform(0.0, 360.0, n))


def _band_fluxes(mag_r: np.ndarray, color: np.ndarray, bands: tuple[str, ...]) -> dict[str, np.ndarray]:
    out = {}
    for band in bands:
        if band not in BAND_COLOR_SLOPES:
            raise UnknownBandError(band, tuple(BAND_COLOR_SLOPES))
        out[band] = flux_from_mag(mag_r + BAND_COLOR_SLOPES[band] * color)
    return out


def make_sky_catalog(
    config: SkyModelConfig,
    *,
    ra: float,
    dec: float,
    radius_deg: float,
    bands: tuple[str, ...],
    mjd_range: tuple[float, float],
    seed: int,
) -> Table:
    """Draw the objects of a circular field.

    Parameters
    ----------
    config : `SkyModelConfig`
        Densities and distributions.
    ra, dec : `float`
        Field centre [deg].
    radius_deg : `float`
        Field radius [deg].
    bands : `tuple` [`str`, ...]
        Bands to give fluxes in (keys of `BAND_COLOR_SLOPES`).
    mjd_range : `tuple` [`float`, `float`]
        Survey time span; transient peaks are drawn in it, grown by ``config.transient_peak_margin``.
    seed : `int`
        Random seed; the same inputs give the same catalog.

    Returns
    -------
    objects : `astropy.table.Table`
        One row per object: ``id`` (int64, from 1), ``objectType``, ``ra``, ``dec`` [deg], ``hostId``
        (-1 when none), ``{band}_flux`` [nJy] (base flux, see the module docstring), ``sersicIndex``,
        ``halfLightRadius`` [arcsec], ``shapeG1``, ``shapeG2`` (reduced shear in the (east, north) sky
        frame; galaxies only), ``peakMjd``, ``riseTime`` [d], ``declineRate`` [mag/d] (transients only),
        ``period`` [d], ``amplitude`` (fractional), ``phaseMjd`` (variables only). Inapplicable entries are
        NaN.
    """
    rng = np.random.default_rng([seed, 0x5C1])
    area_arcmin2 = 2.0 * np.pi * (1.0 - np.cos(np.deg2rad(radius_deg))) * (180.0 * 60.0 / np.pi) ** 2
    counts = {
        "star": rng.poisson(config.star_density * area_arcmin2),
        "galaxy": rng.poisson(config.galaxy_density * area_arcmin2),
        "transient": rng.poisson(config.transient_density * area_arcmin2),
        "variable": rng.poisson(config.variable_density * area_arcmin2),
    }
    n_total = sum(counts.values())
    columns: dict[str, np.ndarray] = {
        "id": np.arange(1, n_total + 1, dtype=np.int64),
        "objectType": np.repeat(np.array(OBJECT_TYPES), [counts[t] for t in OBJECT_TYPES]),
        "hostId": np.full(n_total, -1, dtype=np.int64),
    }
    float_columns = ("ra", "dec", "mag_r", "color", "sersicIndex", "halfLightRadius", "shapeG1", "shapeG2",
                     "peakMjd", "riseTime", "declineRate", "period", "amplitude", "phaseMjd")
    for name in float_columns:
        columns[name] = np.full(n_total, np.nan)
    start = dict(zip(OBJECT_TYPES, np.cumsum([0] + [counts[t] for t in OBJECT_TYPES])))
    sel = {t: slice(start[t], start[t] + counts[t]) for t in OBJECT_TYPES}

    def fill(kind: str, **values: np.ndarray) -> None:
        for name, value in values.items():
            columns[name][sel[kind]] = value

    n = counts["star"]
    fill("star", mag_r=_power_law_mags(rng, n, config.star_mag_range, config.star_slope),
         color=rng.uniform(*config.star_color_range, n))

    n = counts["galaxy"]
    mag = _power_law_mags(rng, n, config.galaxy_mag_range, config.galaxy_slope)
    hlr = config.galaxy_hlr_at_22 * 10.0 ** (-0.1 * (mag - 22.0)) * rng.lognormal(0.0, 0.25, n)
    g = np.minimum(np.abs(rng.normal(0.0, config.galaxy_shear_rms, n)), 0.7)
    beta = rng.uniform(0.0, np.pi, n)
    weights = np.asarray(config.galaxy_sersic_weights, float)
    fill("galaxy", mag_r=mag, color=rng.uniform(*config.galaxy_color_range, n),
         sersicIndex=rng.choice(config.galaxy_sersic_indices, size=n, p=weights / weights.sum()),
         halfLightRadius=np.clip(hlr, *config.galaxy_hlr_range),
         shapeG1=g * np.cos(2 * beta), shapeG2=g * np.sin(2 * beta))

    n = counts["variable"]
    fill("variable", mag_r=rng.uniform(*config.variable_mag_range, n),
         color=rng.uniform(*config.variable_color_range, n),
         amplitude=rng.uniform(*config.variable_amplitude_range, n),
         period=np.exp(rng.uniform(*np.log(config.variable_period_range), n)),
         phaseMjd=mjd_range[0] + rng.uniform(0.0, 1.0, n) * 20.0)

    n = counts["transient"]
    margin = config.transient_peak_margin
    fill("transient", mag_r=rng.uniform(*config.transient_peak_mag_range, n),
         color=rng.uniform(*config.transient_color_range, n),
         peakMjd=rng.uniform(mjd_range[0] - margin, mjd_range[1] + margin, n),
         riseTime=rng.uniform(*config.transient_rise_time_range, n),
         declineRate=rng.uniform(*config.transient_decline_rate_range, n))

    ra_all, dec_all = _uniform_in_cap(rng, n_total, ra, dec, radius_deg)
    columns["ra"][:] = ra_all
    columns["dec"][:] = dec_all

    # transients on hosts: one per host, offset from the host centre by ~0.8 half-light radii
    galaxy_index = np.arange(sel["galaxy"].start, sel["galaxy"].stop)
    candidates = galaxy_index[columns["mag_r"][galaxy_index] < config.transient_host_mag_limit]
    n_hosted = min(int(rng.binomial(counts["transient"], config.transient_hosted_fraction)), len(candidates))
    hosts = rng.choice(candidates, size=n_hosted, replace=False)
    hosted = np.arange(sel["transient"].start, sel["transient"].start + n_hosted)
    host_hlr = columns["halfLightRadius"][hosts]
    offset_arcsec = np.minimum(np.abs(rng.normal(0.0, 0.8, n_hosted)), 2.5) * host_hlr
    columns["ra"][hosted], columns["dec"][hosted] = offset_positions(
        columns["ra"][hosts], columns["dec"][hosts], offset_arcsec / 3600.0, rng.uniform(0.0, 360.0, n_hosted)
    )
    columns["hostId"][hosted] = columns["id"][hosts]

    table = Table()
    for name in ("id", "objectType", "ra", "dec", "hostId"):
        table[name] = columns[name]
    table["ra"].unit = table["dec"].unit = u.deg
    for band, flux in _band_fluxes(columns["mag_r"], columns["color"], bands).items():
        table[f"{band}_flux"] = flux
        table[f"{band}_flux"].unit = u.nJy
    units = {"halfLightRadius": u.arcsec, "peakMjd": u.d, "riseTime": u.d, "declineRate": u.mag / u.d,
             "period": u.d, "phaseMjd": u.d}
    for name in float_columns[4:]:
        table[name] = columns[name]
        table[name].unit = units.get(name)
    table.meta["bands"] = list(bands)
    table.meta["field"] = {"ra": float(ra), "dec": float(dec), "radius_deg": float(radius_deg)}
    return table


def _flux_column(objects: Table, band: str) -> np.ndarray:
    name = f"{band}_flux"
    if name not in objects.colnames:
        raise UnknownBandError(band, tuple(c[:-5] for c in objects.colnames if c.endswith("_flux")))
    return np.asarray(objects[name], float)


def true_flux(objects: Table, band: str, mjd: float | np.ndarray) -> np.ndarray:
    """True flux of each object at a time [nJy] (vectorised; ``mjd`` broadcasts against the rows)."""
    base = _flux_column(objects, band)
    kind = np.asarray(objects["objectType"])
    t = np.broadcast_to(np.asarray(mjd, float), base.shape)
    factor = np.ones_like(base)

    var = kind == "variable"
    phase = 2.0 * np.pi * (t[var] - np.asarray(objects["phaseMjd"])[var]) / np.asarray(objects["period"])[var]
    factor[var] = 1.0 + np.asarray(objects["amplitude"])[var] * np.sin(phase)

    tr = kind == "transient"
    dt = t[tr] - np.asarray(objects["peakMjd"])[tr]
    rise = np.asarray(objects["riseTime"])[tr]
    decline = np.asarray(objects["declineRate"])[tr]
    lc = np.where(dt >= 0.0, 10.0 ** (-0.4 * decline * np.maximum(dt, 0.0)),
                  np.clip(1.0 - (dt / rise) ** 2, 0.0, None))
    factor[tr] = np.where(dt < -rise, 0.0, lc)
    return base * factor


def template_flux(objects: Table, band: str) -> np.ndarray:
    """Flux of each object in a template coadd [nJy]: static and mean fluxes, 0 for transients."""
    base = _flux_column(objects, band)
    return np.where(np.asarray(objects["objectType"]) == "transient", 0.0, base)
