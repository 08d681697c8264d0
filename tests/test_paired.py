"""benchmarks/paired.py: paired differences, t and bootstrap intervals, verdicts and the Holm correction, against
values computed by hand."""
import math

import pytest

from benchmarks import paired


def test_paired_t_interval_by_hand():
    # differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3); t_{0.975, 2} = 4.302653
    c = paired.compare([11.0, 22.0, 33.0], [10.0, 20.0, 30.0])
    half = 4.302653 / math.sqrt(3)
    assert c.mean == pytest.approx(2.0)
    assert (c.low, c.high) == (pytest.approx(2 - half, abs=1e-5), pytest.approx(2 + half, abs=1e-5))
    assert c.n == 3
    assert c.p == pytest.approx(0.07418, abs=1e-4)  # two-sided, t = 2 sqrt(3) on 2 degrees of freedom
    assert c.verdict == paired.NO_DIFFERENCE


def test_clear_gain_is_better_and_direction_flips_it():
    treated, base = [5.1, 5.0, 4.9, 5.2, 5.0], [3.0, 3.1, 2.9, 3.0, 3.0]
    assert paired.compare(treated, base, direction=1).verdict == "better"
    assert paired.compare(treated, base, direction=-1).verdict == "worse"
    assert paired.compare(treated, base, direction=0).verdict == "higher"
    assert paired.compare(base, treated, direction=0).verdict == "lower"
    assert paired.compare(base, treated, direction=1).verdict == "worse"


def test_identical_runs_give_exactly_zero_and_no_difference():
    x = [12.5, 3.0, 7.25]
    c = paired.compare(x, list(x))
    assert (c.mean, c.low, c.high, c.p) == (0.0, 0.0, 0.0, 1.0)
    assert c.verdict == paired.NO_DIFFERENCE


def test_constant_nonzero_difference_is_a_zero_width_verdict():
    c = paired.compare([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert (c.low, c.high) == (pytest.approx(1.0), pytest.approx(1.0))
    assert c.verdict == "better"


def test_invariances_pair_order_and_scale():
    t, b = [3.0, 1.0, 4.0, 1.5, 5.0], [2.0, 1.2, 3.1, 0.9, 4.0]
    c = paired.compare(t, b)
    perm = [4, 2, 0, 3, 1]
    cp = paired.compare([t[i] for i in perm], [b[i] for i in perm])
    assert (cp.mean, cp.low, cp.high, cp.p) == pytest.approx((c.mean, c.low, c.high, c.p))
    cs = paired.compare([10 * v for v in t], [10 * v for v in b])
    assert (cs.mean, cs.low, cs.high) == pytest.approx((10 * c.mean, 10 * c.low, 10 * c.high))
    assert cs.p == pytest.approx(c.p) and cs.verdict == c.verdict


def test_one_pair_tells_nothing():
    c = paired.compare([5.0], [1.0])
    assert math.isinf(c.low) and math.isinf(c.high) and c.verdict == paired.NO_DIFFERENCE


def test_bad_input_is_an_error():
    with pytest.raises(ValueError, match="one base run per treated run"):
        paired.compare([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="non-finite"):
        paired.compare([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="method"):
        paired.compare([1.0, 2.0], [1.0, 2.0], method="anova")
    with pytest.raises(ValueError, match="direction"):
        paired.compare([1.0, 2.0], [1.0, 2.0], direction=2)


def test_bootstrap_interval_is_seeded_and_inside_the_range_of_differences():
    t, b = [3.0, 1.0, 4.0, 1.5, 5.0, 2.0], [2.0, 1.2, 3.1, 0.9, 4.0, 2.2]
    d = [x - y for x, y in zip(t, b)]
    c1 = paired.compare(t, b, method="bootstrap", resamples=2000, seed=3)
    c2 = paired.compare(t, b, method="bootstrap", resamples=2000, seed=3)
    assert (c1.low, c1.high) == (c2.low, c2.high)
    assert min(d) <= c1.low <= c1.mean <= c1.high <= max(d)
    # the percentile bootstrap is narrower than the t interval at small n (why t is the default)
    ct = paired.compare(t, b)
    assert c1.high - c1.low < ct.high - ct.low


def test_holm_step_down_by_hand():
    def comp(p):
        return paired.Comparison(1.0, 0.5, 1.5, 5, p, "better")

    # m = 3: thresholds 0.05/3, 0.05/2, 0.05/1 in order of p
    cs = paired.holm([comp(0.04), comp(0.01), comp(0.02)])
    assert [c.holm for c in cs] == [True, True, True]
    cs = paired.holm([comp(0.01), comp(0.03), comp(0.04)])
    assert [c.holm for c in cs] == [True, False, False]  # 0.03 > 0.025 stops the procedure
    none = paired.Comparison(0.0, -1.0, 1.0, 5, 0.001, paired.NO_DIFFERENCE)
    assert paired.holm([none])[0].holm is False


def test_format_cell():
    c = paired.Comparison(2.345, 0.4, 4.2, 5, 0.01, "better", holm=True)
    assert paired.format_cell(c) == "+2.3 [+0.4, +4.2] better*"
    c = paired.Comparison(-0.0123, -0.05, 0.02, 5, 0.4, paired.NO_DIFFERENCE)
    assert paired.format_cell(c, 3) == "-0.012 [-0.050, +0.020]"
