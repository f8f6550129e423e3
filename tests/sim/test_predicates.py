"""Predicates and BEHAVIOR's q-score on hand-built situations (facts §3.2)."""

from __future__ import annotations

import numpy as np
import pytest

from behavior_lab.sim import make_env
from behavior_lab.sim.predicates import Not, P, Predicate, evaluate, is_success, q_score


class FakeWorld:
    def __init__(self, positions=None, regions=None, grasped=(), open_=(), toggled=()):
        self.positions = positions or {}
        self.regions = regions or {}  # site -> (centre, half sizes)
        self.grasped, self.open_, self.toggled = set(grasped), set(open_), set(toggled)

    def body_pos(self, body):
        return np.asarray(self.positions[body], dtype=float)

    def in_region(self, point, site):
        c, h = self.regions[site]
        return bool(np.all(np.abs(np.asarray(point) - c) <= h))

    def is_grasped(self, body):
        return body in self.grasped

    def is_open(self, art):
        return art in self.open_

    def is_toggled_on(self, body):
        return body in self.toggled


BIN = {"bin_inside": (np.zeros(3), np.full(3, 0.1)), "shelf_top": (np.array([1.0, 0, 0.5]), np.full(3, 0.1))}


def test_predicate_names_and_negation():
    p = P("inside", "can", "bin")
    assert p.name == "inside(can,bin)" and Not(p).name == "not inside(can,bin)"
    with pytest.raises(KeyError, match="inside"):
        Predicate("insde", ("a", "b"))


def test_inside_on_top_respect_grasp():
    w = FakeWorld({"can": [0.0, 0.0, 0.05], "box": [1.0, 0.0, 0.55]}, BIN)
    assert P("inside", "can", "bin").evaluate(w) and P("on_top", "box", "shelf").evaluate(w)
    w.grasped.add("can")
    assert not P("inside", "can", "bin").evaluate(w)  # held objects are not "inside"
    w.positions["box"] = [1.0, 0.3, 0.55]
    assert not P("on_top", "box", "shelf").evaluate(w)


def test_q_score_partial_credit_counts_only_newly_true_predicates():
    option = (P("inside", "a", "bin"), P("inside", "b", "bin"), P("inside", "c", "bin"))
    goal = (option,)
    out = [0.5, 0.5, 0.5]
    start = evaluate(goal, FakeWorld({"a": out, "b": out, "c": out}, BIN))
    end = evaluate(goal, FakeWorld({"a": [0, 0, 0], "b": out, "c": out}, BIN))
    assert q_score(goal, start, end) == pytest.approx(1 / 3)
    end = evaluate(goal, FakeWorld({"a": [0, 0, 0], "b": [0, 0, 0], "c": out}, BIN))
    assert q_score(goal, start, end) == pytest.approx(2 / 3)
    # a predicate already true at the start earns nothing but stays in the denominator
    start = evaluate(goal, FakeWorld({"a": [0, 0, 0], "b": out, "c": out}, BIN))
    end = evaluate(goal, FakeWorld({"a": [0, 0, 0], "b": [0, 0, 0], "c": out}, BIN))
    assert q_score(goal, start, end) == pytest.approx(1 / 3)
    end_all = evaluate(goal, FakeWorld({"a": [0, 0, 0], "b": [0, 0, 0], "c": [0, 0, 0]}, BIN))
    assert is_success(goal, end_all) and q_score(goal, start, end_all) == 1.0


def test_q_score_takes_the_best_option_and_negations():
    door_closed = Not(P("open", "cab"))
    goal = ((P("inside", "a", "bin"), door_closed), (P("toggled_on", "radio"),))
    w0 = FakeWorld({"a": [1, 1, 1]}, BIN)
    start = evaluate(goal, w0)
    assert start == {"inside(a,bin)": False, "not open(cab)": True, "toggled_on(radio)": False}
    # a in the bin but the door left open: option 1 gains 1 of 2; option 2 gains 0 of 1
    end = evaluate(goal, FakeWorld({"a": [0, 0, 0]}, BIN, open_={"cab"}))
    assert not is_success(goal, end) and q_score(goal, start, end) == pytest.approx(0.5)
    end = evaluate(goal, FakeWorld({"a": [0, 0, 0]}, BIN))
    assert is_success(goal, end) and q_score(goal, start, end) == 1.0
    end = evaluate(goal, FakeWorld({"a": [1, 1, 1]}, BIN, toggled={"radio"}))
    assert q_score(goal, start, end) == 1.0


def _place(env, body, pos):
    adr = env.qadr(f"{body}_joint")
    env.data.qpos[adr:adr + 3] = pos
    env.data.qvel[env.model.joint(f"{body}_joint").dofadr[0]:][:6] = 0


def test_trash_partial_and_full_credit_in_the_simulator():
    env = make_env("picking_up_trash")
    env.reset(0, render=False)
    bin_pos = env.body_pos("trash_can").copy()
    _place(env, "can_1", bin_pos + [0.0, 0.0, 0.1])
    for _ in range(15):
        _, _, info = env.step(env.home_action(), render=False)
    assert info["predicates"]["inside(can_1,trash_can)"] and info["q_score"] == pytest.approx(1 / 3)
    _place(env, "can_2", bin_pos + [0.05, 0.05, 0.15])
    _place(env, "can_3", bin_pos + [-0.05, -0.05, 0.25])
    for _ in range(20):
        _, done, info = env.step(env.home_action(), render=False)
        if done:
            break
    assert info["success"] and info["q_score"] == 1.0 and done


def test_radio_toggle_latches():
    env = make_env("turning_on_radio")
    env.reset(0, render=False)
    assert not env.info()["predicates"]["toggled_on(radio)"]
    env.data.qpos[env.qadr("radio_button_joint")] = -0.015  # pushed down
    _, done, info = env.step(env.home_action(), render=False)
    assert info["success"] and done
    _, _, info = env.step(env.home_action(), render=False)  # spring pops back, still on
    assert env.data.qpos[env.qadr("radio_button_joint")] > -0.008 and info["predicates"]["toggled_on(radio)"]


def test_door_tasks_give_partial_credit_and_need_the_door_closed():
    env = make_env("make_microwave_popcorn")
    env.reset(0, render=False)
    assert env.start_values == {"inside(popcorn_bag,microwave)": False, "not open(microwave)": True,
                                "toggled_on(microwave)": False}
    _place(env, "popcorn_bag", env.site_pos("microwave_inside"))
    door = env.qadr("microwave_door_joint")
    env.data.qpos[door] = 1.2  # door left open
    _, _, info = env.step(env.home_action(), render=False)
    assert info["predicates"]["inside(popcorn_bag,microwave)"] and not info["predicates"]["not open(microwave)"]
    assert info["q_score"] == pytest.approx(1 / 3)  # "not open" was true at the start: no credit
    env.data.qpos[door] = 0.0
    env.toggled["microwave"] = True
    _, done, info = env.step(env.home_action(), render=False)
    assert info["success"] and done and info["q_score"] == 1.0


def test_dishes_one_plate_in_the_cabinet_is_one_third():
    env = make_env("putting_dishes_away_after_cleaning")
    env.reset(0, render=False)
    env.data.qpos[env.qadr("cabinet_door_joint")] = 0.3
    _place(env, "plate_1", env.site_pos("cabinet_inside") + [0.0, -0.15, -0.12])
    for _ in range(10):
        _, _, info = env.step(env.home_action(), render=False)
    assert info["predicates"]["inside(plate_1,cabinet)"] and not info["predicates"]["not open(cabinet)"]
    assert info["q_score"] == pytest.approx(1 / 3) and not info["success"]


def test_two_handed_box_needs_both_hands():
    from behavior_lab.data import schema

    env = make_env("moving_boxes_to_storage")
    env.reset(0, render=False)
    right = env.model.site("right_grasp_site").id
    left = env.model.site("left_grasp_site").id
    grasp = env.grasp
    # pretend the right hand is at the box's right face: one hand alone never engages
    env.data.site_xpos[right] = env.data.site_xpos[env.model.site("box_grasp_right").id]
    grasp.update(env.data, {"left": 1.0, "right": -1.0})
    assert grasp.held == {"left": None, "right": None}
    env.data.site_xpos[left] = env.data.site_xpos[env.model.site("box_grasp_left").id]
    grasp.update(env.data, {"left": -1.0, "right": -1.0})
    assert grasp.held == {"left": "box", "right": "box"}
    grasp.update(env.data, {"left": 1.0, "right": -1.0})  # one hand opens: the box drops
    assert grasp.held == {"left": None, "right": None} and not env.is_grasped("box")
    assert schema.ACTION_DIM == 23
