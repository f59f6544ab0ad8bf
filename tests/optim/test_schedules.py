"""Learning-rate schedules against torch.optim.lr_scheduler."""

import json
import warnings

import numpy as np
import pytest

from nnfs.layers import Linear
from nnfs.optim import SGD, Adam
from nnfs.optim.schedules import ConstantLR, CosineAnnealingLR, MultiStepLR, StepLR, make_schedule, schedule_from_state
from tests.configs import assert_plain

BASE_LR = 0.1


def optimizer():
    return SGD(Linear(2, 2), lr=BASE_LR, momentum=0.9)


def torch_rates(torch, make_scheduler, steps):
    param = torch.zeros(1, requires_grad=True)
    torch_optimizer = torch.optim.SGD([param], lr=BASE_LR)
    scheduler = make_scheduler(torch.optim.lr_scheduler, torch_optimizer)
    rates = [torch_optimizer.param_groups[0]["lr"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SequentialLR's internal step(0) is deprecated usage
        for _ in range(steps):
            torch_optimizer.step()
            scheduler.step()
            rates.append(torch_optimizer.param_groups[0]["lr"])
    return rates


def our_rates(schedule, steps):
    rates = [schedule.optimizer.lr]
    for _ in range(steps):
        rates.append(schedule.step())
        assert schedule.optimizer.lr == rates[-1]
    return rates


CASES = {
    "step": (lambda opt: StepLR(opt, step_size=3, gamma=0.5),
             lambda S, opt: S.StepLR(opt, step_size=3, gamma=0.5), 12),
    "cosine": (lambda opt: CosineAnnealingLR(opt, T_max=10, eta_min=0.001),
               lambda S, opt: S.CosineAnnealingLR(opt, T_max=10, eta_min=0.001), 10),
    "warmup-cosine": (
        lambda opt: CosineAnnealingLR(opt, T_max=8, warmup_steps=4, warmup_start_factor=0.25),
        lambda S, opt: S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.25, total_iters=4),
                                            S.CosineAnnealingLR(opt, T_max=8)], milestones=[4]),
        12),
    "multistep": (lambda opt: MultiStepLR(opt, milestones=[2, 3, 7], gamma=0.5),
                  lambda S, opt: S.MultiStepLR(opt, milestones=[2, 3, 7], gamma=0.5), 10),
    "warmup-multistep": (
        lambda opt: MultiStepLR(opt, milestones=[1, 4], warmup_steps=2, warmup_start_factor=0.5),
        lambda S, opt: S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.5, total_iters=2),
                                            S.MultiStepLR(opt, milestones=[1, 4], gamma=0.1)], milestones=[2]),
        9),
    "warmup-step": (
        lambda opt: StepLR(opt, step_size=2, gamma=0.1, warmup_steps=3),
        lambda S, opt: S.SequentialLR(opt, [S.LinearLR(opt, start_factor=0.1, total_iters=3),
                                            S.StepLR(opt, step_size=2, gamma=0.1)], milestones=[3]),
        10),
}


@pytest.mark.parametrize("case", list(CASES))
def test_schedule_matches_pytorch(case, torch):
    ours, theirs, steps = CASES[case]
    np.testing.assert_allclose(our_rates(ours(optimizer()), steps),
                               torch_rates(torch, theirs, steps), rtol=1e-12)


def test_cosine_stays_at_eta_min_after_T_max():
    schedule = CosineAnnealingLR(optimizer(), T_max=4, eta_min=0.01)
    rates = our_rates(schedule, 8)
    assert rates[0] == BASE_LR
    assert rates[4:] == [pytest.approx(0.01)] * 5
    assert all(a >= b for a, b in zip(rates, rates[1:]))


@pytest.mark.parametrize("case", list(CASES))
def test_state_dict_resumes_exactly(case):
    make = CASES[case][0]
    uninterrupted = our_rates(make(optimizer()), 9)
    first = make(optimizer())
    our_rates(first, 5)
    saved = json.loads(json.dumps(first.state_dict()))
    opt = Adam(Linear(2, 2), lr=0.5)  # a fresh optimizer with another rate
    second = make(opt)
    opt.lr = 123.0
    second.load_state_dict(saved)
    assert opt.lr == uninterrupted[5]
    assert [second.step() for _ in range(4)] == uninterrupted[6:]


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="step_size"):
        StepLR(optimizer(), step_size=0)
    with pytest.raises(ValueError, match="T_max"):
        CosineAnnealingLR(optimizer(), T_max=2.5)
    with pytest.raises(ValueError, match="warmup_steps"):
        StepLR(optimizer(), 2, warmup_steps=-1)
    with pytest.raises(TypeError, match="optimizer"):
        StepLR(object(), 2)
    with pytest.raises(ValueError, match="StepLR"):
        CosineAnnealingLR(optimizer(), T_max=3).load_state_dict(StepLR(optimizer(), 2).state_dict())


def test_make_schedule_by_name():
    assert make_schedule("constant", optimizer(), 10) is None
    step = make_schedule("step", optimizer(), 9)
    assert [round(step.lr_at(t), 12) for t in (0, 2, 3, 6)] == [0.1, 0.1, 0.01, 0.001]
    cosine = make_schedule("Cosine", optimizer(), 10, warmup_steps=2)
    assert cosine.lr_at(0) == pytest.approx(0.01) and cosine.lr_at(2) == pytest.approx(BASE_LR)
    assert cosine.lr_at(10) == pytest.approx(0.0)
    warm_constant = make_schedule("constant", optimizer(), 5, warmup_steps=2)
    assert warm_constant.lr_at(0) == pytest.approx(0.01)
    assert [warm_constant.lr_at(t) for t in (2, 3, 4, 5)] == [BASE_LR] * 4
    with pytest.raises(ValueError, match="expected one of: constant, step, cosine"):
        make_schedule("linear", optimizer(), 10)
    with pytest.raises(ValueError, match="warm-up"):
        make_schedule("cosine", optimizer(), 3, warmup_steps=3)


@pytest.mark.parametrize("make", [
    lambda opt: StepLR(opt, step_size=2, gamma=0.5, warmup_steps=1),
    lambda opt: CosineAnnealingLR(opt, T_max=5, eta_min=0.001),
])
def test_schedule_from_state_rebuilds_the_same_schedule(make):
    from nnfs.optim.schedules import schedule_from_state
    original = make(optimizer())
    for _ in range(3):
        original.step()
    saved = json.loads(json.dumps(original.state_dict()))
    fresh_optimizer = optimizer()
    rebuilt = schedule_from_state(fresh_optimizer, saved)
    assert type(rebuilt) is type(original) and fresh_optimizer.lr == pytest.approx(original.lr)
    assert [rebuilt.step() for _ in range(4)] == pytest.approx([original.step() for _ in range(4)])
    with pytest.raises(ValueError, match="unknown saved schedule"):
        schedule_from_state(optimizer(), {"type": "Nope"})


@pytest.mark.parametrize("with_numpy, with_python", [
    (lambda opt: StepLR(opt, step_size=np.int64(3), gamma=np.float32(0.5), warmup_steps=np.int32(2),
                        warmup_start_factor=np.float64(0.25)),
     lambda opt: StepLR(opt, step_size=3, gamma=0.5, warmup_steps=2, warmup_start_factor=0.25)),
    (lambda opt: CosineAnnealingLR(opt, T_max=np.prod((2, 5)), eta_min=np.int64(0), warmup_steps=np.uint8(1)),
     lambda opt: CosineAnnealingLR(opt, T_max=10, eta_min=0.0, warmup_steps=1)),
    (lambda opt: ConstantLR(opt, warmup_steps=np.int64(3)), lambda opt: ConstantLR(opt, warmup_steps=3)),
    (lambda opt: MultiStepLR(opt, np.array([2, 5]), gamma=np.float32(0.5)),
     lambda opt: MultiStepLR(opt, [2, 5], gamma=0.5)),
], ids=["step", "cosine", "constant", "multistep"])
def test_numpy_numbers_make_the_same_schedule_with_a_plain_state(with_numpy, with_python):
    ours, reference = with_numpy(optimizer()), with_python(optimizer())
    state = assert_plain(ours.state_dict())
    assert state == reference.state_dict() and json.loads(json.dumps(state)) == state
    assert our_rates(ours, 12) == our_rates(reference, 12)


def test_make_schedule_takes_numpy_step_counts():
    schedule = make_schedule("cosine", optimizer(), np.int64(10), warmup_steps=np.int64(2))
    assert_plain(schedule.state_dict())
    assert schedule.T_max == 8 and type(schedule.T_max) is int and type(schedule.warmup_steps) is int


@pytest.mark.parametrize("make, argument", [
    (lambda opt: StepLR(opt, step_size=True), "step_size"),
    (lambda opt: StepLR(opt, 2, gamma=np.bool_(True)), "gamma"),
    (lambda opt: CosineAnnealingLR(opt, T_max=np.bool_(True)), "T_max"),
    (lambda opt: CosineAnnealingLR(opt, 4, eta_min=False), "eta_min"),
    (lambda opt: ConstantLR(opt, warmup_steps=True), "warmup_steps"),
    (lambda opt: ConstantLR(opt, warmup_steps=2, warmup_start_factor=True), "warmup_start_factor"),
])
def test_bools_are_refused(make, argument):
    with pytest.raises(TypeError, match=rf"(StepLR|CosineAnnealingLR|ConstantLR): {argument} must be"):
        make(optimizer())


@pytest.mark.parametrize("change", [{"warmup_steps": 4, "base_lr": float("nan")}, {"warmup_steps": -1},
                                    {"last_step": -2}, {"base_lr": "x"}])
def test_a_refused_state_leaves_the_schedule_and_the_rate_as_they_were(change):
    optimizer = SGD(Linear(2, 2), 0.1)
    schedule = StepLR(optimizer, 5, gamma=0.5)
    for _ in range(6):
        schedule.step()
    before, lr = schedule.state_dict(), optimizer.lr
    with pytest.raises((ValueError, TypeError)):
        schedule.load_state_dict(dict(before, **change))
    assert schedule.state_dict() == before and optimizer.lr == lr == 0.05


@pytest.mark.parametrize("total, warmup, message", [
    (5, 2.5, r"make_schedule: warmup_steps must be an int"), (0, 0, r"make_schedule: total_steps must be a positive int"),
    (5, "2", r"make_schedule: warmup_steps must be an int"), ("10", 0, r"make_schedule: total_steps must be an int"),
    (-3, 0, r"make_schedule: total_steps must be a positive int"), (5, None, r"make_schedule: warmup_steps must be an int"),
])
def test_make_schedule_names_its_own_arguments(total, warmup, message):
    optimizer = SGD(Linear(2, 2), 0.1)
    for name in ("step", "cosine", "constant"):
        with pytest.raises((TypeError, ValueError), match=message):
            make_schedule(name, optimizer, total, warmup_steps=warmup)


# The rate of each epoch (t = 0 .. epochs - 1) of a "step" run, as a power of ten below the base.
STEP_RUNS = {1: [0], 2: [0, 1], 3: [0, 1, 2], 4: [0, 0, 1, 2], 5: [0, 0, 1, 1, 2], 6: [0, 0, 1, 1, 2, 2],
             7: [0, 0, 0, 1, 1, 2, 2], 9: [0, 0, 0, 1, 1, 1, 2, 2, 2], 10: [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]}


@pytest.mark.parametrize("epochs", list(STEP_RUNS))
def test_the_step_schedule_cuts_any_run_into_even_thirds(epochs):
    """Thirds of ceil(epochs / 3) epochs made 4 epochs into halves (one decay) and 7 into 3, 3 and 1."""
    schedule = make_schedule("step", optimizer(), epochs)
    decays = [round(-np.log10(schedule.lr_at(t) / BASE_LR)) for t in range(epochs)]
    assert decays == STEP_RUNS[epochs]
    parts = np.bincount(decays)
    assert parts.max() - parts.min() <= 1 and list(parts) == sorted(parts, reverse=True)


def test_the_step_schedule_starts_its_thirds_after_the_warm_up():
    schedule = make_schedule("step", optimizer(), 9, warmup_steps=2)  # 7 epochs after it: 3, 2, 2
    assert schedule.milestones == [3, 5]
    assert [round(schedule.lr_at(t), 12) for t in range(9)] == [0.01, 0.055, 0.1, 0.1, 0.1, 0.01, 0.01,
                                                                0.001, 0.001]
    assert make_schedule("step", optimizer(), 3, warmup_steps=2).milestones == []  # one epoch after it


def test_step_milestones_are_named_and_checked():
    from nnfs.optim import step_milestones

    assert [step_milestones(n) for n in (1, 2, 3, 4, 5, 7, 10)] == [[], [1], [1, 2], [2, 3], [2, 4], [3, 5], [4, 7]]
    assert step_milestones(10, parts=2) == [5] and step_milestones(3, parts=1) == []
    with pytest.raises(ValueError, match=r"^step_milestones: steps must be a positive int, got 0$"):
        step_milestones(0)


@pytest.mark.parametrize("milestones, error, message", [
    ((3, 2), ValueError, r"^MultiStepLR: milestones must be strictly increasing, got \[3, 2\]$"),
    ([2, 2], ValueError, r"^MultiStepLR: milestones must be strictly increasing"),
    ([0, 2], ValueError, r"^MultiStepLR: milestones must be a positive int, got 0$"),
    ([1.5], TypeError, r"^MultiStepLR: milestones must be an int, got 1.5$"),
    (3, TypeError, r"^MultiStepLR: milestones must be a list of positive ints, got 3$"),
    ("12", TypeError, r"^MultiStepLR: milestones must be a list of positive ints, got '12'$"),
])
def test_multistep_milestones_are_checked(milestones, error, message):
    with pytest.raises(error, match=message):
        MultiStepLR(optimizer(), milestones)


def test_a_saved_step_schedule_of_before_milestones_still_loads():
    from nnfs.optim.schedules import schedule_from_state

    saved = StepLR(optimizer(), step_size=2)
    saved.step()
    rebuilt = schedule_from_state(optimizer(), json.loads(json.dumps(saved.state_dict())))
    assert type(rebuilt) is StepLR and rebuilt.lr == saved.lr and rebuilt.step() == saved.step()


def test_make_schedule_refuses_what_is_no_optimizer_even_for_a_constant_rate():
    with pytest.raises(TypeError, match=r"^make_schedule: expected an optimizer with an lr attribute, got object$"):
        make_schedule("constant", object(), 10)


def test_a_saved_schedule_with_a_huge_milestones_list_is_refused_in_a_short_line():
    """A scheduler state from a file may hold a million milestones: the refusal quoted them all."""
    from nnfs.optim.schedules import schedule_from_state
    state = {"type": "MultiStepLR", "milestones": list(range(10**5, 0, -1)), "gamma": 0.1,
             "warmup_steps": 0, "warmup_start_factor": 0.1, "base_lr": 0.1, "last_step": 0}
    with pytest.raises(ValueError, match=r"strictly increasing, got \[100000, 99999, .*~.*, 2, 1\]$") as error:
        schedule_from_state(optimizer(), state)
    assert len(str(error.value)) < 200


def test_the_schedule_functions_name_themselves_in_their_errors():
    optimizer = SGD([Linear(2, 2)], lr=0.1)
    with pytest.raises(ValueError, match=r"^make_schedule: unknown schedule 'bogus'; expected one of: "):
        make_schedule("bogus", optimizer, 5)
    with pytest.raises(ValueError, match=r"^make_schedule: the warm-up \(5 steps\) must be shorter than the run"):
        make_schedule("cosine", optimizer, 5, 5)
    with pytest.raises(ValueError, match=r"^schedule_from_state: unknown saved schedule None"):
        schedule_from_state(optimizer, None)
    with pytest.raises(TypeError, match=r"^CosineAnnealingLR.load_state_dict: expected the dict of a schedule's "
                                        r"state_dict\(\), got None$"):
        make_schedule("cosine", optimizer, 5).load_state_dict(None)


def test_a_schedule_of_ones_own_without_decay_is_named():
    from nnfs.optim.schedules import Schedule

    class Flat(Schedule):
        pass

    with pytest.raises(NotImplementedError, match=r"^Flat defines no decay\(t\)"):
        Flat(SGD(Linear(2, 2), lr=0.1))
