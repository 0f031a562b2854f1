import json

from lvm_data.audit import AuditConfig, load_target, render_json, render_text, run_audit, write_report
from lvm_data.audit.report import human_bytes

from .handmade import standard
from .test_run import plant_duplicate_id

PNG = b"\x89PNG\r\n\x1a\n"


def test_terminal_text_shows_counts_ledger_tokenizers_and_verdict(tmp_path):
    standard(str(tmp_path)).write()
    text = render_text(run_audit([str(tmp_path)]))
    lines = text.splitlines()
    kinetics = next(line for line in lines if line.strip().startswith("kinetics  video"))
    assert kinetics.split()[:6] == ["kinetics", "video", "video", "3", "12", "48"]
    assert any(line.strip().startswith("laion") and "76.92 %" in line and "too_small 2" in line for line in lines)
    assert "OK: no violations" in text and "run with --deep" in text and "no --target given" in text


def test_violations_are_shown_with_advice_and_where(tmp_path):
    c = standard(str(tmp_path))
    plant_duplicate_id(c)
    result = run_audit([str(tmp_path)])
    text = render_text(result)
    assert "duplicate_id (1)" in text and "delete the extra copies" in text
    assert c.unit("laion", "00000").sentences[0]["id"] in text and "FAILED: 1 violations" in text
    document = json.loads(render_json(result))
    assert document["ok"] is False and document["violations"]["total"] == 1
    assert document["violations"]["kinds"]["duplicate_id"]["examples"][0]["count"] == 1


def test_json_holds_the_tables(tmp_path):
    standard(str(tmp_path)).write()
    document = json.loads(render_json(run_audit([str(tmp_path)], AuditConfig(deep=True, target=load_target("uvdv1")))))
    assert document["ok"] is True and document["total"]["tokens"] == 128
    assert {g["source"] for g in document["groups"]} == {"laion", "kinetics", "coco"}
    assert document["ledger"][-1]["source"] == "*" and document["ledger"][-1]["inputs"] == 22
    assert document["sentence_lengths"] == {"1": 10, "2": 5, "4": 3}
    assert len(document["codebook"]["histogram"]) == 16
    assert [r["status"] for r in document["mixture"]["rows"]][:3] == ["under", "over", "over"]
    assert document["io"]["bytes_read"] > 0


def test_report_folder_has_markdown_html_json_and_charts(tmp_path):
    out = tmp_path / "out"
    c = standard(str(out))
    c.unit("coco", "00000").sentences[0]["task"] = "<depth|edges>"
    c.write()
    result = run_audit([str(out)], AuditConfig(deep=True, target=load_target("uvdv1")))
    written = write_report(result, str(tmp_path / "report"))
    names = sorted(p.name for p in (tmp_path / "report").iterdir())
    assert names == sorted(
        [
            "report.md",
            "report.html",
            "report.json",
            "tokens_per_source.png",
            "share_vs_target.png",
            "sentence_lengths.png",
            "codebook_usage.png",
        ]
    )
    assert len(written) == len(names)
    for png in (tmp_path / "report").glob("*.png"):
        assert png.read_bytes().startswith(PNG) and png.stat().st_size > 5000
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "![Tokens per source x template x task](tokens_per_source.png)" in markdown
    assert "| coco | pairs | <depth\\|edges> |" in markdown
    page = (tmp_path / "report" / "report.html").read_text()
    assert "&lt;depth|edges&gt;" in page and '<img src="codebook_usage.png"' in page and "<depth|" not in page
    assert json.loads((tmp_path / "report" / "report.json").read_text())["mixture"]["target"].startswith("UVDv1")


def test_without_deep_there_is_no_codebook_chart(tmp_path):
    standard(str(tmp_path / "out")).write()
    write_report(run_audit([str(tmp_path / "out")]), str(tmp_path / "r"))
    assert not (tmp_path / "r" / "codebook_usage.png").exists() and (tmp_path / "r" / "share_vs_target.png").exists()


def test_human_bytes():
    assert [human_bytes(n) for n in (12, 12_345, 9_876_543_210)] == ["12 B", "12.35 KB", "9.88 GB"]
