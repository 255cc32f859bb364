"""Moved to :mod:`slimforge.io` (``save_model``, ``load_model``, ``BUILDERS``, ...); this name stays until the last importer moves."""

from slimforge.io._model import *  # noqa: F401,F403
from slimforge.io._model import BUILDERS, FORMAT, VERSION, ModelBuildError  # noqa: F401
