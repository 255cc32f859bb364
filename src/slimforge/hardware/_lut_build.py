"""Building a latency lookup table on a device, and calibrating its sums against whole networks."""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Sequence
from typing import Any

from torch import nn

from slimforge.errors import InvalidInputError
from slimforge.hardware._lut_parts import split_layerwise
from slimforge.hardware._lut_table import _PART_ORDER, LUT_FORMAT, STATISTICS, LatencyTable, LutEntry
from slimforge.hardware.input_shape import format_shape, parse_input_shape
from slimforge.hardware.latency import LatencyProtocol
from slimforge.io import progress_bar

__all__ = ["LUT_PROTOCOL", "build_lut", "calibrate_lut", "load_average"]

#: the default protocol of a table entry: shorter than a whole-model measurement (there are ~150).
LUT_PROTOCOL = LatencyProtocol(warmup_runs=10, warmup_s=0.3, min_runs=20, min_time_s=0.5, time_cap_s=3.0)


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
        progress: progress over the layers on stderr (a bar on a terminal, plain lines elsewhere).
    """
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
    with progress_bar(len(groups), f"LUT {space}", "part", enabled=progress) as bar:
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
        "space_repr": space_obj.network_key(),
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
