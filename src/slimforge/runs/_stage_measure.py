"""Stage ``measure``: every exported file re-measured on every device, in one interleaved session.

Per device, the deployed files, their FP32 exports and the references' exports are measured in
the same process, round after round (:func:`slimforge.hardware.compare.compare_latencies`), so
that "deployed vs its own FP32" and "deployed vs the reference" are ratios taken under the same
load. A table device answers for the chosen architectures instead of files.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from slimforge.runs._context import RunContext
from slimforge.runs._outputs import DeviceMeasurements, MeasuredFile, MeasureOutput, RuntimeFigure
from slimforge.runs._stage import RunStage
from slimforge.runs.config import ConfigError, RunConfig

__all__ = ["MeasureStage", "local_runtime_kinds", "runtime_table"]

#: device kind -> the export format whose file it runs (the deployed precision, when exported).
_FORMAT_OF = {"local-cpu": "onnx", "local-openvino": "openvino", "local-litert": "tflite",
              "local-executorch": "executorch", "local-torch": "pytorch"}


class MeasureStage(RunStage):
    """Measure every exported model and reference on every device."""

    name = "measure"
    output = MeasureOutput

    def inputs(self, config: RunConfig) -> tuple[str, ...]:
        return ("retrain", "export")

    def settings(self, config: RunConfig) -> dict[str, Any]:
        return {"measure": asdict(config.measure), "devices": [asdict(d) for d in config.devices],
                "seed": config.seed}

    def check(self, config: RunConfig) -> None:
        kinds = local_runtime_kinds()
        for i, kind in enumerate(config.measure.runtimes):
            if kind != "installed" and kind not in kinds:
                raise ConfigError(
                    f"measure.runtimes[{i}] {kind!r} is not a local runtime device; use installed or one of "
                    f"{', '.join(kinds)}"
                )

    def _run(self, ctx: RunContext) -> MeasureOutput:
        from slimforge.runs._stage_search import make_device

        out = []
        for device in ctx.config.devices:
            dev = make_device(device)
            if dev.cacheable:
                out.append(self._files(ctx, device, dev))
            else:
                out.append(self._architectures(ctx, device, dev))
        return MeasureOutput(tuple(out), tuple(runtime_table(ctx)))

    def _files(self, ctx: RunContext, device: Any, dev: Any) -> DeviceMeasurements:
        from slimforge.hardware.compare import compare_latencies

        exported = ctx.output("export")
        files: list[tuple[str, str, str, int, float | None]] = []
        for m in exported.models:
            files.append((m.name, "deployed", m.onnx, m.bytes, m.accuracy_pct))
        for m in exported.models:
            files.append((m.name, "fp32", m.fp32_onnx, m.fp32_bytes, None))
        for r in exported.references:
            files.append((r.name, "fp32", r.fp32_onnx, r.fp32_bytes, r.fp32_accuracy_pct))
            if r.int8_onnx:
                files.append((r.name, "int8", r.int8_onnx, r.int8_bytes, r.int8_accuracy_pct))
        cfg = ctx.config.measure
        ctx.log(f"  measuring {len(files)} model file(s) on {device.spec}, {cfg.rounds} interleaved rounds")
        cmp = compare_latencies(
            dev,
            [ctx.path(f[2]) for f in files],
            ctx.input_shape,
            labels=[f"{f[0]} {f[1]}" for f in files],
            threads=cfg.threads,
            rounds=cfg.rounds,
            time_cap_s=cfg.time_cap_s,
            seed=ctx.config.seed,
        )
        info = dev.describe()
        return DeviceMeasurements(
            device=device.name,
            spec=device.spec,
            conditions=cmp.conditions,
            files=tuple(
                MeasuredFile(name, form, path, lat, iqr, size, acc)
                for (name, form, path, size, acc), lat, iqr in zip(files, cmp.latency_ms, cmp.latency_iqr_ms)
            ),
            per_round_ms=cmp.per_round_ms,
            runtime=info.runtime,
            runtime_version=info.runtime_version,
            threads=cfg.threads,
        )

    def _architectures(self, ctx: RunContext, device: Any, dev: Any) -> DeviceMeasurements:
        files = []
        for m in ctx.output("retrain").models:
            result = dev.measure(m.arch)
            files.append(MeasuredFile(m.name, "architecture", None, result.latency_ms, result.latency_ms_iqr,
                                      accuracy_pct=m.accuracy_pct, energy_mj=result.energy_mj))
        return DeviceMeasurements(device=device.name, spec=device.spec,
                                  conditions=f"figures of the device table {device.spec}", files=tuple(files))


def local_runtime_kinds(installed_only: bool = False) -> list[str]:
    """Device kinds that measure on this machine through a runtime (``local-*``); optionally installed ones."""
    from slimforge.hardware import DEVICES
    from slimforge.hardware.runtimes import installed_runtimes

    kinds = [k for k in DEVICES.list() if k.startswith("local-")]
    if not installed_only:
        return kinds
    have = set(installed_runtimes())
    return [k for k in kinds if DEVICES.get(k).runtime in have]


def runtime_table(ctx: RunContext) -> list[RuntimeFigure]:
    """Every deployed model on every runtime of ``measure.runtimes``, each runtime's models interleaved.

    A model exported in the runtime's format (``export.formats``) is measured as exported (its
    deployed precision); otherwise the runtime converts the PyTorch model (FP32) or, for OpenVINO
    and ONNX Runtime, runs the deployed ONNX file. A runtime that cannot run is a row with a note.
    """
    from slimforge.errors import SlimforgeError
    from slimforge.hardware import get_device
    from slimforge.hardware.compare import compare_latencies
    from slimforge.io import load_model

    wanted = ctx.config.measure.runtimes
    kinds = local_runtime_kinds(installed_only=True) if "installed" in wanted else list(dict.fromkeys(wanted))
    exported = ctx.output("export").models
    rows: list[RuntimeFigure] = []
    cfg = ctx.config.measure
    for kind in kinds:
        fmt = _FORMAT_OF.get(kind, "")
        items = []
        for m in exported:
            done = next((f for f in m.formats if f.format == fmt and f.path), None)
            if done is not None:
                items.append((m.name, f"{fmt} ({done.precision})", ctx.path(done.path), done.size_bytes))
            elif kind in ("local-cpu", "local-openvino"):
                items.append((m.name, f"onnx ({m.precision})", ctx.path(m.onnx), m.bytes))
            else:
                items.append((m.name, "PyTorch model, converted as FP32", load_model(ctx.path(m.model_dir or m.pytorch)), None))
        if not items:
            continue
        ctx.log(f"  measuring {len(items)} model(s) on {kind}")
        try:
            files = [i[2] for i in items]
            cmp = compare_latencies(get_device(kind), files if len(files) > 1 else files * 2, ctx.input_shape,
                                    threads=cfg.threads, rounds=cfg.rounds, time_cap_s=cfg.time_cap_s,
                                    seed=ctx.config.seed)
        except SlimforgeError as exc:
            rows += [RuntimeFigure(name, kind, form, None, None, size, note=str(exc)) for name, form, _, size in items]
            continue
        rows += [RuntimeFigure(name, kind, form, lat, iqr, size, cmp.conditions)
                 for (name, form, _, size), lat, iqr in zip(items, cmp.latency_ms, cmp.latency_iqr_ms)]
    return rows
