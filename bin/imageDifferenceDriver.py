#!/usr/bin/env python
"""Gen2-style driver: `imageDifferenceDriver.py REPO --rerun OUT --id ... [-C cfg.py] --cores N` (see --help)."""

if __name__ == "__main__":  # guard needed: worker processes import this module
    from lsst.dia.pipe.cli.driver import main
    from lsst.dia.pipe.drivers import IMAGE_DIFFERENCE

    main(IMAGE_DIFFERENCE)
