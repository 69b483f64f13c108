"""A real install plays: the wheel carries the shipped model, and the systemd README's
install steps, run as written into a temporary root, give a wrapper that plays and a
unit that `systemd-analyze verify` accepts.

Nothing here may pass by way of the checkout: the package is built from a copy of the
files a clone has, installed into a fresh virtual environment (its dependencies from the
package index), and run from a folder outside the checkout with no PYTHONPATH and no
JAZZD_MODEL; `jazzd.__file__` and the model it finds must lie inside that environment.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import mido
import pytest

from .conftest import REPO
from .test_systemd_units import WRAPPER, analyze, exec_start, needs_analyze

pytestmark = pytest.mark.slow
README = REPO / "systemd" / "README.md"
SYSTEM_UNIT = REPO / "systemd" / "jazzd.service"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that could point Python at the checkout."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "JAZZD_MODEL")}
    return {**env, "PYTHONNOUSERSITE": "1", **extra}


def run(cmd, cwd: Path, timeout: float = 600, **extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                            env=clean_env(**extra), timeout=timeout)
    assert result.returncode == 0, f"{cmd}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """The files a fresh clone has (tracked, plus new files not ignored), copied out of
    the checkout: no build/, egg-info or virtual environment of this one leaks in."""
    dest = tmp_path_factory.mktemp("clone") / "jazzd"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout
    for name in sorted({n for n in listed.decode().split("\0") if n}):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    return dest


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, source], cwd=dist)
    [built] = dist.glob("jazzd-*.whl")
    return built


def assert_plays(jazzd: Path, python: Path, prefix: Path, work: Path) -> None:
    """`jazzd generate` and `jazzd eval` from `work`, with the package and the model found
    inside `prefix` (the environment), never in the checkout."""
    assert not work.resolve().is_relative_to(REPO)
    where = run([python, "-c", "import json, jazzd, jazzd.model.shipped as s; "
                 "print(json.dumps([jazzd.__file__, str(s.default_model())]))"], cwd=work)
    package, model = (Path(p).resolve() for p in json.loads(where.stdout))
    assert package.is_relative_to(prefix.resolve()), package
    assert model.is_relative_to(prefix.resolve()) and model.name == "jazzd-wjd.npz", model
    assert model.is_file(), model
    assert (model.parent / "README.md").is_file()  # the model card travels with it

    out = run([jazzd, "generate", "-o", "x.mid", "--bars", "8", "--seed", "3"], cwd=work)
    written = int(re.search(r": (\d+) notes over 8 bars", out.stdout).group(1))
    ons = [m for m in mido.MidiFile(work / "x.mid")
           if m.type == "note_on" and m.velocity > 0 and m.channel == 0]  # the solo's channel
    assert written > 8 and len(ons) == written, (written, len(ons))

    scored = json.loads(run([jazzd, "eval", "x.mid", "--json"], cwd=work).stdout)
    assert scored["pieces"] == 1 and scored["tokens"] >= written
    assert scored["baseline"] is not None  # the trigram beside the installed bundle


def test_the_wheel_carries_its_model_and_plays_from_any_folder(wheel, tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    run([venv / "bin" / "pip", "install", "-q", wheel], cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    assert_plays(venv / "bin" / "jazzd", venv / "bin" / "python", venv, work)


# --- systemd/README.md, word for word ---------------------------------------------------

MOVED = re.compile(r"(?<![\w./$-])/(opt|usr/local|etc)/")  # absolute paths the install writes
NOT_HERE = ("systemctl ",)  # systemd is not PID 1 here: checked with verify instead
EDITORS = ("sudoedit ",)


def install_blocks() -> list[str]:
    """The shell blocks of the README's "System service" section before "Everyday use"."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## System service", 1)[1].split("Everyday use", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.S)
    assert len(blocks) == 2, "the README's install steps changed shape: update this test"
    return blocks


def as_script(blocks: list[str], root: Path, checkout: Path, config: str) -> tuple[str, list[str]]:
    """The README's lines as one script into `root`, and the lines left out (systemctl)."""
    lines, skipped = [], []
    for line in "".join(blocks).splitlines():
        line = re.sub(r"^sudo ", "", line).replace("/path/to/jazzd", str(checkout))
        line = MOVED.sub(lambda m: f"{root}/{m.group(1)}/", line)
        if line.startswith(NOT_HERE):
            skipped.append(line)
        elif line.startswith(EDITORS):
            target = line.split()[1]
            lines.append(f"printf '%s' {shlex.quote(config)} > {target}")
        else:
            lines.append(line)
    return "set -eu\n" + "\n".join(lines) + "\n", skipped


@needs_analyze
def test_the_systemd_readme_installs_a_service_that_plays(source, tmp_path):
    root = tmp_path / "root"
    for folder in ("usr/local/bin", "etc/systemd/system"):  # there on any system
        (root / folder).mkdir(parents=True)
    script, skipped = as_script(install_blocks(), root, source, '[engine]\nmode = "duet"\n')
    assert skipped == ["systemctl daemon-reload", "systemctl enable --now jazzd"]
    # As the README says: from the checkout (the unit file is named relative to it).
    run(["sh", "-c", script], cwd=source)

    unit = root / "etc" / "systemd" / "system" / "jazzd.service"
    assert unit.read_bytes() == SYSTEM_UNIT.read_bytes()
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert (root / "etc" / "jazzd" / "jazzd.toml").read_text() == '[engine]\nmode = "duet"\n'
    wrapper = root / WRAPPER.lstrip("/")
    assert os.access(wrapper, os.X_OK) and str(root / "opt" / "jazzd" / "venv") in wrapper.read_text()

    work = tmp_path / "work"
    work.mkdir()
    venv = root / "opt" / "jazzd" / "venv"
    assert_plays(wrapper, venv / "bin" / "python", venv, work)

    # The installed unit, with the one change a moved root needs: a drop-in (as
    # `systemctl edit` writes) pointing ExecStart= at the wrapper under the root.
    # verify checks that the command exists and is executable, and the unit's syntax.
    argv = exec_start(unit)
    assert argv == [WRAPPER, "run"]
    dropin = unit.with_name("jazzd.service.d")
    dropin.mkdir()
    (dropin / "root.conf").write_text(f"[Service]\nExecStart=\nExecStart={wrapper} run\n")
    result = analyze("verify", str(unit), user=False, tmp_path=tmp_path)
    assert (result.returncode, result.stderr.strip(), result.stdout.strip()) == (0, "", "")
