import os
from urllib.parse import unquote_to_bytes

import pytest

from lvm_data import localfs
from lvm_data.localfs import glob_tree, list_folder, list_tree, name_text, os_path, walk
from lvm_data.outcomes import Reason


def write(path: bytes | str, data: bytes = b"x") -> None:
    """Write a file at a str or bytes path (bytes: names that are not UTF-8)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    "name, text",
    [
        (b"plain.png", "plain.png"),
        ("caf\u00e9.png".encode(), "caf\u00e9.png"),
        (b"bad\xff.png", "bad%FF.png"),
        (b"100%\xfe.png", "100%25%FE.png"),  # '%' of an escaped name is escaped too, so it decodes exactly
        (b"\xed\xa0\x80.jpg", "%ED%A0%80.jpg"),  # an encoded surrogate is not valid UTF-8
    ],
)
def test_names_that_are_not_utf8_are_percent_escaped_and_decode_back(name, text):
    assert name_text(name) == text
    assert unquote_to_bytes(text) == name or text == name.decode()


def test_an_escaped_name_that_a_sibling_has_literally_is_escaped_further():
    assert name_text(b"bad\xff.png", {"bad%FF.png"}) == "%62%61%64%ff.png"
    assert unquote_to_bytes("%62%61%64%ff.png") == b"bad\xff.png"
    # no escape of b"\x80.png" but %80.png exists: a NUL before the extension, which no name can hold
    assert name_text(b"\x80.png", {"%80.png"}) == "%80%00.png"


def test_os_path_opens_an_escaped_name_folder_by_folder(tmp_path):
    os.mkdir(os.fsencode(tmp_path) + b"/dir\xfe")
    (tmp_path / "100%25").mkdir()  # a literal '%' in a parent keeps its meaning
    write(os.fsencode(tmp_path) + b"/dir\xfe/bad\xff.png", b"bad")
    write(os.fsencode(tmp_path) + b"/100%25/x\xff", b"pct")
    write(str(tmp_path / "plain%41.png"), b"literal")
    assert os_path(f"{tmp_path}/dir%FE/bad%FF.png") == os.fsencode(tmp_path) + b"/dir\xfe/bad\xff.png"
    assert open(os_path(f"{tmp_path}/100%25/x%FF"), "rb").read() == b"pct"
    assert os_path(f"{tmp_path}/plain%41.png") == f"{tmp_path}/plain%41.png"  # exists as written
    assert os_path(f"{tmp_path}/missing.png") == f"{tmp_path}/missing.png"


def test_a_folder_with_a_non_utf8_name_lists_and_every_key_opens(tmp_path):
    root = os.fsencode(tmp_path)
    write(root + b"/bad\xff.png", b"one")
    write(root + b"/bad%FF.png", b"two")  # the literal name the escape would take
    os.mkdir(root + b"/sub\xfe")
    write(root + b"/sub\xfe/x.png", b"three")
    tree = list_tree(str(tmp_path))
    assert [u[len(str(tmp_path)) + 1 :] for u in tree.files] == ["%62%61%64%ff.png", "bad%FF.png", "sub%FE/x.png"]
    assert [open(os_path(u), "rb").read() for u in tree.files] == [b"one", b"two", b"three"]
    assert all(u.encode("utf-8") for u in tree.files) and tree.refused == []


@pytest.fixture
def linked(tmp_path):
    """in/ holds a.png, sub/b.png and links: to '.', '..' (from in/ and from in/sub), to a.png, a loop, a
    dangling link and a link to a file outside; outside/ holds o.png."""
    root, outside = tmp_path / "in", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    write(str(root / "a.png"), b"a")
    write(str(root / "sub" / "b.png"), b"b")
    write(str(outside / "o.png"), b"o")
    os.symlink(".", root / "self")
    os.symlink("..", root / "sub" / "up")
    os.symlink("..", root / "up")
    os.symlink("a.png", root / "alias.png")
    os.symlink("../outside/o.png", root / "out.png")
    os.symlink("../outside", root / "outdir")
    os.symlink("nowhere.png", root / "dangling.png")
    os.symlink("loop2.png", root / "loop1.png")
    os.symlink("loop1.png", root / "loop2.png")
    return root


def test_links_inside_the_root_add_nothing_and_links_outside_are_refused(linked):
    files, refused = walk(str(linked))
    assert files == ["a.png", "sub/b.png"]  # once each, under its own path: no loop through self, up, sub/up
    assert [(rel, reason, folder) for rel, reason, _, folder in refused] == [
        ("dangling.png", Reason.BROKEN_LINK, False),
        ("loop1.png", Reason.BROKEN_LINK, False),
        ("loop2.png", Reason.BROKEN_LINK, False),
        ("out.png", Reason.LINK_OUTSIDE_ROOT, False),
        ("outdir", Reason.LINK_OUTSIDE_ROOT, True),
        ("up", Reason.LINK_OUTSIDE_ROOT, True),
    ]
    details = {rel: detail for rel, _, detail, _ in refused}
    assert "a loop of links" in details["loop1.png"] and "does not exist" in details["dangling.png"]
    assert "follow_links: outside" in details["out.png"]


def test_links_outside_are_followed_once_per_target_when_allowed(linked):
    files, refused = walk(str(linked), "outside")
    # outdir/o.png and up/outside/o.png are the same file as out.png: listed once, under the first link path
    assert files == ["a.png", "out.png", "sub/b.png"]
    assert [rel for rel, *_ in refused] == ["dangling.png", "loop1.png", "loop2.png"]


def test_list_tree_writes_uris_under_the_root_and_names_the_file_in_each_detail(linked):
    tree = list_tree(str(linked))
    assert tree.files == [f"{linked}/a.png", f"{linked}/sub/b.png"]
    assert all(r.uri.startswith(f"{linked}/") and r.detail.startswith(r.uri + ": ") for r in tree.refused)


def test_special_files_and_unlistable_folders_are_refused(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "locked").mkdir()
    write(str(tmp_path / "locked" / "x.png"))
    os.chmod(tmp_path / "locked", 0)
    try:
        files, refused = walk(str(tmp_path))
    finally:
        os.chmod(tmp_path / "locked", 0o755)
    assert ("pipe.png", Reason.READ_ERROR, "a FIFO, not a regular file", False) in refused
    if os.geteuid() != 0:  # root lists any folder
        assert files == [] and [(r[0], r[1], r[3]) for r in refused] == [
            ("locked", Reason.READ_ERROR, True),
            ("pipe.png", Reason.READ_ERROR, False),
        ]


def test_walk_of_a_missing_root_is_empty_and_of_a_file_an_error(tmp_path):
    assert walk(str(tmp_path / "missing")) == ([], [])
    write(str(tmp_path / "f"))
    with pytest.raises(NotADirectoryError):
        walk(str(tmp_path / "f"))
    with pytest.raises(ValueError, match="follow_links"):
        walk(str(tmp_path), "always")


def test_one_folder_listing_keeps_links_to_files_wherever_they_point(linked):
    assert [u.rsplit("/", 1)[-1] for u in list_folder(str(linked))] == ["a.png", "alias.png", "out.png"]


def test_glob_matches_like_python_glob_without_looping(linked):
    write(str(linked / ".hidden.png"))
    write(str(linked / "sub" / "c.jpg"))
    tree = glob_tree(f"{linked}/**/*.png")
    assert tree.files == [f"{linked}/a.png", f"{linked}/sub/b.png"]
    assert [r.uri.rsplit("/", 1)[-1] for r in tree.refused] == [
        "dangling.png",
        "loop1.png",
        "loop2.png",
        "out.png",
        "outdir",
        "up",
    ]
    assert glob_tree(f"{linked}/*.png").files == [f"{linked}/a.png"]
    assert glob_tree(f"{linked}/.*.png").files == [f"{linked}/.hidden.png"]
    assert glob_tree(f"{linked}/*/*.jpg").files == [f"{linked}/sub/c.jpg"]
    assert glob_tree(f"{linked}/sub/b.png").files == [f"{linked}/sub/b.png"]  # no wildcard: the file itself


def test_a_relative_glob_gives_relative_paths(linked, monkeypatch):
    monkeypatch.chdir(linked)
    assert glob_tree("sub/*.png").files == ["sub/b.png"]
    assert glob_tree("*.png").files == ["a.png"]


def test_links_values_are_the_job_options():
    assert localfs.LINKS == ("inside", "outside")


def test_safe_text_escapes_surrogates_wherever_they_come_from():
    assert localfs.safe_text("plain caf\u00e9") == "plain caf\u00e9"
    assert localfs.safe_text("no member 'bad\udcff.png'") == "no member 'bad%FF.png'"
    assert localfs.safe_text("lone \ud800") == "lone %ED%A0%80"
