"""Audit what a job wrote: counts per source x template x task, ledger totals, tokenizers, violations,
codebook statistics (--deep) and mixture shares (--target), from Parquet footers and small columns.

    result = run_audit(["out/"], AuditConfig(deep=False))
    print(render_text(result)); result.ok  # False when any violation was found
"""

from lvm_data.audit.files import AuditPathError
from lvm_data.audit.mixture import TargetError, load_target
from lvm_data.audit.report import render_json, render_text, write_report
from lvm_data.audit.run import AuditConfig, run_audit
from lvm_data.audit.violations import Kind

__all__ = [
    "AuditConfig",
    "AuditPathError",
    "Kind",
    "TargetError",
    "load_target",
    "render_json",
    "render_text",
    "run_audit",
    "write_report",
]
