"""Issue 21 item 4: the DNAS rerun's table (medians over seeds) from the bench logs and one
interleaved measurement (issue21_dnas_measure_all.py's JSON).

    python docs/benchmarks/scripts/issue21_dnas_table.py MEASURE.json

Per method and limit: seeds, the derived networks' LUT latency (median, range), measured latency
(median, range) and how many measured within the limit, inherited and retrained accuracy (median,
range); per method, the LUT's cheapest network retrained the same way from the tightest limit's
supernets; and the cheapest network's measured latency beside its LUT figure.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from statistics import median


def _span(values: list[float], fmt: str) -> str:
    return f"{format(median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


def main(path: str) -> None:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    groups: dict[tuple[str, float], list[dict]] = defaultdict(list)
    cheapest: dict[str, list[float]] = defaultdict(list)
    for r in data["rows"]:
        if r["run"] == "reference":
            print(f"reference {r['arch']}: LUT {r['lut_ms']:.3f} ms, measured {r['measured_ms']:.3f} ms")
            continue
        groups[(r["run"], r["limit_ms"])].append(r)
        if "cheapest_retrained_acc" in r:
            cheapest[r["run"]].append(r["cheapest_retrained_acc"])
    print("| method | limit (ms) | seeds | LUT ms | measured ms | measured ≤ limit | inherited % | retrained % |")
    print("|---|---|---|---|---|---|---|---|")
    for (run, limit), rows in sorted(groups.items()):
        within = sum(r["measured_ms"] <= limit for r in rows)
        print(
            f"| {run} | {limit:.3f} | {','.join(str(r['seed']) for r in rows)} | "
            f"{_span([r['lut_ms'] for r in rows], '.3f')} | {_span([r['measured_ms'] for r in rows], '.3f')} | "
            f"{within}/{len(rows)} | {_span([r['inherited_acc'] for r in rows], '.1f')} | "
            f"{_span([r['retrained_acc'] for r in rows], '.1f')} |"
        )
    for run, accs in sorted(cheapest.items()):
        print(f"{run}: the LUT's cheapest network retrained alike: {_span(accs, '.1f')} % over {len(accs)} seeds")
    print("load:", data["load_average"])


if __name__ == "__main__":
    main(sys.argv[1])
