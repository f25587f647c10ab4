"""`openchat-hf eval answers | judge | grade | report | export-alpaca`: argument parsers and command functions.

Library modules are imported inside the command functions so ``openchat-hf --help`` stays fast. The step modules' own
entry point (``python -m openchat_hf.evaluation.<step>``) is :mod:`openchat_hf.evaluation.runner`, so no step module
imports this one and this one imports no step module at import time.
"""

from __future__ import annotations

import sys

STEP_HELP = {
    "answers": "answer Vicuna-bench / MT-bench with any OpenAI-compatible endpoint (resumable)",
    "judge": "pairwise judging against a baseline (evidence first, both orders, k samples, cached)",
    "grade": "MT-bench single-answer grading ([[rating]] per turn, reference answers for math/reasoning/coding)",
    "report": "report.json + report.md from judge / grade folders",
    "export-alpaca": "AlpacaEval-format outputs (prompts downloaded only with --download: CC BY-NC)",
    "agreement": "judge-human agreement: accuracy with / without ties, Cohen's kappa, per category, bootstrap CIs",
}


def _endpoint_args(parser, prefix: str = "") -> None:
    dash = f"--{prefix}-" if prefix else "--"
    parser.add_argument(
        f"{dash}base-url", required=True, help="OpenAI-compatible base URL, e.g. http://127.0.0.1:18888/v1"
    )
    parser.add_argument(f"{dash}model", required=True, help="model name sent in requests")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per request before it is retried")
    parser.add_argument("--max-retries", type=int, default=6, help="retries (exponential backoff) on 429/5xx/timeouts")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight at most")


def _selection_args(parser) -> None:
    parser.add_argument("--questions", help="a FastChat-format question.jsonl instead of the shipped set")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--limit", type=int, help="only the first N questions")
    group.add_argument("--question-ids", nargs="+", help="only these question ids")


PROTOCOL_HELP = (
    "judge protocol: openchat-hf (ours, default), openchat-v1, vicuna-2023 (pairwise), mt-bench (grading); a preset "
    "fixes prompts, parsing, temperature, max tokens and samples (see docs/evaluation.md)"
)


def _choice_arg(parser, flag: str, choices: list[str], help: str) -> None:
    """An option taking one of ``choices``, the first by default."""
    parser.add_argument(flag, choices=choices, default=choices[0], help=help)


def _bootstrap_args(parser) -> None:
    parser.add_argument("--bootstrap-resamples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)


def _judge_args(parser) -> None:
    parser.add_argument("--protocol", help=PROTOCOL_HELP)
    parser.add_argument("--max-tokens", type=int, help="judge completion tokens (default: the protocol's, ours 1024)")
    parser.add_argument("--parse-retries", type=int, help="new attempts for an unparseable review (ours: 2)")
    parser.add_argument(
        "--json-verdicts",
        choices=["auto", "json_schema", "json_object", "off"],
        help="ask for a JSON verdict via response_format (default: auto for ours, probed once; off for presets)",
    )
    parser.add_argument(
        "--redo-stale", action="store_true", help="judge again what was judged from other answers / questions"
    )
    parser.add_argument("--cache", help="judge-call cache file (default OUT/cache.jsonl); share it across runs")


def _endpoint(args, prefix: str = ""):
    from openchat_hf.evaluation.client import EndpointConfig

    name = f"{prefix}_" if prefix else ""
    return EndpointConfig(
        base_url=getattr(args, f"{name}base_url"),
        model=getattr(args, f"{name}model"),
        api_key_env=args.api_key_env,
        timeout=args.timeout,
        max_retries=args.max_retries,
    )


def cmd_answers(args) -> int:
    from openchat_hf.evaluation.answers import AnswerConfig, generate_answers

    config = AnswerConfig(
        endpoint=_endpoint(args),
        out_dir=args.out,
        bench=args.bench,
        questions_path=args.questions,
        concurrency=args.concurrency,
        max_tokens=args.max_tokens,
        temperature=args.temperature,
        system_prompt=args.system_prompt,
        limit=args.limit,
        question_ids=args.question_ids,
        out_name=args.out_name,
    )
    result = generate_answers(config)
    print(f"{result.path}: {result.written} new answers, {result.skipped} already there, {len(result.failed)} failed")
    if result.failed:
        print("some requests kept failing (see the log); run the same command again to finish", file=sys.stderr)
        return 1
    return 0


def _review_settings(args) -> dict:
    """The settings ``eval judge`` and ``eval grade`` share (one reading of their common arguments)."""
    return dict(
        answers=args.answers,
        endpoint=_endpoint(args, "judge"),
        out_dir=args.out,
        bench=args.bench,
        questions_path=args.questions,
        protocol=args.protocol,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        parse_retries=args.parse_retries,
        json_mode=args.json_verdicts,
        redo_stale=args.redo_stale,
        concurrency=args.concurrency,
        limit=args.limit,
        question_ids=args.question_ids,
        cache_path=args.cache,
    )


def _rerun_hint(failures, what: str) -> int:
    """Exit status of a run: 1 with a hint to rerun when some items hit endpoint errors (they are resumable)."""
    if failures:
        print(f"{len(failures)} {what} hit endpoint errors; run the same command again to finish", file=sys.stderr)
        return 1
    return 0


def cmd_judge(args) -> int:
    from openchat_hf.evaluation.judge import JudgeConfig, format_estimate, run_judge

    config = JudgeConfig(
        baseline=args.baseline, samples=args.samples, aggregation=args.aggregation, **_review_settings(args)
    )
    result = run_judge(
        config,
        dry_run=args.dry_run,
        on_estimate=lambda est: print("estimate: " + format_estimate(est, config.endpoint.model)),
    )
    if args.dry_run:
        return 0
    if result.fastchat_file:
        print(f"FastChat format: {result.fastchat_file} (show_result.py --mode pairwise-baseline reads it)")
    stats = result.stats
    print(
        f"{result.out_dir}: {result.judged} questions judged, {result.skipped} already there; {stats.calls} calls, "
        f"{stats.cache_hits} from cache, {stats.prompt_tokens + stats.completion_tokens:,} tokens; "
        f"{result.failed_reviews} reviews unparseable (recorded, not scored)"
    )
    return _rerun_hint(result.endpoint_failures, "questions")


def cmd_grade(args) -> int:
    from openchat_hf.evaluation.grade import GradeConfig, run_grade

    config = GradeConfig(**_review_settings(args))
    result = run_grade(config)
    if result.fastchat_file:
        print(f"FastChat format: {result.fastchat_file} (show_result.py --input-file reads it)")
    print(
        f"{result.out_dir}: {result.graded} answers graded, {result.skipped} already there; {result.stats.calls} "
        f"calls, {result.stats.cache_hits} from cache; {result.failed_ratings} ratings unparseable"
    )
    return _rerun_hint(result.endpoint_failures, "answers")


def cmd_report(args) -> int:
    from openchat_hf.evaluation.report import build_report, render_markdown, write_report

    report = build_report(
        args.dirs,
        note=args.note,
        n_resamples=args.bootstrap_resamples,
        seed=args.seed,
        allow_partial=args.allow_partial,
    )
    json_path, _ = write_report(report, args.out)
    print(render_markdown(report))
    print(f"wrote {json_path} and report.md")
    return 0


def cmd_export_alpaca(args) -> int:
    from openchat_hf.evaluation import alpaca
    from openchat_hf.evaluation.errors import EvaluationError

    if args.download or args.alpaca_file:
        out = args.questions_out
        path = (
            alpaca.download_alpaca_questions(out)
            if args.download
            else alpaca.convert_alpaca_file(args.alpaca_file, out)
        )
        print(
            f"wrote the AlpacaEval prompts (CC BY-NC 4.0: non-commercial use only) to {path}; answer them with "
            f"`openchat-hf eval answers --questions {path} ...`, then export with --answers"
        )
        return 0
    if not (args.answers and args.questions and args.out):
        raise EvaluationError("give --answers, --questions and --out (or --download to fetch the prompts first)")
    path = alpaca.export_alpaca(args.answers, args.questions, args.out, generator=args.generator)
    print(f"wrote {path}; score it with `alpaca_eval --model_outputs {path}`")
    return 0


def cmd_agreement(args) -> int:
    from openchat_hf.evaluation.agreement import compute_agreement, render_agreement, write_agreement

    result = compute_agreement(
        args.dirs,
        args.labels,
        labels_format=args.labels_format,
        turn=args.turn,
        n_resamples=args.bootstrap_resamples,
        seed=args.seed,
    )
    path = write_agreement(result, args.out)
    print(render_agreement(result))
    print(f"wrote {path} and agreement.md")
    return 0


def add_step_parsers(steps) -> None:
    """Add the evaluation steps to an argparse sub-parsers object."""
    p = steps.add_parser("answers", help=STEP_HELP["answers"], description=STEP_HELP["answers"])
    p.add_argument("--bench", default="vicuna", help="vicuna (80 questions) or mt_bench (80, two turns)")
    _endpoint_args(p)
    p.add_argument("--out", required=True, help="output folder (writes OUT/<model>.jsonl)")
    p.add_argument("--out-name", help="file name (without .jsonl) instead of the model name")
    p.add_argument("--max-tokens", type=int, default=1024)
    p.add_argument("--temperature", type=float, help="default: 0.7 (Vicuna-bench), per category (MT-bench)")
    p.add_argument("--system-prompt", help="a system message before each conversation")
    _selection_args(p)
    p.set_defaults(func=cmd_answers)

    p = steps.add_parser("judge", help=STEP_HELP["judge"], description=STEP_HELP["judge"])
    p.add_argument("--answers", required=True, help="the model's answers (JSONL)")
    p.add_argument(
        "--baseline", required=True, help="the baseline's answers (JSONL, or a shipped name: gpt35, bard, ...)"
    )
    _endpoint_args(p, "judge")
    p.add_argument("--out", required=True, help="output folder (meta.json, judgments.jsonl, cache.jsonl)")
    p.add_argument("--bench", help="default: from the answer rows, else vicuna")
    p.add_argument("--samples", type=int, help="reviews per order (k; default 1; FairEval uses 3)")
    p.add_argument("--temperature", type=float, help="judge temperature (ours: 0 for k=1, 1.0 for k>1)")
    _choice_arg(
        p,
        "--aggregation",
        ["balanced", "faireval"],
        "k>1: mean per order then of the orders (balanced), or all successful samples pooled (FairEval's rule)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the cost/time estimate and stop")
    _judge_args(p)
    _selection_args(p)
    p.set_defaults(func=cmd_judge)

    p = steps.add_parser("grade", help=STEP_HELP["grade"], description=STEP_HELP["grade"])
    p.add_argument("--answers", required=True, nargs="+", help="answer files (MT-bench, both turns)")
    _endpoint_args(p, "judge")
    p.add_argument("--out", required=True, help="output folder (meta.json, grades.jsonl, cache.jsonl)")
    p.add_argument("--bench", default="mt_bench")
    p.add_argument("--temperature", type=float, help="grader temperature (default: the protocol's, ours 0)")
    _judge_args(p)
    _selection_args(p)
    p.set_defaults(func=cmd_grade)

    p = steps.add_parser("report", help=STEP_HELP["report"], description=STEP_HELP["report"])
    p.add_argument("dirs", nargs="+", help="judge / grade output folders (or folders holding them)")
    p.add_argument("--out", required=True, help="folder for report.json and report.md")
    p.add_argument("--note", help="a caveat stored in the report (e.g. a tiny judge)")
    _bootstrap_args(p)
    p.add_argument(
        "--allow-partial",
        action="store_true",
        help="report runs that miss questions (marked partial) instead of refusing",
    )
    p.set_defaults(func=cmd_report)

    p = steps.add_parser("export-alpaca", help=STEP_HELP["export-alpaca"], description=STEP_HELP["export-alpaca"])
    p.add_argument("--answers", help="answers to the AlpacaEval prompts (from `eval answers --questions`)")
    p.add_argument("--questions", help="the AlpacaEval question file written by --download")
    p.add_argument("--out", help="model outputs JSON for alpaca_eval")
    p.add_argument("--generator", help="generator name (default: the answers' model)")
    p.add_argument("--download", action="store_true", help="download the 805 prompts from the Hub (CC BY-NC 4.0)")
    p.add_argument("--alpaca-file", help="convert a local alpaca_eval.json instead of downloading")
    p.add_argument("--questions-out", default="alpaca_eval_questions.jsonl", help="where --download writes")
    p.set_defaults(func=cmd_export_alpaca)

    p = steps.add_parser("agreement", help=STEP_HELP["agreement"], description=STEP_HELP["agreement"])
    p.add_argument("dirs", nargs="+", help="pairwise judge folders (or folders holding them)")
    p.add_argument("--labels", required=True, help="human labels (JSON Lines or a JSON list)")
    _choice_arg(
        p,
        "--labels-format",
        ["openchat-hf", "fastchat"],
        "openchat-hf: {question_id, model, baseline, winner}; fastchat: MT-bench human judgments layout",
    )
    p.add_argument("--turn", type=int, help="only the labels of this turn (FastChat's labels are per turn)")
    p.add_argument("--out", required=True, help="folder for agreement.json and agreement.md")
    _bootstrap_args(p)
    p.set_defaults(func=cmd_agreement)


def add_subcommands(subparsers) -> None:
    parser = subparsers.add_parser("eval", help="Vicuna-bench / MT-bench evaluation, AlpacaEval export")
    steps = parser.add_subparsers(dest="eval_step", metavar="STEP")
    add_step_parsers(steps)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)  # `openchat-hf eval` alone: its own help
