"""``OpenChatSFTTrainer``: TRL's ``SFTTrainer`` with OpenChat's collator, multipack sampler and global-batch loss.

The loss of an optimizer step is ``sum(w_t * nll_t) / sum(w_t)`` over every supervised token ``t`` of the global
batch (all gradient-accumulation micro-batches on all ranks), with ``w_t`` the collator's ``loss_weights`` (1 per
token by default). The global ``sum(w_t)`` is computed once per step, before the forward passes, from the
micro-batches the Trainer collects (``Trainer._get_num_items_in_batch``) and summed across ranks; each micro-batch
then contributes ``sum(w_t * nll_t) / global_sum * world_size`` (DDP / DeepSpeed average the gradients over ranks),
so one batch of N conversations gives the same loss and gradients however it is split.

The per-token log-probabilities come from TRL's fused LM head (no ``(batch, seq, vocab)`` logits in memory).
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from trl import SFTTrainer

from openchat_hf.training.collator import DataCollatorForOpenChat
from openchat_hf.training.config import OpenChatSFTConfig
from openchat_hf.training.errors import TrainingError
from openchat_hf.training.model import finalize_checkpoint
from openchat_hf.training.model_card import build_model_card
from openchat_hf.training.peft_utils import expose_head_bias
from openchat_hf.training.sampler import MultipackBatchSampler

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("input_ids", "supervise_mask")


def weighted_nll(model: Any, inputs: dict[str, Any], loss_type: str = "nll") -> tuple[torch.Tensor, torch.Tensor, Any]:
    """``(sum of w_t * loss_t, sum of w_t, fused outputs)`` of one micro-batch (``inputs`` from the collator).

    ``loss_t`` is ``-log p_t`` (``nll``) or, with ``dft`` (Dynamic Fine-Tuning, as TRL's ``loss_type="dft"``),
    ``-p_t * log p_t`` with ``p_t`` detached.
    """
    inputs = dict(inputs)
    loss_weights = inputs.pop("loss_weights")
    outputs = model(**inputs, use_cache=False, fused_lm_head=True)
    weights = loss_weights[:, 1:].to(outputs.log_probs.device, outputs.log_probs.dtype)
    per_token = -outputs.log_probs
    if loss_type == "dft":
        per_token = per_token * outputs.log_probs.exp().detach()
    return (per_token * weights).sum(), weights.sum(), outputs


def check_columns(dataset: Any, name: str = "train") -> None:
    """Raise a clear error when ``dataset`` lacks the tokenized columns the collator needs."""
    columns = getattr(dataset, "column_names", None)
    if columns is None:
        return
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise TrainingError(
            f"The {name} dataset has columns {columns} but needs {list(REQUIRED_COLUMNS)} (missing {missing}); "
            "use the data pipeline's OUT/<model_type> folder or a conversational 'messages' dataset."
        )


class OpenChatSFTTrainer(SFTTrainer):
    """``SFTTrainer`` for pre-tokenized OpenChat data (``input_ids``, ``supervise_mask``, optional ``weight``)."""

    def __init__(
        self,
        model: Any,
        args: OpenChatSFTConfig,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        processing_class: Any = None,
        data_collator: Any = None,
        **kwargs: Any,
    ) -> None:
        if not isinstance(args, OpenChatSFTConfig):
            raise TrainingError("OpenChatSFTTrainer needs an OpenChatSFTConfig.")
        for name, dataset in (("train", train_dataset), ("eval", eval_dataset)):
            if dataset is not None:
                check_columns(dataset, name)
        if data_collator is None:
            pad_id = processing_class.pad_token_id if processing_class is not None else None
            if pad_id is None:
                raise TrainingError("The tokenizer has no pad token; call templates.setup_tokenizer first.")
            data_collator = DataCollatorForOpenChat(
                pad_token_id=pad_id,
                padding_free=args.padding_free,
                loss_mode=args.loss_mode,
                use_weights=args.use_weights,
                pad_to_multiple_of=args.pad_to_multiple_of,
            )
        # TRL refuses a custom collator when args.padding_free is set; our collator is the padding-free one.
        padding_free, args.padding_free = args.padding_free, False
        try:
            super().__init__(
                model=model,
                args=args,
                train_dataset=train_dataset,
                eval_dataset=eval_dataset,
                processing_class=processing_class,
                data_collator=data_collator,
                **kwargs,
            )
        finally:
            args.padding_free = padding_free
        self.loss_is_scaled_for_ga = True
        expose_head_bias(self.model)
        self.card_info: dict[str, Any] = {}
        self._multipack: MultipackBatchSampler | None = None
        self._token_stats = torch.zeros(3, dtype=torch.float64)  # real tokens, supervised tokens, steps
        self._stats_clock = time.perf_counter()
        if padding_free and getattr(self.model.config, "_attn_implementation", None) == "flex_attention":
            logger.info("flex_attention compiles its kernels on the first steps: expect them to be slow.")

    # ------------------------------------------------------------------------------------------------------ data
    def get_train_dataloader(self) -> DataLoader:
        if self.args.max_tokens_per_batch is None:
            return super().get_train_dataloader()
        dataset = self.train_dataset
        lengths = dataset["length"] if "length" in dataset.column_names else [len(ids) for ids in dataset["input_ids"]]
        self._multipack = MultipackBatchSampler(
            lengths,
            self.args.max_tokens_per_batch,
            num_replicas=max(1, self.args.world_size),
            rank=self.args.process_index,
            seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed,
            shuffle=str(getattr(self.args.train_sampling_strategy, "value", self.args.train_sampling_strategy))
            != "sequential",
            window=self.args.packing_window,
            num_epochs=math.ceil(self.args.num_train_epochs),
            gradient_accumulation_steps=self.args.gradient_accumulation_steps,
        )
        optimizer_steps = len(self._multipack) // self.args.gradient_accumulation_steps
        logger.info(
            "Multipack: %d micro-batches per rank per epoch, budget %d tokens, %.1f%% of the slots filled, "
            "%.1f conversations per optimizer step on average (global batch)",
            len(self._multipack),
            self.args.max_tokens_per_batch,
            100 * self._multipack.efficiency(),
            len(lengths) / max(1, optimizer_steps),
        )
        loader = DataLoader(
            dataset,
            batch_sampler=self._multipack,
            collate_fn=self.data_collator,
            num_workers=self.args.dataloader_num_workers,
            pin_memory=self.args.dataloader_pin_memory,
            persistent_workers=self.args.dataloader_persistent_workers and self.args.dataloader_num_workers > 0,
        )
        loader = self.accelerator.prepare(loader)
        # The sampler already gives each rank its own batches: make accelerate's shard wrapper a passthrough.
        wrapper = getattr(loader, "batch_sampler", None)
        if wrapper is not None and getattr(wrapper, "batch_sampler", None) is self._multipack:
            wrapper.num_processes, wrapper.process_index = 1, 0
        return loader

    def _run_epoch(self, *args: Any, **kwargs: Any) -> Any:
        # Reached directly, since a resumed run's skip wrapper hides the sampler from Trainer's set_epoch.
        if self._multipack is not None:
            self._multipack.set_epoch(kwargs["epoch"] if "epoch" in kwargs else args[1])
        return super()._run_epoch(*args, **kwargs)

    # ------------------------------------------------------------------------------------------------------ loss
    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device) -> torch.Tensor | None:
        """The global ``sum(w_t)`` of this optimizer step (all micro-batches, all ranks); also counts tokens."""
        if not batch_samples or "loss_weights" not in batch_samples[0]:
            return super()._get_num_items_in_batch(batch_samples, device)
        stats = torch.zeros(3, dtype=torch.float64, device=device)
        for batch in batch_samples:
            stats[0] += batch["loss_weights"][..., 1:].sum().to(device, torch.float64)
            real = batch["attention_mask"].sum() if "attention_mask" in batch else batch["input_ids"].numel()
            stats[1] += torch.as_tensor(real, device=device, dtype=torch.float64)
            stats[2] += batch["labels"][..., 1:].ne(-100).sum().to(device, torch.float64)
        if self.args.world_size > 1:
            stats = self.accelerator.gather(stats.unsqueeze(0)).sum(0)
        self._token_stats += torch.tensor([stats[1].item(), stats[2].item(), 1.0], dtype=torch.float64)
        return stats[0].to(torch.float32)

    def compute_loss(
        self,
        model: Any,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | None = None,
    ) -> Any:
        if "loss_weights" not in inputs:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        mode = "train" if self.model.training else "eval"
        total, local_weight, outputs = weighted_nll(model, inputs, self.args.loss_type)
        if num_items_in_batch is None:
            loss = total / local_weight.clamp(min=1e-8)
        else:
            loss = total / torch.as_tensor(num_items_in_batch, device=total.device).clamp(min=1e-8)
            loss = loss * self.accelerator.num_processes
        if self.aux_loss_enabled and getattr(outputs, "aux_loss", None) is not None:
            # MoE load-balancing loss (SFTTrainer's router_aux_loss_coef): a per-micro-batch mean, averaged over the
            # accumulation steps as TRL does; DDP averages it across ranks.
            steps = self.current_gradient_accumulation_steps if num_items_in_batch is not None else 1
            loss = loss + self.router_aux_loss_coef * outputs.aux_loss.to(loss.device) / steps
            self._metrics[mode]["aux_loss"].append(outputs.aux_loss.detach().float().item())
        with torch.no_grad():
            stats = torch.stack(
                [outputs.label_mask.sum(), outputs.entropy.detach().sum(), outputs.is_top1.sum()]
            ).float()
            stats = self.accelerator.gather_for_metrics(stats.unsqueeze(0)).sum(0)
            n = stats[0].item()
            self._metrics[mode]["entropy"].append(stats[1].item() / n if n else 0.0)
            self._metrics[mode]["mean_token_accuracy"].append(stats[2].item() / n if n else 0.0)
        if return_outputs:
            with torch.no_grad():
                outputs = model(**{k: v for k, v in inputs.items() if k not in ("labels", "loss_weights")})
            return loss, outputs
        return loss

    def _save(self, output_dir: str | None = None, state_dict: Any = None) -> None:
        super()._save(output_dir, state_dict)
        base = getattr(self.accelerator.unwrap_model(self.model), "get_base_model", None)
        if base is not None:  # a LoRA adapter: keep the patched base config (model type, extended RoPE) beside it
            base().config.save_pretrained(output_dir or self.args.output_dir)
        if self.processing_class is not None:
            model_type = self.args.model_type or getattr(self.model.config, "openchat_model_type", None)
            finalize_checkpoint(
                output_dir or self.args.output_dir,
                self.processing_class,
                model_type,
                tokenization=getattr(self, "tokenization", None),
            )

    # ------------------------------------------------------------------------------------------------ model card
    def create_model_card(self, model_name: str | None = None, dataset_name: str | None = None, **kwargs: Any) -> None:
        """Write our model card (base model, data, recipe, hyperparameters, template) as ``output_dir/README.md``."""
        if not self.is_world_process_zero():
            return
        info = dict(self.card_info)
        card = build_model_card(
            model_name=model_name or info.pop("model_name", None) or Path(self.args.output_dir).name,
            base_model=info.get("base_model"),
            dataset=dataset_name or info.get("dataset"),
            model_type=info.get("model_type") or self.args.model_type or "openchat",
            chat_template=self.processing_class.chat_template or "",
            args=self.args,
            recipe=info.get("recipe"),
            extra={"distributed_type": str(self.accelerator.distributed_type.value)},
        )
        Path(self.args.output_dir).mkdir(parents=True, exist_ok=True)
        (Path(self.args.output_dir) / "README.md").write_text(card, encoding="utf-8")

    # ------------------------------------------------------------------------------------------------------- log
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._token_stats[2] > 0:
            elapsed = max(time.perf_counter() - self._stats_clock, 1e-9)
            tokens, supervised, steps = self._token_stats.tolist()
            logs["train_tokens_per_second"] = round(tokens / elapsed, 1)
            logs["tokens_per_step"] = tokens / steps
            logs["supervised_tokens_per_step"] = supervised / steps
            logs["supervised_token_share"] = round(supervised / tokens, 4) if tokens else 0.0
            self._token_stats.zero_()
            self._stats_clock = time.perf_counter()
        super().log(logs, start_time)
