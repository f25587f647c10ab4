"""Score parsing of judge reviews: the formats real judges write, and failures that must not become scores."""

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
