"""Faster CPU linear layers for decoding 1-3 sequences: a fused multiply-reduce kernel from ``torch.compile``.

A decoding step with one sequence is a chain of matrix-vector products, bound by how fast the weights are read.
``F.linear`` calls MKL, whose 1-row product on the AMD EPYC CPUs measured read fp32 weights at ~10 GB/s on one
thread while the same CPU streams memory at ~29 GB/s (benchmarks/RESULTS.md); Inductor's C++ kernel for
``(x * W).sum(-1)``, fused (no product tensor) and parallel over the output rows, reads them at ~20-22 GB/s. With
more rows MKL's blocked matrix product wins, so only inputs of at most ``max_rows`` rows take the kernel.

The kernel sums in another order than MKL (results differ in the last bits, as MKL's own 1-row and batched products
already do from each other); greedy answers were the same tokens on the prompts measured. It needs a C++ compiler
(Inductor's): :func:`compile_few_row_linear` warms it up once and falls back to ``F.linear`` when that fails.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

MIN_WEIGHT_ELEMENTS = 2**18  # smaller weights stay in cache, where MKL is as fast and a compiled call costs more
_kernel: Any = None


def _matvec():
    """The compiled ``x @ W.T`` for few rows (sizes are symbolic: no recompilation per weight shape)."""
    global _kernel
    if _kernel is None:
        import torch
        import torch._inductor.config as inductor_config

        # A few small kernels: compile them in this process, without a pool of compile workers left running.
        inductor_config.compile_threads = 1

        def matvec(x, weight):
            return (x[:, None, :] * weight[None]).sum(-1)

        _kernel = torch.compile(matvec, dynamic=True)
    return _kernel


def _few_row_forward(module: Any, weight: Any, max_rows: int):
    """A forward for ``module`` (an ``nn.Linear``): the compiled kernel up to ``max_rows`` rows, else ``F.linear``."""
    import torch.nn.functional as F

    kernel, bias, features = _matvec(), module.bias, weight.shape[1]

    def forward(x):
        rows = x.numel() // features
        if not 0 < rows <= max_rows or x.dtype != weight.dtype:
            return F.linear(x, module.weight, bias)
        out = kernel(x.reshape(rows, features), weight).reshape(*x.shape[:-1], weight.shape[0])
        return out if bias is None else out + bias

    return forward


def compile_few_row_linear(model: Any, *, max_rows: int = 3, min_weight: int = MIN_WEIGHT_ELEMENTS) -> int:
    """Give ``model``'s fp32 CPU ``nn.Linear`` layers of at least ``min_weight`` weights the compiled kernel for
    inputs of at most ``max_rows`` rows; returns how many layers got it (0: none, or no working compiler).

    Compiles and runs the kernel once per weight shape first (call it on the thread that will run the model: a
    parallel CPU kernel run on another thread leaves OpenMP threads behind there), so a failure to compile shows
    here and leaves the model as it was.
    """
    import torch

    layers = [
        module
        for module in model.modules()
        if isinstance(module, torch.nn.Linear)
        and module.weight.device.type == "cpu"
        and module.weight.dtype == torch.float32
        and module.weight.numel() >= min_weight
    ]
    if not layers or max_rows < 1:
        return 0
    try:
        with torch.inference_mode():
            for weight in {tuple(m.weight.shape): m.weight.detach() for m in layers}.values():
                for rows in sorted({1, max_rows}):
                    x = torch.randn(rows, weight.shape[1])
                    torch.testing.assert_close(_matvec()(x, weight), x @ weight.T, rtol=1e-4, atol=1e-4)
    except Exception as error:  # no C++ compiler, an unsupported platform: keep torch's own kernels
        logger.warning(
            "CPU decoding kernel unavailable (%s: %s); using torch's linear layers.", type(error).__name__, error
        )
        return 0
    for module in layers:
        # A detached view (same storage, tied weights stay tied) so the compiled graph takes it as a plain input.
        module.forward = _few_row_forward(module, module.weight.detach(), max_rows)
    return len(layers)


def uses_few_row_kernel(module: Any) -> bool:
    """Whether :func:`compile_few_row_linear` gave ``module`` the compiled kernel."""
    return getattr(module.__dict__.get("forward"), "__qualname__", "").startswith("_few_row_forward")
