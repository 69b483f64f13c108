"""The model at run time: bundles, the numpy LSTM runtime, the trigram baseline, the
shipped model.  numpy only; above music.
"""
