"""Music theory, pure Python: pitch spelling, chords, progressions, the value grammar, the
beat grid.  The bottom layer: imports nothing of jazzd but errors.
"""
