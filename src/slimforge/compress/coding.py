"""Deep Compression storage: sparse relative indices, weight-sharing codebooks, Huffman coding.

Han, Mao and Dally ("Deep Compression", ICLR 2016) store a pruned, weight-shared network as

1. the non-zero weights in sparse form, each with the *gap* to the previous one in a few bits
   (8 for conv layers, 5 for fully connected ones); a gap too long for the field is bridged with
   a filler entry holding a zero;
2. each stored weight as a k-bit index into a per-layer codebook of shared float values;
3. both index streams Huffman-coded.

:func:`pack_state` writes exactly that into a byte string (with a header per tensor, and every
other tensor raw), choosing per weight tensor the smallest of: dense raw, dense codebook, sparse
raw, sparse codebook. :func:`unpack_state` reads it back, so the sizes reported are of real,
decodable bytes rather than formulas.
"""

from __future__ import annotations

import heapq
import math
import struct
from collections.abc import Mapping

import numpy as np
import torch
from torch import nn

from slimforge.errors import ModelFileError

__all__ = [
    "CONV_INDEX_BITS",
    "FC_INDEX_BITS",
    "has_packable_weights",
    "huffman_code_lengths",
    "pack_state",
    "packed_size",
    "unpack_state",
]

MAGIC = b"SFDC1"
CONV_INDEX_BITS = 8
FC_INDEX_BITS = 5
_MAX_CODEBOOK = 256
_MAX_CHANNEL_CODEBOOK = 16

# tensor kinds
_RAW, _DENSE, _SPARSE = 0, 1, 2
# value modes
_FLOAT, _LAYER_BOOK, _CHANNEL_BOOK = 0, 1, 2
_DTYPES = {0: torch.float32, 1: torch.int64, 2: torch.float16, 3: torch.int32, 4: torch.uint8, 5: torch.bool}
_DTYPE_CODES = {v: k for k, v in _DTYPES.items()}


# ---- bits ---------------------------------------------------------------------------------------


def _pack_fixed(values: np.ndarray, bits: int) -> bytes:
    if len(values) == 0 or bits == 0:
        return b""
    shifts = np.arange(bits - 1, -1, -1, dtype=np.uint64)
    matrix = (values.astype(np.uint64)[:, None] >> shifts) & np.uint64(1)
    return np.packbits(matrix.astype(np.uint8).ravel()).tobytes()


def _unpack_fixed(data: bytes, count: int, bits: int) -> np.ndarray:
    if count == 0 or bits == 0:
        return np.zeros(count, np.int64)
    flat = np.unpackbits(np.frombuffer(data, np.uint8))[: count * bits].reshape(count, bits).astype(np.int64)
    return flat @ (1 << np.arange(bits - 1, -1, -1, dtype=np.int64))


def _bits_for(count: int) -> int:
    return max(1, math.ceil(math.log2(count))) if count > 1 else 1


def huffman_code_lengths(counts: Mapping[int, int]) -> dict[int, int]:
    """Code length of each symbol of an optimal (Huffman, 1952) prefix code for these counts."""
    symbols = [s for s, c in counts.items() if c > 0]
    if len(symbols) == 1:
        return {symbols[0]: 1}
    heap = [(c, i, (s,)) for i, (s, c) in enumerate(sorted((s, counts[s]) for s in symbols))]
    heapq.heapify(heap)
    lengths = dict.fromkeys(symbols, 0)
    tie = len(heap)
    while len(heap) > 1:
        c1, _, a = heapq.heappop(heap)
        c2, _, b = heapq.heappop(heap)
        for s in a + b:
            lengths[s] += 1
        heapq.heappush(heap, (c1 + c2, tie, a + b))
        tie += 1
    return lengths


def _canonical(lengths: Mapping[int, int]) -> dict[int, tuple[int, int]]:
    """Canonical codes (code, length) from lengths, so only the lengths need storing."""
    code, prev = 0, 0
    codes = {}
    for s, n in sorted(lengths.items(), key=lambda kv: (kv[1], kv[0])):
        code <<= n - prev
        codes[s] = (code, n)
        code += 1
        prev = n
    return codes


def _huffman_encode(symbols: np.ndarray, alphabet: int) -> bytes:
    """Table (one length byte per alphabet symbol), bit count, then the coded stream."""
    counts = np.bincount(symbols, minlength=alphabet)
    lengths = huffman_code_lengths({s: int(c) for s, c in enumerate(counts) if c})
    codes = _canonical(lengths)
    table = bytes(lengths.get(s, 0) for s in range(alphabet))
    max_len = max(lengths.values())
    code_arr = np.zeros(alphabet, np.uint64)
    len_arr = np.zeros(alphabet, np.int64)
    for s, (c, n) in codes.items():
        code_arr[s], len_arr[s] = c, n
    # Write every symbol's code left-aligned in max_len bits, then keep only each code's own bits.
    shifts = np.arange(max_len - 1, -1, -1, dtype=np.uint64)
    aligned = code_arr[symbols] << (np.uint64(max_len) - len_arr[symbols].astype(np.uint64))
    bits = ((aligned[:, None] >> shifts) & np.uint64(1)).astype(np.uint8)
    keep = np.arange(max_len)[None, :] < len_arr[symbols][:, None]
    stream = bits[keep]
    return table + struct.pack("<I", len(stream)) + np.packbits(stream).tobytes()


def _huffman_decode(data: bytes, offset: int, alphabet: int, count: int) -> tuple[np.ndarray, int]:
    lengths = {s: n for s, n in enumerate(data[offset : offset + alphabet]) if n}
    offset += alphabet
    (nbits,) = struct.unpack_from("<I", data, offset)
    offset += 4
    nbytes = (nbits + 7) // 8
    bits = np.unpackbits(np.frombuffer(data[offset : offset + nbytes], np.uint8))[:nbits]
    offset += nbytes
    lookup = {(c, n): s for s, (c, n) in _canonical(lengths).items()}
    out = np.empty(count, np.int64)
    code = n = k = 0
    for b in bits:
        code, n = (code << 1) | int(b), n + 1
        s = lookup.get((code, n))
        if s is not None:
            out[k] = s
            k += 1
            code = n = 0
    if k != count:
        raise ModelFileError(f"corrupt Huffman stream: decoded {k} of {count} symbols")
    return out, offset


def _stream(values: np.ndarray, bits: int, alphabet: int, huffman: bool) -> bytes:
    if huffman and len(values):
        return b"\x01" + _huffman_encode(values, alphabet)
    return b"\x00" + _pack_fixed(values, bits)


def _read_stream(data: bytes, offset: int, count: int, bits: int, alphabet: int) -> tuple[np.ndarray, int]:
    coded = data[offset]
    offset += 1
    if coded:
        return _huffman_decode(data, offset, alphabet, count)
    nbytes = (count * bits + 7) // 8
    return _unpack_fixed(data[offset : offset + nbytes], count, bits), offset + nbytes


# ---- one tensor ---------------------------------------------------------------------------------


def _sparse_entries(flat: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Gap fields and entry positions (fillers included) of the non-zeros of ``flat``."""
    positions = np.flatnonzero(flat)
    span = 1 << index_bits
    fields: list[int] = []
    entries: list[int] = []
    prev = -1
    for pos in positions.tolist():
        gap = pos - prev
        while gap > span:  # a filler zero advances by a full span
            prev += span
            fields.append(span - 1)
            entries.append(prev)
            gap -= span
        fields.append(gap - 1)
        entries.append(pos)
        prev = pos
    return np.asarray(fields, np.int64), np.asarray(entries, np.int64)


def _values_section(values: np.ndarray, rows: np.ndarray | None, huffman: bool) -> tuple[int, bytes] | None:
    """The cheapest codebook encoding of ``values`` (float32): per layer, or per row (output channel)."""
    best = None
    uniq, inverse = np.unique(values, return_inverse=True)
    if len(uniq) <= _MAX_CODEBOOK:
        bits = _bits_for(len(uniq))
        body = struct.pack("<H", len(uniq)) + uniq.astype("<f4").tobytes()
        body += _stream(inverse.astype(np.int64), bits, len(uniq), huffman)
        best = (_LAYER_BOOK, body)
    if rows is not None and len(values):
        n_rows = int(rows.max()) + 1
        books, indices = [], np.empty(len(values), np.int64)
        ok = True
        for r in range(n_rows):
            sel = rows == r
            u, inv = np.unique(values[sel], return_inverse=True)
            if len(u) > _MAX_CHANNEL_CODEBOOK:
                ok = False
                break
            books.append(u)
            indices[sel] = inv
        if ok:
            size = max(1, max(len(b) for b in books))
            table = np.zeros((n_rows, size), np.float32)
            for r, b in enumerate(books):
                table[r, : len(b)] = b
            body = struct.pack("<IH", n_rows, size) + table.astype("<f4").tobytes()
            body += _stream(indices, _bits_for(size), size, huffman)
            if best is None or len(body) < len(best[1]):
                best = (_CHANNEL_BOOK, body)
    return best


def _encode_tensor(name: str, tensor: torch.Tensor, index_bits: int | None, huffman: bool) -> bytes:
    head = struct.pack("<H", len(name.encode())) + name.encode()
    shape = struct.pack("<B", tensor.dim()) + struct.pack(f"<{tensor.dim()}I", *tensor.shape)
    if index_bits is None or tensor.dtype != torch.float32 or tensor.dim() < 2:
        arr = tensor.detach().cpu().contiguous()
        code = _DTYPE_CODES.get(arr.dtype)
        if code is None:
            arr, code = arr.float(), 0
        raw = arr.numpy().tobytes()
        return head + struct.pack("<B", _RAW) + shape + struct.pack("<BI", code, len(raw)) + raw
    w = tensor.detach().cpu().float().numpy()
    flat = w.reshape(-1)
    per_row = int(np.prod(w.shape[1:]))
    candidates = []
    # dense, raw float
    candidates.append(
        struct.pack("<B", _DENSE) + shape + struct.pack("<B", _FLOAT) + flat.astype("<f4").tobytes()
    )
    # dense, codebook
    rows = np.arange(len(flat)) // per_row
    section = _values_section(flat, rows, huffman)
    if section is not None:
        candidates.append(struct.pack("<B", _DENSE) + shape + struct.pack("<B", section[0]) + section[1])
    # sparse: gap fields, then the values (fillers hold 0)
    if np.count_nonzero(flat) < len(flat):
        fields, entries = _sparse_entries(flat, index_bits)
        values = flat[entries].astype(np.float32)
        values[flat[entries] == 0] = 0.0
        header = struct.pack("<B", _SPARSE) + shape + struct.pack("<BI", index_bits, len(fields))
        index_part = _stream(fields, index_bits, 1 << index_bits, huffman)
        candidates.append(header + index_part + struct.pack("<B", _FLOAT) + values.astype("<f4").tobytes())
        section = _values_section(values, entries // per_row, huffman)
        if section is not None:
            candidates.append(header + index_part + struct.pack("<B", section[0]) + section[1])
    return head + min(candidates, key=len)


def _decode_values(data: bytes, offset: int, count: int, rows: np.ndarray) -> tuple[np.ndarray, int]:
    mode = data[offset]
    offset += 1
    if mode == _FLOAT:
        values = np.frombuffer(data[offset : offset + 4 * count], "<f4").astype(np.float32)
        return values, offset + 4 * count
    if mode == _LAYER_BOOK:
        (size,) = struct.unpack_from("<H", data, offset)
        offset += 2
        book = np.frombuffer(data[offset : offset + 4 * size], "<f4")
        offset += 4 * size
        idx, offset = _read_stream(data, offset, count, _bits_for(size), size)
        return book[idx].astype(np.float32), offset
    n_rows, size = struct.unpack_from("<IH", data, offset)
    offset += 6
    table = np.frombuffer(data[offset : offset + 4 * n_rows * size], "<f4").reshape(n_rows, size)
    offset += 4 * n_rows * size
    idx, offset = _read_stream(data, offset, count, _bits_for(size), size)
    return table[rows, idx].astype(np.float32), offset


# ---- whole models -------------------------------------------------------------------------------


def _index_bits(model: nn.Module) -> dict[str, int]:
    bits = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            bits[f"{name}.weight" if name else "weight"] = CONV_INDEX_BITS
        elif isinstance(m, nn.Linear):
            bits[f"{name}.weight" if name else "weight"] = FC_INDEX_BITS
    return bits


def pack_state(model: nn.Module, *, huffman: bool = False) -> bytes:
    """The model's state_dict in the Deep Compression container (see the module docstring).

    Conv and linear weights get the cheapest of the four encodings; every other tensor is raw.
    With ``huffman`` the gap and codebook-index streams are Huffman-coded.
    """
    bits = _index_bits(model)
    state = model.state_dict()
    out = [MAGIC, struct.pack("<I", len(state))]
    for name, tensor in state.items():
        out.append(_encode_tensor(name, tensor, bits.get(name), huffman))
    return b"".join(out)


def packed_size(model: nn.Module, *, huffman: bool = False) -> int:
    """``len(pack_state(model, huffman=huffman))``: bytes of the packed model."""
    return len(pack_state(model, huffman=huffman))


def unpack_state(data: bytes) -> dict[str, torch.Tensor]:
    """Read a :func:`pack_state` container back into a state_dict."""
    if not data.startswith(MAGIC):
        raise ModelFileError("not a slimforge Deep Compression container (bad magic)")
    offset = len(MAGIC)
    (count,) = struct.unpack_from("<I", data, offset)
    offset += 4
    state: dict[str, torch.Tensor] = {}
    for _ in range(count):
        (n,) = struct.unpack_from("<H", data, offset)
        offset += 2
        name = data[offset : offset + n].decode()
        offset += n
        kind, ndim = data[offset], data[offset + 1]
        offset += 2
        shape = struct.unpack_from(f"<{ndim}I", data, offset)
        offset += 4 * ndim
        numel = int(np.prod(shape)) if ndim else 1
        per_row = int(np.prod(shape[1:])) if ndim > 1 else 1
        if kind == _RAW:
            code, nbytes = struct.unpack_from("<BI", data, offset)
            offset += 5
            dtype = _DTYPES[code]
            np_dtype = torch.empty(0, dtype=dtype).numpy().dtype
            arr = np.frombuffer(data[offset : offset + nbytes], np_dtype).copy()
            offset += nbytes
            state[name] = torch.from_numpy(arr).reshape(shape)
        elif kind == _DENSE:
            values, offset = _decode_values(data, offset, numel, np.arange(numel) // per_row)
            state[name] = torch.from_numpy(values.copy()).reshape(shape)
        else:
            index_bits, entries = struct.unpack_from("<BI", data, offset)
            offset += 5
            fields, offset = _read_stream(data, offset, entries, index_bits, 1 << index_bits)
            positions = np.cumsum(fields + 1) - 1
            values, offset = _decode_values(data, offset, entries, positions // per_row)
            flat = np.zeros(numel, np.float32)
            flat[positions] = values
            state[name] = torch.from_numpy(flat).reshape(shape)
    return state


def has_packable_weights(model: nn.Module, *, min_sparsity: float = 0.1) -> bool:
    """Whether some conv/linear weight is sparse (``min_sparsity`` zeros) or shares few values."""
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.numel() > _MAX_CODEBOOK:
            w = m.weight.detach()
            if float((w == 0).float().mean()) >= min_sparsity or torch.unique(w).numel() <= _MAX_CODEBOOK:
                return True
    return False
