"""The VQA-accuracy metric against hand-computed cases of the official evaluator's rules."""

from __future__ import annotations

import pytest

from train.metric import exact_match, score_predictions, vqa_accuracy


@pytest.mark.parametrize(
    ("matches", "expected"),
    [
        # Leave-one-out: with k matching humans, k subsets hold k-1 matches, 10-k hold k.
        (0, 0.0),
        (1, (1 * 0 + 9 * (1 / 3)) / 10),  # 0.3
        (2, (2 * (1 / 3) + 8 * (2 / 3)) / 10),  # 0.6
        (3, (3 * (2 / 3) + 7 * 1) / 10),  # 0.9
        (4, 1.0),
        (10, 1.0),
    ],
)
def test_leave_one_out_averaging(matches, expected):
    answers = ["dog"] * matches + ["cat"] * (10 - matches)
    assert vqa_accuracy("dog", answers) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("prediction", "human"),
    [
        ("two", "2"),  # number words become digits
        ("none", "0"),
        ("a dog", "dog"),  # articles are dropped
        ("the red car", "red car"),
        ("dont", "don't"),  # apostrophe-less contractions are restored
        ("isnt", "isn't"),
        ("Yes", "yes"),  # lower case
        ("yes.", "yes"),  # a trailing period goes
        ("t-shirt", "t shirt"),  # a hyphen inside a word becomes a space
        ("yes!", "yes"),  # punctuation next to nothing is dropped
        ("3,000", "3000"),  # a digit-grouping comma is dropped
        ("  dog\n", "dog"),  # whitespace and newlines
    ],
)
def test_each_normalization_rule_gives_full_credit(prediction, human):
    # Four humans gave the normalized form, the rest something else: full credit only if
    # prediction and human answers normalize to the same string.
    answers = [human] * 4 + ["elephant"] * 6
    assert vqa_accuracy(prediction, answers) == 1.0


def test_decimal_period_is_kept():
    answers = ["1.5"] * 4 + ["2"] * 6
    assert vqa_accuracy("1.5", answers) == 1.0
    assert vqa_accuracy("15", answers) == 0.0


def test_unanimous_humans_are_not_normalized_like_the_reference():
    # The reference evaluator only normalizes when the humans disagree; kept on purpose so
    # scores match published ones.
    assert vqa_accuracy("two", ["2"] * 10) == 0.0
    assert vqa_accuracy(" 2 ", ["2"] * 10) == 1.0


def test_exact_match_normalizes_both_sides():
    assert exact_match("The Circle.", "circle") == 1.0
    assert exact_match("square", "circle") == 0.0


def test_score_predictions_overall_and_per_type():
    metrics = score_predictions(
        predictions=["yes", "circle", "red", "dog"],
        references=[["yes"], ["triangle"], ["red"], ["dog"] * 2 + ["cat"] * 8],
        answer_types=["yes/no", "shape", "color", "other"],
    )
    # 1 + 0 + 1 + 0.6 over 4 questions.
    assert metrics["accuracy"] == pytest.approx(65.0)
    assert metrics["accuracy_yes/no"] == 100.0
    assert metrics["accuracy_shape"] == 0.0
    assert metrics["accuracy_other"] == pytest.approx(60.0)
    assert metrics["count"] == 4


def test_score_predictions_soft_targets_when_no_raw_answers():
    # The Graphcore schema keeps only soft scores: the prediction earns its weight.
    metrics = score_predictions(
        ["Down", "table", "chair"],
        [[], [], []],
        soft_targets=[(["at table", "down", "skateboard", "table"], [0.3, 1.0, 0.3, 0.3])] * 3,
    )
    assert metrics["accuracy"] == pytest.approx(100 * (1.0 + 0.3 + 0.0) / 3, abs=0.01)


def test_score_predictions_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="2 predictions for 1"):
        score_predictions(["a", "b"], [["a"]])
