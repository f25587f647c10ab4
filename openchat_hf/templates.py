"""THE conversation template: the single source of truth for how a conversation becomes text and tokens.

From one :class:`~openchat_hf.model_types.ModelType` and a tokenizer, :class:`ChatTemplate` produces

* :meth:`ChatTemplate.render`: the conversation as text, ``[BOS] + (prefix + content + EOT) per turn`` (plus the
  assistant prefix for a generation prompt), with the character spans that training supervises;
* :meth:`ChatTemplate.tokenize`: one tokenization of that text with a supervise mask that is 1 exactly on the tokens
  overlapping each assistant turn's content and its EOT;
* :meth:`ChatTemplate.jinja`: a Jinja chat template (``{% generation %}`` around assistant content + EOT) that renders
  the very same text, so ``tokenizer.apply_chat_template(messages, return_assistant_tokens_mask=True)`` gives the
  same ids and mask, and TGI / vLLM / our server prompt the model exactly as it was trained.

Two tokenization modes (``tokenization=``): ``"joint"`` (the default) tokenizes the rendered text in one call, as
above; ``"segment"`` is OpenChat v1's: BOS, each prefix, each content and each EOT tokenized on their own
(:meth:`ChatTemplate.tokenize` only; a Jinja template cannot express it, see :data:`SEGMENT_JINJA_NOTE`).

Text inside a message never becomes a special token: every special-token string in content is neutralised by a
zero-width space after its first character (the same replacement in Python and in Jinja), and counted.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import numpy as np

from openchat_hf.errors import OpenChatError
from openchat_hf.model_types import ROLES, ModelType, get_model_type

ZERO_WIDTH_SPACE = "\u200b"
TOKENIZATIONS = ("joint", "segment")
SEGMENT_JINJA_NOTE = (
    "This model was trained with OpenChat v1's segment tokenization (prefix, content and EOT tokenized separately). "
    "A Jinja chat template cannot express that: text-prompted engines (TGI, vLLM, apply_chat_template) tokenize the "
    "rendered text in one piece and give different ids (with a SentencePiece LLaMA tokenizer, no lone '\u2581' after "
    "'Human:' / 'Assistant:'). Prompt such engines with token ids built by "
    "openchat_hf.templates.ChatTemplate(model_type, tokenizer, tokenization='segment').tokenize(messages, "
    "add_generation_prompt=True), or serve with `openchat-hf serve` (embedded backend), which does."
)


class TemplateError(OpenChatError, ValueError):
    """A conversation that the template cannot render (unknown role, misplaced system message, bad content)."""


@dataclass
class RenderedChat:
    """Rendered text, the character spans that training supervises, and how many special strings were neutralised."""

    text: str
    assistant_spans: list[tuple[int, int]] = field(default_factory=list)
    num_neutralized: int = 0


@dataclass
class TokenizedChat:
    input_ids: list[int]
    supervise_mask: list[int]
    num_neutralized: int = 0
    truncated: bool = False


@dataclass
class TokenizedBatch:
    """Many conversations' ids and supervise masks as flat arrays: row ``i`` is ``ids[starts[i]:starts[i + 1]]``.

    ``texts`` are the rendered texts (what the joint mode tokenizes, and the legacy ``.text.json`` files hold).
    """

    ids: np.ndarray  # int32
    supervise_mask: np.ndarray  # int8
    starts: np.ndarray  # int64, one more than the rows
    num_neutralized: list[int]
    texts: list[str]

    def __len__(self) -> int:
        return len(self.num_neutralized)

    def row(self, i: int, max_length: int | None = None) -> TokenizedChat:
        start, end = int(self.starts[i]), int(self.starts[i + 1])
        truncated = max_length is not None and end - start > max_length
        if truncated:
            end = start + max_length
        ids, mask = self.ids[start:end].tolist(), self.supervise_mask[start:end].tolist()
        return TokenizedChat(ids, mask, self.num_neutralized[i], truncated)


_LITERAL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _literal(text: str) -> str:
    """A Jinja string literal that Jinja2, minijinja and llama.cpp's template engine all read the same way.

    Only the backslash, the quote and newline / carriage return / tab are escaped; every other character (the
    zero-width space of neutralisation included) is written as itself: llama.cpp rejects ``\\u`` escapes, so a
    GGUF converted from our export would not load its chat template.
    """
    return f'"{text.translate(_LITERAL_ESCAPES)}"'


def validate_messages(messages: Any, *, require_alternation: bool = False) -> list[dict[str, str]]:
    """Check a conversation's shape and return it as plain ``{"role", "content"}`` dicts.

    A system message may only come first. With ``require_alternation`` the other turns must alternate user /
    assistant starting with the user (the shape of training data and of chat requests).
    """
    if not isinstance(messages, (list, tuple)) or not messages:
        raise TemplateError("A conversation must be a non-empty list of messages.")
    out: list[dict[str, str]] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise TemplateError(
                f"Message {i} must be an object with 'role' and 'content', got {type(message).__name__}."
            )
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise TemplateError(f"Message {i} has unknown role {role!r}; expected one of {', '.join(ROLES)}.")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise TemplateError(f"Message {i} content must be a string, got {type(content).__name__}.")
        if role == "system" and i != 0:
            raise TemplateError(f"Message {i}: a system message may only be the first message.")
        out.append({"role": role, "content": content})
    if require_alternation:
        turns = out[1:] if out[0]["role"] == "system" else out
        if not turns:
            raise TemplateError("A conversation needs at least one user message.")
        for i, message in enumerate(turns):
            expected = "user" if i % 2 == 0 else "assistant"
            if message["role"] != expected:
                raise TemplateError(
                    f"Turn {i} has role {message['role']!r} but {expected!r} was expected: "
                    "turns must alternate user / assistant, starting with the user."
                )
    return out


class ChatTemplate:
    """The conversation template of one model type, bound to one tokenizer's special tokens."""

    def __init__(
        self,
        model_type: ModelType | str,
        tokenizer: Any = None,
        *,
        bos_token: str | None = None,
        special_tokens: Sequence[str] = (),
        tokenization: str = "joint",
    ) -> None:
        if tokenization not in TOKENIZATIONS:
            raise TemplateError(f"tokenization must be one of {', '.join(TOKENIZATIONS)}, got {tokenization!r}.")
        self.tokenization = tokenization
        self._plain = None  # segment mode: the tokenizer without added tokens, built on first use
        self.model_type = get_model_type(model_type)
        self.tokenizer = tokenizer
        if tokenizer is not None:
            bos_token = bos_token if bos_token is not None else tokenizer.bos_token
            special_tokens = [*special_tokens, *tokenizer.all_special_tokens, *tokenizer.get_added_vocab()]
        if self.model_type.add_bos and not bos_token:
            raise TemplateError(
                f"Model type {self.model_type.name!r} starts with BOS but the tokenizer has no bos_token; "
                "set tokenizer.bos_token or register a model type with add_bos=False."
            )
        self.bos_token = bos_token if self.model_type.add_bos else ""
        specials = {s for s in (*special_tokens, self.model_type.eot_token) if s and len(s) > 1}
        # Longest first, so a token that contains another is neutralised as a whole.
        self.special_tokens: tuple[str, ...] = tuple(sorted(specials, key=lambda s: (-len(s), s)))
        self._special_set = frozenset(self.special_tokens)
        # (first character, sorted distinct lengths of the special tokens starting with it), by first character.
        lengths: dict[str, set[int]] = {}
        for token in self.special_tokens:
            lengths.setdefault(token[0], set()).add(len(token))
        self._first_chars: tuple[tuple[str, tuple[int, ...]], ...] = tuple(
            (first, tuple(sorted(n))) for first, n in sorted(lengths.items())
        )

    # ----------------------------------------------------------------------------------------------------- text
    def neutralize(self, content: str) -> tuple[str, int]:
        """Break every special-token string in ``content`` with a zero-width space; return the text and the count.

        One pass per distinct first character of the special tokens (usually one: ``<``), not one per token, so it
        stays fast with thousands of added tokens: at every occurrence of that character where some special token
        starts, a zero-width space goes after the character. :meth:`jinja` runs the very same algorithm, so Python
        and Jinja agree character for character, and no special-token string can survive (each occurrence gets a
        zero-width space after its first character).
        """
        count = 0
        specials = self._special_set
        for first, lengths in self._first_chars:
            if first not in content:
                continue
            parts = content.split(first)
            out = [parts[0]]
            position = len(parts[0])
            for part in parts[1:]:
                hit = any(content[position : position + n] in specials for n in lengths)
                out.append(first + ZERO_WIDTH_SPACE + part if hit else first + part)
                count += hit
                position += 1 + len(part)
            content = "".join(out)
        return content, count

    def render(self, messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool = False) -> RenderedChat:
        """The conversation as text, with the character spans of each assistant content + EOT."""
        mt = self.model_type
        parts: list[str] = [self.bos_token]
        position = len(self.bos_token)
        spans: list[tuple[int, int]] = []
        neutralized = 0
        for message in validate_messages(messages):
            content, n = self.neutralize(message["content"])
            neutralized += n
            prefix = mt.prefix(message["role"])
            parts.append(prefix)
            position += len(prefix)
            body = content + mt.eot_token
            parts.append(body)
            if message["role"] == "assistant":
                spans.append((position, position + len(body)))
            position += len(body)
        if add_generation_prompt:
            parts.append(mt.generation_prefix)
        return RenderedChat("".join(parts), spans, neutralized)

    def strip_completion(self, text: str) -> str:
        """Remove the part of the assistant prefix that the generation prompt left to the model (a leading space)."""
        rest = self.model_type.assistant_prefix[len(self.model_type.generation_prefix) :]
        return text[len(rest) :] if rest and text.startswith(rest) else text

    # --------------------------------------------------------------------------------------------------- tokens
    def _require_tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise TemplateError(
                "This ChatTemplate has no tokenizer; build it with ChatTemplate(model_type, tokenizer)."
            )
        if not getattr(self.tokenizer, "is_fast", False):
            raise TemplateError("A fast tokenizer (with offsets) is required to compute supervise masks.")
        return self.tokenizer

    @staticmethod
    def _mask_from_offsets(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]) -> list[int]:
        """1 on every token overlapping a span (the rule transformers uses for ``assistant_masks``).

        A token is supervised when the first span ending after the token's start begins before the token's end.
        """
        if not spans or not len(offsets):
            return [0] * len(offsets)
        tokens = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        starts, ends = np.asarray(spans, dtype=np.int64).T
        first = np.searchsorted(ends, tokens[:, 0], side="right")
        inside = first < len(ends)
        mask = np.zeros(len(tokens), dtype=bool)
        mask[inside] = tokens[inside, 1] > starts[first[inside]]
        return mask.astype(np.int8).tolist()

    def tokenize(
        self,
        messages: Sequence[dict[str, Any]],
        *,
        add_generation_prompt: bool = False,
        max_length: int | None = None,
    ) -> TokenizedChat:
        """Ids and supervise mask of one conversation (see :meth:`tokenize_batch`)."""
        return self.tokenize_batch([messages], add_generation_prompt=add_generation_prompt, max_length=max_length)[0]

    def tokenize_batch(
        self,
        conversations: Sequence[Sequence[dict[str, Any]]],
        *,
        add_generation_prompt: bool = False,
        max_length: int | None = None,
    ) -> list[TokenizedChat]:
        """Tokenize many conversations in one fast-tokenizer call; truncate to ``max_length`` when given."""
        self._require_tokenizer()
        if self.tokenization == "segment":
            return self._tokenize_segments(conversations, add_generation_prompt, max_length)
        batch = self.tokenize_arrays(conversations, add_generation_prompt=add_generation_prompt)
        return [batch.row(i, max_length) for i in range(len(batch))]

    def tokenize_arrays(
        self, conversations: Sequence[Sequence[dict[str, Any]]], *, add_generation_prompt: bool = False
    ) -> TokenizedBatch:
        """:meth:`tokenize_batch` as flat arrays (no per-token Python objects), with the rendered texts.

        The mask is transformers' ``assistant_masks`` rule: for each assistant span, 1 from the token holding its
        first character to the token holding its last (the EOT), via ``Encoding.char_to_token``; a span whose first
        character is in no token falls back to the offsets rule of :meth:`_mask_from_offsets` for that conversation.
        """
        tokenizer = self._require_tokenizer()
        if self.tokenization == "segment":
            chats = self._tokenize_segments(conversations, add_generation_prompt, None)
            texts = [self.render(m, add_generation_prompt=add_generation_prompt).text for m in conversations]
            return _batch_from_chats(chats, texts)
        rendered = [self.render(m, add_generation_prompt=add_generation_prompt) for m in conversations]
        texts = [r.text for r in rendered]
        # The Rust tokenizer directly: the same ids and offsets as `tokenizer(...)`, without per-row conversions.
        backend = tokenizer.backend_tokenizer
        if backend.truncation is not None or backend.padding is not None:  # left over from an earlier call
            backend.no_truncation()
            backend.no_padding()
        encodings = backend.encode_batch(texts, add_special_tokens=False)
        id_lists = [encoding.ids for encoding in encodings]
        lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
        starts = np.zeros(len(id_lists) + 1, dtype=np.int64)
        np.cumsum(lengths, out=starts[1:])
        ids = np.fromiter(chain.from_iterable(id_lists), dtype=np.int32, count=int(starts[-1]))
        mask = np.zeros(len(ids), dtype=np.int8)
        for i, (r, encoding) in enumerate(zip(rendered, encodings, strict=True)):
            base = int(starts[i])
            for span_start, span_end in r.assistant_spans:
                first, last = encoding.char_to_token(span_start), encoding.char_to_token(span_end - 1)
                if first is None or last is None:  # a character no token holds: the offsets rule, whole row
                    row = self._mask_from_offsets(encoding.offsets, r.assistant_spans)
                    mask[base : base + len(row)] = row
                    break
                mask[base + first : base + last + 1] = 1
        return TokenizedBatch(ids, mask, starts, [r.num_neutralized for r in rendered], texts)

    # ------------------------------------------------------------------------------------------ segment mode
    def _plain_tokenizer(self) -> Any:
        """The backend tokenizer without its added tokens and post-processor: text only, as v1's ``_tokenize``.

        OpenChat v1 tokenized each segment with the slow tokenizer's ``_tokenize`` (SentencePiece ``encode`` for
        LLaMA), which never matches special or added tokens, and looked BOS / EOT up by name.
        """
        if self._plain is None:
            from tokenizers import Tokenizer

            spec = json.loads(self.tokenizer.backend_tokenizer.to_str())
            spec["added_tokens"], spec["post_processor"], spec["truncation"], spec["padding"] = [], None, None, None
            self._plain = Tokenizer.from_str(json.dumps(spec))
        return self._plain

    def _tokenize_segments(
        self, conversations: Sequence[Sequence[dict[str, Any]]], add_generation_prompt: bool, max_length: int | None
    ) -> list[TokenizedChat]:
        """OpenChat v1's ``generate_conversation_template``: ``[BOS] + (ids(prefix) + ids(content) + [EOT])`` per turn.

        The mask is 1 on an assistant turn's content and EOT, 0 elsewhere (prefixes, BOS). A generation prompt ends
        with the whole assistant prefix tokenized on its own (v1's serving did the same). System messages (v1 had
        none in its data) follow the same rule with the system prefix. Content is tokenized as plain text, so a
        special-token string in it can never become a special token (it is counted, never altered).
        """
        mt = self.model_type
        tokenizer = self.tokenizer
        eot = eot_token_id(tokenizer, mt)
        head = [tokenizer.convert_tokens_to_ids(self.bos_token)] if self.bos_token else []
        chats = [validate_messages(m) for m in conversations]
        prefixes = {role: mt.prefix(role) for role in ROLES}
        texts = list(prefixes.values()) + [m["content"] for chat in chats for m in chat]
        encoded = self._plain_tokenizer().encode_batch(texts, add_special_tokens=False)
        prefix_ids = {role: encoded[i].ids for i, role in enumerate(prefixes)}
        position = len(prefixes)
        out = []
        for chat in chats:
            ids, mask = list(head), [0] * len(head)
            neutralized = 0
            for message in chat:
                content_ids = encoded[position].ids
                position += 1
                supervised = int(message["role"] == "assistant")
                prefix = prefix_ids[message["role"]]
                ids += prefix + content_ids + [eot]
                mask += [0] * len(prefix) + [supervised] * (len(content_ids) + 1)
                neutralized += self.neutralize(message["content"])[1] if self.special_tokens else 0
            if add_generation_prompt:
                ids += prefix_ids["assistant"]
                mask += [0] * len(prefix_ids["assistant"])
            truncated = max_length is not None and len(ids) > max_length
            if truncated:
                ids, mask = ids[:max_length], mask[:max_length]
            out.append(TokenizedChat(ids, mask, neutralized, truncated))
        return out

    # ---------------------------------------------------------------------------------------------------- jinja
    def jinja(self, *, generation_markers: bool = True) -> str:
        """A Jinja chat template rendering exactly :meth:`render`'s text.

        ``generation_markers=False`` gives the marker-free form for engines that don't know ``{% generation %}``
        (TGI's minijinja); it renders the same text.
        """
        mt = self.model_type
        eot = _literal(mt.eot_token)
        gen_open, gen_close = ("{%- generation -%}", "{%- endgeneration -%}") if generation_markers else ("", "")
        lines = [
            f"{{#- openchat-hf chat template for model type {mt.name} -#}}",
            *self._jinja_tables(),
            f"{{{{- {_literal(self.bos_token)} -}}}}" if self.bos_token else "",
            "{%- for message in messages -%}",
            "{%- if message['content'] is string -%}",
            *self._jinja_neutralize("message['content']"),
            "{%- elif message['content'] is none -%}{%- set content = '' -%}",
            "{%- else -%}{{- raise_exception('Message content must be a string.') -}}{%- endif -%}",
            "{%- if message['role'] == 'system' -%}",
            "{%- if not loop.first -%}{{- raise_exception('A system message may only be the first message.') -}}"
            "{%- endif -%}",
            f"{{{{- {_literal(mt.system_prefix)} + content + {eot} -}}}}",
            "{%- elif message['role'] == 'user' -%}",
            f"{{{{- {_literal(mt.user_prefix)} + content + {eot} -}}}}",
            "{%- elif message['role'] == 'assistant' -%}",
            f"{{{{- {_literal(mt.assistant_prefix)} -}}}}",
            gen_open,
            f"{{{{- content + {eot} -}}}}",
            gen_close,
            "{%- else -%}{{- raise_exception('Unknown role: ' + message['role']) -}}",
            "{%- endif -%}",
            "{%- endfor -%}",
            f"{{%- if add_generation_prompt -%}}{{{{- {_literal(mt.generation_prefix)} -}}}}{{%- endif -%}}",
        ]
        return "\n".join(line for line in lines if line)

    def _jinja_tables(self) -> list[str]:
        """The special tokens as a Jinja mapping (an O(1) lookup), and their first characters with lengths."""
        if not self.special_tokens:
            return []
        specials = ", ".join(f"{_literal(t)}: 1" for t in sorted(self.special_tokens))
        firsts = ", ".join(f"[{_literal(c)}, {list(n)}]" for c, n in self._first_chars)
        return [f"{{%- set oc_specials = {{{specials}}} -%}}", f"{{%- set oc_firsts = [{firsts}] -%}}"]

    def _jinja_neutralize(self, source: str) -> list[str]:
        """Jinja statements setting ``content`` to ``neutralize(source)`` (the same algorithm, step for step)."""
        if not self.special_tokens:
            return [f"{{%- set content = {source} -%}}"]
        zwsp = _literal(ZERO_WIDTH_SPACE)
        return [
            f"{{%- set oc_text = namespace(value={source}) -%}}",
            "{%- for oc_first in oc_firsts -%}{%- if oc_first[0] in oc_text.value -%}",
            "{%- set oc_parts = oc_text.value.split(oc_first[0]) -%}",
            "{%- set oc = namespace(out=oc_parts[0], pos=oc_parts[0] | length, hit=false) -%}",
            "{%- for oc_part in oc_parts[1:] -%}",
            "{%- set oc.hit = false -%}",
            "{%- for n in oc_first[1] -%}{%- if oc_text.value[oc.pos:oc.pos + n] in oc_specials -%}"
            "{%- set oc.hit = true -%}{%- endif -%}{%- endfor -%}",
            f"{{%- set oc.out = oc.out + oc_first[0] + ({zwsp} if oc.hit else '') + oc_part -%}}",
            "{%- set oc.pos = oc.pos + 1 + oc_part | length -%}",
            "{%- endfor -%}",
            "{%- set oc_text.value = oc.out -%}",
            "{%- endif -%}{%- endfor -%}",
            "{%- set content = oc_text.value -%}",
        ]


def _batch_from_chats(chats: Sequence[TokenizedChat], texts: list[str]) -> TokenizedBatch:
    lengths = [len(c.input_ids) for c in chats]
    starts = np.zeros(len(chats) + 1, dtype=np.int64)
    np.cumsum(lengths, out=starts[1:])
    ids = np.fromiter(chain.from_iterable(c.input_ids for c in chats), dtype=np.int32, count=int(starts[-1]))
    mask = np.fromiter(chain.from_iterable(c.supervise_mask for c in chats), dtype=np.int8, count=int(starts[-1]))
    return TokenizedBatch(ids, mask, starts, [c.num_neutralized for c in chats], texts)


def setup_tokenizer(tokenizer: Any, model_type: ModelType | str, tokenization: str = "joint") -> ChatTemplate:
    """Make ``tokenizer`` ready for ``model_type``: add the EOT special token, a pad token, and the chat template.

    Adding the same EOT token to the same base tokenizer always gives the same id, so the data pipeline and model
    patching agree. Returns the bound :class:`ChatTemplate` (in ``tokenization`` mode; the Jinja template always
    renders the text, which only the ``"joint"`` mode tokenizes in one piece).
    """
    from tokenizers import AddedToken

    mt = get_model_type(model_type)
    if mt.eot_token not in tokenizer.get_vocab():
        tokenizer.add_tokens([AddedToken(mt.eot_token, special=True, normalized=False)], special_tokens=True)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token or mt.eot_token
    template = ChatTemplate(mt, tokenizer, tokenization=tokenization)
    tokenizer.chat_template = template.jinja()
    return template


def eot_token_id(tokenizer: Any, model_type: ModelType | str) -> int:
    """The id of the model type's EOT token (raises if the tokenizer was not set up)."""
    mt = get_model_type(model_type)
    token_id = tokenizer.convert_tokens_to_ids(mt.eot_token)
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise TemplateError(
            f"The tokenizer has no {mt.eot_token!r} token; call setup_tokenizer(tokenizer, {mt.name!r})."
        )
    return token_id
