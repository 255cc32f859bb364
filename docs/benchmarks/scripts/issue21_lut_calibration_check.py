"""Issue 21: does an affine LUT calibration predict the DNAS-derived networks' latency better than a scale?

    python docs/benchmarks/scripts/issue21_lut_calibration_check.py LUT MEASURE_ALL_JSON [AFFINE_NETWORKS] > out.json

Takes the 30 networks the FBNet / ProxylessNAS benchmark derived (``MEASURE_ALL_JSON`` from
issue21_dnas_measure_all.py: their architectures and limits; their old measurements are not used),
the networks a ``scale`` calibration measures (5 seeded samples, seed 10,000 as ``lut build
--calibrate 5``) and those an ``affine`` calibration measures (the table's cheapest and dearest and
AFFINE_NETWORKS - 2 spread between them, default 8), and measures all of them in **one interleaved
call** on local-cpu (ONNX Runtime, 1 thread, the default protocol). Each calibration is fitted on its
own networks only (``slimforge.hardware.lut.fit_calibration``); the derived networks are the test set.
Prints, per form, the error of the calibrated prediction on the derived networks and how often
"predicted within the limit" agrees with "measured within the limit".
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

from slimforge.hardware import LatencyProtocol, get_device
from slimforge.hardware.lut import calibration_genomes, fit_calibration, read_lut, space_from_table


def main(lut_path: str, measured_path: str, affine_networks: int = 8) -> None:
    table = read_lut(lut_path)
    space = space_from_table(table)
    derived = [r for r in json.loads(open(measured_path).read())["rows"] if r["limit_ms"] is not None]
    tests = [space.from_string(r["arch"]) for r in derived]
    sets = {
        "scale": calibration_genomes(table, 5, seed=10_000, form="scale"),
        "affine": calibration_genomes(table, affine_networks, seed=10_000, form="affine"),
    }
    genomes = list(dict.fromkeys([g for gs in sets.values() for g in gs] + tests))
    models = [space.build(g, num_classes=int(table.header.get("num_classes", 10))) for g in genomes]
    before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    results = get_device("local-cpu").measure_many(
        models, table.header["input_shape"], threads=1, protocol=LatencyProtocol(), seed=0, energy=False,
        progress=True,
    )
    after = " ".join(f"{v:.2f}" for v in os.getloadavg())
    by_genome = dict(zip(genomes, results))
    measured = np.array([by_genome[g].latency_ms for g in tests])
    limits = np.array([r["limit_ms"] for r in derived])
    out: dict = {"load_average": f"{before} before, {after} after", "networks_measured": len(genomes), "forms": {}}
    tables = {"file (its own calibration)": table}
    for form, gs in sets.items():
        tables[form] = fit_calibration(table, gs, [by_genome[g] for g in gs], form=form)
    for name, t in tables.items():
        predicted = t.predict_many(tests)
        rel = predicted / measured - 1.0
        agree = (predicted <= limits) == (measured <= limits)
        out["forms"][name] = {
            "scale": t.scale(),
            "offset_ms": t.offset_ms(),
            "median_abs_rel_error": float(np.median(np.abs(rel))),
            "max_abs_rel_error": float(np.abs(rel).max()),
            "mean_rel_error": float(rel.mean()),
            "within_limit_agreement": f"{int(agree.sum())}/{len(agree)}",
            "predicted_within_but_measured_over": int(((predicted <= limits) & (measured > limits)).sum()),
            "by_limit": {
                f"{lim:g}": {
                    "median_rel_error": float(np.median(rel[limits == lim])),
                    "measured_within": int((measured[limits == lim] <= lim).sum()),
                    "predicted_within": int((predicted[limits == lim] <= lim).sum()),
                    "of": int((limits == lim).sum()),
                }
                for lim in sorted(set(limits))
            },
        }
    out["rows"] = [
        {"arch": r["arch"], "limit_ms": r["limit_ms"], "measured_ms": float(m),
         **{f"{name}_ms": float(t.predict(g)) for name, t in tables.items()}}
        for r, g, m in zip(derived, tests, measured)
    ]
    raw = fit_calibration(table, sets["scale"], [by_genome[g] for g in sets["scale"]], form="scale")
    out["calibration_rows"] = {
        form: [
            {"arch": space.to_string(g), "raw_sum_ms": float(raw.predict(g) / raw.scale()),
             "measured_ms": float(by_genome[g].latency_ms)}
            for g in gs
        ]
        for form, gs in sets.items()
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:4]))
