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
from slimforge.runs._outputs import DeviceMeasurements, MeasuredFile, MeasureOutput
from slimforge.runs._stage import RunStage
from slimforge.runs.config import RunConfig

__all__ = ["MeasureStage"]


class MeasureStage(RunStage):
    """Measure every exported model and reference on every device."""

    name = "measure"
    output = MeasureOutput

    def inputs(self, config: RunConfig) -> tuple[str, ...]:
        return ("retrain", "export")

    def settings(self, config: RunConfig) -> dict[str, Any]:
        return {"measure": asdict(config.measure), "devices": [asdict(d) for d in config.devices],
                "seed": config.seed}

    def _run(self, ctx: RunContext) -> MeasureOutput:
        from slimforge.runs._stage_search import make_device

        out = []
        for device in ctx.config.devices:
            dev = make_device(device)
            if dev.cacheable:
                out.append(self._files(ctx, device, dev))
            else:
                out.append(self._architectures(ctx, device, dev))
        return MeasureOutput(tuple(out))

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
