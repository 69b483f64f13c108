"""Is it jazz?  jazzd report: metrics, MGEval distances, the copy check, plots.  Offline;
above play, training and data.
"""
