"""VQA accuracy as the official VQA evaluator computes it, under either of its rule sets,
and exact match.

Published VQA numbers come from the reference evaluator, and it has had two sets of rules
for which answers are normalized before comparing (``VQA_RULES``):

``"2021"`` (the default): the evaluator as it stands since its March 2021 fix. Answers are
stripped of newlines/tabs; when the human answers disagree, the prediction and every human
answer go through the full normalization (``vqa_core.answer_norm``); when all humans gave the
same answer nothing is normalized beyond whitespace, so ``Yes`` against ten ``yes`` scores 0.

``"2017"``: the earlier evaluator, which LAVIS still ships and which produced BLIP-2's
published VQAv2 figures. The prediction is always fully normalized (punctuation, lower case,
number words, articles, contractions); the human answers are left as they are, except that
when they disagree each gets the punctuation pass only. ``Yes`` against ten ``yes`` scores 1.

Under both, each of the 10 leave-one-out subsets of human answers scores
``min(1, matches / 3)`` and the question's accuracy is their mean.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from vqa_core.answer_norm import normalize_answer, normalize_punctuation

__all__ = ["VQA_RULES", "vqa_accuracy", "exact_match", "score_predictions"]

VQA_RULES = ("2021", "2017")


def _strip(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def _check_rules(rules: str) -> None:
    if rules not in VQA_RULES:
        raise ValueError(f"VQA rules must be one of {VQA_RULES}, not {rules!r}")


def _compared_forms(
    prediction: str, human_answers: Sequence[str], rules: str
) -> tuple[str, list[str]]:
    """The prediction and human answers in the form the chosen evaluator compares them."""
    if rules == "2017":
        # The earlier evaluator never strips the human answers, only the prediction.
        humans = list(human_answers)
        if len(set(humans)) > 1:
            humans = [normalize_punctuation(answer) for answer in humans]
        return normalize_answer(prediction), humans
    predicted = _strip(prediction)
    humans = [_strip(answer) for answer in human_answers]
    if len(set(humans)) > 1:
        predicted = normalize_answer(predicted)
        humans = [normalize_answer(answer) for answer in humans]
    return predicted, humans


def vqa_accuracy(prediction: str, human_answers: Sequence[str], rules: str = "2021") -> float:
    """One question's VQA accuracy in [0, 1] against its human answers (usually 10).

    ``rules`` picks the evaluator's rule set: ``"2021"`` (today's) or ``"2017"`` (LAVIS's,
    behind most published figures); see the module docstring.
    """
    _check_rules(rules)
    if not human_answers:
        raise ValueError("VQA accuracy needs at least one human answer")
    predicted, humans = _compared_forms(prediction, human_answers, rules)
    scores = []
    for left_out in range(len(humans)):
        matches = sum(1 for i, answer in enumerate(humans) if i != left_out and answer == predicted)
        scores.append(min(1.0, matches / 3))
    return sum(scores) / len(scores)


def exact_match(prediction: str, answer: str) -> float:
    """1.0 when the normalized prediction equals the normalized single reference answer."""
    return float(normalize_answer(prediction) == normalize_answer(answer))


def score_predictions(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    answer_types: Sequence[str | None] | None = None,
    soft_targets: Sequence[tuple[Sequence[str], Sequence[float]]] | None = None,
    rules: str = "2021",
) -> dict[str, float]:
    """Overall and per-answer-type scores in percent.

    A question with one reference answer (easy-VQA, a museum's own Q&A) is scored by exact
    match; one with several (VQA v2's 10 annotators) by VQA accuracy under ``rules``.
    ``accuracy`` is the mean over all questions, like the reference evaluator's ``overall``.
    A question with no raw answers (the Graphcore/vqa schema keeps only soft scores) earns
    the soft score of the normalized prediction from ``soft_targets``. The rule set only
    changes the scores of questions with several human answers.
    """
    _check_rules(rules)
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} questions")
    if not predictions:
        raise ValueError("there is nothing to score: the evaluation set is empty")
    answer_types = answer_types or [None] * len(predictions)
    per_type: dict[str, list[float]] = defaultdict(list)
    scores = []
    soft_targets = soft_targets or [((), ())] * len(predictions)
    rows = zip(predictions, references, answer_types, soft_targets)
    for prediction, humans, answer_type, (target_answers, target_weights) in rows:
        if not humans:
            weights = dict(zip(target_answers, target_weights))
            score = float(weights.get(normalize_answer(prediction), 0.0))
        elif len(humans) == 1:
            score = exact_match(prediction, humans[0])
        else:
            score = vqa_accuracy(prediction, humans, rules)
        scores.append(score)
        if answer_type:
            per_type[answer_type].append(score)
    metrics = {"accuracy": round(100 * sum(scores) / len(scores), 2), "count": len(scores)}
    for answer_type, values in sorted(per_type.items()):
        metrics[f"accuracy_{answer_type}"] = round(100 * sum(values) / len(values), 2)
    return metrics
