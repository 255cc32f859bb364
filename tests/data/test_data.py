"""Tests of slimforge.data on small real inputs: the shared CIFAR-10 subset, scikit-learn digits, and tiny
CIFAR binary/python directories, PNG/JPEG folders and .npz files written in the official formats."""

from __future__ import annotations

import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from slimforge.data import (
    LOADERS,
    ArrayDataset,
    DataError,
    DatasetInfo,
    DataSpec,
    Normalization,
    calibration_batch,
    crop_flip,
    list_schemes,
    load_dataset,
    make_loader,
    parse_data_spec,
    sample_batch,
    split_indices,
)
from slimforge.errors import SlimforgeError

SUBSET = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "cifar10_subset.npz"
needs_subset = pytest.mark.skipif(not SUBSET.is_file(), reason=f"reference data {SUBSET} is absent")


def _one_line_error(excinfo: pytest.ExceptionInfo, *fragments: str) -> None:
    message = str(excinfo.value)
    assert isinstance(excinfo.value, SlimforgeError)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


def _images(rng: np.random.Generator, n: int, c: int = 3, h: int = 32, w: int = 32) -> np.ndarray:
    return rng.integers(0, 256, size=(n, c, h, w), dtype=np.uint8)


# --- official CIFAR formats ------------------------------------------------------------------------


def _write_cifar_binary(path: Path, labels: list[np.ndarray], images: np.ndarray) -> None:
    """Records of label byte(s) then 3072 pixel bytes (R plane, G plane, B plane, row-major)."""
    head = np.stack(labels, axis=1).astype(np.uint8)
    np.concatenate([head, images.reshape(len(images), -1)], axis=1).tofile(path)


def _py2_pickle(obj: object) -> bytes:
    """Pickle ``obj`` as Python 2's cPickle (protocol 2) wrote the official CIFAR python batches."""
    out = bytearray(b"\x80\x02")

    def emit(v: object) -> None:
        if isinstance(v, dict):
            out.extend(b"}(")
            for key, value in v.items():
                emit(key)
                emit(value)
            out.extend(b"u")
        elif isinstance(v, list):
            out.extend(b"](")
            for item in v:
                emit(item)
            out.extend(b"e")
        elif isinstance(v, tuple):
            out.extend(b"(")
            for item in v:
                emit(item)
            out.extend(b"t")
        elif isinstance(v, bytes):  # a Python 2 str
            out.extend(b"U" + bytes([len(v)]) + v if len(v) < 256 else b"T" + struct.pack("<i", len(v)) + v)
        elif v is None:
            out.extend(b"N")
        elif v is False:
            out.extend(b"\x89")
        elif isinstance(v, int):
            out.extend(b"K" + bytes([v]) if 0 <= v < 256 else b"J" + struct.pack("<i", v))
        elif isinstance(v, np.ndarray):
            assert v.dtype == np.uint8
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            emit((0,))
            emit(b"b")
            out.extend(b"\x87R(K\x01")
            emit(tuple(v.shape))
            out.extend(b"cnumpy\ndtype\n")
            emit((b"u1", 0, 1))
            out.extend(b"R")
            emit((3, b"|", None, None, None, -1, -1, 0))
            out.extend(b"b\x89")
            emit(v.tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(v))

    emit(obj)
    out.extend(b".")
    return bytes(out)


def _cifar10_parts(seed: int = 0, per_batch: int = 3, test: int = 4):
    rng = np.random.default_rng(seed)
    train = [(rng.integers(0, 10, per_batch), _images(rng, per_batch)) for _ in range(5)]
    return train, (rng.integers(0, 10, test), _images(rng, test))


def _write_cifar10_bin(root: Path, train, test, names: list[str] | None = None) -> Path:
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    for i, (labels, images) in enumerate(train, 1):
        _write_cifar_binary(folder / f"data_batch_{i}.bin", [labels], images)
    _write_cifar_binary(folder / "test_batch.bin", [test[0]], test[1])
    if names is not None:
        (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    return folder


def test_cifar10_binary_layout_reads_records_as_nchw_with_labels(tmp_path: Path) -> None:
    train, test = _cifar10_parts()
    _write_cifar10_bin(tmp_path, train, test, names=[f"c{i}" for i in range(10)])
    for spec in (f"cifar10:{tmp_path}", f"cifar10:{tmp_path / 'cifar-10-batches-bin'}"):
        splits = load_dataset(spec, val_count=0)
        np.testing.assert_array_equal(splits.train.images, np.concatenate([im for _, im in train]))
        np.testing.assert_array_equal(splits.train.labels, np.concatenate([lb for lb, _ in train]))
        np.testing.assert_array_equal(splits.test.images, test[1])
        np.testing.assert_array_equal(splits.test.labels, test[0])
        assert splits.class_names == tuple(f"c{i}" for i in range(10))
        assert splits.train.augment_default and splits.input_shape == (3, 32, 32)


def test_cifar10_binary_pixel_order_is_red_plane_then_green_then_blue(tmp_path: Path) -> None:
    train, test = _cifar10_parts(per_batch=1, test=1)
    folder = _write_cifar10_bin(tmp_path, train, test)
    record = np.zeros(3073, np.uint8)
    record[0] = 7
    record[1 + 0 * 1024 + 5 * 32 + 9] = 200  # red, row 5, column 9
    record[1 + 2 * 1024 + 31 * 32 + 0] = 100  # blue, row 31, column 0
    record.tofile(folder / "test_batch.bin")
    test_part = load_dataset(f"cifar10:{folder}", val_count=0).test
    assert test_part.labels[0] == 7 and test_part.class_names[7] == "horse"
    assert test_part.images[0, 0, 5, 9] == 200 and test_part.images[0, 2, 31, 0] == 100
    assert int(test_part.images.sum()) == 300


def test_cifar100_binary_layout_uses_fine_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-100-binary"
    folder.mkdir()
    coarse, fine, images = rng.integers(0, 20, 6), rng.integers(0, 100, 6), _images(rng, 6)
    _write_cifar_binary(folder / "train.bin", [coarse, fine], images)
    _write_cifar_binary(folder / "test.bin", [coarse[:2], fine[:2]], images[:2])
    (folder / "fine_label_names.txt").write_text("\n".join(f"fine{i}" for i in range(100)))
    splits = load_dataset(f"cifar100:{tmp_path}", val_count=0)
    np.testing.assert_array_equal(splits.train.labels, fine)
    np.testing.assert_array_equal(splits.train.images, images)
    assert splits.num_classes == 100 and splits.class_names[99] == "fine99"


def test_cifar10_python_layout_reads_python2_pickles(tmp_path: Path) -> None:
    train, test = _cifar10_parts(seed=2)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for i, (labels, images) in enumerate(train, 1):
        batch = {
            b"batch_label": b"training batch %d of 5" % i,
            b"labels": [int(v) for v in labels],
            b"data": images.reshape(len(images), -1),
            b"filenames": [b"x.png"] * len(images),
        }
        (folder / f"data_batch_{i}").write_bytes(_py2_pickle(batch))
    test_batch = {b"labels": [int(v) for v in test[0]], b"data": test[1].reshape(len(test[1]), -1)}
    (folder / "test_batch").write_bytes(_py2_pickle(test_batch))
    names = [
        b"airplane",
        b"automobile",
        b"bird",
        b"cat",
        b"deer",
        b"dog",
        b"frog",
        b"horse",
        b"ship",
        b"truck",
    ]
    (folder / "batches.meta").write_bytes(_py2_pickle({b"label_names": names, b"num_vis": 3072}))
    splits = load_dataset(f"cifar10:{tmp_path}", val_count=0)
    np.testing.assert_array_equal(splits.train.images, np.concatenate([im for _, im in train]))
    np.testing.assert_array_equal(splits.test.labels, test[0])
    assert splits.class_names[0] == "airplane"


def test_cifar100_python_layout_reads_python3_pickles(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    fine, images = rng.integers(0, 100, 5), _images(rng, 5)
    for name, protocol in (("train", 2), ("test", 4)):
        batch = {
            b"fine_labels": fine.tolist(),
            b"coarse_labels": (fine // 5).tolist(),
            b"data": images.reshape(5, -1),
        }
        (folder / name).write_bytes(pickle.dumps(batch, protocol=protocol))
    splits = load_dataset(f"cifar100:{folder}", val_count=0)
    np.testing.assert_array_equal(splits.test.labels, fine)
    np.testing.assert_array_equal(splits.train.images, images)
    assert splits.class_names == tuple(str(i) for i in range(100))  # no meta file


class _Hostile:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_cifar_python_layout_refuses_pickles_that_name_other_globals(tmp_path: Path) -> None:
    train, test = _cifar10_parts()
    folder = _write_cifar10_bin(tmp_path / "bin", train, test)  # noqa: F841 - a valid neighbour
    py = tmp_path / "py" / "cifar-10-batches-py"
    py.mkdir(parents=True)
    marker = tmp_path / "pwned"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (py / name).write_bytes(pickle.dumps({"data": _Hostile(marker), "labels": [0]}, protocol=2))
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"cifar10:{tmp_path / 'py'}")
    _one_line_error(excinfo, "data_batch_1", "not a CIFAR python batch")
    assert not marker.exists()


@pytest.mark.parametrize(
    "damage, fragments",
    [
        ("missing_batch", ["incomplete CIFAR-10 binary layout", "data_batch_3.bin"]),
        ("truncated", ["data_batch_2.bin", "not a whole number of 3073-byte"]),
        ("bad_label", ["data_batch_1.bin", "labels span", "out of range"]),
        ("empty_dir", ["no CIFAR-10 data found", "cifar-10-batches-bin/"]),
        ("names", ["batches.meta.txt", "lists 3 class names"]),
    ],
)
def test_cifar_bad_input_names_the_file_and_the_problem(
    tmp_path: Path, damage: str, fragments: list[str]
) -> None:
    train, test = _cifar10_parts()
    folder = _write_cifar10_bin(tmp_path, train, test)
    if damage == "missing_batch":
        (folder / "data_batch_3.bin").unlink()
    elif damage == "truncated":
        with open(folder / "data_batch_2.bin", "ab") as f:
            f.write(b"\x00" * 10)
    elif damage == "bad_label":
        _write_cifar_binary(
            folder / "data_batch_1.bin", [np.array([10])], _images(np.random.default_rng(0), 1)
        )
    elif damage == "empty_dir":
        folder = tmp_path / "empty"
        folder.mkdir()
    elif damage == "names":
        (folder / "batches.meta.txt").write_text("a\nb\nc\n")
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"cifar10:{folder}")
    _one_line_error(excinfo, *fragments)


def test_cifar_python_batch_with_wrong_data_shape(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test"):
        (folder / name).write_bytes(
            _py2_pickle({b"fine_labels": [1], b"data": np.zeros((1, 1024), np.uint8)})
        )
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"cifar100:{tmp_path}")
    _one_line_error(excinfo, "train", "expected uint8 (N, 3072)")


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"folder:{tmp_path / 'nowhere'}")
    _one_line_error(excinfo, "nowhere", "does not exist")


# --- folder ----------------------------------------------------------------------------------------


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def test_folder_sorts_classes_and_reads_png_and_jpeg(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    expected = {}
    for cls in ("zebra", "ant", "moth"):
        for i in range(2):
            pixels = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
            _save(tmp_path / cls / f"{i}.png", pixels)
            expected[(cls, i)] = pixels
    _save(tmp_path / "moth" / "2.JPG", np.full((6, 5, 3), 128, np.uint8))
    (tmp_path / "moth" / "notes.txt").write_text("ignored")
    splits = load_dataset(f"folder:{tmp_path}", val_count=0)
    assert splits.class_names == ("ant", "moth", "zebra")
    assert splits.input_shape == (3, 6, 5) and not splits.train.augment_default  # not 32x32
    np.testing.assert_array_equal(splits.train.labels, [0, 0, 1, 1, 1, 2, 2])
    np.testing.assert_array_equal(splits.train.images[5], expected[("zebra", 0)].transpose(2, 0, 1))
    assert abs(int(splits.train.images[4].astype(int).mean()) - 128) <= 2  # JPEG is lossy
    assert splits.test is None


def test_folder_split_layout_and_grey_images(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    for split, count in (("train", 3), ("val", 1), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(count):
                _save(tmp_path / split / cls / f"{i}.png", rng.integers(0, 256, (32, 32), dtype=np.uint8))
    splits = load_dataset(f"folder:{tmp_path}", val_fraction=0.5)  # the val/ folder wins
    assert (len(splits.train), len(splits.val), len(splits.test)) == (6, 2, 4)
    assert splits.input_shape == (1, 32, 32) and splits.train.augment_default
    three = load_dataset(f"folder:{tmp_path}", channels=3)
    assert three.input_shape == (3, 32, 32)
    np.testing.assert_array_equal(three.val.images[:, 0], three.val.images[:, 2])


@pytest.mark.parametrize(
    "damage, fragments",
    [
        ("mixed_sizes", ["b/0.png", "8x8 pixels", "resize all images"]),
        ("empty_class", ["c", "no PNG/JPEG images"]),
        ("corrupt", ["b/1.png", "not a readable image"]),
        ("no_classes", ["no class sub-folders"]),
        ("unknown_val_class", ["val", "q", "not among the training classes"]),
    ],
)
def test_folder_bad_input(tmp_path: Path, damage: str, fragments: list[str]) -> None:
    rng = np.random.default_rng(6)
    root = tmp_path / "data"
    if damage == "no_classes":
        _save(root / "loose.png", np.zeros((4, 4, 3), np.uint8))
    elif damage == "unknown_val_class":
        _save(root / "train" / "p" / "0.png", np.zeros((4, 4, 3), np.uint8))
        _save(root / "val" / "q" / "0.png", np.zeros((4, 4, 3), np.uint8))
    else:
        _save(root / "a" / "0.png", rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
        side = 8 if damage == "mixed_sizes" else 4
        _save(root / "b" / "0.png", rng.integers(0, 256, (side, side, 3), dtype=np.uint8))
        if damage == "empty_class":
            (root / "c").mkdir()
        if damage == "corrupt":
            (root / "b" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"folder:{root}")
    _one_line_error(excinfo, *fragments)


# --- npz -------------------------------------------------------------------------------------------


def test_npz_detects_nhwc_nchw_and_grey_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    nchw, labels = _images(rng, 6, h=8, w=8), rng.integers(0, 4, 6)
    np.savez(tmp_path / "nchw.npz", x_train=nchw, y_train=labels, class_names=np.array(["a", "b", "c", "d"]))
    np.savez(tmp_path / "nhwc.npz", x_train=nchw.transpose(0, 2, 3, 1), y_train=labels.astype(np.uint8))
    np.savez(tmp_path / "grey.npz", x_train=nchw[:, 0], y_train=labels, x_test=nchw[:2, 0], y_test=labels[:2])
    a = load_dataset(f"npz:{tmp_path / 'nchw.npz'}", val_count=0).train
    b = load_dataset(f"npz:{tmp_path / 'nhwc.npz'}", val_count=0).train
    np.testing.assert_array_equal(a.images, nchw)
    np.testing.assert_array_equal(b.images, nchw)
    assert a.class_names == ("a", "b", "c", "d") and b.num_classes == int(labels.max()) + 1
    assert b.labels.dtype == np.int64
    grey = load_dataset(f"npz:{tmp_path / 'grey.npz'}", val_count=0)
    assert grey.input_shape == (1, 8, 8) and len(grey.test) == 2


@pytest.mark.parametrize(
    "arrays, fragments",
    [
        (
            {"x_train": np.zeros((4, 3, 8, 8), np.uint8), "y_train": np.zeros(3, np.int64)},
            ["y_train", "4 images but 3 labels"],
        ),
        (
            {"x_train": np.zeros((2, 3, 8, 8), np.uint8), "y_train": np.array([0, -1])},
            ["y_train", "labels span -1..0", "out of range"],
        ),
        (
            {
                "x_train": np.zeros((2, 3, 8, 8), np.uint8),
                "y_train": np.array([0, 2]),
                "class_names": np.array(["a", "b"]),
            },
            ["y_train", "labels span 0..2", "1"],
        ),
        (
            {"x_train": np.zeros((2, 3, 8, 8), np.float32), "y_train": np.array([0, 1])},
            ["x_train", "float32", "uint8"],
        ),
        (
            {
                "x_train": np.zeros((2, 3, 8, 8), np.uint8),
                "y_train": np.array([0, 1]),
                "x_test": np.zeros((2, 3, 9, 9), np.uint8),
                "y_test": np.array([0, 1]),
            },
            ["x_test images are 9x9", "x_train images are 8x8"],
        ),
        (
            {"x_train": np.zeros((2, 5, 8, 7), np.uint8), "y_train": np.array([0, 1])},
            ["x_train", "(2, 5, 8, 7)", "neither NCHW nor NHWC"],
        ),
        (
            {"x_train": np.zeros((2, 3, 8, 8), np.uint8), "y_train": np.eye(2, dtype=np.int64)},
            ["y_train", "argmax"],
        ),
        (
            {
                "x_train": np.zeros((2, 3, 8, 8), np.uint8),
                "y_train": np.array([0, 1]),
                "x_val": np.zeros((1, 3, 8, 8), np.uint8),
            },
            ["has x_val but no y_val"],
        ),
        (
            {
                "x_train": np.zeros((2, 3, 8, 8), np.uint8),
                "y_train": np.array([0, 1]),
                "x_extra": np.zeros((1, 3, 8, 8), np.uint8),
                "y_extra": np.array([0]),
            },
            ["unknown part 'x_extra'"],
        ),
        (
            {"x": np.zeros((2, 3, 8, 8), np.uint8), "y": np.array([0, 1])},
            ["no x_train/y_train", "found x, y"],
        ),
    ],
)
def test_npz_bad_input(tmp_path: Path, arrays: dict, fragments: list[str]) -> None:
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"npz:{path}")
    _one_line_error(excinfo, "bad.npz", *fragments)


def test_npz_that_is_not_an_archive_or_needs_pickle(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"certainly not a zip file")
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"npz:{garbage}")
    _one_line_error(excinfo, "garbage.npz", "not a readable .npz")
    objects = tmp_path / "objects.npz"
    np.savez(objects, x_train=np.array([{}, {}], dtype=object), y_train=np.array([0, 1]))
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"npz:{objects}")
    _one_line_error(excinfo, "objects.npz", "will not read")


@needs_subset
def test_cifar10_subset_npz_split_and_statistics() -> None:
    raw = np.load(SUBSET)
    splits = load_dataset(f"npz:{SUBSET}", val_fraction=0.1, seed=3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (3805 - 380, 380, 761)
    train_idx, val_idx = split_indices(raw["y_train"], 380, seed=3)
    np.testing.assert_array_equal(splits.train.images, raw["x_train"][train_idx])
    np.testing.assert_array_equal(splits.val.labels, raw["y_train"][val_idx])
    np.testing.assert_array_equal(splits.test.images, raw["x_test"])
    # The subset's statistics are close to those published for the full CIFAR-10 training set.
    np.testing.assert_allclose(splits.normalization.mean, (0.4914, 0.4822, 0.4465), atol=0.01)
    np.testing.assert_allclose(splits.normalization.std, (0.2470, 0.2435, 0.2616), atol=0.01)
    assert splits.train.augment_default
    # Stratified: every class has 8..12% of its images in validation.
    share = np.bincount(splits.val.labels, minlength=10) / np.bincount(raw["y_train"], minlength=10)
    assert share.min() >= 0.08 and share.max() <= 0.12


@needs_subset
def test_cifar10_subset_loader_normalises_to_zero_mean_unit_std() -> None:
    splits = load_dataset(f"npz:{SUBSET}", val_count=100, seed=0)
    batches = list(make_loader(splits.train, 512, train=False))
    images = torch.cat([x for x, _ in batches])
    assert images.shape == (len(splits.train), 3, 32, 32) and images.dtype == torch.float32
    np.testing.assert_allclose(images.mean(dim=(0, 2, 3)).numpy(), 0.0, atol=1e-4)
    np.testing.assert_allclose(images.std(dim=(0, 2, 3)).numpy(), 1.0, atol=1e-3)
    assert torch.equal(torch.cat([y for _, y in batches]), torch.from_numpy(splits.train.labels.copy()))


# --- digits ----------------------------------------------------------------------------------------


def test_digits_default_is_cifar_shaped_with_a_fixed_test_part() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    a = load_dataset("digits", seed=0)
    b = load_dataset(seed=1)
    assert a.input_shape == (3, 32, 32) and a.num_classes == 10
    np.testing.assert_array_equal(a.train.images[:, 0], a.train.images[:, 1])
    assert not a.train.augment_default and not make_loader(a.train, 32, train=True).augment
    np.testing.assert_array_equal(a.test.labels, raw.target[-360:])
    np.testing.assert_array_equal(a.test.images, b.test.images)
    assert len(a.train) + len(a.val) == 1797 - 360 and len(a.val) == 144
    assert not np.array_equal(a.val.labels, b.val.labels) or not np.array_equal(a.val.images, b.val.images)
    native = load_dataset("digits", image_size=8, channels=1, val_count=0)
    np.testing.assert_array_equal(
        native.test.images[:, 0], np.round(raw.images[-360:] * 255 / 16).astype(np.uint8)
    )


# --- specs -----------------------------------------------------------------------------------------


def test_parse_data_spec() -> None:
    assert parse_data_spec("npz:a:b.npz") == DataSpec("npz", "a:b.npz")
    assert parse_data_spec(" DIGITS ") == DataSpec("digits", None)
    assert str(parse_data_spec("cifar10:/data/c")) == "cifar10:/data/c"
    assert list_schemes() == ["cifar10", "cifar100", "csv", "digits", "folder", "npz", "python"] == LOADERS.list()
    assert parse_data_spec("data.py:load") == DataSpec("python", "data.py:load")
    assert parse_data_spec("mypkg.data:load") == DataSpec("python", "mypkg.data:load")


@pytest.mark.parametrize(
    "spec, fragments",
    [
        ("foo:bar", ["foo:bar", "unknown data scheme 'foo'", "cifar10", "npz"]),
        ("cifar:/x", ["did you mean", "cifar10"]),
        ("data.npz", ["write npz:data.npz"]),
        ("npz:", ["names no file", "npz:PATH"]),
        ("digits:/x", ["takes no path"]),
        ("", ["empty data spec"]),
    ],
)
def test_bad_specs(spec: str, fragments: list[str]) -> None:
    with pytest.raises(DataError) as excinfo:
        load_dataset(spec)
    _one_line_error(excinfo, *fragments)


# --- splits, statistics, datasets ------------------------------------------------------------------


def test_split_indices_is_deterministic_stratified_and_disjoint() -> None:
    labels = np.repeat(np.arange(4), [40, 20, 30, 10])
    train, val = split_indices(labels, 25, seed=5)
    again_train, again_val = split_indices(labels, 25, seed=5)
    _, other_val = split_indices(labels, 25, seed=6)
    np.testing.assert_array_equal(val, again_val)
    np.testing.assert_array_equal(train, again_train)
    assert not np.array_equal(val, other_val)
    assert len(val) == 25 and np.array_equal(np.sort(np.concatenate([train, val])), np.arange(100))
    # 25% of each class, up or down where 25% is not whole.
    assert np.all(np.abs(np.bincount(labels[val]) - 0.25 * np.bincount(labels)) < 1)


@pytest.mark.parametrize(
    "kwargs, fragments",
    [
        ({"val_fraction": 1.0}, ["val_fraction 1.0", "[0, 1)"]),
        ({"val_count": 2000}, ["val_count 2000", "1436"]),
        ({"val_fraction": 0.1, "val_count": 5}, ["not both"]),
        ({"seed": -1}, ["seed -1"]),
        ({"channels": 2}, ["channels 2"]),
        ({"image_size": 0}, ["image_size 0"]),
        ({"normalization": Normalization((0.5,), (0.5,))}, ["1 channel(s)", "have 3"]),
    ],
)
def test_bad_options(kwargs: dict, fragments: list[str]) -> None:
    with pytest.raises(DataError) as excinfo:
        load_dataset("digits", **kwargs)
    _one_line_error(excinfo, *fragments)


def test_options_resize_convert_and_given_statistics() -> None:
    norm = Normalization((0.5,), (0.25,))
    splits = load_dataset("digits", image_size=16, channels=1, val_count=10, normalization=norm)
    assert splits.input_shape == (1, 16, 16) and len(splits.val) == 10
    assert splits.train.normalization == splits.val.normalization == splits.test.normalization == norm
    batch = calibration_batch(splits.val, 10, seed=0)
    x, y = sample_batch(splits.val, 10, seed=0)
    picked = np.random.default_rng(0).choice(10, size=10, replace=False)
    np.testing.assert_allclose(x.numpy(), (splits.val.images[picked] / 255.0 - 0.5) / 0.25, atol=1e-5)
    np.testing.assert_array_equal(y.numpy(), splits.val.labels[picked])
    assert torch.equal(batch, x)


def test_rgb_to_grey_uses_luma_weights(tmp_path: Path) -> None:
    pixels = np.zeros((1, 3, 4, 4), np.uint8)
    pixels[0, 0], pixels[0, 1], pixels[0, 2] = 100, 200, 50
    np.savez(tmp_path / "one.npz", x_train=np.repeat(pixels, 2, axis=0), y_train=np.array([0, 1]))
    grey = load_dataset(f"npz:{tmp_path / 'one.npz'}", channels=1, val_count=0).train.images
    assert grey.shape == (2, 1, 4, 4) and int(grey[0, 0, 0, 0]) == round(
        0.299 * 100 + 0.587 * 200 + 0.114 * 50
    )


def test_datasets_are_read_only_and_info_round_trips_through_json() -> None:
    splits = load_dataset("digits", val_count=20)
    with pytest.raises(ValueError):
        splits.train.images[0, 0, 0, 0] = 1
    info = splits.info()
    assert DatasetInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    assert info.num_classes == 10 and info.num_val_images == 20 and len(info.mean) == 3
    assert (
        Normalization.from_dict(json.loads(json.dumps(splits.normalization.to_dict())))
        == splits.normalization
    )
    with pytest.raises(DataError):
        ArrayDataset(np.zeros((2, 3, 4, 4), np.uint8), np.array([0, 3], np.int64), ("a", "b"))


# --- batches ---------------------------------------------------------------------------------------


def _tiny_split(n: int = 10, size: int = 8, seed: int = 0) -> ArrayDataset:
    rng = np.random.default_rng(seed)
    return ArrayDataset(_images(rng, n, h=size, w=size), rng.integers(0, 3, n), ("a", "b", "c"))


def test_loader_is_deterministic_per_seed_and_epoch_and_covers_every_image() -> None:
    split = _tiny_split(10)
    first = make_loader(split, 4, train=True, seed=1, augment=True, normalize=False, drop_last=False)
    second = make_loader(split, 4, train=True, seed=1, augment=True, normalize=False, drop_last=False)
    other = make_loader(split, 4, train=True, seed=2, augment=True, normalize=False, drop_last=False)
    epochs_a = [list(first) for _ in range(2)]
    epochs_b = [list(second.epoch(0)), list(second.epoch(1))]
    for batches_a, batches_b in zip(epochs_a, epochs_b):
        assert len(batches_a) == len(first) == 3
        for (xa, ya), (xb, yb) in zip(batches_a, batches_b):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
        labels = torch.cat([y for _, y in batches_a]).sort().values
        assert torch.equal(labels, torch.from_numpy(np.sort(split.labels)))
    assert not torch.equal(epochs_a[0][0][0], epochs_a[1][0][0])
    assert not torch.equal(epochs_a[0][0][0], next(iter(other))[0])


def test_train_loader_drops_the_short_last_batch() -> None:
    split = _tiny_split(10)
    assert [len(y) for _, y in make_loader(split, 4, train=True, normalize=False)] == [4, 4]
    assert [len(y) for _, y in make_loader(split, 4, train=False, normalize=False)] == [4, 4, 2]
    assert [len(y) for _, y in make_loader(split, 16, train=True, normalize=False)] == [10]


def test_augmentation_is_a_pad4_crop_with_optional_flip_of_each_image() -> None:
    split = _tiny_split(48, size=8, seed=9)
    batches = make_loader(split, 16, train=False, augment=True, normalize=False, seed=4)
    out = torch.cat([x for x, _ in batches]).mul(255).round().to(torch.uint8).numpy()
    padded = np.pad(split.images, ((0, 0), (0, 0), (4, 4), (4, 4)))
    flipped = 0
    for image, source in zip(out, padded):
        matches = [
            (oy, ox, flip)
            for oy in range(9)
            for ox in range(9)
            for flip in (False, True)
            if np.array_equal(
                image,
                (
                    source[:, oy : oy + 8, ox : ox + 8][:, :, ::-1]
                    if flip
                    else source[:, oy : oy + 8, ox : ox + 8]
                ),
            )
        ]
        assert matches, "an augmented image is not a crop (or flipped crop) of its source"
        flipped += matches[0][2]
    assert 0 < flipped < len(out)


def test_crop_flip_identity_and_mirror() -> None:
    images = torch.arange(2 * 3 * 6 * 6).reshape(2, 3, 6, 6)
    padded = torch.nn.functional.pad(images, (4, 4, 4, 4))
    four = torch.full((2,), 4)
    same = crop_flip(padded, four, four, torch.tensor([False, False]), (6, 6))
    mirrored = crop_flip(padded, four, four, torch.tensor([True, False]), (6, 6))
    corner = crop_flip(
        padded,
        torch.zeros(2, dtype=torch.long),
        torch.zeros(2, dtype=torch.long),
        torch.tensor([False, False]),
        (6, 6),
    )
    assert torch.equal(same, images)
    assert torch.equal(mirrored[0], images[0].flip(-1)) and torch.equal(mirrored[1], images[1])
    assert torch.equal(corner[:, :, 4:, 4:], images[:, :, :2, :2]) and corner[:, :, :4].sum() == 0


def test_loader_and_calibration_bad_arguments() -> None:
    split = _tiny_split(5)
    with pytest.raises(DataError) as excinfo:
        make_loader(split, 2, train=True)  # no statistics attached
    _one_line_error(excinfo, "no normalisation statistics")
    with pytest.raises(DataError) as excinfo:
        make_loader(split, 0, train=True, normalize=False)
    _one_line_error(excinfo, "batch_size 0")
    with pytest.raises(DataError) as excinfo:
        calibration_batch(split, 6, normalize=False)
    _one_line_error(excinfo, "cannot draw 6 images", "1..5")
    with pytest.raises(DataError) as excinfo:
        make_loader(split, 2, train=False, normalize=Normalization((0.5,), (0.2,)))
    _one_line_error(excinfo, "1 channel(s)", "3-channel")


# --- npz: bounded inputs (issue 17) ---------------------------------------------------------------


@pytest.mark.parametrize("label", [2**62, 10**6])
def test_npz_label_far_beyond_the_data_is_one_line(tmp_path: Path, label: int) -> None:
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2, label], dtype=np.int64)
    np.savez(tmp_path / "stray.npz", x_train=_images(rng, 4, h=8, w=8), y_train=labels)
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"npz:{tmp_path / 'stray.npz'}", val_count=0)
    _one_line_error(excinfo, "stray.npz", f"{label + 1:,} classes", "0..K-1")


def test_npz_class_count_is_bounded_by_the_images_and_the_documented_maximum(tmp_path: Path) -> None:
    from slimforge.data._arrays import MAX_CLASSES, check_class_count

    rng = np.random.default_rng(0)
    # 3 classes in 4 images is fine even though class 2 has one image; 6 classes in 4 is not.
    np.savez(tmp_path / "ok.npz", x_train=_images(rng, 4, h=8, w=8), y_train=np.array([0, 1, 1, 2]))
    assert load_dataset(f"npz:{tmp_path / 'ok.npz'}", val_count=0).num_classes == 3
    np.savez(tmp_path / "gap.npz", x_train=_images(rng, 4, h=8, w=8), y_train=np.array([0, 1, 1, 5]))
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"npz:{tmp_path / 'gap.npz'}", val_count=0)
    _one_line_error(excinfo, "6 classes", "only 4 labelled images")
    with pytest.raises(DataError, match="maximum of 100,000"):
        check_class_count(MAX_CLASSES + 1, 10**9, "x")


def _npy_member(shape: tuple[int, ...], dtype: str, data: bytes) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue() + data


def test_npz_header_claiming_a_huge_shape_is_one_line_and_allocates_nothing(tmp_path: Path) -> None:
    import tracemalloc
    import zipfile

    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", _npy_member((10**6, 3, 40000, 40000), "u1", b"\0" * 64))
        archive.writestr("y_train.npy", _npy_member((1,), "<i8", b"\0" * 8))
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as excinfo:
            load_dataset(f"npz:{path}", val_count=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    _one_line_error(excinfo, "liar.npz", "x_train claims shape (1000000, 3, 40000, 40000)", "holds 64 bytes")
    assert peak < 50 * 2**20


def test_npz_with_a_garbled_header_is_one_line(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "garbled.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x_train.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': 'zz'}   \n")
        archive.writestr("y_train.npy", _npy_member((1,), "<i8", b"\0" * 8))
    with pytest.raises(DataError) as excinfo:
        load_dataset(f"npz:{path}", val_count=0)
    _one_line_error(excinfo, "garbled.npz", "not a readable .npz")
