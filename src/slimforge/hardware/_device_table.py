"""A device table CSV as a device (``table:FILE``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import nn

from slimforge.errors import InvalidInputError, SlimforgeError
from slimforge.hardware._device_base import Device, MeasureSettings
from slimforge.hardware._device_records import DeviceError, DeviceInfo, DeviceMeasurement, PreparedModel

__all__ = ["TableDevice"]


class TableDevice(Device):
    """A device table CSV as a device (``table:FILE``): answers for the architectures of its space.

    The table is one row per architecture (``index,arch,latency_ms[,energy_mj]``), e.g. the
    HW-NAS-Bench Raspberry Pi 5 tables. ``measure`` takes an architecture string or a genome of
    the table's space and refuses anything else (an ``.onnx`` file, a module) with a clear message.

    Args:
        path: the CSV file.
        space: registry name of the space of its ``arch`` column (``nb201``).
    """

    kind = "table"
    takes_argument = True
    cacheable = False

    def __init__(self, path: str | os.PathLike, space: str = "nb201") -> None:
        from slimforge.hardware.tables import read_device_table

        if not str(path):
            raise InvalidInputError("device table: give the CSV file, e.g. --device table:pi5.csv")
        self.path = Path(path)
        self.table = read_device_table(self.path, space)

    @property
    def spec(self) -> str:
        return f"table:{self.path}"

    def describe(self) -> DeviceInfo:
        has = "latency and energy" if self.table.energy_mj is not None else "latency"
        return DeviceInfo(
            kind=self.kind,
            name=self.spec,
            note=f"{has} of {len(self.table)} {self.table.space} architectures read from {self.path}",
        )

    def _prepare(
        self, model: Any, shape: tuple[int, ...] | None, onnx_path: Path, need_hash: bool
    ) -> PreparedModel:
        from slimforge.spaces import get_space

        space = get_space(self.table.space)
        refusal = (
            f"device {self.spec} answers only for {self.table.space} architectures (an architecture string "
            f"such as {self.table.arch[0]!r} or a {space.num_genes}-gene genome)"
        )
        if isinstance(model, (nn.Module, Path)) or (
            isinstance(model, str) and model.lower().endswith(".onnx")
        ):
            raise InvalidInputError(
                f"{refusal}; {_describe_model(model)} is not one: measure it on local-cpu"
            )
        read = space.from_string if isinstance(model, str) else space.validate
        try:
            genome = read(model)
        except SlimforgeError as exc:
            raise InvalidInputError(f"{refusal}; {model!r} is not one ({exc})") from None
        label = model if isinstance(model, str) else space.to_string(genome)
        return PreparedModel(label, shape, genome=genome)

    def _measure(self, models: Sequence[PreparedModel], settings: MeasureSettings) -> list[DeviceMeasurement]:
        info = self.describe()
        out = []
        for m in models:
            assert m.genome is not None
            try:
                row = self.table.row(m.genome)
            except SlimforgeError as exc:
                raise DeviceError(str(exc)) from None
            energy = None if self.table.energy_mj is None else float(self.table.energy_mj[row])
            out.append(
                DeviceMeasurement(
                    device=self.spec,
                    device_info=info,
                    model=m.label,
                    model_sha256=None,
                    input_shape=m.input_shape,
                    threads=None,
                    precision=None,
                    source="table",
                    latency_ms=float(self.table.latency_ms[row]),
                    latency_ms_iqr=None,
                    stable=None,
                    latency=None,
                    energy_mj=energy,
                    # The analytic model needs the network, which a table device does not run.
                    energy_source=f"table {self.path.name}" if energy is not None else "not in the table",
                )
            )
        return out


def _describe_model(model: Any) -> str:
    if isinstance(model, nn.Module):
        return f"a PyTorch {type(model).__name__} model"
    return f"the file {str(model)!r}"
