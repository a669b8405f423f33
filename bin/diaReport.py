#!/usr/bin/env python
"""Write a static HTML QA report of a dia_pipe rerun (summary, per-CCD quality, sky map, cutouts, light curves).

Usage: diaReport.py REPO --rerun R --out DIR [--top N] [--no-truth]
"""

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", metavar="REPO", help="butler repository root")
    parser.add_argument("--rerun", required=True, help="rerun to report on (collection rerun/R)")
    parser.add_argument("--out", required=True, metavar="DIR", help="output directory (index.html + PNGs)")
    parser.add_argument("--top", type=int, default=10, metavar="N",
                        help="most significant DIAObjects shown with cutouts and light curves (default 10)")
    parser.add_argument("--no-truth", action="store_true",
                        help="skip the comparison with simulation truth even when the repository has it")
    args = parser.parse_args()
    if args.top < 0:
        parser.error("--top must be >= 0")
    from lsst.daf.butler import MissingCollectionError

    from lsst.dia.pipe.qa.report import write_report

    try:
        index = write_report(args.repo, args.rerun, args.out, top=args.top, truth=not args.no_truth)
    except (MissingCollectionError, FileNotFoundError) as err:
        print(f"diaReport.py: error: {err}", file=sys.stderr)
        return 2
    print(f"QA report written to {index}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
