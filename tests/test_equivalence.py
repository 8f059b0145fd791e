"""What "no clear difference" can rule out: t quantiles against tabulated values, the detectable difference
and the TOST equivalence test against hand-computed oracles."""
import math

import pytest

from cce_demo.equivalence import sensitivity, sensitivity_words, t_quantile
from cce_demo.metrics import t_critical_95


@pytest.mark.parametrize("probability, df, expected", [
    (0.975, 4, 2.776445), (0.95, 4, 2.131847), (0.80, 4, 0.940965), (0.975, 1, 12.706205), (0.5, 7, 0.0),
    (0.025, 4, -2.776445),
])
def test_t_quantiles_match_the_tables(probability, df, expected):
    assert t_quantile(probability, df) == pytest.approx(expected, abs=2e-6)


def test_t_quantile_agrees_with_the_interval_table():
    for df in (1, 2, 3, 4, 9, 20):
        assert t_quantile(0.975, df) == pytest.approx(t_critical_95(df), abs=2e-6)


def test_detectable_difference_and_tost_oracle():
    differences = [0.01, -0.01, 0.02, 0.0, -0.005]
    result = sensitivity(differences, margin=0.03)
    mean = sum(differences) / 5
    standard_error = math.sqrt(sum((d - mean) ** 2 for d in differences) / 4 / 5)
    assert result.mean == pytest.approx(mean)
    assert result.detectable == pytest.approx((2.776445 + 0.940965) * standard_error, rel=1e-5)
    assert result.interval_90 == pytest.approx((mean - 2.131847 * standard_error, mean + 2.131847 * standard_error), rel=1e-5)
    assert result.equivalent  # the 90 % interval lies inside ±3 points
    assert not sensitivity(differences, margin=0.005).equivalent
    assert sensitivity([0.01]) is None


def test_the_words_name_the_margin_and_the_outcome():
    words = sensitivity_words(sensitivity([0.01, -0.01, 0.02, 0.0, -0.005], margin=0.01))
    assert words.startswith("the 5 seeds could detect about ") and "within ±1 point of zero: equivalence not shown" in words
    assert "−" in words  # a typographic minus in the interval
