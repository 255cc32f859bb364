"""What ``slimforge bench codesign`` returns and writes: the study's table rows, and the rest as JSON."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from slimforge.bench._common import BenchRecord, markdown_table

__all__ = ["CodesignResult", "CodesignRow"]


@dataclass(frozen=True)
class CodesignRow(BenchRecord):
    """One row of the study's table on one device.

    Attributes:
        device: the device table's label (its file name without ``device_`` and ``.csv``).
        name: the study's row name (``DARTS``, ``GDAS+NSGA``, ``SPOS+WSEA``, ...).
        method: the supernet training method.
        algorithm: the search algorithm, or None for a method's own derived architecture.
        arch: the architecture (NAS-Bench-201 string), or None when nothing qualified.
        rule: how the architecture was chosen.
        accuracy_pct: its *true* accuracy (the accuracy table: 200-epoch CIFAR-10 test accuracy).
        latency_ms, energy_mj: the device table's figures (energy None when the table has none).
        proxy_accuracy_pct: its inherited-weight accuracy on the held-out images, where the
            method's supernet was searched (None otherwise).
        num_evaluations: the search's distinct evaluations (None for a derived architecture).
    """

    device: str
    name: str
    method: str
    algorithm: str | None
    arch: str | None
    rule: str
    accuracy_pct: float | None
    latency_ms: float | None
    energy_mj: float | None
    proxy_accuracy_pct: float | None = None
    num_evaluations: int | None = None

    def cell(self) -> str:
        """``accuracy / latency / energy`` as the study prints it."""
        if self.arch is None or self.accuracy_pct is None:
            return "no architecture"
        energy = "–" if self.energy_mj is None else f"{self.energy_mj:.3f}"
        return f"{self.accuracy_pct:.2f} / {self.latency_ms:.3f} / {energy}"


@dataclass(frozen=True)
class CodesignResult(BenchRecord):
    """Everything one ``bench codesign`` run produced.

    Attributes:
        config: the :class:`CodesignConfig` as a dict.
        environment: machine, software and the device the supernets trained on.
        devices: device label -> table path.
        supernets: method -> its training result (``TrainResult.to_dict()`` + ``train_s_total``).
        rows: the study's table, device by device.
        searches: one summary per (supernet, device, algorithm): settings, evaluations, front size,
            calibration, wall time.
        proxy_vs_true: per (supernet, device): the supernet-estimated front and the true error of
            the same architectures, with the gap per latency third.
        proxy_ranking: per searched supernet: Kendall tau / Spearman rho of proxy against true
            accuracy over every architecture it evaluated.
        files: what was written (JSON, Markdown table, PNG figures), relative to the output directory.
        wall_s: wall time of this call.
    """

    nested: ClassVar[Mapping[str, type[BenchRecord]]] = {"rows": CodesignRow}

    config: dict[str, Any]
    environment: dict[str, Any]
    devices: dict[str, str]
    supernets: dict[str, dict[str, Any]]
    rows: tuple[CodesignRow, ...]
    searches: tuple[dict[str, Any], ...]
    proxy_vs_true: tuple[dict[str, Any], ...]
    proxy_ranking: dict[str, dict[str, Any]]
    files: dict[str, str]
    wall_s: float

    def format_table(self) -> str:
        """The study's table (Tables 5-3 to 5-6 layout), one Markdown table per device."""
        cfg, env = self.config, self.environment
        where = env["train_device"] + (f" ({env['gpu']})" if env.get("gpu") else f" ({env['cpu_model']})")
        lines = [
            f"Supernets: {', '.join(m.upper() for m in cfg['methods'])} trained {cfg['epochs']} epochs on "
            f"{cfg['data']} (NB201 network {cfg['channels']} channels, {cfg['cells_per_stage']} cells per "
            f"stage; val_fraction {cfg['val_fraction']}) on {where}; preset {cfg['preset']}.",
            "Cells: CIFAR-10 accuracy % (true, from the accuracy table) / latency ms / energy mJ "
            "(device table).",
        ]
        for device, path in self.devices.items():
            rows = [r for r in self.rows if r.device == device]
            body = [
                [
                    r.name,
                    r.cell(),
                    "–" if r.proxy_accuracy_pct is None else f"{r.proxy_accuracy_pct:.2f}",
                    "–" if r.num_evaluations is None else str(r.num_evaluations),
                    f"`{r.arch}`" if r.arch else "–",
                ]
                for r in rows
            ]
            lines += [
                "",
                f"**{device}** ({path})",
                "",
                markdown_table(["method", "CIFAR-10", "proxy acc. %", "evals", "architecture"], body),
            ]
        if self.proxy_vs_true:
            title = "Proxy (supernet) vs true error along the supernet-estimated front, error points:"
            lines += ["", title, ""]
            body = []
            for gap in self.proxy_vs_true:
                thirds = gap["mean_gap_pp_by_latency_third"]
                body.append(
                    [
                        gap["supernet"].upper(),
                        gap["device"],
                        str(len(gap["front"])),
                        _pp(gap["mean_gap_pp"]),
                        " / ".join(_pp(v) for v in thirds),
                    ]
                )
            lines.append(
                markdown_table(
                    ["supernet", "device", "front", "mean proxy − true", "low / mid / high latency third"],
                    body,
                )
            )
        if self.proxy_ranking:
            lines += [""] + [
                f"{m.upper()} supernet ranks {v['num_archs']} evaluated architectures with Kendall τ "
                f"{_num(v['kendall_tau'])}, Spearman ρ {_num(v['spearman_rho'])} against true accuracy."
                for m, v in self.proxy_ranking.items()
            ]
        return "\n".join(lines)


def _pp(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"
