"""Whether this CPU runs bfloat16 natively: the encoder and the two trainers ask before a bf16 run.

oneDNN has bfloat16 kernels on x86 CPUs with AVX512 (BW, VL, DQ) or AVX-NE-CONVERT, and on Arm with BF16. On
the others (AVX2 only) autocast still runs, emulated and several times slower than float32, and says nothing:
the run owes its user that warning. It lives on the tokenizer floor so that `lvm_data.train` can share it.
"""

from __future__ import annotations

import torch


def cpu_has_bf16_kernels() -> bool | None:
    """Whether oneDNN has bfloat16 kernels for this CPU; None when this torch cannot say."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return None


def emulated_bf16_warning(flag: str, consequence: str) -> str | None:
    """The warning for `flag` (the setting that asked for bf16 on the CPU) when bf16 is emulated here, else None.

    `consequence` says what it costs and what to use instead; there is no warning when torch cannot say. The
    text has no `warning:` prefix: a log handler or the caller adds it.
    """
    if cpu_has_bf16_kernels() is not False:
        return None
    return (
        f"{flag} on this CPU ({torch.backends.cpu.get_cpu_capability()}, no bfloat16 kernels in oneDNN: "
        f"bf16 needs AVX512 or AMX) is emulated, {consequence}"
    )
