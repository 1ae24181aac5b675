import numpy as np
import pytest

from src import metrics


def hand_matrix() -> np.ndarray:
    R = metrics.new_matrix(3)
    R[0, 0] = 90.0
    R[1, :2] = [60.0, 80.0]
    R[2, :3] = [70.0, 40.0, 95.0]
    return R


def test_average_accuracy_is_unweighted_mean_of_the_row():
    R = hand_matrix()
    assert metrics.average_accuracy(R) == pytest.approx((70 + 40 + 95) / 3)
    assert metrics.average_accuracy(R, 1) == pytest.approx(70.0)
    assert metrics.average_accuracy(R, 0) == pytest.approx(90.0)


def test_forgetting_uses_best_accuracy_over_all_rows():
    R = hand_matrix()
    # task 0: best 90, final 70 -> 20 ; task 1: best 80, final 40 -> 40
    assert metrics.forgetting(R) == pytest.approx(30.0)
    assert metrics.forgetting(R, 1) == pytest.approx(30.0)  # task 0: 90 - 60
    assert metrics.forgetting(R, 0) == 0.0


def test_backward_transfer_against_just_after_training():
    R = hand_matrix()
    assert metrics.backward_transfer(R) == pytest.approx(((70 - 90) + (40 - 80)) / 2)


def test_forgetting_counts_a_later_peak_not_just_the_first_value():
    R = metrics.new_matrix(3)
    R[0, 0] = 50.0
    R[1, :2] = [80.0, 60.0]  # task 0 improved after task 1 (positive transfer)
    R[2, :3] = [70.0, 60.0, 90.0]
    assert metrics.forgetting(R) == pytest.approx(((80 - 70) + (60 - 60)) / 2)
    assert metrics.backward_transfer(R) == pytest.approx(((70 - 50) + 0) / 2)


def test_summarise_and_empty_matrix():
    R = hand_matrix()
    s = metrics.summarise(R)
    assert set(s) == {"acc", "forgetting", "bwt"}
    with pytest.raises(ValueError):
        metrics.last_row(metrics.new_matrix(2))
