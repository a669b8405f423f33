# associationDriver.py override: MultiMatch association (all catalogs at once, ambiguous groups flagged).
config.association.associator.name = "multiMatch"
config.association.associator["multiMatch"].dropAmbiguous = False
