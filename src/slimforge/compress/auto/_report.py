"""Plain-text tables of the automated compression searches (what ``slimforge compress --auto`` prints)."""

from __future__ import annotations

from collections.abc import Sequence

from slimforge.compress.auto._results import AutoRow

__all__ = ["format_auto_bits", "format_auto_prune", "format_joint"]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _rows(rows: Sequence[AutoRow], cost_label: str, extra: str | None = None) -> list[str]:
    head = (
        f"{'model':<28} {'est.%':>7} {'val%':>7} {'test%':>7} {'MACs':>12} {'bytes':>11} "
        f"{cost_label:>12} {'ms':>7} ok"
    )
    if extra:
        head += f"  {extra}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lat = "" if r.latency_ms is None else f"{r.latency_ms:.3f}"
        line = (
            f"{r.name[:28]:<28} {_pct(r.estimate_accuracy_pct):>7} {_pct(r.val_accuracy_pct):>7} "
            f"{_pct(r.test_accuracy_pct):>7} {r.macs:>12,} {r.bytes:>11,} {r.cost:>12.4g} {lat:>7} "
            f"{'yes' if r.within_budget else 'NO'}"
        )
        if extra == "avg bits" and r.avg_weight_bits is not None:
            line += f"  {r.avg_weight_bits:.2f}"
        lines.append(line)
    return lines


def _front(points: Sequence, label: str, limit: int = 8) -> list[str]:
    if not points:
        return [f"{label}: no feasible point"]
    lines = [f"{label} ({len(points)} non-dominated, cheapest first; error % / cost / policy):"]
    for p in points[:limit]:
        lines.append(f"  {p.error:6.2f}  {p.cost:<12.4g} {p.policy}")
    if len(points) > limit:
        lines.append(f"  ... {len(points) - limit} more in the JSON")
    return lines


def _extras(result) -> list[str]:  # type: ignore[no-untyped-def]
    """Budget filling and the estimate's noise, where the result has them."""
    lines = []
    fill = getattr(result, "fill", None)
    if fill is not None:
        moved = ", ".join(f"{s.layer}->{s.value:g}" for s in fill.steps) or "nothing fitted"
        lines.append(
            f"budget filling: {fill.cost_before:.4g} -> {fill.cost_after:.4g} of {fill.bound:.4g} "
            f"({len(fill.steps)} step(s), {fill.evaluations} costed): {moved}"
        )
    for r in getattr(result, "reranked", ()):
        lines.append(
            f"re-ranked after filling: estimate {r.search_estimate_pct:.2f} -> {r.rerank_estimate_pct:.2f} "
            f"at {r.cost:.4g}: {r.policy}"
        )
    noise = getattr(result, "estimate_noise", None)
    if noise is not None:
        draws = ", ".join(f"{v:.2f}" for v in noise.values_pct)
        lines.append(
            f"estimate noise on the chosen policy: +/- {noise.std_pct:.2f} points (other image draws "
            f"{draws}: sd {noise.draw_std_pct:.2f}; sampling error of its images {noise.sampling_se_pct:.2f})"
        )
    return lines


def format_auto_prune(result) -> str:  # type: ignore[no-untyped-def]
    """The pruning search's comparison table, chosen policy and front."""
    lines = [
        f"auto prune {result.model} on {result.data}: budget {result.budget} ({result.budget_metric} <= "
        f"{result.budget_bound:.4g}); criterion {result.criterion}; {result.algorithm}, "
        f"{result.num_evaluations} evaluations ({result.num_feasible} feasible) in {result.search_s:.0f} s",
        f"  {result.message}",
        f"  candidates scored by {result.estimate}; final models finetuned {result.finetune_epochs} epoch(s)",
        "",
        *_rows(result.rows, result.budget_metric),
        "",
        "policy (group: ratio): " + ", ".join(f"{k}={v:g}" for k, v in result.policy.items()),
    ]
    skipped = [s for s in result.skipped if not s.reason.startswith("output layer")]
    if skipped:
        lines.append("skipped: " + "; ".join(f"{s.layer} ({s.reason})" for s in skipped))
    if result.sensitivity:
        lines.append(
            "most sensitive per MAC (drop when pruned alone): "
            + ", ".join(f"{s.layer} ({s.estimate_drop_pct:+.1f})" for s in result.sensitivity[:5])
        )
    lines += _extras(result)
    lines += _front(result.front, "front")
    if result.latency_conditions:
        lines.append(f"latency: {result.latency_conditions}")
    return "\n".join(lines)


def format_auto_bits(result) -> str:  # type: ignore[no-untyped-def]
    """The mixed-precision search's comparison table, chosen policy, sensitivity and front."""
    uniform = ", ".join(f"{b}-bit {v:,}" for b, v in result.uniform_bytes.items())
    lines = [
        f"auto bits {result.model} on {result.data}: budget {result.budget} "
        f"(bytes <= {result.budget_bound_bytes:,.0f}); "
        f"{result.quantizer} quantizer; {result.algorithm}, {result.num_evaluations} evaluations "
        f"({result.num_feasible} feasible) in {result.search_s:.0f} s",
        f"  {result.message}",
        f"  candidates scored by {result.estimate}; final models finetuned {result.finetune_epochs} epoch(s) "
        "(quantization-aware; with 0 epochs, PTQ and BN re-calibration)",
        f"  float32 {result.float_bytes:,} bytes; uniform: {uniform}",
        "",
        *_rows(result.rows, "bytes", "avg bits"),
        "",
        "policy (layer: bits): " + ", ".join(f"{k}={v}" for k, v in result.policy.items()),
        "most sensitive at {} bits: ".format(result.sensitivity[0].bits if result.sensitivity else "-")
        + ", ".join(f"{s.layer} (KL {s.output_kl:.2g})" for s in result.sensitivity[:5]),
    ]
    if result.skipped:
        lines.append("kept in float: " + "; ".join(f"{s.layer} ({s.reason})" for s in result.skipped))
    lines += _extras(result)
    if result.cost_note:
        lines.append(f"note: {result.cost_note}")
    lines += _front(result.front, "front")
    return "\n".join(lines)


def format_joint(result) -> str:  # type: ignore[no-untyped-def]
    """The joint search's comparison with the sequential baselines."""
    lines = [
        f"joint architecture + bit-width search on {result.supernet} ({result.data}): budget {result.budget} "
        f"({result.budget_metric} <= {result.budget_bound:.4g}); {result.algorithm}, "
        f"{result.num_evaluations} "
        f"evaluations ({result.num_feasible} feasible); {result.search_s:.0f} s with the baselines",
        f"  {result.message}",
        f"  scored by {result.estimate}",
        f"  cost: {result.cost_model}",
        "",
        *_rows(result.rows, result.budget_metric, "avg bits"),
        "",
        f"joint genome: {result.policy}",
    ]
    lines += _front(result.front, "joint front")
    for b in result.baseline_fronts:
        lines += _front(b.front, f"float-architecture front (cost at {b.bits} bits)", limit=4)
    return "\n".join(lines)
