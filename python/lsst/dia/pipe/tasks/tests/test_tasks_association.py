"""AssociationTask.run on hand-built catalogs straddling patch and tract boundaries."""

import numpy as np
import pytest
from astropy.table import Table
from lsst.pipe.base import NoWorkFound

from lsst.dia.pipe.ids import unpack_dia_object_id
from lsst.dia.pipe.skymap import RingsSkyMap, SkyMapDefinition
from lsst.dia.pipe.tasks.association import AssociationTask, AssociationTaskConfig

SKYMAP = RingsSkyMap(SkyMapDefinition(name="t", num_rings=120, patch_inner_nx=1000, patch_inner_ny=1000,
                                      patch_border=50))


def _catalogs(ra0, dec0, n_objects=40, n_epochs=6, spread_deg=0.01, seed=3):
    """Per-epoch DIASource tables of objects scattered around (ra0, dec0) with 0.05" position noise."""
    rng = np.random.default_rng(seed)
    ra = ra0 + rng.uniform(-spread_deg, spread_deg, n_objects) / np.cos(np.deg2rad(dec0))
    dec = dec0 + rng.uniform(-spread_deg, spread_deg, n_objects)
    tables = []
    for epoch in range(n_epochs):
        noise = rng.normal(0, 0.05 / 3600, (2, n_objects))
        n = n_objects
        tables.append(Table({
            "diaSourceId": np.arange(n, dtype=np.int64) + 1000 * epoch,
            "visit": np.full(n, epoch + 1), "detector": np.zeros(n, int),
            "midpointMjdTai": np.full(n, 60000.0 + epoch), "band": np.full(n, "r"),
            "ra": (ra + noise[0] / np.cos(np.deg2rad(dec0))) % 360.0, "dec": dec + noise[1],
            "psfFlux": rng.normal(1000, 50, n), "psfFluxErr": np.full(n, 50.0),
            "scienceFlux": rng.normal(5000, 50, n), "scienceFluxErr": np.full(n, 50.0),
            "pixelFlags_edge": np.zeros(n, bool), "truth": np.arange(n),
        }))
    return tables


def _run_all_owners(tables):
    task = AssociationTask(config=AssociationTaskConfig())
    all_ra = np.concatenate([t["ra"] for t in tables])
    all_dec = np.concatenate([t["dec"] for t in tables])
    owners = set(zip(*(a.tolist() for a in SKYMAP.owners(all_ra, all_dec))))
    return {(t, p): task.run(tables, SKYMAP, t, p) for t, p in owners}


@pytest.mark.parametrize("where", ["tract_corner", "ra_zero"])
def test_each_object_in_exactly_one_patch(where):
    if where == "tract_corner":
        tract = int(SKYMAP.find_tracts(56.0, -30.0))
        _, _, ra_lo, _, dec_lo, _ = SKYMAP.inner_bounds(tract)
        tables = _catalogs(ra_lo, dec_lo)
    else:
        tables = _catalogs(0.0, 0.3)
    results = _run_all_owners(tables)
    # a tract corner straddles patch and tract boundaries; RA=0 is mid-tract here (objects wrap 359.99 -> 0.01)
    assert len(results) >= (3 if where == "tract_corner" else 1)
    truth_to_objects = {}
    n_sources = 0
    for (tract, patch), result in results.items():
        tracts, patches, _ = unpack_dia_object_id(np.asarray(result.diaObjects["diaObjectId"]))
        assert np.all(tracts == tract) and np.all(patches == patch)
        for object_id, truths in _group(result.diaSources):
            assert len(set(truths)) == 1  # pure
            truth_to_objects.setdefault(truths[0], []).append(object_id)
        n_sources += len(result.diaSources)
    assert n_sources == sum(len(t) for t in tables)  # every source in exactly one patch
    assert all(len(v) == 1 for v in truth_to_objects.values())  # no duplicates across boundaries
    assert len(truth_to_objects) == len(tables[0])  # complete


def _group(sources):
    ids = np.asarray(sources["diaObjectId"])
    truth = np.asarray(sources["truth"])
    for object_id in np.unique(ids):
        yield object_id, truth[ids == object_id].tolist()


def test_flag_cut_and_no_work():
    tables = _catalogs(56.0, -30.0, n_objects=5, n_epochs=2)
    for t in tables:
        t["pixelFlags_edge"][:] = True
    tract, patch = (int(a[0]) for a in SKYMAP.owners(np.array([56.0]), np.array([-30.0])))
    with pytest.raises(NoWorkFound):
        AssociationTask(config=AssociationTaskConfig()).run(tables, SKYMAP, tract, patch)
    with pytest.raises(NoWorkFound):
        AssociationTask(config=AssociationTaskConfig()).run([], SKYMAP, tract, patch)


def test_multimatch_selected_by_config():
    tables = _catalogs(56.0, -30.0, n_objects=10, n_epochs=3, spread_deg=0.002)
    config = AssociationTaskConfig()
    config.association.associator.name = "multiMatch"
    tract, patch = (int(a[0]) for a in SKYMAP.owners(np.array([56.0]), np.array([-30.0])))
    result = AssociationTask(config=config).run(tables, SKYMAP, tract, patch)
    assert len(result.diaObjects) == len(np.unique(result.diaSources["truth"]))
