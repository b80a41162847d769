"""How a phase's Tune trials share the cluster's CPUs (size_trials) and the phase's time (seconds_each)."""

from workers.tune_finalize import TrialSizing, size_trials


def test_trials_take_one_cpu_each_when_they_cannot_all_run_at_once():
    # this machine: 3 finalists on 2 CPUs run in two waves of single-threaded trials
    assert size_trials(3, free=2, nodes=[2]) == TrialSizing(cpus=1, at_once=2)
    assert size_trials(2, free=2, nodes=[2]) == TrialSizing(cpus=1, at_once=2)


def test_a_large_node_gives_each_trial_its_share_of_the_cores():
    assert size_trials(3, free=16, nodes=[16]) == TrialSizing(cpus=5, at_once=3)
    assert size_trials(1, free=2, nodes=[2]) == TrialSizing(cpus=2, at_once=1)


def test_a_trial_fits_on_one_node_and_in_what_is_free():
    # 16 CPUs in all, but a trial of 5 would leave one of three without a node: 4 each, 2 on one node
    assert size_trials(3, free=16, nodes=[8, 8]) == TrialSizing(cpus=4, at_once=3)
    # other searches hold 10 of the 16: the trials share the 6 that are free
    assert size_trials(3, free=6, nodes=[16]) == TrialSizing(cpus=2, at_once=3)


def test_nothing_free_still_runs_one_trial_at_a_time():
    assert size_trials(4, free=0, nodes=[2]) == TrialSizing(cpus=1, at_once=1)
    assert size_trials(2, free=3, nodes=[]) == TrialSizing(cpus=1, at_once=1)


def test_each_trial_gets_the_phase_time_divided_by_its_waves():
    assert TrialSizing(cpus=1, at_once=2).seconds_each(60.0, trials=3) == 30.0
    assert TrialSizing(cpus=5, at_once=3).seconds_each(60.0, trials=3) == 60.0
    assert TrialSizing(cpus=1, at_once=2).seconds_each(None, trials=3) is None
