"""What ``slimforge bench spaces`` returns and writes: every finalist and zoo network, fronts, table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from slimforge.bench._common import BenchRecord, markdown_table

__all__ = ["SpacePoint", "SpacesResult"]


@dataclass(frozen=True)
class SpacePoint(BenchRecord):
    """One network of the final comparison: a space's front candidate or a hand-designed network.

    Attributes:
        group: the benchmark space's name (``mbv2-id``) or ``zoo``.
        label: the study's space label (``MobileSpace+I``) or the zoo network (``mobilenet_v2 0.35x``).
        arch: the architecture string (spaces) or the zoo name and width.
        num_params: parameters of the FP32 network.
        fp32_error_pct, int8_error_pct: top-1 error on the test part, FP32 (PyTorch) and INT8 (ONNX Runtime).
        latency_ms, latency_iqr_ms, stable: the INT8 network's final, interleaved measurement (median).
        proxy_error_pct, search_latency_ms: what the search saw (validation error with inherited
            weights, INT8 latency under the search protocol); None for zoo networks.
        on_front: non-dominated in (INT8 latency, INT8 error) within its space (zoo networks: True).
        weights: ``retrained`` (a front network trained standalone with the zoo networks' budget),
            ``inherited`` (its supernet weights, batch norm re-calibrated) or ``trained`` (zoo).
    """

    group: str
    label: str
    arch: str
    num_params: int
    fp32_error_pct: float
    int8_error_pct: float
    latency_ms: float
    latency_iqr_ms: float | None
    stable: bool | None
    proxy_error_pct: float | None = None
    search_latency_ms: float | None = None
    on_front: bool = True
    weights: str = "trained"


@dataclass(frozen=True)
class SpacesResult(BenchRecord):
    """Everything one ``bench spaces`` run produced.

    Attributes:
        config: the :class:`SpacesConfig` as a dict.
        environment: machine and software.
        measurement: how the final latencies were measured (conditions, protocol, the study's protocol).
        supernets: space -> supernet training result; zoo: zoo key -> training result.
        searches: space -> search summary (evaluations, front, wall time).
        points: every finalist and zoo network.
        comparisons: per (space, zoo network): whether the space's front dominates it, and the
            speed-up of the fastest front network at least as accurate.
        files: what was written, relative to the output directory.
        wall_s: wall time of this call.
    """

    nested: ClassVar[Mapping[str, type[BenchRecord]]] = {"points": SpacePoint}

    config: dict[str, Any]
    environment: dict[str, Any]
    measurement: dict[str, Any]
    supernets: dict[str, dict[str, Any]]
    zoo: dict[str, dict[str, Any]]
    searches: dict[str, dict[str, Any]]
    points: tuple[SpacePoint, ...]
    comparisons: tuple[dict[str, Any], ...]
    files: dict[str, str]
    wall_s: float

    def format_table(self) -> str:
        """Fronts and zoo networks (INT8 error vs latency) and the space-vs-network comparison (Markdown)."""
        cfg, m = self.config, self.measurement
        lines = [
            f"Spaces vs hand-designed networks, scale {cfg['scale']}, {cfg['epochs']} epochs each"
            + (
                f" (supernets {cfg['supernet_epochs']}, {cfg.get('lr_schedule', 'cosine')} schedule)"
                if cfg.get("supernet_epochs") is not None
                else ""
            )
            + f" on {cfg['data']}; front networks "
            + (
                "retrained standalone with the same budget"
                if cfg.get("retrain", True)
                else "with their supernet weights (batch norm re-calibrated)"
            )
            + f"; INT8 (ONNX Runtime static QDQ) latency on {m['conditions']}.",
            f"Latency protocol: {m['protocol_text']}",
            "",
        ]
        body = []
        for p in sorted(self.points, key=lambda p: (p.group == "zoo", p.group, p.latency_ms)):
            if not p.on_front:
                continue
            body.append(
                [
                    p.label,
                    f"{p.latency_ms:.3f}" + ("" if p.stable or p.stable is None else " (unstable)"),
                    f"{p.int8_error_pct:.2f}",
                    f"{p.fp32_error_pct:.2f}",
                    "–" if p.proxy_error_pct is None else f"{p.proxy_error_pct:.2f}",
                    f"{p.num_params / 1e6:.3f}M",
                    f"`{p.arch}`",
                ]
            )
        lines.append(
            markdown_table(
                [
                    "space / network",
                    "INT8 latency ms",
                    "INT8 error %",
                    "FP32 error %",
                    "search error % (supernet)",
                    "params",
                    "architecture",
                ],
                body,
            )
        )
        if self.comparisons:
            lines += ["", "Front vs each hand-designed network (same measurement):", ""]
            rows = [
                [
                    c["space_label"],
                    c["zoo_label"],
                    "yes" if c["dominates"] else "no",
                    "–" if c["speedup_at_equal_error"] is None else f"{c['speedup_at_equal_error']:.2f}x",
                ]
                for c in self.comparisons
            ]
            header = ["space", "network", "front dominates it", "speed-up at ≤ its error"]
            lines.append(markdown_table(header, rows))
        return "\n".join(lines)
