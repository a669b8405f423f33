# Example associationDriver.py override file (-C config/associationDriver.py).
config.association.associator.name = "runningList"        # or "multiMatch"
config.association.associator["runningList"].tolerance = 0.5   # arcsec
config.badFlags = ["pixelFlags_edge", "pixelFlags_nodataCenter", "centroid_flag"]
