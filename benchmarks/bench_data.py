"""Benchmark of the data pipeline (clean + filter + convert) against OpenChat v1's approach, on 2 CPU cores.

Corpus: N ShareGPT pages (``ShareGPT/*.html`` with ``__NEXT_DATA__``, the input of OpenChat v1's
``run_data_pipeline.sh``), 1-3 turns each, built from the real Vicuna-bench / MT-bench questions and answers
rendered to ChatGPT's HTML (code blocks with "Copy code", lists, tables), half of them GPT-4, ~2 % duplicates,
~1 % with a blocked word.

* ours: ``openchat_hf.data.run_pipeline`` (Rust html-to-markdown, fast tokenizer batches, ``datasets.map``,
  ``num_proc``), in a fresh subprocess per corpus size so its peak RSS (process + workers) is measured;
* baseline: a faithful re-implementation of OpenChat v1's ``run_data_pipeline.sh`` (tag ``OpenChat-v1``) for one
  model type: ``clean_sharegpt.py`` (BeautifulSoup page parsing, regex + markdownify, hash dedup, a process pool of
  ``--num-proc`` workers as v1's ``ray.util.multiprocessing.Pool()`` on this machine, ``sharegpt_clean.json``),
  ``filter_sharegpt.py`` (``sharegpt_gpt4.json``) and ``generate_dataset.py`` in one process as v1 ran it (per
  segment ``_tokenize`` of the slow SentencePiece tokenizer, ``openchat.{split}.json``, then ``batch_decode`` of
  every conversation into ``openchat.{split}.text.json``), on a subset.
* decontamination + near-dedup on synthetic ShareGPT-like conversations (``--dedup-n``), CPU time and peak RSS.

Tokenizers: ours is a 32K-vocab (max) Metaspace BPE trained with ``tokenizers`` on the corpus text; the baseline's is
a SentencePiece BPE of the same vocabulary budget trained on the same text and used through transformers' slow
``SentencePieceBackend``, as v1 used ``LlamaTokenizer`` (slow).

Usage: ``python benchmarks/bench_data.py [--n 20000] [--small 5000] [--baseline-n 1000] [--num-proc 2]``;
decontamination + near-dedup alone: ``python benchmarks/bench_data.py --only-dedup --dedup-n 90000,250000,500000``.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import Pool
from pathlib import Path

from openchat_hf.data.sample import GPT4, GPT35, markdown_to_chatgpt_html, page_html
from openchat_hf.resources import MT_BENCH_DIR, VICUNA_ANSWERS_DIR, VICUNA_BENCH_DIR, read_jsonl

EOT = "<|end_of_turn|>"


# ------------------------------------------------------------------------------------------------------ corpus
def text_pairs() -> list[tuple[str, str]]:
    """(question, answer) pairs of real text: Vicuna-bench answers of 5 models + GPT-4 references, MT-bench."""
    questions = {q["question_id"]: q["turns"][0] for q in read_jsonl(VICUNA_BENCH_DIR / "question.jsonl")}
    pairs = []
    for path in sorted(VICUNA_ANSWERS_DIR.glob("*.jsonl")):
        pairs += [(questions[r["question_id"]], r["text"]) for r in read_jsonl(path)]
    for r in read_jsonl(VICUNA_BENCH_DIR / "reference_answer_gpt-4.jsonl"):
        pairs.append((questions[r["question_id"]], r["choices"][0]["turns"][0]))
    mt_q = {q["question_id"]: q["turns"] for q in read_jsonl(MT_BENCH_DIR / "question.jsonl")}
    for r in read_jsonl(MT_BENCH_DIR / "reference_answer_gpt-4.jsonl"):
        pairs += list(zip(mt_q[r["question_id"]], r["choices"][0]["turns"]))
    return pairs


def make_corpus(folder: Path, n: int, seed: int = 0) -> dict:
    """Write ``n`` ShareGPT pages to ``folder/ShareGPT``; return their HTML size."""
    from openchat_hf.data.planted import edit_words, sentence_pool

    pages = folder / "ShareGPT"
    pages.mkdir(parents=True, exist_ok=True)
    pool = sentence_pool()
    vocab = sorted({w for sentence in pool[:2000] for w in sentence.split() if w.isalpha()})  # no markup
    pairs = text_pairs()
    rng = random.Random(seed)
    value_bytes = 0
    previous: list[dict] = []
    for i in range(n):
        if previous and rng.random() < 0.02:  # an exact duplicate of an earlier conversation
            content = rng.choice(previous)
        else:
            items = []
            for j, (_, a) in enumerate(rng.sample(pairs, rng.choice((1, 2, 2, 3)))):
                # Real ShareGPT conversations are unique apart from the re-shares above: questions are random answer
                # sentences (not the benchmark prompts, which decontamination drops), and a third of each reused
                # answer's words are replaced, so that near-dedup finds no near-duplicates among them.
                q = " ".join(rng.sample(pool, 2))
                if j == 0:
                    q = f"Question {i}: {q}"
                a = edit_words(a, 0.35, rng, vocab)
                if rng.random() < 0.01:
                    a += "\n\nThis answer comes from a model trained by OpenAI."
                answer = markdown_to_chatgpt_html(a)
                if rng.random() < 0.2:
                    answer = "<div>1 / 2</div>" + answer
                items += [{"from": "human", "value": html.escape(q, quote=False)}, {"from": "gpt", "value": answer}]
            content = {"items": items, "model": GPT4 if rng.random() < 0.5 else GPT35}
            if len(previous) < 500:
                previous.append(content)
        value_bytes += sum(len(t["value"].encode()) for t in content["items"])
        (pages / f"{i:07d}.html").write_text(page_html(f"c{i:07d}", content), encoding="utf-8")
    return {"conversations": n, "html_mb": value_bytes / 1e6}


def corpus_texts(n: int = 3000) -> list[str]:
    return [t for pair in text_pairs() for t in pair][:n]


# --------------------------------------------------------------------------------------------------- tokenizers
def build_tokenizers(folder: Path, vocab_size: int = 32000) -> tuple[Path, Path]:
    """Our fast BPE (``tokenizers``) and the baseline's SentencePiece BPE, same text, same vocab budget."""
    import sentencepiece as spm

    from openchat_hf.tiny import build_tiny_tokenizer

    texts = corpus_texts()
    fast_dir = folder / "fast_tokenizer"
    build_tiny_tokenizer("llama", vocab_size=vocab_size, extra_texts=texts).save_pretrained(fast_dir)
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts),
        model_prefix=str(folder / "spm"),
        vocab_size=vocab_size,
        model_type="bpe",
        hard_vocab_limit=False,
        byte_fallback=True,
        character_coverage=1.0,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        minloglevel=2,
        num_threads=2,
    )
    return fast_dir, folder / "spm.model"


# ------------------------------------------------------------------------------------------ OpenChat v1 baseline
_div = re.compile("<div.*?>")
_span = re.compile("<span.*?>")
_code_lang = re.compile("```\\s*" + "(.*?)" + "(?:Copy code)+" + "(.+?)" + "\\s*?```", re.DOTALL)
_regenerate = re.compile("\\d+ / \\d+")
_copy_chars = re.compile("Copy\\d+ chars / \\d+ words")
_copy_code = re.compile("```(.*?)Copy code\\s*```")


def _v1_html_to_markdown(val: str) -> str:
    import markdownify

    val = re.sub(_div, "", val)
    val = re.sub(_span, "", val)
    val = markdownify.markdownify(val).strip()
    val = re.sub(_code_lang, "```\\g<1>\n\\g<2>\n```", val)
    noise = re.search(_regenerate, val)
    if noise and noise.start() == 0:
        val = val[noise.end() :]
    val = re.sub(_copy_chars, "", val)
    val = re.sub(_copy_code, "", val)
    return val.replace("\n\n\n", "\n").strip()


def v1_sample_pipeline(filename: str):
    """OpenChat v1 ``clean_sharegpt.sample_pipeline``: load page with bs4, clean, hash."""
    import bs4

    try:
        with open(filename) as f:
            parser = bs4.BeautifulSoup(f, "html.parser")
        sample = json.loads(parser.find("script", {"id": "__NEXT_DATA__"}).decode_contents())["props"]["pageProps"]
        sample = {**sample["content"], "id": sample.get("id", "")}
        items = sample["items"]
        if len(items) <= 1:
            return False, "Conversation too short"
        if items[0]["from"] != "human":
            items = items[1:]
        if items and items[-1]["from"] == "human":
            items = items[:-1]
        if len(items) <= 1:
            return False, "Conversation too short"
        for i, c in enumerate(items):
            if c["from"] != ["human", "gpt"][i % 2]:
                return False, "Wrong format"
            if "openai" in c["value"].lower():
                return False, "Contain blocked words"
            c["value"] = _v1_html_to_markdown(c["value"])
        sample["items"] = items
        sample["hash"] = (hash("".join(c["value"] for c in items)), len(items))
        return True, sample
    except Exception as err:  # noqa: BLE001 - v1 turned every failure into a counted error
        return False, str(err)


def v1_slow_tokenizer(spm_model: Path):
    """The baseline's slow SentencePiece tokenizer with OpenChat v1's EOT special token (v1's
    ``AutoTokenizer.from_pretrained(..., use_fast=False)`` of a Llama checkpoint with ``<|end_of_turn|>`` added)."""
    from transformers.tokenization_utils_sentencepiece import SentencePieceBackend

    tokenizer = SentencePieceBackend(vocab_file=str(spm_model), bos_token="<s>", eos_token="</s>", unk_token="<unk>")
    tokenizer.add_special_tokens({"additional_special_tokens": [EOT]})
    return tokenizer


def v1_convert_single_conversation(tokenizer, sample: dict, max_context: int = 2048) -> tuple[list[int], list[bool]]:
    """OpenChat v1 ``generate_dataset.convert_single_conversation`` with the ``openchat`` ``ModelConfig``: BOS, then
    per message ``_tokenize(role prefix)`` and ``_tokenize(value) + [EOT]`` (one slow-tokenizer call per segment),
    truncated to the context."""

    def _tokenize(text: str) -> list[int]:
        return tokenizer.convert_tokens_to_ids(tokenizer._tokenize(text))

    tokens, masks = [tokenizer.convert_tokens_to_ids("<s>")], [False]
    eot = tokenizer.convert_tokens_to_ids(EOT)
    for message in sample["items"]:
        t = _tokenize("Human: " if message["from"] == "human" else "Assistant: ")
        tokens += t
        masks += [False] * len(t)
        t = _tokenize(message["value"]) + [eot]
        tokens += t
        masks += [message["from"] == "gpt"] * len(t)
    return tokens[:max_context], masks[:max_context]


def _usage() -> tuple[float, float]:
    """(CPU seconds of this process and its finished children, peak RSS MB of either)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime, max(me.ru_maxrss, kids.ru_maxrss) / 1024


def run_baseline(files: list[str], spm_model: Path, num_proc: int, out_dir: Path | None = None) -> dict:
    """OpenChat v1's ``run_data_pipeline.sh`` for one model type, as v1 ran it: ``clean_sharegpt`` (a process pool
    over the pages, hash dedup, ``sharegpt_clean.json``), ``filter_sharegpt`` (``sharegpt_gpt4.json``) and
    ``generate_dataset`` (one process: shuffle, split, per-segment tokenization, ``openchat.{split}.json``, then
    ``batch_decode`` of every conversation into ``openchat.{split}.text.json``)."""
    out_dir = Path(out_dir or tempfile.mkdtemp(prefix="v1_out-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # clean_sharegpt.main (v1 used ray.util.multiprocessing.Pool(): one worker per CPU)
    with Pool(num_proc) as pool:
        samples = pool.map(v1_sample_pipeline, files)
    visited, results = set(), []
    for ok, sample in samples:
        if ok and sample["hash"] not in visited:
            visited.add(sample["hash"])
            results.append(sample)
    with open(out_dir / "sharegpt_clean.json", "w") as f:
        json.dump(results, f, indent="\t")
    # filter_sharegpt
    with open(out_dir / "sharegpt_clean.json") as f:
        input_samples = json.load(f)
    kept = [s for s in input_samples if s.get("model", "") == GPT4]
    with open(out_dir / "sharegpt_gpt4.json", "w") as f:
        json.dump(kept, f, indent="\t")
    # generate_dataset --model-type openchat (single process, as v1: "FIXME: Tokenizer have GIL")
    tokenizer = v1_slow_tokenizer(spm_model)
    with open(out_dir / "sharegpt_gpt4.json") as f:
        conversations = json.load(f)
    random.seed(42)
    random.shuffle(conversations)
    eval_num = int(0.01 * len(conversations))
    tokens = 0
    for split, convs in (("train", conversations[eval_num:]), ("eval", conversations[:eval_num])):
        converted = [v1_convert_single_conversation(tokenizer, c) for c in convs]
        tokens += sum(len(t) for t, _ in converted)
        with open(out_dir / f"openchat.{split}.json", "w") as f:
            json.dump(converted, f)
        texts = tokenizer.batch_decode([t for t, _ in converted], spaces_between_special_tokens=False)
        with open(out_dir / f"openchat.{split}.text.json", "w") as f:
            json.dump(texts, f, indent="\t")
    seconds = time.perf_counter() - start
    cpu, rss = _usage()
    return {
        "conversations": len(files),
        "kept": len(kept),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": rss,
        "tokens": tokens,
    }


# ------------------------------------------------------------------------------------------------------- ours
class AnonMemorySampler:
    """Peak anonymous memory (``Pss_Anon``: copy-on-write pages of forked workers split, not double-counted) of
    this process tree, sampled every 0.5 s (one sample
    costs ~5 ms of CPU: at 20 Hz it added ~10 % to the CPU time of the process it measured).

    RSS also counts the pages of the memory-mapped Arrow files that were read, which grows with the corpus but is
    page cache the kernel can drop; the anonymous part is what the pipeline itself holds.
    """

    def __init__(self) -> None:
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop.wait(0.5):
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    with open(f"/proc/{proc.pid}/smaps_rollup") as f:
                        total += 1024 * next(int(line.split()[1]) for line in f if line.startswith("Pss_Anon:"))
                except (OSError, StopIteration, psutil.Error):
                    pass
            self.peak = max(self.peak, total)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def run_ours_worker(corpus: str, out: str, tokenizer: str, num_proc: int) -> None:
    """Child process: run the pipeline, print its timing and peak memory (self + workers) as JSON."""
    import logging

    from openchat_hf.data import PipelineConfig, run_pipeline

    logging.disable(logging.INFO)
    start = time.perf_counter()
    meter = StepMeter()
    if num_proc == 1:  # CPU per step (the wrappers see this process only)
        meter.install()
    with AnonMemorySampler() as sampler:
        config = PipelineConfig(model_types="openchat", tokenizer=tokenizer, num_proc=num_proc)
        report = run_pipeline(corpus, out, config)
    seconds = time.perf_counter() - start
    meter.stop()
    cpu, rss = _usage()
    mt = report["model_types"]["openchat"]
    print(
        "RESULT "
        + json.dumps(
            {
                "conversations": report["inputs"],
                "kept": report["kept"],
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_rss_mb": rss,
                "peak_anon_mb": sampler.peak / 2**20,
                "tokens": mt["tokens"]["train"] + mt["tokens"]["eval"],
                "step_cpu": meter.cpu,
            }
        )
    )


def run_dedup_worker(n: int, seed: int = 0) -> None:
    """Child process: decontamination + near-dedup on ``n`` synthetic conversations generated batch by batch (so
    the process's peak RSS is the steps' own memory plus one batch); CPU seconds exclude the generator."""
    from openchat_hf.data.decontaminate import build_decontaminator
    from openchat_hf.data.near_dedup import NearDeduplicator
    from openchat_hf.data.planted import iter_synthetic

    start = time.perf_counter()
    deco_cpu = dedup_cpu = 0.0
    t = time.process_time()
    deco = build_decontaminator()
    dedup = NearDeduplicator()
    deco_cpu += time.process_time() - t
    contaminated, words, batch = 0, 0, []
    rss_before = _usage()[1]

    def flush() -> None:
        nonlocal deco_cpu, dedup_cpu, contaminated
        t = time.process_time()
        contaminated += sum(1 for f in deco.check(batch) if f)
        t2 = time.process_time()
        dedup.add(batch)
        dedup_cpu += time.process_time() - t2
        deco_cpu += t2 - t
        batch.clear()

    for messages in iter_synthetic(n, seed):
        batch.append(messages)
        words += sum(len(m["content"].split()) for m in messages)
        if len(batch) == 4096:
            flush()
    if batch:
        flush()
    t = time.process_time()
    dropped = dedup.finish()
    dedup_cpu += time.process_time() - t
    print(
        "RESULT "
        + json.dumps(
            {
                "conversations": n,
                "words_per_conversation": words / max(n, 1),
                "decontaminate_cpu_s": deco_cpu,
                "near_dedup_cpu_s": dedup_cpu,
                "seconds": time.perf_counter() - start,
                "contaminated": contaminated,
                "near_duplicates": len(dropped),
                "peak_rss_mb": _usage()[1],
                "rss_before_mb": rss_before,
            }
        )
    )


def write_scale_dump(path: Path, n: int, seed: int = 0, other_model_rate: float = 0.1) -> dict:
    """A ShareGPT JSON Lines dump of ``n`` synthetic conversations (:func:`openchat_hf.data.planted.iter_synthetic`:
    2 % near-duplicates, 0.1 % pasted benchmark prompts), answers rendered to ChatGPT's HTML, ``other_model_rate``
    of them labelled GPT-3.5 (dropped by the default model filter)."""
    from openchat_hf.data.planted import iter_synthetic

    rng = random.Random(seed + 1)
    size = 0
    with open(path, "w", encoding="utf-8") as f:
        for i, messages in enumerate(iter_synthetic(n, seed)):
            turns = [
                {"from": "human", "value": html.escape(m["content"], quote=False)}
                if m["role"] == "user"
                else {"from": "gpt", "value": markdown_to_chatgpt_html(m["content"])}
                for m in messages
            ]
            model = GPT35 if rng.random() < other_model_rate else GPT4
            line = json.dumps({"id": f"s{i:07d}", "model": model, "conversations": turns}, ensure_ascii=False)
            size += len(line) + 1
            f.write(line + "\n")
    return {"conversations": n, "mb": size / 1e6}


class StepMeter:
    """CPU seconds and peak anonymous memory (``Pss_Anon``, sampled every 0.5 s) of each pipeline step, by
    wrapping the step functions of :mod:`openchat_hf.data.pipeline` (measurement only: the steps run unchanged)."""

    STEPS = {
        "discover_inputs": "read: find files",
        "build_decontaminator": "decontaminate: index prompts",
        "decontaminate_step": "decontaminate",
        "_dedup_and_filter": "dedup (exact) + drop log",
        "near_dedup_step": "near-dedup",
        "_write_duplicate_ids": "dedup (exact) + drop log",
        "write_report": "report",
        "load_tokenizer": "load + check tokenizer",
        "write_legacy_split": "convert: legacy JSON files",
    }

    def __init__(self) -> None:
        import threading

        self.cpu: dict[str, float] = {}
        self.peak: dict[str, float] = {}
        self.current = "start-up"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _anon_mb(self) -> float:
        with open("/proc/self/smaps_rollup") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("Pss_Anon:")) / 1024

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            label = self.current
            self.peak[label] = max(self.peak.get(label, 0.0), self._anon_mb())

    def _wrap(self, owner, name: str, label: str) -> None:
        f = getattr(owner, name)

        def timed(*args, **kwargs):
            outer, self.current = self.current, label
            t = time.process_time()
            try:
                return f(*args, **kwargs)
            finally:
                self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - t
                self.peak[label] = max(self.peak.get(label, 0.0), self._anon_mb())
                self.current = outer

        setattr(owner, name, timed)

    def install(self) -> None:
        import datasets

        import openchat_hf.data.pipeline as pipeline
        from openchat_hf.data.builder import ShareGPTBuilder

        for name, label in self.STEPS.items():
            self._wrap(pipeline, name, label)
        self._wrap(ShareGPTBuilder, "download_and_prepare", "read: records -> Arrow (+ model filter)")
        map_labels = iter(("clean", "convert"))
        original_map = datasets.Dataset.map

        def labelled_map(ds, function, *args, **kwargs):
            label = kwargs.get("desc") or next(map_labels)
            outer, self.current = self.current, label
            t = time.process_time()
            try:
                return original_map(ds, function, *args, **kwargs)
            finally:
                self.cpu[label] = self.cpu.get(label, 0.0) + time.process_time() - t
                self.current = outer

        datasets.Dataset.map = labelled_map
        self._wrap(datasets.Dataset, "save_to_disk", "write clean dataset")
        self._wrap(datasets.DatasetDict, "save_to_disk", "convert: write tokenized dataset")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


def run_scale_worker(n: int, folder: str) -> None:
    """Child process: write the ``n``-conversation dump (not measured), then run the pipeline on it in this one
    process (no tokenizer: read, model filter, clean, decontaminate, dedup, near-dedup, clean dataset, report) with
    each step's CPU time and peak memory."""
    import logging

    from openchat_hf.data import PipelineConfig, run_pipeline

    folder = Path(folder)
    (folder / "in").mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    dump = write_scale_dump(folder / "in" / "sharegpt.jsonl", n)
    print(f"dump: {n} conversations, {dump['mb']:.0f} MB ({time.perf_counter() - t:.0f} s to write)", flush=True)
    logging.disable(logging.INFO)
    meter = StepMeter()
    meter.install()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    report = run_pipeline(folder / "in", folder / "out", PipelineConfig())
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    meter.stop()
    print(
        "RESULT "
        + json.dumps(
            {
                "conversations": n,
                "dump_mb": dump["mb"],
                "kept": report["kept"],
                "steps": report["steps"],
                "cpu_seconds": cpu,
                "wall_seconds": wall,
                "peak_rss_mb": _usage()[1],
                "step_cpu": meter.cpu,
                "step_peak_anon_mb": meter.peak,
            }
        )
    )


def scale_table(n: int, workdir: Path) -> None:
    """The whole pipeline but convert (one process) on ``n`` synthetic conversations: CPU and memory per step."""
    r = run_child("scale", n, workdir)
    print(f"\nWhole pipeline without convert, {n} synthetic conversations ({r['dump_mb']:.0f} MB JSONL), one process:")
    print(f"kept {r['kept']}; drops {json.dumps(r['steps'])}")
    print(f"CPU {r['cpu_seconds']:.0f} s, wall {r['wall_seconds']:.0f} s, peak RSS {r['peak_rss_mb']:.0f} MB\n")
    print("| step | CPU s | peak anonymous memory MB |\n| --- | ---: | ---: |")
    for label, cpu in r["step_cpu"].items():
        print(f"| {label} | {cpu:.1f} | {r['step_peak_anon_mb'].get(label, 0):.0f} |")


def compare_table(n: int, workdir: Path, num_proc: int) -> None:
    """The 6x goal: the whole pipeline, ours vs the OpenChat v1 baseline, on the same ``n`` pages in one run, each
    in a fresh process: CPU time (user + sys of the process and all its children) and wall time."""
    corpus = workdir / "corpus"
    if not (corpus / "ShareGPT").is_dir() or len(list((corpus / "ShareGPT").iterdir())) != n:
        shutil.rmtree(corpus, ignore_errors=True)
        make_corpus(corpus, n)
    fast_dir, spm_model = workdir / "fast_tokenizer", workdir / "spm.model"
    if not fast_dir.is_dir() or not spm_model.is_file():
        fast_dir, spm_model = build_tokenizers(workdir)
    files = sorted(str(f) for f in (corpus / "ShareGPT").iterdir())
    files_list = workdir / "compare_files.txt"
    files_list.write_text("\n".join(files))
    load_before = os.getloadavg()
    rows = [
        (
            f"baseline: OpenChat v1 (cleaner pool of {num_proc}, one-process converter)",
            run_child("baseline", files_list, spm_model, num_proc),
        )
    ]
    for procs in (1, num_proc):
        out = workdir / f"compare_out_{procs}"
        shutil.rmtree(out, ignore_errors=True)
        label = "ours, one process (the default)" if procs == 1 else f"ours, num_proc={procs}"
        rows.append((label, run_child("ours", corpus, out, fast_dir, procs)))
    base = rows[0][1]["cpu_seconds"]
    loads = " / ".join(f"{a:.1f}" for a in (*load_before[:1], *os.getloadavg()[:1]))
    print(
        f"\nWhole pipeline on the same {n} pages, each run in a fresh process (1-min load before / after: {loads}):\n"
    )
    print("| run | kept | tokens | CPU s | wall s | peak RSS MB | CPU ratio (baseline / this) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, r in rows:
        print(
            f"| {label} | {r['kept']} | {r['tokens']} | {r['cpu_seconds']:.1f} | {r['seconds']:.1f} | "
            f"{r['peak_rss_mb']:.0f} | **{base / r['cpu_seconds']:.2f}x** |"
        )
    ours = rows[1][1]
    print("\nOurs, one process, CPU per step (the rest: imports, the builder's set-up, selecting rows, the report):\n")
    print("| step | CPU s | share |\n| --- | ---: | ---: |")
    for label, cpu in [*ours["step_cpu"].items(), ("rest", ours["cpu_seconds"] - sum(ours["step_cpu"].values()))]:
        print(f"| {label} | {cpu:.2f} | {100 * cpu / ours['cpu_seconds']:.0f} % |")


def planted_table(n_base: int = 2000, seed: int = 0) -> None:
    """Precision / recall of every rule (each on its own, and the defaults together) on the planted corpus."""
    from openchat_hf.data.decontaminate import RULES, build_decontaminator, first_match
    from openchat_hf.data.near_dedup import NearDedupConfig, near_dedup
    from openchat_hf.data.planted import make_planted_corpus, score

    corpus = make_planted_corpus(n_base, seed)
    records = corpus.records
    found = build_decontaminator().check(corpus.conversations())
    truth = {i for i, r in enumerate(records) if r["label"] == "contaminated"}
    print(f"\nPlanted corpus: {len(records)} conversations ({n_base} base, seed {seed}), {len(truth)} contaminated.\n")
    print("| decontamination rule (defaults) | fires on | true | precision | recall alone |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for rule in (*RULES, "all (the step)"):
        hits = {i for i, f in enumerate(found) if (f if rule.startswith("all") else rule in f)}
        tp = len(hits & truth)
        print(f"| {rule} | {len(hits)} | {tp} | {tp / max(len(hits), 1):.3f} | {tp / len(truth):.3f} |")
    drops = {i: first_match(f).rule for i, f in enumerate(found) if f}
    base = score(corpus, drops, {})
    kinds = ("verbatim", "recased", "repunctuated", "wrapped", "edited", "lookalike_topic", "lookalike_oneliner")
    print("\n| planted kind | n | dropped by decontamination |\n| --- | ---: | ---: |")
    for kind in kinds:
        k = base["kinds"][kind]
        print(f"| {kind} | {k['n']} | {k['decontaminated']} |")
    print("\n| near-dedup (shingle, threshold) | " + " | ".join(f"recall {k}" for k in _ND_KINDS) + " | false drops |")
    print("| --- |" + " ---: |" * (len(_ND_KINDS) + 1))
    for shingle, threshold in ((5, 0.5), (5, 0.7), (3, 0.6)):
        dropped = near_dedup(corpus.conversations(), NearDedupConfig(shingle=shingle, threshold=threshold))
        nd = score(corpus, {}, {d.index: (d.cluster, d.kept) for d in dropped})["near_dedup"]
        label = f"{shingle}-grams, {threshold}" + (" (default)" if (shingle, threshold) == (5, 0.5) else "")
        print(
            f"| {label} | "
            + " | ".join(f"{nd[k]['recall']:.2f}" for k in _ND_KINDS)
            + f" | {nd['all']['false_drops']} |"
        )


_ND_KINDS = (
    "edit_1pct",
    "edit_3pct",
    "edit_5pct",
    "edit_10pct",
    "edit_20pct",
    "edit_30pct",
    "other_follow_up",
    "regenerated",
)


def library_table(n: int = 5000) -> None:
    """Near-dedup of ``n`` synthetic conversations (transcript signature, word 5-grams, 128 permutations, LSH and
    clustering) with rensa (ours), datasketch and datatrove's MinHash steps, when installed: CPU ms per conversation."""
    import importlib.util

    from openchat_hf.data.minhash import normalize_words
    from openchat_hf.data.near_dedup import NearDedupConfig, near_dedup
    from openchat_hf.data.planted import iter_synthetic

    convs = list(iter_synthetic(n, seed=1))
    texts = ["\n".join(m["content"] for m in c) for c in convs]
    rows = []
    t = time.process_time()
    near_dedup(convs, NearDedupConfig(first_turn_threshold=None))
    rows.append(("rensa R-MinHash digest matrix + NumPy LSH banding (ours)", time.process_time() - t))
    if importlib.util.find_spec("datasketch"):
        import datasketch

        t = time.process_time()
        lsh = datasketch.MinHashLSH(threshold=0.5, num_perm=128)
        for i, text in enumerate(texts):
            w = normalize_words(text)
            m = datasketch.MinHash(num_perm=128)
            m.update_batch([" ".join(w[j : j + 5]).encode() for j in range(max(1, len(w) - 4))])
            lsh.query(m)
            lsh.insert(str(i), m)
        rows.append(("datasketch MinHash.update_batch + MinHashLSH query / insert", time.process_time() - t))
    if importlib.util.find_spec("datatrove"):
        rows.append(("datatrove MinhashDedupSignature + Buckets + Cluster (local, 1 rank)", _datatrove_cpu(texts)))
    print(f"\nNear-dedup of {n} conversations, one process:\n\n| implementation | CPU ms/conv |\n| --- | ---: |")
    for name, seconds in rows:
        print(f"| {name} | {1000 * seconds / n:.3f} |")


def _datatrove_cpu(texts: list[str]) -> float:
    import xxhash
    from datatrove.data import Document
    from datatrove.pipeline.dedup import minhash as dt
    from datatrove.utils.hashing import HashConfig
    from datatrove.utils.word_tokenizers import WordTokenizer

    class Split(WordTokenizer):  # datatrove's English tokenizer needs spaCy
        def word_tokenize(self, text):
            return text.split()

        def sent_tokenize(self, text):
            return [text]

        def span_tokenize(self, text):
            return [(0, len(text))]

    import datatrove.utils.hashes.xxhash as dx  # datatrove 0.10 calls xxhash<4's str API

    dx.xxhash64 = lambda d: xxhash.xxh64_intdigest(d.encode() if isinstance(d, str) else d)
    tmp = tempfile.mkdtemp(prefix="datatrove-")
    try:
        cfg = dt.MinhashConfig(hash_config=HashConfig(precision=64))
        t = time.process_time()
        dt.MinhashDedupSignature(output_folder=f"{tmp}/s", config=cfg, language=Split()).run(
            iter(Document(text=x, id=str(i)) for i, x in enumerate(texts))
        )
        buckets = dt.MinhashDedupBuckets(input_folder=f"{tmp}/s", output_folder=f"{tmp}/b", config=cfg)
        for r in range(cfg.num_buckets):
            buckets.run(None, rank=r, world_size=cfg.num_buckets)
        dt.MinhashDedupCluster(input_folder=f"{tmp}/b", output_folder=f"{tmp}/c", config=cfg).run(None)
        return time.process_time() - t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def dedup_table(sizes: list[int]) -> list[dict]:
    """Decontamination + near-dedup at each size (one fresh process each); prints the table."""
    rows = [run_child("dedup", n) for n in sizes]
    print("\nDecontamination + near-dedup, synthetic ShareGPT-like conversations (one process, CPU seconds):\n")
    print(
        "| conversations | words/conv | decontaminate CPU s | near-dedup CPU s | both CPU s | ms/conv | wall s | "
        "contaminated | near-dups dropped | peak RSS MB |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        both = r["decontaminate_cpu_s"] + r["near_dedup_cpu_s"]
        print(
            f"| {r['conversations']} | {r['words_per_conversation']:.0f} | {r['decontaminate_cpu_s']:.1f} | "
            f"{r['near_dedup_cpu_s']:.1f} | {both:.1f} | {1000 * both / r['conversations']:.3f} | "
            f"{r['seconds']:.1f} | {r['contaminated']} | {r['near_duplicates']} | {r['peak_rss_mb']:.0f} |"
        )
    if len(rows) >= 2:
        a, b = rows[-2], rows[-1]
        cpu = lambda r: r["decontaminate_cpu_s"] + r["near_dedup_cpu_s"]  # noqa: E731
        per_conv = (cpu(b) - cpu(a)) / (b["conversations"] - a["conversations"])
        mb_per_conv = (b["peak_rss_mb"] - a["peak_rss_mb"]) / (b["conversations"] - a["conversations"])
        print(
            f"\nExtrapolated (linear, from the two largest sizes) to 1M conversations: "
            f"{cpu(b) + per_conv * (1_000_000 - b['conversations']):.0f} CPU s, peak RSS "
            f"{b['peak_rss_mb'] + mb_per_conv * (1_000_000 - b['conversations']):.0f} MB "
            f"({1024 * mb_per_conv:.2f} KB per conversation)."
        )
    return rows


def run_baseline_worker(files_list: str, spm_model: str, num_proc: int) -> None:
    files = Path(files_list).read_text().split("\n")
    out_dir = Path(files_list).parent / f"{Path(files_list).stem}_out"
    print("RESULT " + json.dumps(run_baseline(files, Path(spm_model), num_proc, out_dir)))


def run_child(*args: str) -> dict:
    """Run a worker in a fresh process (imports, CPU time and peak RSS counted) and return its RESULT."""
    cmd = [sys.executable, __file__, "--worker", *map(str, args)]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    line = next(line for line in res.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def step_costs(files: list[str], fast_dir: Path, spm_model: Path) -> dict:
    """CPU ms per conversation of each step, in this process, single core: ours vs the v1 baseline."""
    from transformers import AutoTokenizer

    from openchat_hf.data.clean import blocked_words_pattern, clean_conversation, content_hash
    from openchat_hf.data.convert import convert_batch
    from openchat_hf.data.sources import read_html_page
    from openchat_hf.templates import setup_tokenizer

    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one core: idle Rust worker threads would add CPU time
    v1_sample_pipeline(files[0])  # warm imports
    t = time.process_time()
    v1 = [s for ok, s in (v1_sample_pipeline(f) for f in files) if ok and s.get("model") == GPT4]
    v1_clean = time.process_time() - t
    slow = v1_slow_tokenizer(spm_model)
    t = time.process_time()
    converted = [v1_convert_single_conversation(slow, sample)[0] for sample in v1]
    slow.batch_decode(converted, spaces_between_special_tokens=False)  # the .text.json file
    v1_convert = time.process_time() - t

    pattern = blocked_words_pattern(["openai"])
    t = time.process_time()
    ours = []
    for f in files:
        record = read_html_page(Path(f), f)
        messages, reason = clean_conversation(record["turns"], blocked=pattern)
        if not reason:
            content_hash(messages)
            if record["model"] == GPT4:
                ours.append(messages)
    ours_clean = time.process_time() - t
    template = setup_tokenizer(AutoTokenizer.from_pretrained(str(fast_dir)), "openchat")
    convert_batch({"messages": ours[:8]}, template=template, max_length=2048, overflow="truncate")  # warm up
    t = time.process_time()
    for i in range(0, len(ours), 256):  # ids + mask + the rendered text of the legacy .text.json file
        convert_batch({"messages": ours[i : i + 256]}, template=template, max_length=2048, overflow="truncate")
    ours_convert = time.process_time() - t
    n, k1, k2 = len(files), max(len(v1), 1), max(len(ours), 1)
    return {
        "read + clean + filter (per input conversation)": (1000 * v1_clean / n, 1000 * ours_clean / n),
        "convert (per kept conversation)": (1000 * v1_convert / k1, 1000 * ours_convert / k2),
        "total (per input conversation)": (
            (1000 * (v1_clean + v1_convert)) / n,
            1000 * (ours_clean + ours_convert) / n,
        ),
    }


def subset(corpus: Path, folder: Path, n: int) -> Path:
    (folder / "ShareGPT").mkdir(parents=True, exist_ok=True)
    for f in sorted((corpus / "ShareGPT").iterdir())[:n]:
        (folder / "ShareGPT" / f.name).symlink_to(f)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=20000, help="conversations in the corpus")
    parser.add_argument("--small", type=int, default=5000, help="smaller corpus for the peak-memory comparison")
    parser.add_argument("--baseline-n", type=int, default=1000, help="conversations the slow baseline processes")
    parser.add_argument("--num-proc", type=int, default=2)
    parser.add_argument("--workdir", default=None, help="keep the corpus and outputs here (default: a temp dir)")
    parser.add_argument(
        "--dedup-n",
        default="",
        help="comma-separated sizes of the decontamination + near-dedup benchmark (synthetic), e.g. 90000; default: skip",
    )
    parser.add_argument("--only-dedup", action="store_true", help="run only the decontamination + near-dedup part")
    parser.add_argument(
        "--compare-libraries",
        type=int,
        default=0,
        metavar="N",
        help="near-dedup of N conversations per MinHash library",
    )
    parser.add_argument(
        "--compare",
        type=int,
        default=0,
        metavar="N",
        help="the 6x comparison: ours vs the v1 baseline, whole pipeline, the same N pages (reused from --workdir)",
    )
    parser.add_argument(
        "--scale",
        type=int,
        default=0,
        metavar="N",
        help="the pipeline without convert on N synthetic conversations (a JSONL dump), CPU and memory per step",
    )
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        if kind == "ours":
            run_ours_worker(rest[0], rest[1], rest[2], int(rest[3]))
        elif kind == "dedup":
            run_dedup_worker(int(rest[0]))
        elif kind == "scale":
            run_scale_worker(int(rest[0]), rest[1])
        else:
            run_baseline_worker(rest[0], rest[1], int(rest[2]))
        return
    if args.compare_libraries:
        library_table(args.compare_libraries)
    if args.dedup_n:
        planted_table()
        dedup_table([int(n) for n in args.dedup_n.split(",")])
    if args.compare:
        compare_dir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_compare-"))
        try:
            compare_table(args.compare, compare_dir, args.num_proc)
        finally:
            if not args.workdir:
                shutil.rmtree(compare_dir, ignore_errors=True)
        return
    if args.scale:
        scale_dir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_scale-"))
        try:
            scale_table(args.scale, scale_dir)
        finally:
            if not args.workdir:
                shutil.rmtree(scale_dir, ignore_errors=True)
        return
    if args.only_dedup:
        return
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_data-"))
    try:
        t = time.perf_counter()
        corpus = make_corpus(work / "corpus", args.n)
        print(f"corpus: {args.n} pages, {corpus['html_mb']:.1f} MB of HTML ({time.perf_counter() - t:.0f} s to write)")
        fast_dir, spm_model = build_tokenizers(work)
        from transformers import AutoTokenizer

        print(
            f"tokenizers: fast BPE vocab {len(AutoTokenizer.from_pretrained(fast_dir))} (tokenizers), baseline "
            f"SentencePiece BPE vocab {sum(1 for _ in open(str(spm_model).replace('.model', '.vocab')))}"
        )
        mb_per_conv = corpus["html_mb"] / args.n

        small_corpus = subset(work / "corpus", work / "small", args.small)
        small = run_child("ours", small_corpus, work / "out_small", fast_dir, args.num_proc)
        full = run_child("ours", work / "corpus", work / "out_full", fast_dir, args.num_proc)
        base_n = (args.baseline_n // 4, args.baseline_n)
        base_corpus = subset(work / "corpus", work / "base_sub", base_n[1])
        ours_sub = run_child("ours", base_corpus, work / "out_sub", fast_dir, args.num_proc)
        files = sorted(str(f) for f in (base_corpus / "ShareGPT").iterdir())
        bases = []
        for n in base_n:
            files_list = work / f"baseline_files_{n}.txt"
            files_list.write_text("\n".join(files[:n]))
            bases.append(run_child("baseline", files_list, spm_model, args.num_proc))

        rows = [
            ("baseline (OpenChat v1)", bases[0]),
            ("baseline (OpenChat v1)", bases[1]),
            ("ours", ours_sub),
            ("ours", small),
            ("ours", full),
        ]
        print(
            "\n| run | conversations | kept | wall s | conv/s | MB HTML/s | CPU ms/conv | tokens/kept conv | peak RSS MB |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, r in rows:
            rate = r["conversations"] / r["seconds"]
            print(
                f"| {name} | {r['conversations']} | {r['kept']} | {r['seconds']:.1f} | {rate:.0f} | "
                f"{rate * mb_per_conv:.2f} | {1000 * r['cpu_seconds'] / r['conversations']:.2f} | "
                f"{r['tokens'] / max(r['kept'], 1):.0f} | {r['peak_rss_mb']:.0f} |"
            )

        def marginal(a: dict, b: dict, key: str) -> float:  # seconds per extra conversation between two sizes
            return (b[key] - a[key]) / (b["conversations"] - a["conversations"])

        ours_wall, ours_cpu = marginal(small, full, "seconds"), marginal(small, full, "cpu_seconds")
        base_wall, base_cpu = marginal(*bases, "seconds"), marginal(*bases, "cpu_seconds")
        print("\nPer-conversation cost (marginal, between the two corpus sizes of each implementation):\n")
        print("| implementation | wall ms/conv | conv/s | MB HTML/s | CPU ms/conv | fixed cost s |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, wall, cpu, ref in (
            ("baseline", base_wall, base_cpu, bases[0]),
            ("ours", ours_wall, ours_cpu, small),
        ):
            fixed = ref["seconds"] - wall * ref["conversations"]
            print(
                f"| {name} | {1000 * wall:.2f} | {1 / wall:.0f} | {mb_per_conv / wall:.2f} | {1000 * cpu:.2f} | "
                f"{fixed:.1f} |"
            )
        print(
            f"| **ratio ours / baseline** | **{base_wall / ours_wall:.1f}x** | | | **{base_cpu / ours_cpu:.1f}x** | |"
        )
        fixed = small["seconds"] - ours_wall * small["conversations"]
        print(
            f"\nHTML per conversation: {1000 * mb_per_conv:.2f} KB. Extrapolated (fixed + marginal): 90K conversations "
            f"in {fixed + 90000 * ours_wall:.0f} s wall on this machine; 300 MB of HTML ("
            f"{300 / mb_per_conv / 1000:.0f}K conversations of this size) in {fixed + 300 / mb_per_conv * ours_wall:.0f} s "
            f"(goal < 180 s). From CPU time, on 2 dedicated cores: 90K in "
            f"{fixed + 90000 * ours_cpu / args.num_proc:.0f} s."
        )
        print(
            f"Peak RSS (largest process, incl. mapped Arrow pages): {small['peak_rss_mb']:.0f} MB at {args.small}, "
            f"{full['peak_rss_mb']:.0f} MB at {args.n}. Peak anonymous memory of the whole process tree: "
            f"{small['peak_anon_mb']:.0f} MB at {args.small}, {full['peak_anon_mb']:.0f} MB at {args.n}."
        )
        costs = step_costs(files, fast_dir, spm_model)
        print(f"\nCPU cost per step, one process, the same {len(files)} conversations:\n")
        print("| step | baseline CPU ms | ours CPU ms | ratio |")
        print("| --- | ---: | ---: | ---: |")
        for step, (v1_ms, ours_ms) in costs.items():
            print(f"| {step} | {v1_ms:.2f} | {ours_ms:.2f} | {v1_ms / ours_ms:.1f}x |")
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
