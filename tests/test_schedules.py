"""Beta schedules: formulas at chosen steps, serialisation, validation, capacity sign."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, strategies as st

from betavae_np import schedules as S
from betavae_np.exceptions import ConfigError
from naive import ref_beta


@pytest.mark.parametrize("step,expected", [(0, 0.0), (10, 2.0), (19, 3.8), (20, 4.0), (99, 4.0)])
def test_linear_values(step, expected):
    assert S.Linear(beta=4.0, warmup=0.2)(step, 100) == pytest.approx(expected)


@pytest.mark.parametrize("step,expected", [(0, 0.0), (5, 1.6), (10, 3.2), (13, 4.0), (24, 4.0),
                                           (25, 0.0), (30, 1.6), (99, 4.0)])
def test_cyclical_values(step, expected):
    # 100 steps, 4 cycles of 25, ramp over the first half (12.5 steps): beta = 4 * (s mod 25) / 12.5
    assert S.Cyclical(beta=4.0, cycles=4, ratio=0.5)(step, 100) == pytest.approx(expected)


@pytest.mark.parametrize("step,expected", [(0, 0.0), (19, 0.0), (20, 0.0), (59, 4.0 * 39 / 79),
                                           (99, 4.0)])
def test_warmup_ramp_values(step, expected):
    # zero until step 20, then linear to 4 at the last step (99)
    assert S.WarmupRamp(beta=4.0, warmup=0.2)(step, 100) == pytest.approx(expected)


def test_constant_value():
    assert S.Constant(2.5)(0, 10) == 2.5 and S.Constant(2.5)(9, 10) == 2.5


@given(name=st.sampled_from(["constant", "linear", "cyclical", "warmup"]), total=st.integers(1, 500),
       frac=st.floats(0, 1), beta=st.floats(0, 10), warmup=st.floats(0, 1), cycles=st.integers(1, 6),
       ratio=st.floats(0.05, 1))
def test_schedules_match_reference(name, total, frac, beta, warmup, cycles, ratio):
    step = min(total - 1, int(frac * total))
    sch = S.make(name, beta=beta, warmup=warmup, cycles=cycles, ratio=ratio)
    got = sch(step, total)
    assert got == pytest.approx(ref_beta(name, step, total, beta, warmup, cycles, ratio), abs=1e-9)
    assert 0.0 <= got <= beta + 1e-12
    assert sch.kl_weight(step, total, 3.0) == got
    assert sch.objective(1.0, 3.0, step, total) == pytest.approx(1.0 + got * 3.0)


def test_capacity_weight_sign_and_objective():
    sch = S.Capacity(gamma=50.0, c_max=10.0, ramp=0.5)
    assert sch.capacity(0, 100) == 0.0
    assert sch.capacity(25, 100) == pytest.approx(5.0)
    assert sch.capacity(80, 100) == 10.0
    assert sch.kl_weight(25, 100, kl=7.0) == 50.0     # above capacity: push KL down
    assert sch.kl_weight(25, 100, kl=3.0) == -50.0    # below capacity: push KL up
    assert sch.kl_weight(25, 100, kl=5.0) == 0.0
    assert sch.objective(2.0, 3.0, 25, 100) == pytest.approx(2.0 + 50.0 * 2.0)
    assert sch(25, 100) == 50.0


@pytest.mark.parametrize("sch", [S.Constant(3.0), S.Linear(2.0, 0.3), S.Cyclical(1.0, 3, 0.25),
                                 S.WarmupRamp(4.0, 0.1), S.Capacity(10.0, 5.0, 0.5)])
def test_schedule_dict_round_trip(sch):
    d = json.loads(json.dumps(sch.to_dict()))
    assert S.from_dict(d) == sch


def test_make_unknown_name():
    with pytest.raises(ConfigError, match="constant, linear, cyclical, warmup, capacity"):
        S.make("exponential", beta=1.0)


def test_make_capacity_uses_beta_as_gamma():
    assert S.make("capacity", beta=7.0, warmup=0.2).gamma == 7.0


@pytest.mark.parametrize("bad", [lambda: S.Constant(-1.0), lambda: S.Linear(1.0, 1.5),
                                 lambda: S.Linear(float("nan")), lambda: S.Cyclical(1.0, 0),
                                 lambda: S.Cyclical(1.0, 2.5), lambda: S.Cyclical(1.0, 4, 0.0),
                                 lambda: S.WarmupRamp(1.0, -0.1), lambda: S.Capacity(c_max=-1),
                                 lambda: S.Constant("x"),
                                 lambda: S.from_dict({"name": "linear", "beta": 1, "speed": 2}),
                                 lambda: S.from_dict({"beta": 1})])
def test_schedules_reject_bad_values(bad):
    with pytest.raises(ConfigError):
        bad()
