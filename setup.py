"""The one compiled part of jazzd: the session memory's per-step arithmetic
(jazzd/model/_memory.c); everything else is in pyproject.toml.

-ffp-contract=off: no fused multiply-add, so its floats are numpy's, bit for bit (the
module refuses to build on a machine with FMA without it)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("jazzd.model._memory", ["jazzd/model/_memory.c"],
                             extra_compile_args=["-ffp-contract=off", "-DJAZZD_CONTRACT_OFF",
                                                 "-Wall", "-Wextra", "-Wno-missing-field-initializers"])])
