"""``folder:DIR``: one sub-folder of PNG/JPEG images per class, optionally under train/, val/, test/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from slimforge.data._base import DatasetLoader, SourceSplits
from slimforge.data._dataset import ArrayDataset
from slimforge.data._errors import DataError

__all__ = ["FolderLoader"]

_EXTENSIONS = (".png", ".jpg", ".jpeg")
_SPLITS = ("train", "val", "test")
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
# What Pillow raises for files it cannot identify or decode.
_UNREADABLE = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def _subfolders(path: Path) -> list[Path]:
    return sorted(
        (p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name
    )


def _images_in(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in _EXTENSIONS), key=lambda p: p.name
    )


class FolderLoader(DatasetLoader):
    """Reads ``DIR/<class>/<image>``, or ``DIR/train/<class>/...`` with optional ``val/`` and ``test/``.

    Classes are the sub-folder names sorted (those of ``train/`` in the split layout); files other
    than .png/.jpg/.jpeg are ignored. Images must all have one size. They load as grey (1 channel)
    when every image is greyscale, else as RGB (alpha dropped).
    """

    def _load(self, path: Path | None) -> SourceSplits:
        assert path is not None
        top = _subfolders(path)
        split_layout = (
            bool(top) and "train" in {p.name for p in top} and {p.name for p in top} <= set(_SPLITS)
        )
        roots = {p.name: p for p in top} if split_layout else {"train": path}
        class_names = tuple(p.name for p in _subfolders(roots["train"]))
        if not class_names:
            raise DataError(
                f"{roots['train']}: no class sub-folders; expected one folder of PNG/JPEG images per class"
            )
        files: dict[str, list[tuple[Path, int]]] = {}
        for split, root in roots.items():
            files[split] = self._list_files(root, class_names)
        everything = [f for split in files.values() for f, _ in split]
        grey = self._check_headers(everything)
        parts = {split: self._read(entries, class_names, grey) for split, entries in files.items()}
        return SourceSplits(train=parts["train"], val=parts.get("val"), test=parts.get("test"))

    @staticmethod
    def _list_files(root: Path, class_names: tuple[str, ...]) -> list[tuple[Path, int]]:
        folders = _subfolders(root)
        unknown = [p.name for p in folders if p.name not in class_names]
        if unknown:
            raise DataError(
                f"{root}: class folder(s) {', '.join(unknown)} are not among the training classes"
            )
        entries: list[tuple[Path, int]] = []
        for folder in folders:
            images = _images_in(folder)
            if not images:
                raise DataError(f"{folder}: no PNG/JPEG images in this class folder")
            entries.extend((f, class_names.index(folder.name)) for f in images)
        if not entries:
            raise DataError(f"{root}: no class sub-folders with PNG/JPEG images")
        return entries

    @staticmethod
    def _check_headers(files: list[Path]) -> bool:
        """Check that every image opens and has the first one's size (headers only).

        Returns whether every image is greyscale.
        """
        first_size: tuple[int, int] | None = None
        all_grey = True
        for file in files:
            try:
                with Image.open(file) as img:
                    size, mode = img.size, img.mode
            except _UNREADABLE as exc:
                raise DataError(f"{file}: not a readable image ({exc})") from None
            if first_size is None:
                first_size = size
            elif size != first_size:
                raise DataError(
                    f"{file}: {size[0]}x{size[1]} pixels but {files[0]} is {first_size[0]}x{first_size[1]}; "
                    f"resize all images to one size first"
                )
            all_grey = all_grey and mode in _GREY_MODES
        return all_grey

    @staticmethod
    def _read(entries: list[tuple[Path, int]], class_names: tuple[str, ...], grey: bool) -> ArrayDataset:
        mode = "L" if grey else "RGB"
        arrays = []
        for file, _ in entries:
            try:
                with Image.open(file) as img:
                    pixels = np.asarray(img.convert(mode), dtype=np.uint8)
            except _UNREADABLE as exc:  # truncated data shows only when decoding
                raise DataError(f"{file}: not a readable image ({exc})") from None
            arrays.append(pixels[None] if grey else pixels.transpose(2, 0, 1))
        labels = np.array([label for _, label in entries], dtype=np.int64)
        return ArrayDataset(np.stack(arrays), labels, class_names)
