# Example imageDifferenceDriver.py override file (-C config/imageDifferenceDriver.py).
# Every field is documented: imageDifferenceDriver.py REPO --rerun R --show config
config.subtraction.algorithm = "al"            # Alard-Lupton (default); "zogy" for ZOGY
config.subtraction.mode = "convolveTemplate"   # or "convolveScience", "auto"
config.subtraction.doDecorrelation = True      # DMTN-021 decorrelation afterburner
config.detection.thresholdValue = 5.0          # sigma, both polarities
config.doWriteMatchedExp = False               # write deepDiff_matchedExp
config.ignoreCcdList = []                      # detectors to skip
config.subtraction.doSubtractBackground = True # fit science - template background (order 2), remove it first
config.subtraction.interpolateMaskPlanes = ["BAD"]  # bad columns: interpolated along rows, not zero-filled
config.detection.doRemoveTruncatedPeaks = True # drop wings of sources that lie inside the masked border
