"""Tests of the diffim configs: defaults, nesting and overrides as the task uses them, validation errors."""

from __future__ import annotations

import lsst.pex.config as pexConfig
import pytest

from lsst.dia.pipe.diffim import AlardLuptonConfig, SubtractionConfig, WarpConfig, ZogyConfig, subtract_images
from lsst.dia.pipe.diffim.synthetic import star_field_pair


class _TaskLikeConfig(pexConfig.Config):
    warp = pexConfig.ConfigField(dtype=WarpConfig, doc="warping")
    subtraction = pexConfig.ConfigField(dtype=SubtractionConfig, doc="subtraction")


def test_defaults_follow_ip_diffim():
    config = SubtractionConfig()
    config.validate()
    assert config.algorithm == "al" and config.mode == "convolveTemplate" and config.doDecorrelation
    al = config.alardLupton
    assert list(al.basisDegrees) == [4, 2, 2] and (al.minKernelSize, al.maxKernelSize) == (21, 35)
    assert al.spatialKernelOrder == 2 and al.spatialBackgroundOrder == 1 and al.maxSpatialIterations == 3
    assert (al.kernelSources.minSnr, al.kernelSources.maxSnr) == (10.0, 500.0)
    assert WarpConfig().minCoverage == 0.1


def test_override_file_switches_to_zogy():
    config = _TaskLikeConfig()
    config.loadFromString('config.subtraction.algorithm = "zogy"\nconfig.subtraction.zogy.cellSize = 512\n'
                          'config.warp.minCoverage = 0.3\n')
    config.validate()
    assert config.subtraction.algorithm == "zogy" and config.subtraction.zogy.cellSize == 512
    pair = star_field_pair((256, 256), n_stars=60, seed=2)
    assert subtract_images(pair.science, pair.template, config.subtraction).metadata["algorithm"] == "zogy"


@pytest.mark.parametrize(
    "field,value",
    [("algorithm", "hotpants"), ("mode", "convolveBoth"), ("fftWorkers", 0), ("psfGridSize", 0)],
)
def test_bad_values_rejected_on_assignment(field, value):
    config = SubtractionConfig()
    with pytest.raises(pexConfig.FieldValidationError):
        setattr(config, field, value)


def test_bad_mask_plane_name_rejected():
    config = SubtractionConfig()
    with pytest.raises(pexConfig.FieldValidationError):
        config.fillMaskPlanes = ["BAD", "NOT_A_PLANE"]
        config.validate()


@pytest.mark.parametrize(
    "settings,message",
    [
        ({"minKernelSize": 20}, "must be odd"),
        ({"minKernelSize": 35, "maxKernelSize": 21}, "maxKernelSize"),
        ({"basisSigmaRatios": [0.5, 1.0]}, "one per Gaussian"),
        ({"basisSigmaRatios": [1.0, 0.5, 2.0]}, "increase strictly"),
    ],
)
def test_alard_lupton_validate(settings, message):
    config = AlardLuptonConfig()
    for name, value in settings.items():
        setattr(config, name, value)
    with pytest.raises(pexConfig.FieldValidationError, match=message):
        config.validate()


def test_nested_validation_reaches_subtract_images():
    config = SubtractionConfig()
    config.alardLupton.kernelSources.minSnr = 600.0
    with pytest.raises(pexConfig.FieldValidationError, match="maxSnr"):
        config.validate()
    pair = star_field_pair((128, 128), n_stars=10, seed=1)
    with pytest.raises(pexConfig.FieldValidationError):
        subtract_images(pair.science, pair.template, config)
    zogy = ZogyConfig()
    zogy.cellSize = 128
    zogy.cellOverlap = 64
    with pytest.raises(pexConfig.FieldValidationError, match="cellOverlap"):
        zogy.validate()
    with pytest.raises(pexConfig.FieldValidationError):
        zogy.cellSize = 50
