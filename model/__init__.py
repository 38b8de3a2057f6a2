"""The churn model that training makes and every scorer uses.

* ``model.artifact``: ``ChurnModel``, the trained model as data and files (booster,
  calibrator, blend, frozen feature settings, risk bands), and table features.
* ``model.linear``: the blend's logistic regression as plain numbers (``LinearTerm``,
  ``Blend``); ``model.attributions``: per-feature shares of the raw score.
* ``model.predictor``: ``Predictor``, features in; probabilities, bands and reasons out,
  for batch files, the risk list, the service and Dask partitions alike.
* ``model.loading``: which model a command uses and how it is opened from MLflow.

It stands on ``churnml`` and ``features``; ``training`` and ``serving`` stand on it.
"""
