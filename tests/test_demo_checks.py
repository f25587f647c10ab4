"""The demo's before/after figures: eval loss over supervised tokens and the EOT-stop share of greedy answers."""

from __future__ import annotations

import shutil

import datasets
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from openchat_hf.demo_checks import eot_stop_share, eval_loss, held_out_prompts
from openchat_hf.templates import ChatTemplate

CHAT = [
    {"role": "user", "content": "Name three primary colours."},
    {"role": "assistant", "content": "Red, yellow and blue."},
    {"role": "user", "content": "And secondary ones?"},
    {"role": "assistant", "content": "Orange, green and purple."},
]


@pytest.fixture
def eval_dataset(tiny_chat_dir, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(str(tiny_chat_dir))
    tokenized = ChatTemplate("openchat", tokenizer).tokenize(CHAT)
    row = {"input_ids": tokenized.input_ids, "supervise_mask": tokenized.supervise_mask}
    datasets.DatasetDict({"eval": datasets.Dataset.from_list([row])}).save_to_disk(str(tmp_path / "data"))
    return tmp_path / "data", row


def test_eval_loss_is_the_mean_over_supervised_tokens(tiny_chat_dir, eval_dataset):
    data_dir, row = eval_dataset
    model = AutoModelForCausalLM.from_pretrained(str(tiny_chat_dir), dtype=torch.float32)
    ids = torch.tensor([row["input_ids"]])
    labels = torch.where(torch.tensor([row["supervise_mask"]], dtype=torch.bool), ids, -100)
    with torch.no_grad():
        expected = model(input_ids=ids, labels=labels).loss.item()  # transformers shifts the labels itself
    assert eval_loss(tiny_chat_dir, data_dir) == pytest.approx(expected, rel=1e-5)


def _with_fixed_eot_logit(src, dst, sign: float):
    """A copy of the model whose EOT logit is ``sign`` x a positive number at every position, every other logit 0.

    The decoder layers write nothing to the residual stream, so the final hidden state is the normalised embedding;
    the norm keeps only dimension 0, which every embedding row has at 1.0, and only the EOT row of the (untied) head
    reads it.
    """
    shutil.copytree(src, dst)
    model = AutoModelForCausalLM.from_pretrained(str(src), dtype=torch.float32)
    eot = AutoTokenizer.from_pretrained(str(src)).convert_tokens_to_ids("<|end_of_turn|>")
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.get_input_embeddings().weight[:, 0] = 1.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0
        head = model.get_output_embeddings().weight
        head.zero_()
        head[eot, 0] = sign
    model.save_pretrained(str(dst))
    return dst


def test_eot_stop_share_counts_answers_that_end_with_eot(tiny_chat_dir, tmp_path):
    prompts = held_out_prompts(3)
    assert len(prompts) == 3 and all(isinstance(p, str) and p for p in prompts)
    never = eot_stop_share(_with_fixed_eot_logit(tiny_chat_dir, tmp_path / "never", -1.0), prompts, max_new_tokens=6)
    assert never["stopped"] == 0 and never["share"] == 0.0 and never["mean_tokens"] == 6
    always = eot_stop_share(_with_fixed_eot_logit(tiny_chat_dir, tmp_path / "always", 1.0), prompts, max_new_tokens=6)
    assert always["stopped"] == 3 and always["share"] == 1.0 and always["mean_tokens"] == 0
    assert always["answers"] == ["", "", ""]
