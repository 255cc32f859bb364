"""References to a user's own code: ``path/to/file.py:name`` and ``package.module:name``.

A user's model factory, search space or data set plugs in by reference. Importing user code is
explicit: it only ever happens for a reference the user typed (on the command line or in a config
they wrote) or that a saved model directory records because the user typed it when saving. Every
failure (no such file, a module that raises on import, a missing name) is one line that names the
reference and the fix.

>>> factory = import_reference("models/tiny.py:TinyCNN", what="model")   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any

from slimforge.errors import InvalidInputError, SlimforgeError

__all__ = ["ReferenceError", "absolute_reference", "import_reference", "is_reference"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_FILE_REF = re.compile(rf"^(?P<file>.+\.py):(?P<attr>{_NAME}(?:\.{_NAME})*)$")
_MODULE_REF = re.compile(rf"^(?P<module>{_NAME}(?:\.{_NAME})*):(?P<attr>{_NAME}(?:\.{_NAME})*)$")


class ReferenceError(SlimforgeError):
    """A reference to user code that cannot be imported or does not name what it should."""


def is_reference(text: object) -> bool:
    """Whether ``text`` has the form ``file.py:name`` or ``package.module:name``."""
    return isinstance(text, str) and bool(_FILE_REF.match(text.strip()) or _MODULE_REF.match(text.strip()))


def absolute_reference(ref: str) -> str:
    """``ref`` with a file part made absolute (what a saved model records, so it reloads from anywhere)."""
    match = _FILE_REF.match(str(ref).strip())
    if not match:
        return str(ref).strip()
    return f"{Path(match['file']).expanduser().resolve()}:{match['attr']}"


def import_reference(ref: str, *, what: str = "object") -> Any:
    """The object ``ref`` names, importing its file or module.

    Args:
        ref: ``path/to/file.py:name`` (a file, imported under a private module name) or
            ``package.module:name`` (an importable module); ``name`` may be dotted (``Class.create``).
        what: what the reference should name, for messages ("model factory", "search space").
    """
    text = str(ref).strip()
    file_match, module_match = _FILE_REF.match(text), _MODULE_REF.match(text)
    if file_match:
        module = _import_file(Path(file_match["file"]).expanduser(), text, what)
        attr = file_match["attr"]
    elif module_match:
        module = _import_module(module_match["module"], text, what)
        attr = module_match["attr"]
    else:
        raise InvalidInputError(
            f"{what} reference {text!r} is not path/to/file.py:name or package.module:name"
        )
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            known = sorted(n for n in dir(module) if not n.startswith("_"))[:12]
            where = Path(module.__file__).name if file_match and getattr(module, "__file__", None) else module.__name__
            raise ReferenceError(
                f"{what} reference {text!r}: {where} has no {attr!r} "
                f"(it defines: {', '.join(known) or 'nothing public'})"
            )
        obj = getattr(obj, part)
    return obj


def _import_file(path: Path, ref: str, what: str) -> Any:
    if not path.is_file():
        raise ReferenceError(f"{what} reference {ref!r}: no such file {str(path)!r}")
    resolved = path.resolve()
    # One private module per file (by its absolute path), so two files of one name do not collide
    # and a second import of the same file reuses the first.
    name = f"slimforge_user_{resolved.stem}_{hashlib.sha256(str(resolved).encode()).hexdigest()[:10]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ReferenceError(f"{what} reference {ref!r}: {resolved} cannot be imported as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - user code: any failure is reported in one line
        sys.modules.pop(name, None)
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        raise ReferenceError(f"{what} reference {ref!r}: importing {resolved.name} raised {_one_line(exc)}") from None
    return module


def _import_module(module: str, ref: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise ReferenceError(
                f"{what} reference {ref!r}: no module named {exc.name!r} (install it, or give path/to/file.py:name)"
            ) from None
        raise ReferenceError(f"{what} reference {ref!r}: importing {module} raised {_one_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - user code
        raise ReferenceError(f"{what} reference {ref!r}: importing {module} raised {_one_line(exc)}") from None


def _one_line(exc: BaseException) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
