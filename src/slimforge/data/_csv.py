"""``csv:FILE``: image paths and labels in a CSV (``path,label[,split]``), paths relative to the file."""

from __future__ import annotations

import csv
from pathlib import Path

from slimforge.data._base import DatasetLoader, SourceSplits
from slimforge.data._errors import DataError
from slimforge.data._folder import FolderLoader

__all__ = ["CsvLoader"]

_SPLITS = ("train", "val", "test")
#: rows read at most (a CSV is a list of files: beyond this it is not a data set slimforge holds in memory).
MAX_ROWS = 1_000_000


class CsvLoader(DatasetLoader):
    """Reads a header row with ``path`` and ``label`` (and optionally ``split``: train, val or test).

    Labels are class names (any text; classes are the sorted distinct names) or, when every label
    is an integer, class indices. Paths are PNG/JPEG files, relative to the CSV's folder unless
    absolute; all images must have one size.
    """

    path_kind = "file"

    def _load(self, path: Path | None) -> SourceSplits:
        assert path is not None
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                reader = csv.DictReader(fh)
                missing = {"path", "label"} - set(reader.fieldnames or ())
                if missing:
                    raise DataError(f"{path}: missing column(s) {', '.join(sorted(missing))}; write a header "
                                    "row path,label[,split]")
                rows = []
                for line, row in enumerate(reader, start=2):
                    if len(rows) >= MAX_ROWS:
                        raise DataError(f"{path}: more than {MAX_ROWS:,} rows; split the data set")
                    split = (row.get("split") or "train").strip().lower()
                    if split not in _SPLITS:
                        raise DataError(f"{path}, line {line}: split {split!r} must be train, val or test")
                    if not (row.get("path") or "").strip() or (row.get("label") or "").strip() == "":
                        raise DataError(f"{path}, line {line}: empty path or label")
                    rows.append((row["path"].strip(), row["label"].strip(), split))
        except UnicodeDecodeError as exc:
            raise DataError(f"{path}: not UTF-8 text (byte {exc.start}); save the CSV as UTF-8") from None
        if not any(split == "train" for _, _, split in rows):
            raise DataError(f"{path}: no training rows (split train, or no split column)")
        labels = [label for _, label, _ in rows]
        if all(label.lstrip("-").isdigit() for label in labels):
            indices = [int(label) for label in labels]
            if min(indices) < 0:
                raise DataError(f"{path}: label {min(indices)} is negative; labels are class indices from 0")
            class_names = tuple(str(i) for i in range(max(indices) + 1))
        else:
            class_names = tuple(sorted(set(labels)))
            indices = [class_names.index(label) for label in labels]
        base = path.parent
        files = {s: [] for s in _SPLITS}
        for (file, _, split), index in zip(rows, indices):
            image = Path(file).expanduser()
            image = image if image.is_absolute() else base / image
            if not image.is_file():
                raise DataError(f"{path}: image {file!r} does not exist (paths are relative to the CSV's folder)")
            files[split].append((image, index))
        everything = [f for split in files.values() for f, _ in split]
        grey = FolderLoader._check_headers(everything)
        parts = {s: FolderLoader._read(entries, class_names, grey) for s, entries in files.items() if entries}
        return SourceSplits(train=parts["train"], val=parts.get("val"), test=parts.get("test"))
