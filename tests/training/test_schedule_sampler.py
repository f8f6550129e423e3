import math

import pytest
import torch

from behavior_lab.training.sampler import StepSeededSampler
from behavior_lab.training.schedule import WarmupCosine, build_adamw, build_scheduler


def test_warmup_cosine_matches_optax_formula():
    s = WarmupCosine(peak_lr=1e-4, end_lr=1e-5, warmup_steps=1000, decay_steps=20000)
    assert s.lr(0) == pytest.approx(1e-4 / 1001)  # optax init_value = peak/(warmup+1)
    assert s.lr(1000) == pytest.approx(1e-4)
    mid = 1000 + (20000 - 1000) // 2
    assert s.lr(mid) == pytest.approx(1e-5 + (1e-4 - 1e-5) * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert s.lr(20000) == pytest.approx(1e-5)
    assert s.lr(200000) == pytest.approx(1e-5)
    lrs = [s.lr(k) for k in range(0, 20001, 50)]
    assert all(a <= b for a, b in zip(lrs[:20], lrs[1:21]))  # rising during warm-up
    assert all(a >= b - 1e-15 for a, b in zip(lrs[21:], lrs[22:]))  # then non-increasing


def test_lambdalr_and_adamw_defaults():
    p = torch.nn.Parameter(torch.zeros(3))
    opt = build_adamw([p])
    g = opt.param_groups[0]
    assert g["betas"] == (0.9, 0.95) and g["eps"] == 1e-8 and g["weight_decay"] == 1e-10
    sched = build_scheduler(opt, WarmupCosine(1e-4, 1e-5, 10, 100))
    for _ in range(10):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-4)
    state = sched.state_dict()
    sched2 = build_scheduler(build_adamw([p]), WarmupCosine(1e-4, 1e-5, 10, 100))
    sched2.load_state_dict(state)
    assert sched2.last_epoch == 10


def test_bad_schedule_is_rejected_short_run_shortens_warmup():
    with pytest.raises(ValueError, match="warmup_steps"):
        WarmupCosine(1e-4, 1e-5, -1, 50)
    with pytest.raises(ValueError, match="end_lr"):
        WarmupCosine(1e-4, 1e-3, 10, 50)
    s = WarmupCosine(1e-4, 1e-5, 100, 50)  # decay_steps = a short max_steps
    assert s.warmup_steps == 50 and s.lr(50) == pytest.approx(1e-5)


def _take(it, n):
    return [next(it) for _ in range(n)]


def test_sampler_is_step_indexed_and_resumable():
    full = _take(iter(StepSeededSampler(10, seed=3)), 35)
    resumed = _take(iter(StepSeededSampler(10, seed=3, start=17)), 18)
    assert resumed == full[17:]
    assert sorted(full[:10]) == list(range(10)) and sorted(full[10:20]) == list(range(10))  # one pass = permutation
    assert full[:10] != full[10:20]  # new pass, new order
    assert _take(iter(StepSeededSampler(10, seed=4)), 10) != full[:10]


def test_sampler_ranks_partition_positions():
    s0 = _take(iter(StepSeededSampler(12, seed=0, rank=0, world_size=2)), 6)
    s1 = _take(iter(StepSeededSampler(12, seed=0, rank=1, world_size=2)), 6)
    single = _take(iter(StepSeededSampler(12, seed=0)), 12)
    assert s0 == single[0::2] and s1 == single[1::2]
    assert sorted(s0 + s1) == list(range(12))


def test_sampler_state_dict_checks_dataset_size():
    s = StepSeededSampler(10, seed=1, start=5)
    t = StepSeededSampler(10)
    t.load_state_dict(s.state_dict())
    assert (t.seed, t.start) == (1, 5)
    with pytest.raises(ValueError, match="same data.root"):
        StepSeededSampler(11).load_state_dict(s.state_dict())


def test_schedule_change_names_the_fields_and_the_lr_at_the_resumed_step():
    from behavior_lab.training.schedule import schedule_change

    now = WarmupCosine(3e-4, 3e-5, 100, 8000)
    old = {"peak_lr": 3e-4, "end_lr": 3e-5, "warmup_steps": 100, "decay_steps": 4000}
    note = schedule_change(old, now, 4000)
    assert "decay_steps 4000 -> 8000" in note and "lr 3e-05 -> 0.000168 at step 4000" in note, note
    assert schedule_change({**old, "decay_steps": 8000}, now, 4000) is None  # the same schedule
    assert schedule_change(None, now, 4000) is None and schedule_change({"junk": 1}, now, 4000) is None


def test_the_scheduler_state_does_not_carry_the_schedule():
    """LambdaLR stores a callable object's attributes and writes them back on load: the schedule would
    come from the checkpoint instead of the run's config"""
    p = torch.nn.Parameter(torch.zeros(3))
    state = build_scheduler(build_adamw([p]), WarmupCosine(1e-4, 1e-5, 10, 100)).state_dict()
    assert state["lr_lambdas"] == [None]
    now = WarmupCosine(1e-4, 1e-5, 10, 400)
    sched = build_scheduler(build_adamw([p]), now)
    sched.load_state_dict(state)
    assert now.decay_steps == 400 and sched.lr_lambdas[0](200) == pytest.approx(now(200))
