"""Score parsing of judge reviews: the formats real judges write, and failures that must not become scores."""

import json
from pathlib import Path

import pytest

from openchat_hf.evaluation.parsing import ScoreParseError, parse_pair_scores, parse_rating

EVIDENCE = "Assistant 1 explains the steps with 12 examples; Assistant 2 gives 3 tips but misses the deadline part."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{EVIDENCE}\n\nScores: 8 7", [8, 7]),
        (f"{EVIDENCE}\n**Scores:** 7 and 9", [7, 9]),
        (f"{EVIDENCE}\nScores: 8.5, 6", [8.5, 6]),
        (f"8 7\n{EVIDENCE}", [8, 7]),  # FastChat style: scores on the first line
        (f"9/10 6/10\n{EVIDENCE}", [9, 6]),
        (f"{EVIDENCE}\n\nScore of Assistant 1: 8\nScore of Assistant 2: 6", [8, 6]),
        (f"{EVIDENCE}\nAssistant 1: 8/10, Assistant 2: 6.5/10", [8, 6.5]),
        (f"{EVIDENCE}\nAssistant 1: **8**\nAssistant 2: **4**", [8, 4]),
        (f"{EVIDENCE}\nAssistant 1 receives a score of 7, Assistant 2 gets 5.", [7, 5]),
        (f"{EVIDENCE}\n[9, 3]", [9, 3]),
        (f'{EVIDENCE}\n{{"scores": [6.5, 7]}}', [6.5, 7]),
        (f"{EVIDENCE}\n8 out of 10 and 5 out of 10", [8, 5]),
    ],
)
def test_parse_pair_scores_formats(text, expected):
    assert parse_pair_scores(text) == expected


def test_the_last_mention_of_a_labelled_score_wins():
    text = "At first glance Assistant 1: 5 and Assistant 2: 5.\nAfter checking: Assistant 1: 9, Assistant 2: 4"
    assert parse_pair_scores(text) == [9, 4]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Both answers are good, I cannot decide.",
        EVIDENCE,  # numbers in the evidence are not scores
        "Assistant 1 is 2 times better than Assistant 2.",
        f"{EVIDENCE}\nScores: 15 7",  # out of range
        f"{EVIDENCE}\nScores: 8",
    ],
)
def test_parse_pair_scores_failures(text):
    with pytest.raises(ScoreParseError):
        parse_pair_scores(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Good answer.\nRating: [[8]]", 8),
        ("Mentions [[3]] first, then revises.\nRating: [[7.5]]", 7.5),
        ("Fine.\nRating: 6", 6),
        ("Correct result.\n9/10", 9),
    ],
)
def test_parse_rating(text, expected):
    assert parse_rating(text) == expected


@pytest.mark.parametrize("text", ["This answer is okay.", "Rating: [[12]]", "2 of 3 steps are right"])
def test_parse_rating_failures(text):
    with pytest.raises(ScoreParseError):
        parse_rating(text)


REVIEWS_DIR = Path(__file__).parent / "data" / "vicuna_reviews_2023"
# Where FastChat's hand-fixed `score` disagrees with what the review itself says, a person reads the review's words.
READ_FROM_TEXT = {
    ("bard", 70): ([10, 4], "Scores:\nAssistant 1: 10\nAssistant 2: 4"),
    ("llama-13b", 70): ([10, 4], "Scores:\nAssistant 1: 10\nAssistant 2: 4"),
}


def recorded_reviews():
    for path in sorted(REVIEWS_DIR.glob("review_*_vicuna-13b.jsonl")):
        model = path.stem.removeprefix("review_").removesuffix("_vicuna-13b")
        for line in path.read_text().splitlines():
            yield model, json.loads(line)


def human_reading(model: str, review: dict) -> list[float]:
    if (model, review["question_id"]) in READ_FROM_TEXT:
        scores, quote = READ_FROM_TEXT[(model, review["question_id"])]
        assert quote in review["text"] and review["score"] != scores
        return scores
    return review["score"]


def test_every_recorded_gpt4_review_parses_as_a_person_reads_it():
    reviews = list(recorded_reviews())
    assert len(reviews) == 240
    wrong = [
        (model, r["question_id"], human_reading(model, r), parse_pair_scores(r["text"]))
        for model, r in reviews
        if parse_pair_scores(r["text"]) != human_reading(model, r)
    ]
    assert wrong == []


def test_a_python_tuple_of_scores_is_read_but_coordinates_are_not():
    text = (
        "First, the points (2, -2) and (10, 4) give distance sqrt(8^2 + 6^2) = 10.\n\nAssistant 1 is wrong.\n\n"
        "In conclusion, the scores are (1, 5) for Assistant 1 and Assistant 2, respectively."
    )
    assert parse_pair_scores(text) == [1, 5]
    assert parse_pair_scores("Solving it: the vertex is at (3, 4).\n\n(9, 2)") == [9, 2]
    with pytest.raises(ScoreParseError):
        parse_pair_scores("The endpoints are (2, -2) and (10, 4); both assistants got it right.")


def test_a_numbered_list_after_an_assistant_label_is_no_score():
    text = "8 6\nAssistant 1: 1. Create a schedule, 2. Prioritize tasks.\nAssistant 2: 2. Take breaks is its main tip."
    assert parse_pair_scores(text) == [8, 6]  # the first line, not "1" and "2" of the lists
    with pytest.raises(ScoreParseError):
        parse_pair_scores("Assistant 1: 1. Create a schedule\nAssistant 2: 1. Set goals")
    assert parse_pair_scores("Assistant 1: 8. Assistant 2: 7.") == [8, 7]  # sentence-final scores still are


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is correct and clear. I would rate it 7/10.", 7),
        ("Solid work overall: 8 out of 10.", 8),
        ("Rating: [[6]].", 6),
    ],
)
def test_sentence_final_ratings(text, expected):
    assert parse_rating(text) == expected
