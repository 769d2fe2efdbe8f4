"""WarmupCosineLR: linear warm-up to the peak, cosine decay to ``min_ratio`` x peak, flat afterwards."""
from __future__ import annotations

import io
import math

import pytest
import torch

from zoo.optim import WarmupCosineLR

PEAK = 0.01


def lrs(steps: int, **kw) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    sched = WarmupCosineLR(opt, **kw)
    out = []
    for _ in range(steps):
        out.append(opt.param_groups[0]["lr"])  # the lr used by this optimizer step
        opt.step()
        sched.step()
    return out


def test_warmup_is_linear_and_reaches_peak():
    lr = lrs(12, warmup_steps=10, total_steps=100, min_ratio=0.1)
    for i in range(10):
        assert lr[i] == pytest.approx(PEAK * (i + 1) / 10)
    diffs = [b - a for a, b in zip(lr[:10], lr[1:10])]
    assert all(d == pytest.approx(PEAK / 10) for d in diffs)
    assert lr[9] == pytest.approx(PEAK) and lr[10] == pytest.approx(PEAK)
    assert max(lr) == pytest.approx(PEAK)


def test_cosine_decay_to_min_ratio_then_flat():
    warm, total, ratio = 5, 45, 0.02
    lr = lrs(70, warmup_steps=warm, total_steps=total, min_ratio=ratio)
    decay = lr[warm:total + 1]
    assert all(b < a for a, b in zip(decay, decay[1:])), "not strictly decreasing after warm-up"
    mid = warm + (total - warm) // 2  # half-way: cos(pi/2) = 0
    assert lr[mid] == pytest.approx(PEAK * (ratio + (1 - ratio) * 0.5))
    k = warm + 10
    expect = ratio + (1 - ratio) * 0.5 * (1 + math.cos(math.pi * 10 / (total - warm)))
    assert lr[k] == pytest.approx(PEAK * expect)
    assert lr[total] == pytest.approx(PEAK * ratio)
    assert all(x == pytest.approx(PEAK * ratio) for x in lr[total:])


def test_no_warmup_starts_at_peak():
    lr = lrs(3, warmup_steps=0, total_steps=10, min_ratio=0.0)
    assert lr[0] == pytest.approx(PEAK) and lr[1] < lr[0]


def test_state_dict_round_trip_resumes_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    s = WarmupCosineLR(opt, warmup_steps=4, total_steps=20)
    for _ in range(7):
        opt.step()
        s.step()
    buf = io.BytesIO()
    torch.save(s.state_dict(), buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)  # what a resumed Lightning checkpoint goes through
    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    s2 = WarmupCosineLR(opt2, warmup_steps=4, total_steps=20)
    s2.load_state_dict(state)
    for o, sc in ((opt, s), (opt2, s2)):
        o.step()
        sc.step()
    assert s2.get_last_lr() == pytest.approx(s.get_last_lr())
    assert s2.last_epoch == 8


@pytest.mark.parametrize("kw", [{"warmup_steps": -1}, {"total_steps": 0}, {"min_ratio": 1.5},
                                {"min_ratio": -0.1}, {"warmup_steps": 50, "total_steps": 10}])
def test_rejects_bad_arguments(kw):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=PEAK)
    with pytest.raises(ValueError):
        WarmupCosineLR(opt, **kw)
