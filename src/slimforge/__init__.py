"""slimforge: design small, fast neural networks for a dataset and a device."""

from __future__ import annotations

from slimforge.errors import SlimforgeError

__all__ = ["SlimforgeError", "__version__"]
__version__ = "0.1.0"
