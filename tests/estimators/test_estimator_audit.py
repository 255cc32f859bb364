"""The estimator audit: correlations checked by hand, the choice, the warning, and bad calibration settings."""

from __future__ import annotations

import math

import numpy as np
import pytest
import yaml

from slimforge.cli import main
from slimforge.estimators import (
    AUDIT_THRESHOLD,
    audit_estimators,
    bootstrap_correlation,
    fit_blend,
    kendall_tau,
)


def test_correlations_match_a_hand_computed_example():
    # 4 architectures; pairs (a,b) concordant unless the scores and accuracies disagree: only (2,3) does.
    scores, truth = [1.0, 2.0, 3.0, 4.0], [60.0, 70.0, 65.0, 80.0]
    assert kendall_tau(scores, truth) == pytest.approx((5 - 1) / 6)
    row = bootstrap_correlation("x", scores, truth, resamples=200, seed=0)
    # Spearman: rank differences (0, 1, -1, 0) -> 1 - 6 * 2 / (4 * (16 - 1)) = 0.8
    assert row.spearman_rho == pytest.approx(0.8)
    assert row.tau_low <= row.kendall_tau <= row.tau_high and -1 <= row.tau_low and row.tau_high <= 1
    assert math.isnan(kendall_tau([1, 1, 1], [1, 2, 3]))  # a constant side has no ranking


@pytest.mark.slow
def test_the_estimator_with_the_highest_tau_is_chosen_and_the_blend_is_judged_out_of_sample():
    rng = np.random.default_rng(0)
    truth = np.linspace(60, 90, 10)
    scores = {
        "supernet": truth[::-1] + rng.normal(0, 1, 10),  # ranks inversely, as an untrained supernet can
        "zero_cost": truth + rng.normal(0, 3, 10),
        "num_params": rng.normal(0, 1, 10),
    }
    audit = audit_estimators(scores, truth, seed=0)
    taus = {e.name: e.kendall_tau for e in audit.estimators}
    assert set(taus) == {"supernet", "zero_cost", "num_params", "blend"}
    assert audit.chosen == max(taus, key=taus.get) and audit.chosen in ("zero_cost", "blend")
    assert taus["supernet"] < -0.8 and audit.warning is None
    assert "highest Kendall" in audit.reason and audit.chosen in audit.reason
    # with the supernet as the incumbent, the better one replaces it: far beyond the noise here
    switched = audit_estimators(scores, truth, default="supernet", seed=0)
    assert switched.chosen == audit.chosen and "beyond the noise" in switched.reason
    # the blend's leave-one-out scores are not its in-sample fit
    blend = fit_blend(scores, truth)
    in_sample = blend.predict(scores)
    assert not np.allclose(audit.score("blend").scores, in_sample)
    assert type(audit).from_dict(audit.to_dict()) == audit


@pytest.mark.slow
def test_a_poor_best_estimator_warns_and_a_configured_one_is_kept():
    truth = [70.0, 71.0, 72.0, 73.0, 74.0]
    scores = {"supernet": [5.0, 4.0, 3.0, 2.0, 1.0]}
    audit = audit_estimators(scores, truth, threshold=AUDIT_THRESHOLD)
    assert audit.chosen == "supernet" and "ranks poorly" in audit.warning and "below 0.3" in audit.warning
    both = {"supernet": scores["supernet"], "num_params": [1.0, 2.0, 3.0, 4.0, 5.0]}
    kept = audit_estimators(both, truth, prefer="supernet")
    assert kept.chosen == "supernet" and "as configured" in kept.reason and kept.warning
    with pytest.raises(Exception, match="needs at least 3"):
        audit_estimators(scores, truth[:2])


@pytest.mark.parametrize(
    ("calibration", "message"),
    [
        ({"size": 2}, "accuracy.calibration.size must be 0 (no audit) or at least 3, got 2"),
        ({"epochs": 0}, "accuracy.calibration.epochs must be >= 1, got 0"),
        ({"size": 16000}, "accuracy.calibration.size 16000 is larger than the space (15625 architectures)"),
        ({"estimator": "oracle"}, "accuracy.calibration.estimator must be one of auto, supernet"),
    ],
)
def test_bad_calibration_settings_are_one_line_exit_2(tmp_path, capsys, calibration, message):
    config = {"space": {"name": "nb201"}, "accuracy": {"calibration": calibration}}
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err and not (tmp_path / "out").exists()


@pytest.mark.slow
def test_noise_on_a_small_calibration_set_does_not_swap_the_incumbent():
    truth = [89.6, 85.4, 95.8, 93.8, 91.7, 75.0]  # the demo's calibration set (6 architectures)
    scores = {"supernet": [97.2, 97.9, 97.9, 99.3, 97.2, 98.6], "zero_cost": [-0.05, 0.08, -0.23, 0.78, -0.88, -0.43]}
    audit = audit_estimators(scores, truth, default="supernet", seed=0)
    assert audit.score("zero_cost").kendall_tau > audit.score("supernet").kendall_tau
    assert audit.chosen == "supernet" and "kept supernet" in audit.reason and audit.warning
