"""Step 5: AlpacaEval export. The ``alpaca_eval`` tool scores outputs given as a JSON list of
``{"instruction", "output", "generator", "dataset"}``.

The 805 AlpacaEval prompts are licensed CC BY-NC 4.0, so they are not shipped: :func:`download_alpaca_questions`
fetches them from the Hugging Face Hub only when asked (``eval export-alpaca --download``) and writes them as a
question file that ``eval answers --questions`` reads.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from openchat_hf.evaluation.errors import EvaluationError
from openchat_hf.evaluation.questions import load_questions
from openchat_hf.evaluation.records import JsonlAppender, load_answers

logger = logging.getLogger(__name__)

ALPACA_EVAL_REPO = "tatsu-lab/alpaca_eval"
ALPACA_EVAL_FILE = "alpaca_eval.json"


def alpaca_rows_to_questions(rows: list[dict]) -> list[dict]:
    """AlpacaEval prompt rows -> question rows (``question_id`` = position, ``category`` = the row's ``dataset``)."""
    return [
        {"question_id": i, "category": row.get("dataset", "alpaca_eval"), "turns": [row["instruction"]]}
        for i, row in enumerate(rows)
    ]


def download_alpaca_questions(out_path: str | Path, revision: str | None = None) -> Path:
    """Download the AlpacaEval prompts (CC BY-NC 4.0, non-commercial use only) into a question file."""
    from huggingface_hub import hf_hub_download

    try:
        source = hf_hub_download(ALPACA_EVAL_REPO, ALPACA_EVAL_FILE, repo_type="dataset", revision=revision)
    except Exception as err:  # offline, no access, moved file: say what to do
        raise EvaluationError(
            f"could not download {ALPACA_EVAL_FILE} from the dataset {ALPACA_EVAL_REPO} ({err}); check the network "
            "and HF_HUB_OFFLINE, or download it yourself and pass it to --alpaca-file"
        ) from err
    return convert_alpaca_file(source, out_path)


def convert_alpaca_file(source: str | Path, out_path: str | Path) -> Path:
    """Convert a local ``alpaca_eval.json`` (a JSON list with ``instruction``, ``dataset``) into a question file."""
    try:
        rows = json.loads(Path(source).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise EvaluationError(f"{source} is not a readable AlpacaEval JSON list: {err}") from err
    out_path = Path(out_path)
    if out_path.exists():
        out_path.unlink()
    with JsonlAppender(out_path) as out:
        for row in alpaca_rows_to_questions(rows):
            out.write(row)
    logger.info("wrote %d AlpacaEval prompts (CC BY-NC 4.0) to %s", len(rows), out_path)
    return out_path


def export_alpaca(
    answers_path: str | Path, questions_path: str | Path, out_path: str | Path, generator: str | None = None
) -> Path:
    """Write the answers to the questions of ``questions_path`` as an AlpacaEval model-outputs JSON list."""
    questions = load_questions("alpaca_eval", questions_path)
    answers = load_answers(answers_path)
    missing = [q.question_id for q in questions if str(q.question_id) not in answers.turns]
    if missing:
        raise EvaluationError(
            f"{answers.path} has no answer for {len(missing)} of {len(questions)} questions (first: {missing[:5]}); "
            "finish them with `eval answers` (it resumes) before exporting"
        )
    rows = [
        {
            "instruction": q.turns[0],
            "output": answers.turns[str(q.question_id)][0],
            "generator": generator or answers.model,
            "dataset": q.category,
        }
        for q in questions
    ]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(rows, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return out_path


if __name__ == "__main__":
    from openchat_hf.evaluation.runner import run_step

    run_step("export-alpaca")
