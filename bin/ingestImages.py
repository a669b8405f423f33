#!/usr/bin/env python
"""Ingest survey FITS images into a dia_pipe repository (see --help); exit status = files not ingested."""

import sys

if __name__ == "__main__":
    from lsst.dia.pipe.ingest.cli import main

    sys.exit(main())
