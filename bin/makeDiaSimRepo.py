#!/usr/bin/env python
"""Create a butler repository holding a simulated survey (calexps, template coadds, truth).

Usage: makeDiaSimRepo.py REPO [--preset demo|dc2] [--seed N] [--processes N] [--visits-per-band N]
"""

import argparse
import logging
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", help="Directory of the new repository (must not exist).")
    parser.add_argument("--preset", default="demo", help="Survey preset: demo (default) or dc2.")
    parser.add_argument("--seed", type=int, default=1, help="Random seed (default 1).")
    parser.add_argument("-j", "--processes", "--cores", type=int, default=None,
                        help="Rendering processes (default: all cores).")
    parser.add_argument("--visits-per-band", type=int, default=None, help="Override the preset's visits per band.")
    parser.add_argument("--bands", default=None, help="Override the preset's bands, e.g. g^r.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from lsst.dia.pipe.repo.create import RepoExistsError
    from lsst.dia.pipe.repo.simulate import UnknownPresetError, make_sim_repo

    overrides = {}
    if args.visits_per_band is not None:
        if args.visits_per_band < 1:
            parser.error("--visits-per-band must be >= 1")
        overrides["visits_per_band"] = args.visits_per_band
    if args.bands:
        overrides["bands"] = tuple(args.bands.split("^"))
    if args.processes is not None and args.processes < 1:
        parser.error("--processes must be >= 1")
    try:
        summary = make_sim_repo(args.repo, args.preset, seed=args.seed, workers=args.processes,
                                progress=print, **overrides)
    except (UnknownPresetError, RepoExistsError, PermissionError) as err:
        print(f"makeDiaSimRepo.py: error: {err}", file=sys.stderr)
        return 2
    print(f"Simulated {summary.n_visits} visits ({summary.n_calexps} calexps), {summary.n_coadds} template "
          f"patches over tracts {summary.tracts}, {summary.n_objects} objects in {summary.seconds:.1f} s "
          f"-> {summary.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
