"""Quality assessment of dia_pipe outputs: metrics against simulation truth, figures and an HTML report.

- `lsst.dia.pipe.qa.metrics`: pure metric functions (residual noise ratio, completeness and its logistic fit,
  artifact rates and causes, flux bias, pulls, association purity/completeness) and their definitions.
- `lsst.dia.pipe.qa.matching`: sky matching within groups (visit/detector).
- `lsst.dia.pipe.qa.collect`: reading a rerun's catalogs and images from the butler.
- `lsst.dia.pipe.qa.evaluate`: all metrics of one rerun (`evaluate_run`).
- `lsst.dia.pipe.qa.figures`: small PNG figures; `lsst.dia.pipe.qa.report`: the static HTML page
  (`write_report`, used by ``bin/diaReport.py`` and the demo).
"""
