"""Latency lookup tables: every choice of every searchable layer measured in isolation, then summed.

For a layer-wise space (``mbv2``, ``shufflenet``) each gene picks one block for one layer, and
every choice of a layer maps the same input shape to the same output shape. So the latency of
a network is approximately the sum of its parts measured alone at their real input shapes: the
fixed stem, one entry per searchable layer (the chosen block; 0 for the identity) and the
fixed tail (head, pooling, classifier). This is the lookup table of ProxylessNAS (Cai et al.,
ICLR 2019) and FBNet (Wu et al., CVPR 2019). Each part measured alone pays the runtime's
per-call overhead once where the whole network pays it once, so the table also measures a
no-op model at the input (the ``call`` entry; ~5 us with ONNX Runtime) and subtracts it for
every part but one. It misses what happens across part boundaries (operator fusion, cache
reuse); the ``slimforge lut eval`` benchmark (:mod:`slimforge.hardware.lut_eval`) measures how
far off it is.

The table is a CSV whose header comment lines (``# key: value``) hold the space and the
measurement conditions, so a table is never used under other conditions unknowingly::

    # format: slimforge.lut/1
    # space: mbv2
    # space_options: {"resolution": 32}
    # device: local-cpu
    ...
    part,layer,choice,token,input_shape,latency_ms,latency_ms_iqr,latency_ms_min,num_runs,stable
    call,,,call,1x3x32x32,0.005,0.0003,0.0048,9000,true
    stem,,,stem,1x3x32x32,0.41,0.02,0.39,310,true
    layer,0,0,k3e3,1x16x32x32,0.52,0.03,0.50,280,true
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from slimforge.errors import InvalidInputError, SlimforgeError
from slimforge.hardware.input_shape import format_shape, parse_input_shape
from slimforge.hardware.latency import LatencyProtocol
from slimforge.io import JsonRecord, atomic_write_text

__all__ = [
    "LUT_FORMAT",
    "LUT_PROTOCOL",
    "STATISTICS",
    "LatencyTable",
    "LayerwiseParts",
    "LutEntry",
    "LutError",
    "build_lut",
    "calibrate_lut",
    "load_average",
    "read_lut",
    "space_from_table",
    "split_layerwise",
]

LUT_FORMAT = "slimforge.lut/1"
_COLUMNS = (
    "part",
    "layer",
    "choice",
    "token",
    "input_shape",
    "latency_ms",
    "latency_ms_iqr",
    "latency_ms_min",
    "num_runs",
    "stable",
)
_PART_ORDER = ("call", "stem", "layer", "tail")
#: what :meth:`LatencyTable.predict` can sum: the entries' medians (the contract) or their minima.
STATISTICS = ("median", "min")
_REQUIRED_KEYS = (
    "format",
    "space",
    "space_options",
    "device",
    "runtime",
    "threads",
    "input_shape",
    "num_classes",
)
#: the default protocol of a table entry: shorter than a whole-model measurement (there are ~150).
LUT_PROTOCOL = LatencyProtocol(warmup_runs=10, warmup_s=0.3, min_runs=20, min_time_s=0.5, time_cap_s=3.0)


class LutError(SlimforgeError, ValueError):
    """A lookup table that cannot be read or does not fit the genome asked about."""


# ---- splitting a network into its measured parts ---------------------------------------------


@dataclass(frozen=True, eq=False)
class LayerwiseParts:
    """A layer-wise space's networks cut into the parts a lookup table measures.

    Attributes:
        stem: the fixed layers before the first searchable one, and its input shape.
        layers: per gene, per choice, the block in isolation (None for the identity).
        layer_shapes: per gene, the input shape every choice of that layer receives.
        tokens: per gene, per choice, a short name of the choice.
        tail: the fixed layers after the last searchable one (head, pooling, classifier).
        tail_shape: the tail's input shape.
    """

    stem: nn.Module
    stem_shape: tuple[int, ...]
    layers: tuple[tuple[nn.Module | None, ...], ...]
    layer_shapes: tuple[tuple[int, ...], ...]
    tokens: tuple[tuple[str, ...], ...]
    tail: nn.Module
    tail_shape: tuple[int, ...]


class _Tail(nn.Module):
    """head → global pooling → flatten → dropout → classifier, as the layer-wise network runs them."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.head, self.pool, self.dropout, self.classifier = net.head, net.pool, net.dropout, net.classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(torch.flatten(self.pool(self.head(x)), 1)))


_PARTS = ("stem", "layers", "head", "pool", "dropout", "classifier")


def split_layerwise(space: Any, input_shape: Sequence[int] | str, num_classes: int = 10) -> LayerwiseParts:
    """Cut the networks of a layer-wise space into stem, per-layer choices and tail.

    Only the public ``build(genome)`` is used: one network per choice index ``c`` (every gene set
    to ``c``, or to 0 where it has fewer choices) gives each layer's block ``c`` as its
    ``layers[i]``. The input shape of each layer is recorded while running the networks, and the
    cut is checked: the parts run in sequence give exactly the network's output.

    Raises:
        InvalidInputError: for a space whose networks are not ``stem → layers → head → pool →
            classifier`` with one layer per gene (e.g. the cell-based nb201).
    """
    shape = parse_input_shape(input_shape)
    choices = list(space.num_choices)
    nets = []
    for c in range(max(choices)):
        net = space.build(tuple(c if c < n else 0 for n in choices), num_classes)
        missing = [p for p in _PARTS if not hasattr(net, p)]
        if missing or not isinstance(net.layers, nn.Sequential) or len(net.layers) != len(choices):
            raise InvalidInputError(
                f"space {space.name!r} does not split into per-layer choices (its networks lack "
                f"{', '.join(missing) or 'one layer per gene'}); "
                "lookup tables need a layer-wise space such as mbv2"
            )
        nets.append(net.eval())
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    seen: list[list[tuple[int, ...]]] = []
    with torch.no_grad():
        for net in nets:
            shapes = []
            h = net.stem(x)
            for layer in net.layers:
                shapes.append(tuple(h.shape))
                h = layer(h)
            tail = _Tail(net).eval()
            shapes.append(tuple(h.shape))
            if not torch.allclose(tail(h), net(x), rtol=1e-4, atol=1e-5):
                raise InvalidInputError(
                    f"space {space.name!r}: its networks do not run "
                    "stem → layers → head → pool → classifier in "
                    "sequence, so a lookup table cannot be built from their parts"
                )
            seen.append(shapes)
    if any(s != seen[0] for s in seen):
        raise InvalidInputError(
            f"space {space.name!r}: the choices of a layer change its output shape; cannot tabulate"
        )
    layers, tokens = [], []
    for i, n in enumerate(choices):
        blocks = tuple(
            None if isinstance(nets[c].layers[i], nn.Identity) else nets[c].layers[i] for c in range(n)
        )
        layers.append(blocks)
        tokens.append(tuple(_token(space, nets, i, c) for c in range(n)))
    return LayerwiseParts(
        stem=nets[0].stem,
        stem_shape=shape,
        layers=tuple(layers),
        layer_shapes=tuple(seen[0][:-1]),
        tokens=tuple(tokens),
        tail=_Tail(nets[0]),
        tail_shape=seen[0][-1],
    )


def _token(space: Any, nets: list[nn.Module], layer: int, choice: int) -> str:
    # The space's string of a genome names every layer's choice when it is one token per gene.
    genome = tuple(choice if j == layer else 0 for j in range(space.num_genes))
    tokens = space.to_string(genome).split("-")
    return tokens[layer] if len(tokens) == space.num_genes else f"choice{choice}"


# ---- the table -------------------------------------------------------------------------------


@dataclass(frozen=True)
class LutEntry(JsonRecord):
    """One measured part: the stem, one choice of one layer, or the tail."""

    part: str
    layer: int | None
    choice: int | None
    token: str
    input_shape: tuple[int, ...]
    latency_ms: float
    latency_ms_iqr: float
    latency_ms_min: float
    num_runs: int
    stable: bool


@dataclass(frozen=True, eq=False)
class LatencyTable:
    """A latency lookup table of one space on one device, and the conditions it was measured under.

    Attributes:
        space: the space's registry name.
        space_options: constructor options of the space (``get_space(space, **space_options)``).
        header: every ``# key: value`` of the file (device, runtime, threads, input shape, ...).
        entries: the measured parts.
    """

    space: str
    space_options: dict[str, Any]
    header: dict[str, str]
    entries: tuple[LutEntry, ...]
    _fixed: tuple[LutEntry, ...] = field(init=False, repr=False)
    _call: LutEntry | None = field(init=False, repr=False)
    _layers: tuple[dict[int, LutEntry], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        width = 1 + max((e.layer for e in self.entries if e.part == "layer"), default=-1)
        layers: list[dict[int, LutEntry]] = [{} for _ in range(width)]
        for e in self.entries:
            if e.part == "layer":
                layers[e.layer][e.choice] = e  # type: ignore[index]
        object.__setattr__(self, "_fixed", tuple(e for e in self.entries if e.part in ("stem", "tail")))
        object.__setattr__(self, "_call", next((e for e in self.entries if e.part == "call"), None))
        object.__setattr__(self, "_layers", tuple(layers))

    @property
    def num_genes(self) -> int:
        """Genome length the table answers for."""
        return len(self._layers)

    @property
    def num_unstable(self) -> int:
        """Entries whose measurement stayed above the protocol's spread threshold."""
        return sum(not e.stable for e in self.entries)

    def predict(self, genome: Sequence[int], statistic: str = "median") -> float:
        """Predicted latency (ms) of a genome: fixed parts plus the chosen entry of each layer.

        Every part measured alone paid the runtime's per-call overhead (the ``call`` entry: a
        no-op model at the network's input) once, the whole network pays it once: so it is
        subtracted for every part but one.

        Args:
            genome: one choice index per layer.
            statistic: sum the entries' ``median`` (the measurement contract's statistic) or their
                ``min`` (closer to an idle machine's figure when the table was measured under load).
        """
        if statistic not in STATISTICS:
            raise InvalidInputError(f"statistic {statistic!r} is not one of {', '.join(STATISTICS)}")
        values = list(genome)
        if len(values) != self.num_genes:
            raise LutError(
                f"genome {tuple(values)!r} has {len(values)} genes; "
                f"this {self.space} table has {self.num_genes}"
            )
        parts = list(self._fixed)
        for i, choice in enumerate(values):
            try:
                entry = self._layers[i][int(choice)]
            except (KeyError, TypeError, ValueError):
                known = ", ".join(str(c) for c in sorted(self._layers[i]))
                raise LutError(
                    f"genome {tuple(values)!r}: layer {i} has no entry for choice {choice!r} (known: {known})"
                ) from None
            if entry.num_runs:  # the identity (0 runs) runs nothing and pays no call
                parts.append(entry)

        def figure(e: LutEntry) -> float:
            return e.latency_ms if statistic == "median" else e.latency_ms_min

        total = sum(figure(e) for e in parts)
        if self._call is not None:
            total -= (len(parts) - 1) * figure(self._call)
        return total * self.scale(statistic)

    @property
    def runtime(self) -> str:
        """The runtime the table was measured with (``onnxruntime``, ``litert``, ...)."""
        return self.header.get("runtime", "")

    def check_runtime(self, runtime: str, where: str = "the lookup table") -> None:
        """Raise a one-line :class:`LutError` unless the table was measured with ``runtime``.

        Latencies of one runtime say little about another's (their kernels and fusions differ),
        so a table is used only for the runtime it was measured with.
        """
        if self.runtime != runtime:
            device = self.header.get("device", "?")
            raise LutError(
                f"lookup table {where} was measured with {self.runtime or 'an unrecorded runtime'} "
                f"{self.header.get('runtime_version', '')} on {device}, not with {runtime}; build one for "
                f"{runtime} with `slimforge lut build --device {_device_for(runtime)} --out FILE`"
            )

    def scale(self, statistic: str = "median") -> float:
        """The calibration factor predictions are multiplied by (1.0 for an uncalibrated table)."""
        return float(self.header.get(f"calibration_scale_{statistic}", 1.0))

    def predict_many(self, genomes: Sequence[Sequence[int]], statistic: str = "median") -> np.ndarray:
        """:meth:`predict` of each genome, as a float64 array."""
        return np.asarray([self.predict(g, statistic) for g in genomes], dtype=np.float64)

    def to_csv(self) -> str:
        """The table as CSV text, header comments first."""
        out = io.StringIO()
        for key, value in self.header.items():
            out.write(f"# {key}: {value}\n")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(_COLUMNS)
        for e in self.entries:
            writer.writerow(
                [
                    e.part,
                    "" if e.layer is None else e.layer,
                    "" if e.choice is None else e.choice,
                    e.token,
                    format_shape(e.input_shape),
                    repr(e.latency_ms),
                    repr(e.latency_ms_iqr),
                    repr(e.latency_ms_min),
                    e.num_runs,
                    "true" if e.stable else "false",
                ]
            )
        return out.getvalue()

    def save(self, path: str | os.PathLike) -> Path:
        """Write the CSV atomically (unique temporary name, fsync, rename); returns the path."""
        return atomic_write_text(path, self.to_csv())


def read_lut(path: str | os.PathLike, runtime: str | None = None) -> LatencyTable:
    """Read a table written by :meth:`LatencyTable.save`.

    Args:
        path: the CSV file.
        runtime: the runtime the caller needs figures of (``litert``); a table measured with
            another is refused (:meth:`LatencyTable.check_runtime`). None accepts any.

    Raises:
        LutError: (one line, naming the file and the line) a missing file, header line or column,
            a malformed entry, or a table of another runtime.
    """
    path = Path(path)
    where = f"lookup table {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LutError(
            f"{where}: no such file; build one with `slimforge lut build --space mbv2 --out {path}`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LutError(f"{where} cannot be read ({exc})") from None
    header: dict[str, str] = {}
    body: list[str] = []
    for line in text.splitlines():
        if line.startswith("#"):
            key, sep, value = line[1:].partition(":")
            if sep:
                header[key.strip()] = value.strip()
        elif line.strip():
            body.append(line)
    missing = [k for k in _REQUIRED_KEYS if k not in header]
    if missing:
        raise LutError(
            f"{where}: missing header line(s) {', '.join(f'# {k}: ...' for k in missing)}; "
            "rebuild it with `slimforge lut build`"
        )
    if header["format"] != LUT_FORMAT:
        raise LutError(
            f"{where}: format {header['format']!r} is not {LUT_FORMAT!r}; rebuild it with this slimforge"
        )
    try:
        options = json.loads(header["space_options"])
    except json.JSONDecodeError:
        options = None
    if not isinstance(options, dict):
        raise LutError(f"{where}: space_options {header['space_options']!r} is not a JSON object")
    reader = csv.DictReader(body)
    columns = [c.strip() for c in reader.fieldnames or []]
    absent = [c for c in _COLUMNS if c not in columns]
    if absent:
        raise LutError(f"{where}: missing column(s) {', '.join(absent)} (expected {','.join(_COLUMNS)})")
    entries = []
    for number, row in enumerate(reader, start=2):
        entries.append(_entry(row, f"{where}: data line {number}"))
    if not entries:
        raise LutError(f"{where}: no entries")
    table = LatencyTable(header["space"], options, header, tuple(entries))
    for i, layer in enumerate(table._layers):
        if not layer:
            raise LutError(f"{where}: layer {i} has no entries")
    if not any(e.part == "stem" for e in entries) or not any(e.part == "tail" for e in entries):
        raise LutError(f"{where}: the stem or tail entry is missing")
    if sum(e.part == "call" for e in entries) > 1:
        raise LutError(f"{where}: more than one call entry")
    if runtime is not None:
        table.check_runtime(runtime, str(path))
    return table


def _entry(row: dict[str, str], where: str) -> LutEntry:
    try:
        part = row["part"].strip()
        if part not in _PART_ORDER:
            raise ValueError(f"part {part!r} is not one of {', '.join(_PART_ORDER)}")
        layer = int(row["layer"]) if part == "layer" else None
        choice = int(row["choice"]) if part == "layer" else None
        figures = [float(row[c]) for c in ("latency_ms", "latency_ms_iqr", "latency_ms_min")]
        if not all(math.isfinite(v) and v >= 0 for v in figures):
            raise ValueError(
                f"latency_ms / latency_ms_iqr / latency_ms_min {figures} must be finite and >= 0"
            )
        if (layer is not None and layer < 0) or (choice is not None and choice < 0):
            raise ValueError("layer and choice must be >= 0")
        stable = row["stable"].strip().lower()
        if stable not in ("true", "false"):
            raise ValueError(f"stable {row['stable']!r} is not true or false")
        return LutEntry(
            part=part,
            layer=layer,
            choice=choice,
            token=row["token"].strip(),
            input_shape=parse_input_shape(row["input_shape"]),
            latency_ms=figures[0],
            latency_ms_iqr=figures[1],
            latency_ms_min=figures[2],
            num_runs=int(row["num_runs"]),
            stable=stable == "true",
        )
    except (ValueError, TypeError, AttributeError, KeyError, SlimforgeError) as exc:
        raise LutError(f"{where}: {exc}") from None


def _device_for(runtime: str) -> str:
    return {"onnxruntime": "local-cpu", "torch": "local-torch"}.get(runtime, f"local-{runtime}")


def space_from_table(table: LatencyTable) -> Any:
    """The space a table was built for (``get_space(table.space, **table.space_options)``)."""
    from slimforge.spaces import get_space

    return get_space(table.space, **table.space_options)


# ---- building --------------------------------------------------------------------------------


def build_lut(
    space: str,
    device: Any = "local-cpu",
    *,
    space_options: dict[str, Any] | None = None,
    input_shape: Sequence[int] | str | None = None,
    threads: int = 1,
    num_classes: int = 10,
    protocol: LatencyProtocol | None = None,
    seed: int = 0,
    progress: bool = False,
) -> LatencyTable:
    """Measure every part of a layer-wise space on a device; returns the table (save it with ``.save``).

    Args:
        space: the space's registry name (``mbv2``).
        device: a :class:`~slimforge.hardware.devices.Device` or its spec (``local-cpu``,
            ``local-torch``, ``local-litert``, ``local-openvino``, ``local-executorch``,
            ``remote:URL``); table devices cannot measure parts. The table's header records the
            device's runtime, version and delegate, and :func:`read_lut` refuses it for another runtime.
        space_options: the space's constructor options (``{"resolution": 32}``), kept in the header.
        input_shape: the network input; the space's own ``input_shape`` when None.
        threads: intra-op threads.
        num_classes: classifier width of the networks (the tail depends on it).
        protocol: per-part protocol; :data:`LUT_PROTOCOL` when None.
        seed: seeds the random inputs.
        progress: a tqdm bar over the layers on stderr.
    """
    from tqdm import tqdm

    from slimforge.hardware.devices import Device, get_device
    from slimforge.spaces import get_space

    options = dict(space_options or {})
    space_obj = get_space(space, **options)
    dev = device if isinstance(device, Device) else get_device(device)
    if not dev.cacheable:
        raise InvalidInputError(
            f"device {dev.spec} reads figures from a table and cannot measure parts; use local-cpu"
        )
    if input_shape is None:
        input_shape = getattr(space_obj, "input_shape", None)
        if input_shape is None:
            raise InvalidInputError(
                f"space {space!r} has no default input shape; give one, e.g. --input 1x3x32x32"
            )
    shape = parse_input_shape(input_shape)
    protocol = protocol if protocol is not None else LUT_PROTOCOL
    parts = split_layerwise(space_obj, shape, num_classes)
    info = dev.describe()
    load_before = load_average()
    entries: list[LutEntry] = []

    def measure(modules: list[nn.Module], at: tuple[int, ...]) -> list[Any]:
        return dev.measure_many(modules, at, threads=threads, protocol=protocol, seed=seed, energy=False)

    groups = [
        ("call", None, [nn.Flatten()], shape),  # a no-op at the input: the runtime's per-call overhead
        ("stem", None, [parts.stem], parts.stem_shape),
        ("tail", None, [parts.tail], parts.tail_shape),
    ]
    groups += [("layer", i, list(blocks), parts.layer_shapes[i]) for i, blocks in enumerate(parts.layers)]
    with tqdm(
        total=len(groups),
        desc=f"LUT {space}",
        unit="part",
        file=sys.stderr,
        disable=not progress,
        leave=False,
    ) as bar:
        for part, layer, modules, at in groups:
            bar.set_postfix_str(part if layer is None else f"layer {layer}")
            real = [m for m in modules if m is not None]
            # Each layer's choices are measured in one interleaved call: same load for all.
            results = iter(measure(real, at)) if real else iter(())
            for c, module in enumerate(modules):
                if module is None:  # the identity: no operator runs
                    entries.append(
                        LutEntry(part, layer, c, parts.tokens[layer][c], at, 0.0, 0.0, 0.0, 0, True)
                    )
                    continue
                r = next(results)
                token = part if layer is None else parts.tokens[layer][c]
                entries.append(
                    LutEntry(
                        part,
                        layer,
                        None if layer is None else c,
                        token,
                        at,
                        r.latency_ms,
                        r.latency_ms_iqr or 0.0,
                        r.latency.latency_ms_min if r.latency else r.latency_ms,
                        r.latency.num_runs if r.latency else 1,
                        bool(r.stable),
                    )
                )
            bar.update(1)
    entries.sort(key=lambda e: (_PART_ORDER.index(e.part), e.layer or 0, e.choice or 0))
    header = {
        "format": LUT_FORMAT,
        "space": space,
        "space_options": json.dumps(options, sort_keys=True),
        "space_repr": repr(space_obj),
        "num_classes": str(num_classes),
        "input_shape": format_shape(shape),
        "device": dev.spec,
        "device_info": info.to_json(indent=None),
        "runtime": str(info.runtime),
        "runtime_version": str(info.runtime_version),
        **({"delegate": str(info.delegate)} if info.delegate else {}),
        "threads": str(threads),
        "protocol": protocol.to_json(indent=None),
        "statistic": "median",
        "unstable_entries": str(sum(not e.stable for e in entries)),
        "load_average": f"{load_before} before, {load_average()} after",
        "created_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "note": (
            "predicted latency = stem + tail + the chosen entry of every layer (identity = 0), "
            "minus one call overhead per part beyond the first"
        ),
    }
    return LatencyTable(space, options, header, tuple(entries))


def calibrate_lut(
    table: LatencyTable,
    device: Any = "local-cpu",
    *,
    networks: int = 5,
    threads: int = 1,
    protocol: LatencyProtocol | None = None,
    seed: int = 0,
    progress: bool = False,
) -> LatencyTable:
    """The table with a calibration factor from ``networks`` whole networks measured on ``device``.

    A layer timed alone runs slower than inside a whole network (colder caches, one more input
    copy), so the sums of a table come out a fairly constant share too high (about 11% on this
    project's CPU). Measuring a few seeded networks whole, interleaved, fixes that share: the factor
    of each statistic is the median of measured / predicted over them. It is written into the
    header (``calibration_scale_median`` / ``_min``), so a saved table predicts calibrated.
    """
    import dataclasses

    import numpy as np

    from slimforge.hardware.devices import Device, get_device
    from slimforge.spaces import get_space

    if isinstance(networks, bool) or not isinstance(networks, int) or networks < 1:
        raise InvalidInputError(f"calibration needs at least one network, got {networks!r}")
    dev = device if isinstance(device, Device) else get_device(device)
    space = get_space(table.space, **table.space_options)
    rng = np.random.default_rng(seed)
    genomes = [space.canonical(space.sample(rng)) for _ in range(networks)]
    num_classes = int(table.header.get("num_classes", 10))
    models = [space.build(g, num_classes) for g in genomes]
    results = dev.measure_many(
        models,
        table.header["input_shape"],
        threads=threads,
        protocol=protocol if protocol is not None else LatencyProtocol(),
        seed=seed,
        energy=False,
        progress=progress,
    )
    raw = dataclasses.replace(table, header={k: v for k, v in table.header.items() if not k.startswith("calibration")})
    header = dict(raw.header)
    for statistic in STATISTICS:
        predicted = raw.predict_many(genomes, statistic)
        measured = np.array(
            [r.latency_ms if statistic == "median" or r.latency is None else r.latency.latency_ms_min for r in results]
        )
        header[f"calibration_scale_{statistic}"] = repr(float(np.median(measured / predicted)))
    header["calibration_networks"] = str(networks)
    header["note"] = raw.header.get("note", "") + "; times calibration_scale_<statistic>"
    return dataclasses.replace(raw, header=header)


def load_average() -> str:
    """This machine's 1/5/15-minute load averages, e.g. ``"3.20 2.90 2.10"`` (``n/a`` where unknown)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"
