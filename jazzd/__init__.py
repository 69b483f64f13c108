"""jazzd: a real-time MIDI jazz improviser driven by a small LSTM.

The package splits into a deterministic core (grammar, vocabulary, corpus,
runtime, engine) that never reads a clock, and a thin real-time shell (ports,
clock, daemon).  Nothing on the daemon's path imports TensorFlow or music21.
"""

__version__ = "0.1.0"
