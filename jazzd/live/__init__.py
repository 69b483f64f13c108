"""The daemon's real-time shell: loop, clock, MIDI codec, ports, config, sd_notify.  Above
play; never reaches data, training or judge.
"""
