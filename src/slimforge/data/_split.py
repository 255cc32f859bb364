"""Deterministic, stratified train/validation splits."""

from __future__ import annotations

import numpy as np

from slimforge.data._errors import DataError

__all__ = ["split_indices", "val_size"]


def val_size(num_images: int, val_fraction: float | None, val_count: int | None) -> int:
    """How many of ``num_images`` go to validation: a fraction, a count, or (neither given) 10%."""
    if val_fraction is not None and val_count is not None:
        raise DataError(f"give val_fraction ({val_fraction}) or val_count ({val_count}), not both")
    if val_count is not None:
        if (
            isinstance(val_count, bool)
            or not isinstance(val_count, (int, np.integer))
            or not 0 <= val_count < num_images
        ):
            raise DataError(
                f"val_count {val_count!r} must be an integer in 0..{num_images - 1} "
                f"(the training part has {num_images} images)"
            )
        return int(val_count)
    fraction = 0.1 if val_fraction is None else val_fraction
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise DataError(f"val_fraction {fraction!r} must be a number in [0, 1)")
    return round(fraction * num_images)


def split_indices(labels: np.ndarray, num_val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(len(labels))`` into sorted (train, val) index arrays with ``num_val`` in val.

    Stratified: each class gives validation images in proportion to its size (up to rounding), so a
    small validation split still covers every class. Within a class the choice is random under
    ``seed``; the same labels and seed always give the same split.
    """
    n = len(labels)
    if not 0 <= num_val < n:
        raise DataError(f"cannot hold out {num_val} of {n} images for validation")
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    # Within-class rank of each image in the random order, as a quantile of its class: taking the
    # smallest quantiles first spreads the validation images over the classes proportionally.
    shuffled = labels[order]
    by_class = np.argsort(shuffled, kind="stable")
    sorted_labels = shuffled[by_class]
    starts = np.searchsorted(sorted_labels, sorted_labels, side="left")
    counts = np.bincount(sorted_labels)[sorted_labels]
    rank = np.empty(n, np.float64)
    rank[by_class] = (np.arange(n) - starts + 0.5) / counts
    chosen = order[np.argsort(rank, kind="stable")[:num_val]]
    mask = np.zeros(n, bool)
    mask[chosen] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)
