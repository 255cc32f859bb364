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
from slimforge.hardware._lut_table import (
    _PART_ORDER,
    LUT_FORMAT,
    STATISTICS,
    LatencyTable,
    LutEntry,
    LutError,
)
from slimforge.hardware.input_shape import format_shape, parse_input_shape
from slimforge.hardware.latency import LatencyProtocol
from slimforge.io import progress_bar

__all__ = [
    "CALIBRATION_FORMS",
    "LUT_PROTOCOL",
    "build_lut",
    "calibrate_lut",
    "calibration_genomes",
    "fit_calibration",
    "load_average",
]

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


#: how :func:`calibrate_lut` maps the table's sums onto whole-network measurements.
CALIBRATION_FORMS = ("scale", "affine")


def calibrate_lut(
    table: LatencyTable,
    device: Any = "local-cpu",
    *,
    networks: int = 5,
    threads: int = 1,
    protocol: LatencyProtocol | None = None,
    seed: int = 0,
    progress: bool = False,
    form: str = "scale",
) -> LatencyTable:
    """The table calibrated against ``networks`` whole networks measured on ``device``.

    A layer timed alone runs slower than inside a whole network (colder caches, one more input
    copy), so the sums of a table come out a fairly constant share too high (about 11% on this
    project's CPU). ``form="scale"`` measures a few seeded networks whole, interleaved, and
    multiplies every sum by the median of measured / predicted over them.

    The share is not constant everywhere: on this project's CPU the scaled sums of the mbv2 space
    came out 5% high for the cheapest network and 8% low for the dearest, which is what decides
    whether a network derived just under a latency limit really meets it. ``form="affine"`` fits
    measured = scale x sum + offset by least squares over networks spread across the table's
    range: its cheapest and dearest networks and ``networks - 2`` seeded networks evenly spread in
    predicted latency between them (``networks >= 3``).

    The factors are written into the header (``calibration_scale_<statistic>``, and
    ``calibration_offset_ms_<statistic>`` for ``affine``), so a saved table predicts calibrated;
    a calibrated table is calibrated again from its raw sums.
    """
    from slimforge.hardware.devices import Device, get_device
    from slimforge.spaces import get_space

    _check_form(form)
    least = 3 if form == "affine" else 1
    if isinstance(networks, bool) or not isinstance(networks, int) or networks < least:
        what = "at least one network" if least == 1 else "at least 3 networks for an affine fit"
        raise InvalidInputError(f"calibration needs {what}, got {networks!r}")
    dev = device if isinstance(device, Device) else get_device(device)
    space = get_space(table.space, **table.space_options)
    genomes = calibration_genomes(table, networks, seed=seed, form=form)
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
    return fit_calibration(table, genomes, results, form=form)


def calibration_genomes(table: LatencyTable, networks: int, *, seed: int = 0, form: str = "scale") -> list:
    """The networks :func:`calibrate_lut` measures: ``networks`` seeded samples, or for ``affine`` a spread."""
    import numpy as np

    from slimforge.spaces import get_space

    space = get_space(table.space, **table.space_options)
    rng = np.random.default_rng(seed)
    if form == "scale":
        return [space.canonical(space.sample(rng)) for _ in range(networks)]
    return _spread_genomes(_raw(table), space, networks, rng)


def fit_calibration(
    table: LatencyTable, genomes: Sequence[Any], results: Sequence[Any], *, form: str = "scale"
) -> LatencyTable:
    """The table calibrated on whole-network ``results`` (``LatencyResult``, one per genome); see :func:`calibrate_lut`."""
    import dataclasses

    import numpy as np

    _check_form(form)
    if len(genomes) != len(results) or len(genomes) < (3 if form == "affine" else 1):
        raise InvalidInputError(
            f"calibration needs one result per network and enough networks for {form!r}, got "
            f"{len(genomes)} networks and {len(results)} results"
        )
    raw = _raw(table)
    header = dict(raw.header)
    for statistic in STATISTICS:
        predicted = raw.predict_many(genomes, statistic)
        measured = np.array(
            [
                r.latency_ms if statistic == "median" or r.latency is None else r.latency.latency_ms_min
                for r in results
            ]
        )
        if form == "scale":
            header[f"calibration_scale_{statistic}"] = repr(float(np.median(measured / predicted)))
            continue
        slope, offset = np.polyfit(predicted, measured, 1)
        if not slope > 0:
            raise LutError(
                f"the affine calibration of the {statistic} sums has slope {slope:.3g} over {len(genomes)} networks "
                "(measured latency does not grow with the table's); calibrate on a quieter machine, with more "
                "networks, or use form 'scale'"
            )
        header[f"calibration_scale_{statistic}"] = repr(float(slope))
        header[f"calibration_offset_ms_{statistic}"] = repr(float(offset))
    header["calibration_form"] = form
    header["calibration_networks"] = str(len(genomes))
    what = "times calibration_scale_<statistic>" + (
        " plus calibration_offset_ms_<statistic>" if form == "affine" else ""
    )
    header["note"] = raw.header.get("note", "") + "; " + what
    return dataclasses.replace(raw, header=header)


def _check_form(form: str) -> None:
    if form not in CALIBRATION_FORMS:
        raise InvalidInputError(f"calibration form {form!r} is not one of {', '.join(CALIBRATION_FORMS)}")


def _raw(table: LatencyTable) -> LatencyTable:
    """The table without its calibration (its plain sums)."""
    import dataclasses

    return dataclasses.replace(
        table, header={k: v for k, v in table.header.items() if not k.startswith("calibration")}
    )


def _spread_genomes(table: LatencyTable, space: Any, networks: int, rng: Any) -> list[tuple[int, ...]]:
    """The table's cheapest and dearest networks and ``networks - 2`` networks evenly spread between them.

    Random samples of a layer-wise space crowd the middle of its latency range (a sum of many
    independent choices), so each interior network is made for a target: a seeded sample whose
    layers, in a seeded order, take their cheapest (or, below the target, their dearest) choice
    until its prediction reaches the target.
    """
    import numpy as np

    cheapest, dearest = table.extreme_genome(), table.extreme_genome(dearest=True)
    low, high = table.predict(cheapest), table.predict(dearest)
    out = [space.canonical(cheapest), space.canonical(dearest)]
    for target in np.linspace(low, high, networks)[1:-1]:
        genome = space.canonical(space.sample(rng))
        down = table.predict(genome) > target
        towards = cheapest if down else dearest
        for i in rng.permutation(len(genome)):
            now = table.predict(genome)
            if (now <= target) if down else (now >= target):
                break
            genome = space.canonical(genome[:i] + (towards[i],) + genome[i + 1 :])
        out.append(genome)
    return list(dict.fromkeys(out))


def load_average() -> str:
    """This machine's 1/5/15-minute load averages, e.g. ``"3.20 2.90 2.10"`` (``n/a`` where unknown)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"
