"""Corpus ingest: read solos in several formats into `Piece`s of bars.  Offline only.

Each format module (`seed`, `wjazzd`, `midi`) exposes `read(path) -> Piece` (or a list of
them) and raises `InputError` with one line naming the file and the problem.  Nothing
here imports music21 or tensorflow: ingest reads MIDI with mido and CSV with the
standard library, so it is fast and runs anywhere the daemon runs.
"""
