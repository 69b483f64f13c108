"""Corpora: reading solos (WJD, MIDI, the seed) into values, and the corpus file.  Offline;
above music.
"""
