"""Generate the bundled ShareGPT-style sample set from the real Vicuna-bench / MT-bench text (deterministic).

Run ``python -m openchat_hf.data.sample [OUT_DIR]`` to rebuild ``openchat_hf/resources/sample_sharegpt``. The text
(questions and GPT-4 / GPT-3.5 answers) comes from FastChat (Apache-2.0); it is rendered to the HTML that ShareGPT
pages hold (ChatGPT's code blocks with a "Copy code" button, lists, tables, regeneration counters) with a known mix
of GPT-4 and other models, duplicates, blocked words, malformed turns and one page without conversation data.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import sys
from pathlib import Path

from openchat_hf.resources import MT_BENCH_DIR, SAMPLE_SHAREGPT_DIR, VICUNA_ANSWERS_DIR, VICUNA_BENCH_DIR, read_jsonl

GPT4, GPT35 = "Model: GPT-4", "Model: Default (GPT-3.5)"
_INLINE = [
    (re.compile(r"`([^`]+)`"), r"<code>\1</code>"),
    (re.compile(r"\*\*([^*]+)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![*\w])\*([^*\s][^*]*)\*(?!\w)"), r"<em>\1</em>"),
    (re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)"), r'<a href="\2" target="_new">\1</a>'),
]
_OL_RE, _UL_RE = re.compile(r"^(\s*)\d+[.)]\s+(.*)$"), re.compile(r"^(\s*)[-*•]\s+(.*)$")


def _inline(text: str) -> str:
    text = html.escape(text, quote=False)
    for pattern, repl in _INLINE:
        text = pattern.sub(repl, text)
    return text


def code_block_html(code: str, lang: str) -> str:
    """A code block as ChatGPT rendered it (header with language and Copy code button, highlighted code)."""
    label = lang or "code"
    cls = f"!whitespace-pre hljs language-{lang}" if lang else "!whitespace-pre hljs"
    escaped = html.escape(code, quote=False)
    escaped = re.sub(
        r"\b(def|return|if|for|while|int|class|import)\b", r'<span class="hljs-keyword">\1</span>', escaped
    )
    return (
        '<pre><div class="bg-black mb-4 rounded-md"><div class="flex items-center relative text-gray-200 bg-gray-800 '
        f'px-4 py-2 text-xs font-sans"><span class="">{label}</span><button class="flex ml-auto gap-2">'
        '<svg stroke="currentColor" fill="none" viewBox="0 0 24 24" class="h-4 w-4"><path d="M16 4h2"></path></svg>'
        f'Copy code</button></div><div class="p-4 overflow-y-auto"><code class="{cls}">{escaped}</code></div></div></pre>'
    )


def _list_html(items: list[tuple[int, str, str]]) -> str:
    """Nested lists from ``(indent, kind, text)`` lines."""
    out, stack = [], []  # stack of (indent, kind)
    for indent, kind, text in items:
        while stack and (indent < stack[-1][0] or (indent == stack[-1][0] and kind != stack[-1][1])):
            out.append(f"</li></{stack.pop()[1]}>")
        if not stack or indent > stack[-1][0]:
            out.append(f"<{kind}>")
            stack.append((indent, kind))
        else:
            out.append("</li>")
        out.append(f"<li>{_inline(text)}")
    while stack:
        out.append(f"</li></{stack.pop()[1]}>")
    return "".join(out)


def _table_html(rows: list[str]) -> str:
    cells = [[c.strip() for c in row.strip().strip("|").split("|")] for row in rows]
    head, body = cells[0], [r for r in cells[2:]]
    th = "".join(f"<th>{_inline(c)}</th>" for c in head)
    trs = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>"


def markdown_to_chatgpt_html(text: str) -> str:
    """Render an answer's Markdown the way ChatGPT's web page did (the HTML that ShareGPT pages store)."""
    blocks, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```"):
            lang, code = line.strip()[3:].strip(), []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            blocks.append(code_block_html("\n".join(code) + "\n", lang))
            i += 1
        elif line.strip().startswith("|") and i + 1 < len(lines) and re.match(r"^\s*\|?\s*:?-{3,}", lines[i + 1]):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append(lines[i])
                i += 1
            blocks.append(_table_html(rows))
        elif _OL_RE.match(line) or _UL_RE.match(line):
            items = []
            while i < len(lines) and (_OL_RE.match(lines[i]) or _UL_RE.match(lines[i])):
                m = _OL_RE.match(lines[i])
                kind = "ol" if m else "ul"
                m = m or _UL_RE.match(lines[i])
                items.append((len(m.group(1)), kind, m.group(2)))
                i += 1
                while i < len(lines) and not lines[i].strip() and i + 1 < len(lines):
                    if _OL_RE.match(lines[i + 1]) or _UL_RE.match(lines[i + 1]):
                        i += 1
                    else:
                        break
            blocks.append(_list_html(items))
        elif line.startswith("#"):
            level = len(line) - len(line.lstrip("#"))
            blocks.append(f"<h{level}>{_inline(line[level:].strip())}</h{level}>")
            i += 1
        elif line.strip():
            para = []
            while i < len(lines) and lines[i].strip() and not lines[i].strip().startswith(("```", "|")):
                if para and (_OL_RE.match(lines[i]) or _UL_RE.match(lines[i])):
                    break
                para.append(lines[i].strip())
                i += 1
            blocks.append(f"<p>{'<br>'.join(_inline(p) for p in para)}</p>")
        else:
            i += 1
    return '<div class="markdown prose w-full break-words dark:prose-invert light">' + "".join(blocks) + "</div>"


def human_html(text: str) -> str:
    """A human turn as ShareGPT pages store it: plain text, HTML-escaped (quotes too: ``&quot;``, ``&#x27;``)."""
    return html.escape(text)


def _as_table(answer: str) -> str | None:
    """A two-column Markdown table from a numbered list answer ("1. Title: text")."""
    rows = re.findall(r"^\d+\.\s+([^:\n]{3,60}):\s*([^\n]+)$", answer, flags=re.M)
    if len(rows) < 3:
        return None
    lines = ["| # | Point | Summary |", "| --- | --- | --- |"]
    for n, (title, rest) in enumerate(rows[:6], 1):
        first = re.split(r"(?<=\.)\s", rest.strip())[0].replace("|", "/")
        lines.append(f"| {n} | {title.strip()} | {first} |")
    return "Here is the list as a table:\n\n" + "\n".join(lines)


def build_conversations() -> list[dict]:
    """The sample conversations (Markdown values, roles ``human`` / ``gpt``) before rendering."""
    questions = {q["question_id"]: q for q in read_jsonl(VICUNA_BENCH_DIR / "question.jsonl")}
    gpt4_refs = {r["question_id"]: r for r in read_jsonl(VICUNA_BENCH_DIR / "reference_answer_gpt-4.jsonl")}
    gpt35 = {r["question_id"]: r["text"] for r in read_jsonl(VICUNA_ANSWERS_DIR / "answer_gpt35.jsonl")}
    mt_questions = {q["question_id"]: q for q in read_jsonl(MT_BENCH_DIR / "question.jsonl")}
    mt_refs = read_jsonl(MT_BENCH_DIR / "reference_answer_gpt-4.jsonl")
    convs = []
    for qid, ref in sorted(gpt4_refs.items()):  # Vicuna-bench with GPT-4 reference answers
        turns = [("human", questions[qid]["turns"][0]), ("gpt", ref["choices"][0]["turns"][0])]
        convs.append({"id": f"vicuna-gpt4-{qid}", "model": GPT4, "turns": turns})
    for ref in mt_refs:  # MT-bench, two turns, GPT-4 reference answers
        q = mt_questions[ref["question_id"]]
        answers = ref["choices"][0]["turns"]
        turns = [t for pair in zip(q["turns"], answers) for t in (("human", pair[0]), ("gpt", pair[1]))]
        convs.append({"id": f"mtbench-gpt4-{ref['question_id']}", "model": GPT4, "turns": turns})
    tables = 0
    for qid in sorted(gpt35)[::2]:  # GPT-3.5 answers: filtered out by the default model filter
        turns = [("human", questions[qid]["turns"][0]), ("gpt", gpt35[qid])]
        table = _as_table(gpt35[qid])
        model = GPT35
        if table and tables < 6:  # a follow-up turn with a table; these are kept as GPT-4 conversations
            turns += [("human", "Can you summarize that as a table?"), ("gpt", table)]
            model, tables = GPT4, tables + 1
        convs.append({"id": f"vicuna-gpt35-{qid}", "model": model, "turns": turns})
    return convs


def _with_artifacts(conv: dict, index: int) -> list[dict]:
    """Render to ShareGPT HTML; every 4th answer carries a regeneration counter, every 7th a CopyN label."""
    items = []
    for j, (role, text) in enumerate(conv["turns"]):
        if role == "human":
            items.append({"from": "human", "value": human_html(text)})
            continue
        value = markdown_to_chatgpt_html(text)
        if (index + j) % 4 == 1:
            value = f"<div>{1 + j // 2} / 2</div>" + value
        if (index + j) % 7 == 3:
            value += f"<p>Copy{len(text)} chars / {len(text.split())} words</p>"
        items.append({"from": "gpt", "value": value})
    return items


def page_html(conv_id: str, content: dict | None) -> str:
    """A ShareGPT conversation page: the content lives in ``<script id="__NEXT_DATA__">``."""
    title = html.escape(content["items"][0]["value"][:60] if content and content["items"] else "ShareGPT")
    head = f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title></head><body>'
    if content is None:
        return head + '<div id="__next"><h1>This conversation was deleted.</h1></div></body></html>\n'
    data = {"props": {"pageProps": {"id": conv_id, "content": content, "views": 7}}, "page": "/c/[id]"}
    script = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
    return (
        head + '<div id="__next"><main>Shared conversation</main></div>'
        f'<script id="__NEXT_DATA__" type="application/json">{script}</script></body></html>\n'
    )


def write_sample(out_dir: str | Path = SAMPLE_SHAREGPT_DIR) -> dict[str, int]:
    """Write the sample set to ``out_dir`` (``ShareGPT/*.html`` + ``sharegpt_dump.json``); return counts by kind."""
    out_dir = Path(out_dir)
    pages_dir = out_dir / "ShareGPT"
    if pages_dir.exists():
        shutil.rmtree(pages_dir)
    pages_dir.mkdir(parents=True)
    convs = build_conversations()
    blocked = {3, 17, 44}  # answers that mention OpenAI (dropped by the default blocked words)
    pages, dump = [], []
    for index, conv in enumerate(convs):
        turns = list(conv["turns"])
        if index in blocked:
            turns[1] = ("gpt", turns[1][1] + "\n\nI was trained by OpenAI, so check their documentation too.")
        conv = {**conv, "turns": turns}
        if index % 4 == 3:  # a quarter goes to the JSON dump, half of those with Markdown values (cleaned dumps)
            if index % 8 == 7:
                items = [{"from": r, "value": t} for r, t in conv["turns"]]
            else:
                items = _with_artifacts(conv, index)
            dump.append({"id": conv["id"], "model": conv["model"], "conversations": items})
        else:
            pages.append((conv["id"], {"items": _with_artifacts(conv, index), "model": conv["model"]}))
    # Duplicates: 4 pages re-shared under new ids, 2 dump entries repeated.
    pages += [(f"{cid}-dup", content) for cid, content in pages[1:30:8]]
    dump += [{**d, "id": d["id"] + "-dup"} for d in dump[:2]]
    # Malformed conversations.
    q = "How do I reverse a list in Python?"
    a = "Use slicing:\n\n```python\nitems[::-1]\n```\n\nor call `items.reverse()` to reverse it in place."
    pages += [
        ("malformed-only-human", {"items": [{"from": "human", "value": q}], "model": GPT4}),
        (
            "malformed-two-humans",
            {"items": [{"from": "human", "value": q}, {"from": "human", "value": q}, {"from": "gpt", "value": a}]},
        ),
        (
            "malformed-empty-answer",
            {
                "items": [{"from": "human", "value": q}, {"from": "gpt", "value": code_block_html("", "")}],
                "model": GPT4,
            },
        ),
        (
            "trimmed-leading-gpt",
            {
                "items": [
                    {"from": "gpt", "value": "<p>Hi! How can I help?</p>"},
                    {"from": "human", "value": q},
                    {"from": "gpt", "value": markdown_to_chatgpt_html(a)},
                    {"from": "human", "value": "Thanks!"},
                ],
                "model": GPT4,
            },
        ),
    ]
    for cid, content in pages:
        (pages_dir / f"{cid}.html").write_text(page_html(cid, content), encoding="utf-8")
    (pages_dir / "deleted-page.html").write_text(page_html("deleted-page", None), encoding="utf-8")
    (out_dir / "sharegpt_dump.json").write_text(
        json.dumps(dump, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return {"pages": len(pages) + 1, "dump": len(dump), "records": len(pages) + 1 + len(dump)}


if __name__ == "__main__":
    print(write_sample(sys.argv[1] if len(sys.argv) > 1 else SAMPLE_SHAREGPT_DIR))
