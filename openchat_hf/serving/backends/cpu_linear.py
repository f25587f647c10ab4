"""Faster fp32 CPU linear layers for decoding: a compiled kernel for 1-3 rows, oneDNN on prepacked weights above.

A decoding step is a chain of matrix products with one row per running sequence. ``F.linear`` calls MKL, which on
the AMD EPYC CPUs measured (benchmarks/RESULTS.md) read fp32 weights at ~10 GB/s for one row, while the CPU streams
memory at ~29 GB/s, and took ~2x longer than oneDNN for 8-32 rows (MKL takes slower code paths on AMD CPUs).

* **1 to ``max_rows`` rows**: Inductor's C++ kernel for ``(W * x).sum(-1)``, fused (no product tensor) and parallel
  over the output features, reads the weights at ~23-26 GB/s. It is compiled once with AOTInductor (``torch.export``
  with symbolic sizes: one kernel for every weight shape) and kept on disk (:func:`kernel_cache_dir`), so a server
  starts without compiling again, and a call costs ~10 us (through ``torch.compile``'s guards it cost ~35 us: a few
  ms per step over a model's 200 layers).
* **More rows** (and prefill): oneDNN's matrix product on weights reordered for it once (``prepack``). That copy
  doubles the memory of the layers, so by default it is made only when it fits comfortably; without it MKL is used.

The kernels sum in another order than MKL (results differ in the last bits, as MKL's own 1-row and batched products
already do from each other); greedy answers were the same tokens on the prompts measured. The compiled kernel needs
a C++ compiler (Inductor's) the first time: :func:`fast_cpu_linears` checks every kernel once and falls back to
``F.linear`` when that fails.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import platform
import tempfile
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

MIN_WEIGHT_ELEMENTS = 2**16  # smaller weights: a call's fixed cost is more than MKL loses on them
KERNEL_MAX_ROWS = 64  # the largest ``max_rows`` the kernel is compiled for
PREPACK_BATCH = 32  # the batch size oneDNN lays prepacked weights out for
_kernel: Any = None


def _few_row_matmul_module():
    import torch

    class FewRowMatmul(torch.nn.Module):
        """``x @ weight.T`` as ``out[o, r] = sum_k weight[o, k] * x[r, k]``: the output features (the long axis) are
        the outer, parallel loop, so one row uses every thread."""

        def forward(self, x, weight):
            return (weight[:, None, :] * x[None]).sum(-1).t().contiguous()

    return FewRowMatmul()


def kernel_cache_dir() -> Path:
    """Where the compiled kernel is kept: ``$OPENCHAT_HF_KERNELS``, else ``kernels/`` beside the assets cache."""
    from openchat_hf.assets import cache_root

    return Path(os.environ.get("OPENCHAT_HF_KERNELS") or cache_root().parent / "kernels").expanduser()


def _kernel_path() -> Path:
    """The package for this torch, this CPU (the kernel is built with ``-march=native``) and this kernel source."""
    import torch

    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        flags = platform.processor()
    source = inspect.getsource(_few_row_matmul_module)
    key = "\n".join([torch.__version__, platform.machine(), flags, source, str(KERNEL_MAX_ROWS)])
    return kernel_cache_dir() / f"few_row_matmul-{hashlib.sha256(key.encode()).hexdigest()[:16]}.pt2"


def _compile_package(path: Path) -> None:
    """Export and compile the kernel with AOTInductor into ``path`` (written whole, then renamed: concurrent servers
    never load a half-written file)."""
    import torch
    from torch.export import Dim

    rows, features, outputs = Dim("rows", min=1, max=KERNEL_MAX_ROWS), Dim("features"), Dim("outputs")
    example = (torch.randn(2, 48), torch.randn(80, 48))  # distinct sizes: export would tie equal ones
    program = torch.export.export(
        _few_row_matmul_module(), example, dynamic_shapes=({0: rows, 1: features}, {0: outputs, 1: features})
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".pt2", dir=path.parent)
    os.close(fd)
    try:
        torch._inductor.aoti_compile_and_package(program, package_path=tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def few_row_kernel():
    """The compiled ``x @ weight.T`` for 2D fp32 CPU tensors of 1 to ``KERNEL_MAX_ROWS`` rows (compiled on first use,
    then loaded from :func:`kernel_cache_dir`)."""
    global _kernel
    if _kernel is None:
        import torch

        path = _kernel_path()
        if not path.is_file():
            logger.info("Compiling the CPU decoding kernel into %s (once per machine and torch version)", path)
            _compile_package(path)
        model = torch._inductor.aoti_load_package(str(path))
        run = model.loader.run  # the runner itself: the package's Python wrapper adds ~10 us of pytree work a call

        def kernel(x, weight):
            return run([x, weight])[0]

        _kernel = kernel
    return _kernel


def _fast_forward(self, x):
    """``nn.Linear.forward`` with the kernels (bound to the module: a deep copy of the model gets its own, on its own
    weights): the compiled kernel up to ``max_rows`` rows, oneDNN on the prepacked weight above, else ``F.linear``."""
    import torch
    import torch.nn.functional as F

    weight, bias = self.weight, self.bias
    rows = x.numel() // weight.shape[1]
    if rows == 0 or x.dtype != weight.dtype:
        return F.linear(x, weight, bias)
    flat = x.reshape(rows, weight.shape[1])
    if rows <= self._fast_max_rows:
        out = few_row_kernel()(flat.contiguous(), weight)
        out = out if bias is None else out + bias
    elif self._fast_packed is None:
        return F.linear(x, weight, bias)
    else:
        out = torch.ops.mkldnn._linear_pointwise(flat, self._fast_packed.of(weight), bias, "none", [], "")
    return out.reshape(*x.shape[:-1], weight.shape[0])


class _Packed:
    """A weight prepacked for oneDNN, packed again when the weight changed in place or is another tensor (a deep copy
    starts empty: oneDNN's packed tensors cannot be copied, and the copy's weight is another tensor)."""

    def __init__(self, weight: Any = None) -> None:
        self.key, self.packed = None, None
        if weight is not None:
            self.of(weight)

    def of(self, weight: Any) -> Any:
        key = (weight.data_ptr(), weight._version)
        if key != self.key:
            self.key, self.packed = key, _prepack(weight.detach())
        return self.packed

    def __deepcopy__(self, memo: dict) -> _Packed:
        return _Packed()


def _available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``), ``None`` where unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _prepack(weight: Any) -> Any:
    """``weight`` reordered for oneDNN's fp32 matrix product (a copy), checked against ``F.linear``."""
    import torch

    packed = torch.ops.mkldnn._reorder_linear_weight(weight, PREPACK_BATCH)
    _check_product(
        lambda x: torch.ops.mkldnn._linear_pointwise(x, packed, None, "none", [], ""), weight, PREPACK_BATCH
    )
    return packed


def _check_product(product: Any, weight: Any, rows: int) -> None:
    """Raise unless ``product(x)`` equals ``x @ weight.T`` for a random ``x`` of ``rows`` rows."""
    import torch

    x = torch.randn(rows, weight.shape[1])
    torch.testing.assert_close(product(x), x @ weight.T, rtol=1e-4, atol=1e-4)


@dataclass
class CpuKernels:
    """What :func:`fast_cpu_linears` gave a model: layers on the compiled kernel, layers with prepacked weights."""

    compiled: int = 0
    prepacked: int = 0


def fast_cpu_linears(
    model: Any,
    *,
    prepack: bool | None = None,
    max_rows: int | None = None,
    min_weight: int = MIN_WEIGHT_ELEMENTS,
) -> CpuKernels:
    """Give ``model``'s fp32 CPU ``nn.Linear`` layers of at least ``min_weight`` weights the compiled kernel for
    inputs of at most ``max_rows`` rows and, with ``prepack``, oneDNN's product on prepacked weights for more rows.

    ``prepack``: ``True`` always, ``False`` never, ``None`` when the copy of the weights it makes takes at most half
    the memory available. ``max_rows`` defaults to 3 with prepacked weights (oneDNN is as fast from 4 rows) and to 16
    without (MKL's product is slower up to ~20 rows). Checks each kernel once per weight shape first (call it on the
    thread that will run the model: a parallel CPU kernel run on another thread leaves OpenMP threads behind there),
    so a failure to compile or a wrong result shows here and leaves the model as it was.
    """
    import torch

    layers = [
        module
        for module in model.modules()
        if isinstance(module, torch.nn.Linear)
        and module.weight.device.type == "cpu"
        and module.weight.dtype == torch.float32
        and module.weight.is_contiguous()
        and module.weight.numel() >= min_weight
    ]
    if max_rows is not None and not 1 <= max_rows <= KERNEL_MAX_ROWS:
        raise ValueError(f"max_rows must be 1 to {KERNEL_MAX_ROWS}, not {max_rows}.")
    if not layers:
        return CpuKernels()
    if prepack is None:
        available, needed = _available_memory(), sum(m.weight.numel() * 4 for m in layers)
        prepack = available is not None and needed <= available / 2
        if not prepack:
            logger.warning(
                "Not prepacking the weights for batched CPU decoding: a copy needs %.1f GB, %s available.",
                needed / 1e9,
                "unknown" if available is None else f"{available / 1e9:.1f} GB",
            )
    packed: dict[int, _Packed] = {}
    if prepack:
        try:
            with torch.inference_mode():
                for module in layers:  # tied weights are packed once
                    if module.weight.data_ptr() not in packed:
                        packed[module.weight.data_ptr()] = _Packed(module.weight)
        except Exception as error:  # no oneDNN in this torch build
            logger.warning("Prepacked CPU weights unavailable (%s: %s).", type(error).__name__, error)
            packed = {}
    max_rows = max_rows if max_rows is not None else (3 if packed else 16)
    try:
        kernel = few_row_kernel()
        with torch.inference_mode():
            for weight in {tuple(m.weight.shape): m.weight.detach() for m in layers}.values():
                for rows in sorted({1, max_rows}):
                    _check_product(lambda x, w=weight: kernel(x, w), weight, rows)
    except Exception as error:  # no C++ compiler, an unsupported platform or torch: keep torch's own kernels
        logger.warning(
            "CPU decoding kernel unavailable (%s: %s); using torch's linear layers.", type(error).__name__, error
        )
        return CpuKernels()
    for module in layers:
        module._fast_max_rows = max_rows
        module._fast_packed = packed.get(module.weight.data_ptr())
        module.forward = types.MethodType(_fast_forward, module)
    return CpuKernels(compiled=len(layers), prepacked=len(layers) if packed else 0)


def uses_few_row_kernel(module: Any) -> bool:
    """Whether :func:`fast_cpu_linears` gave ``module`` the compiled kernel."""
    return getattr(module.__dict__.get("forward"), "__func__", None) is _fast_forward
