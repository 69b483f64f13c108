"""The deterministic core: engine, driver, soloist, schedule.  Time and randomness come in
as arguments; the same code renders offline and plays live.  Above model and music;
never reaches data, training or judge.
"""
