"""The trainer: the only TensorFlow users (imported lazily).  Offline; above data and
model.
"""
