#!/usr/bin/env python
"""dia_pipe demo: simulate a small survey repo (if absent), run the three drivers, write a QA report.

Usage: diaDemo.py [REPO] [--cores N] [--rerun NAME] [--preset demo|dc2]
"""

import argparse
import sys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo", nargs="?", default="demo_repo", help="Repository (created if absent).")
    parser.add_argument("--cores", type=int, default=2, help="Worker processes (default 2).")
    parser.add_argument("--rerun", default="demo", help="Output rerun (default demo).")
    parser.add_argument("--preset", default="demo", help="Simulation preset for a new repo (default demo).")
    parser.add_argument("--no-report", action="store_true", help="Skip the QA report.")
    args = parser.parse_args()
    if args.cores < 1:
        parser.error("--cores must be >= 1")
    from lsst.dia.pipe.demo import run_demo

    summary = run_demo(args.repo, cores=args.cores, rerun=args.rerun, preset=args.preset,
                       report=not args.no_report)
    print(summary.format())
    return sum(summary.failed_steps.values())


if __name__ == "__main__":
    sys.exit(min(main(), 255))
