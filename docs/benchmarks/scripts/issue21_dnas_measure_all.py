"""Measure every derived network of the issue-21 DNAS runs (and the LUT's cheapest and dearest networks)
in one interleaved call on local-cpu, beside their LUT prediction and the run's limit."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from slimforge.hardware import LatencyProtocol, get_device, read_lut
from slimforge.spaces import get_space
from slimforge.supernet import load_arch_costs

SPACE = {"width": 0.35, "resolution": 32, "stage_depths": [2, 2, 2, 2, 2, 1]}
lut_path, logs = sys.argv[1], sys.argv[2:]
space = get_space("mbv2", **SPACE)
lut = read_lut(lut_path)
costs = load_arch_costs(f"lut:{lut_path}", space)
rows = []
for log in logs:
    for line in Path(log).read_text().splitlines():
        if line.startswith("{"):
            rows.append({"run": Path(log).stem, **json.loads(line)})
cheap = costs.cheapest()[0]
dear = tuple(max(range(len(r)), key=r.__getitem__) for r in costs.table)
rows += [{"run": "reference", "arch": space.to_string(g), "limit_ms": None} for g in (cheap, dear)]
models = [space.build(space.from_string(r["arch"]), num_classes=10) for r in rows]
before = " ".join(f"{v:.2f}" for v in os.getloadavg())
measured = get_device("local-cpu").measure_many(
    models, "1x3x32x32", threads=1, protocol=LatencyProtocol(), seed=0, energy=False
)
for r, m in zip(rows, measured):
    r["lut_ms"] = lut.predict(space.from_string(r["arch"]))
    r["measured_ms"] = m.latency_ms
    r["measured_iqr_ms"] = m.latency_ms_iqr
    r["stable"] = m.stable
    r["within_limit"] = None if r["limit_ms"] is None else m.latency_ms <= r["limit_ms"]
after = " ".join(f"{v:.2f}" for v in os.getloadavg())
out = {"load_average": f"{before} before, {after} after", "device_info": json.loads(measured[0].device_info.to_json(indent=None)), "protocol": LatencyProtocol().to_json(indent=None), "rows": rows}
print(json.dumps(out, indent=1))
