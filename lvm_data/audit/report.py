"""An audit for people: a terminal table, JSON, and a report folder with Markdown, HTML and PNG charts.

All three text forms come from one list of `Section`s, so they always say the same thing.
"""

from __future__ import annotations

import html
import json
import re

from lvm_data import storage
from lvm_data.audit import charts
from lvm_data.audit.result import AuditResult, CountRow
from lvm_data.audit.violations import ADVICE
from lvm_data.shards.timings import timing_lines

_NUMBER = re.compile(r"-?[\d,]+(\.\d+)?( %| [KMGTP]?B)?")  # cells right-aligned in the terminal table


class Section:
    """A titled block: paragraphs, then an optional table, then an optional chart file name."""

    def __init__(
        self,
        title: str,
        lines: list[str] | None = None,
        headers: list[str] | None = None,
        rows: list[list[str]] | None = None,
        chart: str | None = None,
    ):
        self.title, self.lines, self.headers, self.rows, self.chart = title, lines or [], headers, rows or [], chart


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} PB"


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _count_cells(r: CountRow) -> list[str]:
    return [
        r.source,
        r.template,
        r.task,
        f"{r.sentences:,}",
        f"{r.images:,}",
        f"{r.tokens:,}",
        _pct(r.share),
        human_bytes(r.bytes),
        f"{r.bytes_per_token:.3f}",
    ]


def sections(result: AuditResult) -> list[Section]:
    io, deep = result.io, " (--deep)" if result.deep else ""
    out = [
        Section(
            "Audit",
            [
                f"{len(result.paths)} output(s): {', '.join(result.paths)}",
                f"{io.files:,} files, {human_bytes(io.corpus_bytes)}; read {human_bytes(io.bytes_read)} "
                f"({_pct(io.read_fraction)}) in {io.seconds:.2f} s{deep}",
            ],
        )
    ]
    out.append(
        Section(
            "Tokens per source x template x task",
            [],
            ["source", "template", "task", "sentences", "images", "tokens", "share", "bytes", "bytes/token"],
            [_count_cells(r) for r in [*result.groups, *result.sources, result.total]],
            charts.TOKENS_PER_SOURCE,
        )
    )
    out.append(
        Section(
            "Ledger per source",
            [] if result.ledger else ["no ledger files were counted"],
            ["source", "inputs", "ok", "filtered", "failed", "success", "reasons"],
            [
                [
                    r.source,
                    f"{r.inputs:,}",
                    f"{r.ok:,}",
                    f"{r.filtered:,}",
                    f"{r.failed:,}",
                    _pct(r.success_rate),
                    ", ".join(f"{k} {v:,}" for k, v in r.reasons.items()),
                ]
                for r in result.ledger
            ],
        )
    )
    out.append(
        Section(
            "Tokenizers",
            [
                f"{len(result.tokenizers)} tokenizer fingerprint(s) found"
                + (" (more than one is a violation)" if len(result.tokenizers) > 1 else "")
            ],
            ["fingerprint", "codebook size", "tokens/image", "files", "sentences"],
            [
                [t.fingerprint, f"{t.codebook_size:,}", str(t.tokens_per_image), f"{t.files:,}", f"{t.sentences:,}"]
                for t in result.tokenizers
            ],
        )
    )
    out.append(
        Section(
            "Sentence lengths",
            [],
            ["images", "sentences"],
            [[str(k), f"{v:,}"] for k, v in sorted(result.lengths.items())],
            charts.LENGTHS,
        )
    )
    out += _curation_sections(result)
    out.append(Section("Time per step", timing_lines(result.timings)))
    out += [_codebook_section(result), _mixture_section(result), *_violation_sections(result)]
    if result.notes:
        out.append(Section("Notes", list(result.notes)))
    verdict = "OK: no violations" if result.ok else f"FAILED: {result.findings.total:,} violations"
    out.append(Section("Result", [verdict]))
    return out


def _curation_sections(result: AuditResult) -> list[Section]:
    """What each source's curation filters removed (from its units' markers), when any source has filters."""
    if not result.curation:
        return []
    rows = [
        [source, ", ".join(f"{k} {v:,}" for k, v in removed.items()) or "nothing"]
        for source, removed in result.curation.items()
    ]
    return [
        Section(
            "Curation removals",
            [
                "items, clips or sentences removed by each filter reason (see "
                "`lvm-data curation-report OUT` for samples)"
            ],
            ["source", "removed"],
            rows,
        )
    ]


def _codebook_section(result: AuditResult) -> Section:
    stats = result.codebook
    if stats is None:
        return Section(
            "Codebook", ["not scanned: run with --deep for codebook usage, entropy, dead codes and duplicate sentences"]
        )
    dead = f"{len(stats.dead_codes):,} dead codes" + (
        f" (e.g. {', '.join(map(str, stats.dead_codes[:10]))})" if stats.dead_codes else ""
    )
    lines = [
        f"{stats.used:,} of {stats.codebook_size:,} codes used; {dead}",
        f"entropy {stats.entropy_bits:.3f} of {stats.max_entropy_bits:.3f} bits; the most used 1 % of codes "
        f"carry {_pct(stats.top1pct_share)} of tokens; {stats.out_of_range_tokens:,} tokens out of range",
        f"{stats.duplicate_sentences:,} sentences repeat another exactly"
        + "".join(f"; e.g. {', '.join(ids)}" for ids in stats.duplicate_examples[:3]),
    ]
    rows = [
        [s, f"{v['tokens']:,}", f"{v['used']:,} of {v['codebook_size']:,}", f"{v['entropy_bits']:.3f}"]
        for s, v in stats.per_source.items()
    ]
    return Section(
        "Codebook (--deep)", lines, ["source", "tokens", "codes used", "entropy (bits)"], rows, charts.CODEBOOK
    )


def _mixture_section(result: AuditResult) -> Section:
    if result.mixture is None:
        return Section(
            "Mixture", ["no --target given; shares of tokens per source are in the first table"], chart=charts.SHARES
        )
    rows = [
        [
            r.name,
            _pct(r.target),
            _pct(r.actual),
            f"{r.tokens:,}",
            r.status,
            "" if r.weight is None else f"{r.weight:.3f}",
            ", ".join(r.sources),
        ]
        for r in result.mixture
    ]
    off = [r.name for r in result.mixture if r.status not in ("on plan",)]
    assert result.target is not None, "run_audit compares a mixture only against a target"
    return Section(
        f"Mixture against {result.target.name}",
        [
            f"tolerance {_pct(result.target.tolerance)} of each target; weight = target / actual, the sampling "
            f"weight that would hit the target",
            f"off plan: {', '.join(off) if off else 'none'}",
        ],
        ["entry", "target", "actual", "tokens", "status", "weight", "sources"],
        rows,
        charts.SHARES,
    )


def _violation_sections(result: AuditResult) -> list[Section]:
    findings = result.findings
    if findings.total == 0:
        return [Section("Violations", ["none"])]
    out = [Section("Violations", [f"{findings.total:,} in {len(findings.kinds())} kind(s)"])]
    for kind in findings.kinds():
        shown = findings.shown[kind]
        more = len(shown) < findings.findings[kind]
        lines = [ADVICE[kind]] + ([f"showing {len(shown)} of {findings.findings[kind]:,} findings"] if more else [])
        out.append(
            Section(
                f"{kind.value} ({findings.totals[kind]:,})",
                lines,
                ["where", "detail"],
                [[v.where, v.detail] for v in shown],
            )
        )
    return out


def _text_table(headers: list[str], rows: list[list[str]]) -> list[str]:
    columns = list(zip(headers, *rows, strict=True))
    widths = [max(len(c) for c in column) for column in columns]
    numeric = [all(_NUMBER.fullmatch(c) for c in column[1:]) for column in columns]

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.rjust(w) if right else c.ljust(w) for c, w, right in zip(cells, widths, numeric, strict=True)
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *map(line, rows)]


def render_text(result: AuditResult) -> str:
    out = []
    for s in sections(result):
        out += [s.title, *[f"  {line}" for line in s.lines]]
        if s.headers and s.rows:
            out += [f"  {line}" for line in _text_table(s.headers, s.rows)]
        out.append("")
    return "\n".join(out)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(result: AuditResult, chart_files: set[str]) -> str:
    out = ["# lvm-data audit", ""]
    for s in sections(result):
        out += [f"## {s.title}", "", *[f"{line}  " for line in s.lines], ""]
        if s.headers and s.rows:
            out += ["| " + " | ".join(s.headers) + " |", "|" + "---|" * len(s.headers)]
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in s.rows] + [""]
        if s.chart in chart_files:
            out += [f"![{s.title}]({s.chart})", ""]
    return "\n".join(out)


def render_html(result: AuditResult, chart_files: set[str]) -> str:
    e = html.escape
    body = []
    for s in sections(result):
        body += [f"<h2>{e(s.title)}</h2>", *[f"<p>{e(line)}</p>" for line in s.lines]]
        if s.headers and s.rows:
            body.append(
                "<table><tr>"
                + "".join(f"<th>{e(h)}</th>" for h in s.headers)
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in s.rows)
                + "</table>"
            )
        if s.chart in chart_files:
            body.append(f'<img src="{e(s.chart)}" alt="{e(s.title)}">')
    style = (
        "body{font-family:sans-serif;max-width:75em;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}img{max-width:100%}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>lvm-data audit</title><style>{style}</style>"
        f"</head><body><h1>lvm-data audit</h1>{''.join(body)}</body></html>\n"
    )


def render_json(result: AuditResult) -> str:
    return json.dumps(result.to_dict(), indent=2)


def write_report(result: AuditResult, folder: str) -> list[str]:
    """Write report.md, report.html, report.json and the PNG charts into `folder` (local or gs://)."""
    pngs = charts.draw(result)
    documents = {
        "report.md": render_markdown(result, set(pngs)),
        "report.html": render_html(result, set(pngs)),
        "report.json": render_json(result),
    }
    written = []
    for name, data in [*((n, d.encode()) for n, d in documents.items()), *pngs.items()]:
        uri = storage.join(folder, name)
        storage.write_bytes(uri, data)
        written.append(uri)
    return written
