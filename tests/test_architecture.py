"""The import graph against the floors ARCHITECTURE.md states: the page's table is read, every module's imports
are found with `ast`, and each import that the table does not allow fails the test with its file and line."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OURS = ("lvm_data", "pipelines", "benchmarks")
THIRD_PARTY_HOMES = {"apache_beam": {"pipelines", "benchmarks"}, "click": {"cli"}, "rich": {"cli"}}
LAZY_COMMANDS = "lvm_data.cli.commands"  # imports each command's work inside it, own glue included (ARCHITECTURE.md)


@dataclass(frozen=True)
class Floors:
    members: dict[str, str]  # a module or package name (lvm_data.media, lvm_data.storage) -> its floor
    allowed: dict[str, set[str]]  # floor -> the floors it may import besides itself

    def floor_of(self, module: str) -> str | None:
        parts = module.split(".")
        for end in range(len(parts), 0, -1):
            name = ".".join(parts[:end])
            if name in self.members and (name != "lvm_data" or module == name):  # the package's own __init__ only
                return self.members[name]
        return None


def read_floors(page: str) -> Floors:
    """The table under '## Floors': `| n | package(s) | may import |`; a ground row names its members."""
    section = page.split("## Floors", 1)[1].split("\n## ", 1)[0]
    members, allowed = {}, {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].isdigit():
            continue
        names = re.findall(r"`([\w.]+)`", cells[1])
        floor = cells[1].split(":")[0] if ":" in cells[1] else names[0].split(".")[-1]
        for name in names:
            members[name] = floor
        allowed[floor] = {word.strip() for word in cells[2].split(",")} - {"-", ""}
    return Floors(members, allowed)


@dataclass(frozen=True)
class Import:
    path: Path
    line: int
    target: str
    late: bool  # inside a function


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path) -> list[Import]:
    tree = ast.parse(path.read_text(), str(path))
    package = module_name(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = []

    def visit(node: ast.AST, late: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = late or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.Import):
                found.extend(Import(path, child.lineno, alias.name, late) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = ".".join(package[: len(package) - child.level + 1]) if child.level else ""
                module = ".".join(part for part in (base, child.module or "") if part)
                # `from lvm_data import storage` imports the module lvm_data.storage
                found.extend(Import(path, child.lineno, f"{module}.{alias.name}", late) for alias in child.names)
            visit(child, inner)

    visit(tree, False)
    return found


def violations(root: Path, floors: Floors, packages: tuple[str, ...] = OURS) -> list[str]:
    found = []
    for path in sorted(p for package in packages for p in (root / package).rglob("*.py")):
        where = path.relative_to(root)
        own = floors.floor_of(module_name(path, root))
        if own is None:
            found.append(f"{where}: its module belongs to no floor of ARCHITECTURE.md; add it to the table")
            continue
        own_package = module_name(path, root).split(".")[:2]
        for item in imports_of(path, root):
            top = item.target.split(".")[0]
            if top in THIRD_PARTY_HOMES and own not in THIRD_PARTY_HOMES[top]:
                found.append(f"{where}:{item.line} imports {top}, which only {sorted(THIRD_PARTY_HOMES[top])} may")
            if top not in OURS:
                continue
            target = floors.floor_of(item.target)
            if target is None:
                found.append(f"{where}:{item.line} imports {item.target}, which belongs to no floor")
            elif target != own and target not in floors.allowed[own]:
                found.append(
                    f"{where}:{item.line} imports {item.target} (floor {target}), which floor {own} may "
                    f"not: ARCHITECTURE.md allows {sorted(floors.allowed[own]) or 'nothing'}"
                )
            elif item.late and item.target.split(".")[:2] == own_package and module_name(path, root) != LAZY_COMMANDS:
                found.append(
                    f"{where}:{item.line} imports {item.target} inside a function of its own package: "
                    "move the shared type down instead of hiding the cycle"
                )
    return found


def test_imports_follow_the_floors():
    floors = read_floors((REPO / "ARCHITECTURE.md").read_text())
    assert {"ground", "media", "tokenizer", "shards", "job", "pipelines", "cli"} <= set(floors.allowed)
    assert violations(REPO, floors) == []


@pytest.fixture
def tiny_tree(tmp_path: Path) -> Path:
    for name, text in {
        "lvm_data/__init__.py": "",
        "lvm_data/items.py": "",
        "lvm_data/media/__init__.py": "",
        "lvm_data/media/decode.py": "from lvm_data import items\n",
        "lvm_data/media/frames.py": "def f():\n    from lvm_data.media import decode\n",
        "lvm_data/sources/__init__.py": "",
        "lvm_data/sources/files.py": "from lvm_data.job import plan\nimport click\n",
        "lvm_data/job/__init__.py": "",
        "lvm_data/job/plan.py": "from ..sources import files\n\ndef g():\n    from lvm_data.media.decode import x\n",
        "lvm_data/other.py": "",
    }.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


TINY_PAGE = """## Floors
| floor | package | may import |
|---|---|---|
| 0 | ground: `lvm_data`, `lvm_data.items` | - |
| 1 | `lvm_data.media` | ground |
| 2 | `lvm_data.sources` | ground, media |
| 3 | `lvm_data.job` | ground, media, sources |
## Next
"""


def test_the_check_finds_each_kind_of_violation(tiny_tree: Path):
    found = violations(tiny_tree, read_floors(TINY_PAGE), packages=("lvm_data",))
    assert found == [
        "lvm_data/media/frames.py:2 imports lvm_data.media.decode inside a function of its own package: move the "
        "shared type down instead of hiding the cycle",
        "lvm_data/other.py: its module belongs to no floor of ARCHITECTURE.md; add it to the table",
        "lvm_data/sources/files.py:1 imports lvm_data.job.plan (floor job), which floor sources may not: "
        "ARCHITECTURE.md allows ['ground', 'media']",
        "lvm_data/sources/files.py:2 imports click, which only ['cli'] may",
    ]  # job/plan.py's relative import of sources and its late import of media point down: allowed
