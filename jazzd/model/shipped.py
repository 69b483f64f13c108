"""Finding the shipped model (jazzd-wjd), wherever jazzd was installed from.  Stdlib only.

The weights live in the repository's `models/`; the wheel carries them as the data-only
package `jazzd.models` (pyproject.toml maps it onto `models/`), so a plain `pip install`
finds them without the checkout.  An editable install or a checkout on `sys.path` finds
them in `models/` beside the package.
"""

from __future__ import annotations

import json
import os
from importlib import resources
from pathlib import Path

from jazzd.errors import InputError

DEFAULT_MODEL_NAME = "jazzd-wjd.npz"
DEFAULT_FEEL_NAME = "jazzd-wjd.feel.json"  # the feel model (jazzd.model.feel)
MODEL_ENV = "JAZZD_MODEL"


def _installed(name: str = DEFAULT_MODEL_NAME) -> Path | None:
    """The file `name` inside the installed package, if this install carries it."""
    try:
        root = resources.files("jazzd.models")
    except ModuleNotFoundError:
        return None
    path = Path(str(root.joinpath(name)))
    return path if path.is_file() else None


def default_model() -> Path:
    """The bundled model: $JAZZD_MODEL, else the one installed with the package, else
    models/ of this checkout (the path returned even when missing, so the error names it)."""
    if os.environ.get(MODEL_ENV):
        return Path(os.environ[MODEL_ENV])
    checkout = Path(__file__).resolve().parents[2] / "models" / DEFAULT_MODEL_NAME
    if checkout.is_file():
        return checkout
    return _installed() or checkout


ARTICULATION_SUFFIX = ".articulation.json"


def articulation_path(model: Path) -> Path:
    """The articulation table shipped beside a bundle (`jazzd-wjd.npz` ->
    `jazzd-wjd.articulation.json`; `jazzd articulation` writes it there)."""
    model = Path(model)
    return model.with_name(model.stem + ARTICULATION_SUFFIX)


def default_articulation() -> Path:
    """The bundled model's articulation table (beside `default_model()`)."""
    return articulation_path(default_model())


def default_feel() -> Path:
    """The shipped feel model: the one installed with the package, else models/ of this
    checkout (the path returned even when missing)."""
    checkout = Path(__file__).resolve().parents[2] / "models" / DEFAULT_FEEL_NAME
    if checkout.is_file():
        return checkout
    return _installed(DEFAULT_FEEL_NAME) or checkout


def read_json(path, what: str, command: str) -> dict:
    """A model's side file (the feel model, the articulation table): its JSON, or an
    InputError naming the file, what is wrong, and `command`, which writes it again."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"{path}: cannot read the {what} ({err.strerror}); check the path") from err
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path}: not JSON ({err}); write it again with `{command}`") from err
