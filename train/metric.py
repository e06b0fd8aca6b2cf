"""VQA accuracy as the official VQA evaluator computes it, and exact match.

Published VQA numbers come from the reference evaluator, so this follows it rule for rule:
answers are stripped of newlines/tabs; when the human answers disagree, the prediction and
every human answer go through the evaluator's normalization (``vqa_core.answer_norm``);
then each of the 10 leave-one-out subsets of human answers scores ``min(1, matches / 3)``
and the question's accuracy is their mean. Note the reference's quirk, kept on purpose:
when all humans gave the same answer nothing is normalized beyond whitespace.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from vqa_core.answer_norm import normalize_answer

__all__ = ["vqa_accuracy", "exact_match", "score_predictions"]


def _strip(text: str) -> str:
    return text.replace("\n", " ").replace("\t", " ").strip()


def vqa_accuracy(prediction: str, human_answers: Sequence[str]) -> float:
    """One question's VQA accuracy in [0, 1] against its human answers (usually 10)."""
    if not human_answers:
        raise ValueError("VQA accuracy needs at least one human answer")
    predicted = _strip(prediction)
    humans = [_strip(answer) for answer in human_answers]
    if len(set(humans)) > 1:
        predicted = normalize_answer(predicted)
        humans = [normalize_answer(answer) for answer in humans]
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
) -> dict[str, float]:
    """Overall and per-answer-type scores in percent.

    A question with one reference answer (easy-VQA, a museum's own Q&A) is scored by exact
    match; one with several (VQA v2's 10 annotators) by VQA accuracy. ``accuracy`` is the
    mean over all questions, like the reference evaluator's ``overall``. A question with no
    raw answers (the Graphcore/vqa schema keeps only soft scores) earns the soft score of
    the normalized prediction from ``soft_targets``.
    """
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
            score = vqa_accuracy(prediction, humans)
        scores.append(score)
        if answer_type:
            per_type[answer_type].append(score)
    metrics = {"accuracy": round(100 * sum(scores) / len(scores), 2), "count": len(scores)}
    for answer_type, values in sorted(per_type.items()):
        metrics[f"accuracy_{answer_type}"] = round(100 * sum(values) / len(values), 2)
    return metrics
