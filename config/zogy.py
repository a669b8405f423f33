# imageDifferenceDriver.py override: subtract with ZOGY (Zackay, Ofek & Gal-Yam 2016) instead of
# Alard-Lupton; detection then thresholds the ZOGY score image S_corr.
#   imageDifferenceDriver.py REPO --rerun zogy --id visit=1..9 -C config/zogy.py
config.subtraction.algorithm = "zogy"
