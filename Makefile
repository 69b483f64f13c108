# The README's two commands are `make run` and `make test`; each builds what it needs
# from nothing (system packages on Debian/Ubuntu, then a virtual environment in .venv).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Debian/Ubuntu packages the tests and the daemon use, as "command-that-proves-it:package".
# jackd2: a JACK server for the real-port tests; systemd and procps: the unit-file checks;
# tmux: the real terminal `jazzd monitor` is tested in.
APT_NEEDS := jackd:jackd2 jack_wait:jackd2 systemd-analyze:systemd kill:procps tmux:tmux

.PHONY: run demo test check deps build-deps jack-deps venv lint bench soak clean

# With no MIDI system running (no ALSA sequencer, no JACK server), jazzd starts its own
# JACK server on the dummy driver (--start-jack); jack-deps installs jackd2 for it first.
run: $(BIN)/.installed-run
	@$(MAKE) --no-print-directory jack-deps NEED_JACK=$$([ -e /dev/snd/seq ] && echo no || echo yes)
	$(BIN)/jazzd run --start-jack $(ARGS)

# The live path in half a minute, no keyboard: a built-in player calls, jazzd answers on
# JACK (its own server if none runs); writes demo/demo.mid and demo/demo.png.
demo: $(BIN)/.installed-demo
	@$(MAKE) --no-print-directory jack-deps NEED_JACK=yes
	$(BIN)/jazzd demo -o $(or $(DIR),demo) $(ARGS)

# Everything, in two runs: first all but the real-port tests, on both cores (pytest-xdist);
# then the JACK tests alone, since they keep time on real ports and a busy second core
# makes JACK's 1.3 ms periods overrun (../shared/notes/realtime.md).
test: deps venv
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 -m "not jack" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -m jack $(PYTEST_ARGS)

# The pure core for everyday work: no JACK, no TensorFlow, nothing slow; under a minute.
check: venv
	$(BIN)/ruff check jazzd tests bench
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -n 2 -m "not jack and not keras and not slow" $(PYTEST_ARGS)

# What building jazzd needs: venv, and a C compiler with Python's headers for its one
# compiled part (jazzd/model/_memory.c: the session memory's per-step arithmetic).
build-deps:
	@missing=""; \
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="python3-venv"; \
	cc=$$($(PYTHON) -c 'import sysconfig; print((sysconfig.get_config_var("CC") or "cc").split()[0])'); \
	command -v $$cc >/dev/null 2>&1 || missing="$$missing gcc libc6-dev"; \
	$(PYTHON) -c 'import os, sys, sysconfig; sys.exit(not os.path.isfile(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
	  || missing="$$missing python3-dev"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

deps: build-deps
	@missing=""; \
	for need in $(APT_NEEDS); do \
	  command -v $${need%%:*} >/dev/null 2>&1 || missing="$$missing $${need##*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# jackd2 only where it is needed (NEED_JACK=yes) and missing, and no JACK server runs.
jack-deps:
	@if [ "$(NEED_JACK)" = yes ] && ! command -v jackd >/dev/null 2>&1 && \
	    [ ! -S /dev/shm/jack_$${JACK_DEFAULT_SERVER:-default}_$$(id -u)_0 ]; then \
	  echo "no MIDI system here: installing jackd2 for jazzd's own JACK server"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends jackd2; \
	fi

venv: $(BIN)/.installed

# The daemon needs only numpy, mido and python-rtmidi; the tests also take the train
# extra (TensorFlow, for the Keras parity and trainer tests), the link extra (Ableton
# Link, for the --clock link tests with a second peer on this machine) and the monitor
# extra (Rich, for `jazzd monitor`).
$(BIN)/.installed-run: pyproject.toml setup.py jazzd/model/_memory.c | build-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	touch $@

# The demo adds matplotlib for its piano roll.
$(BIN)/.installed-demo: $(BIN)/.installed-run
	$(BIN)/python -m pip install -q -e '.[demo]'
	touch $@

$(BIN)/.installed: pyproject.toml setup.py jazzd/model/_memory.c | deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[train,test,link,monitor]'
	touch $@ $(BIN)/.installed-run $(BIN)/.installed-demo

lint: venv
	$(BIN)/ruff check jazzd tests bench
	$(BIN)/lint-imports

# Every benchmark (ingest, step, engine, timing), one table with the machine: bench/RESULTS.md.
bench: venv
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

# The long run (issue 6): 30 minutes of duet on a private JACK server; MINUTES=N to change;
# issue 16's: make soak MINUTES=60 SOAK_ARGS="--reload-every 600" (SOAK_ARGS="--trace": what grows).
soak: venv
	$(BIN)/python bench/soak.py --minutes $(or $(MINUTES),30) $(SOAK_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache jazzd/model/_memory.*.so
