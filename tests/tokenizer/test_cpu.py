import platform
from pathlib import Path

import pytest

from lvm_data.tokenizer import cpu
from lvm_data.tokenizer.cpu import cpu_has_bf16_kernels, emulated_bf16_warning


@pytest.mark.skipif(
    platform.system() != "Linux" or platform.machine() != "x86_64", reason="reads x86 flags from /proc/cpuinfo"
)
def test_bf16_kernel_probe_agrees_with_the_cpu_flags():
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    flags = set(next(line for line in lines if line.startswith("flags")).split())
    if {"avx512bw", "avx512vl", "avx512dq"} <= flags:
        assert cpu_has_bf16_kernels() is True
    elif "avx_ne_convert" not in flags:
        assert cpu_has_bf16_kernels() is False


def test_emulated_bf16_names_the_flag_the_cpu_and_the_consequence(monkeypatch):
    monkeypatch.setattr(cpu, "cpu_has_bf16_kernels", lambda: False)
    warning = emulated_bf16_warning("--bf16", "about 3x slower; pass --no-bf16")
    assert warning is not None
    assert warning.startswith("--bf16 on this CPU (") and warning.endswith(
        "is emulated, about 3x slower; pass --no-bf16"
    )
    assert "needs AVX512 or AMX" in warning


def test_no_warning_with_native_kernels_or_when_torch_cannot_say(monkeypatch):
    for answer in (True, None):
        monkeypatch.setattr(cpu, "cpu_has_bf16_kernels", lambda answer=answer: answer)
        assert emulated_bf16_warning("--bf16", "slower") is None
