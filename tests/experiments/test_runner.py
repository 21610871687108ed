"""The experiment runner: lockstep policies, held-out training for learning policies, forecasts."""

from __future__ import annotations

import numpy as np

from casa_sched.experiments.inputs import build_scenario
from casa_sched.experiments.runner import run_policies, training_episodes, training_epochs
from casa_sched.settings import load_settings
from casa_sched.traces.synthetic import synthetic_workload


def scenario(epochs: int, forecast: str = "oracle", **overrides: float):
    settings = load_settings(
        environ={},
        overrides={"workload.intensity": 2.0, "cluster.nodes": 2, "planner.time_budget_s": 0.3, **overrides},
    )
    wl = synthetic_workload(seed=0).top_k(30).scaled(2.0, seed=0)
    return build_scenario(settings, epochs=epochs, workload=wl, forecast=forecast)[0]


def test_learning_policies_train_on_epochs_after_the_evaluated_ones():
    sc = scenario(2)
    epochs, seed = training_epochs(sc)
    assert epochs == list(range(2, 10))  # the next 8 epochs, never the evaluated 0..1
    assert seed == sc.seed
    runs = run_policies(sc, ["rl", "binpack"])
    rl, binpack = runs["rl"].result, runs["binpack"].result
    assert rl is not None
    assert binpack is not None
    assert len(rl.epochs) == 2
    # same arrivals for every policy: identical request counts per epoch
    assert [e.requests for e in rl.epochs] == [e.requests for e in binpack.epochs]


def test_without_held_out_epochs_training_replays_with_another_seed():
    sc = scenario(32)
    epochs, seed = training_epochs(sc)
    assert epochs == list(range(8))
    assert seed != sc.seed
    episodes = training_episodes(sc)
    from casa_sched.planners.rl import RLPlanner

    planner = RLPlanner(sc.config)
    planner.train(episodes[:1])  # runs without touching the evaluation seed's arrivals
    assert planner.trained_epochs == 8


def test_last_forecast_uses_the_previous_epoch_and_nothing_for_the_first():
    sc = scenario(3, forecast="last", **{"forecast.unseen_floor_per_min": 0.0})
    assert sc.forecast_for(0).totals.sum() == 0
    np.testing.assert_array_equal(sc.forecast_for(2).counts, sc.workload.counts[:, 15:30])


def test_functions_without_history_get_the_unseen_floor_during_the_warm_up():
    sc = scenario(3, forecast="last")  # default floor: 2 requests per minute, warm-up 4 epochs
    np.testing.assert_array_equal(sc.forecast_for(0).counts, np.full_like(sc.forecast_for(0).counts, 2))
    seen = sc.workload.counts[:, :30].sum(axis=1) > 0
    later = sc.forecast_for(2).counts
    np.testing.assert_array_equal(later[seen], sc.workload.counts[seen, 15:30])
    assert (later[~seen] == 2).all()
