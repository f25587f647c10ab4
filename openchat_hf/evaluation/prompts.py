"""Judge prompts (our own wording). Bump ``PROMPTS_VERSION`` whenever a prompt changes: it goes into every report.

Pairwise prompts use evidence calibration: the judge writes its evidence first and the two scores last, on a fixed
line ``Scores: <assistant 1> <assistant 2>``. Math questions ask the judge to solve the problem before reading the
answers; coding questions ask for a correctness check before style. Single-answer grading (MT-bench) ends with
``[[rating]]``.
"""

from __future__ import annotations

from openchat_hf.evaluation.questions import Question

PROMPTS_VERSION = "openchat-hf-v1"

PAIRWISE_SYSTEM = (
    "You are a fair and meticulous reviewer of answers written by AI assistants. You compare answers on their merits "
    "only: the order in which they are shown, their length and the assistants' names must not sway you."
)

PAIRWISE_INSTRUCTIONS = {
    "general": (
        "Compare how well the two assistants served the user: is the answer helpful, relevant to what was asked, "
        "factually right, deep enough, and as detailed as the question needs? Padding and repetition are flaws, not "
        "strengths."
    ),
    "coding": (
        "This is a programming question. First check correctness: read each assistant's code as a reviewer would, "
        "follow what it does on a typical input and on edge cases, and note bugs, missing pieces or code that would "
        "not run. Then judge quality: clarity, sensible structure, efficiency, and whether the explanation matches "
        "the code. A correct answer beats a polished but broken one."
    ),
    "math": (
        "This question has a definite answer. Before you read the assistants' work, solve the problem yourself step "
        "by step and state your result. Then check each assistant's reasoning and final answer against yours. A wrong "
        "final answer must score low however well it is presented; among correct answers, prefer clear reasoning."
    ),
}

PAIRWISE_FORMAT = (
    "Write your evaluation first: the evidence for your judgement, citing specific strengths and mistakes of each "
    "answer. Then give each assistant an overall score from 1 to 10 (10 is best). The very last line of your reply "
    "must contain only the two scores in this form:\n"
    "Scores: <score of Assistant 1> <score of Assistant 2>"
)

GRADE_SYSTEM = "You are a fair and meticulous reviewer of answers written by AI assistants."

GRADE_INSTRUCTIONS = {
    "general": (
        "Rate the quality of the assistant's answer: helpfulness, relevance, accuracy, depth, creativity and level "
        "of detail."
    ),
    "coding": (
        "Rate the assistant's answer to this programming question. Check whether the code is correct (trace it on "
        "typical and edge-case inputs) before weighing clarity and efficiency."
    ),
    "math": (
        "Rate the assistant's answer to this problem. Decide whether its final answer and reasoning are correct; a "
        "wrong result must get a low rating however it is presented."
    ),
}
GRADE_REFERENCE_NOTE = (
    "A reference answer is given; compare the assistant's answer with it and find any mistakes. The reference is a "
    "guide, not the only acceptable wording."
)
GRADE_FORMAT = (
    "Explain your assessment briefly and objectively first. Then, on the last line, give the rating from 1 to 10 "
    'strictly in this form: "Rating: [[5]]".'
)


def _conversation(question: Question, answer_turns: list[str], label: str) -> str:
    """The question and one assistant's answer(s); for several turns, the whole conversation."""
    if len(question.turns) == 1:
        return f"[The Start of {label}'s Answer]\n{answer_turns[0]}\n[The End of {label}'s Answer]"
    parts = [f"[The Start of {label}'s Conversation with the User]"]
    for i, (user, answer) in enumerate(zip(question.turns, answer_turns), 1):
        parts += [f"### User (turn {i}):\n{user}", f"### {label} (turn {i}):\n{answer}"]
    parts.append(f"[The End of {label}'s Conversation with the User]")
    return "\n\n".join(parts)


def pairwise_messages(question: Question, answer_1: list[str], answer_2: list[str]) -> list[dict]:
    """Chat messages asking the judge to compare Assistant 1 (``answer_1``) with Assistant 2 (``answer_2``)."""
    head = f"[Question]\n{question.turns[0]}" if len(question.turns) == 1 else "[Conversations]"
    body = "\n\n".join(
        [
            head,
            _conversation(question, answer_1, "Assistant 1"),
            _conversation(question, answer_2, "Assistant 2"),
            "[Instructions]\n" + PAIRWISE_INSTRUCTIONS[question.kind] + "\n\n" + PAIRWISE_FORMAT,
        ]
    )
    return [{"role": "system", "content": PAIRWISE_SYSTEM}, {"role": "user", "content": body}]


def grade_messages(question: Question, answer_turns: list[str], turn: int) -> list[dict]:
    """Chat messages asking the judge to rate the assistant's answer to turn ``turn`` (1-based) of ``question``."""
    instructions = GRADE_INSTRUCTIONS[question.kind]
    reference = question.reference if question.reference and len(question.reference) >= turn else None
    if reference:
        instructions += " " + GRADE_REFERENCE_NOTE
    parts = []
    if turn == 1:
        parts.append(f"[Question]\n{question.turns[0]}")
        if reference:
            parts.append(f"[The Start of Reference Answer]\n{reference[0]}\n[The End of Reference Answer]")
        parts.append(f"[The Start of Assistant's Answer]\n{answer_turns[0]}\n[The End of Assistant's Answer]")
    else:
        convo = ["[The Start of the Conversation]"]
        for i in range(turn):
            convo += [f"### User:\n{question.turns[i]}", f"### Assistant:\n{answer_turns[i]}"]
        convo.append("[The End of the Conversation]")
        parts.append("\n\n".join(convo))
        if reference:
            ref = "\n\n".join(f"### Reference answer (turn {i + 1}):\n{r}" for i, r in enumerate(reference[:turn]))
            parts.append(f"[The Start of Reference Answers]\n{ref}\n[The End of Reference Answers]")
        instructions += f" Rate only the assistant's answer to turn {turn}, the last one."
    parts.append("[Instructions]\n" + instructions + "\n\n" + GRADE_FORMAT)
    return [{"role": "system", "content": GRADE_SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


# JSON verdicts: the same prompts with the format paragraph asking for a JSON object (evidence first, scores last),
# sent with ``response_format`` when the judge's endpoint accepts it.
PAIRWISE_FORMAT_JSON = (
    "Write your evaluation first: the evidence for your judgement, citing specific strengths and mistakes of each "
    "answer. Then give each assistant an overall score from 1 to 10 (10 is best). Reply with a JSON object only, "
    'with the keys "evaluation" (your evidence, as text), "score_1" (the score of Assistant 1) and "score_2" (the '
    "score of Assistant 2), in this order."
)
PAIRWISE_SCHEMA = {
    "type": "object",
    "properties": {
        "evaluation": {"type": "string"},
        "score_1": {"type": "number", "minimum": 1, "maximum": 10},
        "score_2": {"type": "number", "minimum": 1, "maximum": 10},
    },
    "required": ["evaluation", "score_1", "score_2"],
    "additionalProperties": False,
}
GRADE_FORMAT_JSON = (
    "Explain your assessment briefly and objectively first. Then rate the answer from 1 to 10. Reply with a JSON "
    'object only, with the keys "explanation" (your assessment, as text) and "rating" (the rating), in this order.'
)
GRADE_SCHEMA = {
    "type": "object",
    "properties": {"explanation": {"type": "string"}, "rating": {"type": "number", "minimum": 1, "maximum": 10}},
    "required": ["explanation", "rating"],
    "additionalProperties": False,
}


def as_json_prompt(messages: list[dict], text_format: str, json_format: str) -> list[dict]:
    """``messages`` with the text-format paragraph of the last message replaced by the JSON one."""
    last = messages[-1]["content"]
    if text_format not in last:
        raise ValueError("the prompt has no format paragraph to replace")
    return [*messages[:-1], {**messages[-1], "content": last.replace(text_format, json_format)}]
