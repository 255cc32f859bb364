"""The registry of data loaders, keyed by the scheme of a data spec (``npz:FILE`` -> ``npz``)."""

from __future__ import annotations

from slimforge.registry import Registry

__all__ = ["LOADERS"]

# Lazy "module:attr" entries: listing the schemes imports neither Pillow nor scikit-learn.
LOADERS: Registry = Registry("data scheme")
for _name, _ref in [
    ("cifar10", "slimforge.data._cifar:Cifar10Loader"),
    ("cifar100", "slimforge.data._cifar:Cifar100Loader"),
    ("digits", "slimforge.data._digits:DigitsLoader"),
    ("folder", "slimforge.data._folder:FolderLoader"),
    ("npz", "slimforge.data._npz:NpzLoader"),
    ("csv", "slimforge.data._csv:CsvLoader"),
    ("python", "slimforge.data._python:PythonLoader"),
]:
    LOADERS.register(_name, _ref)
