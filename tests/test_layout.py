"""The project's rooms and the arrows between them, read from the source, not from a list.

``app.py -> ui -> vqa_core <- train``: the core serves models and never the page, training
builds on the core, and no module imports one that (directly or not) imports it back.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Top-level packages and modules that belong to the project (tests and benchmarks use them).
PACKAGES = ("vqa_core", "ui", "train", "serving")
SCRIPTS = ("app.py",)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _project_files() -> dict[str, Path]:
    files = {_module_name(ROOT / name): ROOT / name for name in SCRIPTS}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")) if (ROOT / package).is_dir() else []:
            files[_module_name(path)] = path
    return files


def _resolve(module: str, node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph() -> dict[str, set[str]]:
    """module -> project modules it imports anywhere in its body (lazy imports included)."""
    files = _project_files()
    names = set(files)
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                candidates = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(module, node, module, path.name == "__init__.py")
                candidates = [source] + [f"{source}.{alias.name}" for alias in node.names]
            else:
                continue
            for candidate in candidates:
                # The longest project module that the dotted name starts with.
                parts = candidate.split(".")
                for cut in range(len(parts), 0, -1):
                    name = ".".join(parts[:cut])
                    if name in names:
                        if name != module:
                            targets.add(name)
                        break
        graph[module] = targets
    return graph


def _room(module: str) -> str:
    return module.split(".")[0]


def test_the_graph_sees_real_imports():
    graph = import_graph()
    assert "vqa_core.blip2" in graph["vqa_core"]  # relative import in a package __init__
    assert "ui.page" in graph["ui"]
    assert "ui" in graph["app"] or "ui.page" in graph["app"]
    assert "train.splits" in graph["train.evaluate"]  # a lazy import inside a function


def test_no_import_cycle_anywhere():
    graph = import_graph()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                cycle = [*path[path.index(target) :], target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


# Which rooms each room may import from: the arrows of docs/architecture.md.
ALLOWED = {
    "app": {"ui", "vqa_core", "serving"},
    "ui": {"vqa_core"},
    "vqa_core": set(),
    "train": {"vqa_core"},
    "serving": {"vqa_core"},
}


def test_rooms_import_only_along_the_arrows():
    wrong = []
    for module, targets in import_graph().items():
        room = _room(module)
        for target in targets:
            other = _room(target)
            if other != room and other not in ALLOWED[room]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong


def test_core_imports_no_gradio():
    for path in (ROOT / "vqa_core").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n.split(".")[0] == "gradio" for n in names), path


def _string_literals(source: str) -> list[str]:
    """Every string constant in the code except docstrings (which may name the page)."""
    tree = ast.parse(source)
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
    ]


def test_core_holds_no_css_javascript_or_page_wording():
    css = re.compile(r"[#.][\w-]+\s*\{[^}]*:[^}]*;")
    javascript = re.compile(r"=>\s*\{|document\.|window\.|addEventListener")
    page_words = [
        json_key
        for lang in ("en", "ar")
        for json_key in __import__("json")
        .loads((ROOT / "ui" / "text" / f"{lang}.json").read_text(encoding="utf-8"))["page"]
        .values()
    ]
    for path in (ROOT / "vqa_core").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        assert not css.search(source), f"CSS in {path}"
        assert not javascript.search(source), f"JavaScript in {path}"
        for literal in _string_literals(source):
            for words in page_words:
                first_line = words.strip("# ").splitlines()[0]
                assert first_line not in literal, f"page wording {first_line!r} in {path}"
    assert not list((ROOT / "vqa_core").rglob("*.css")) and not list(
        (ROOT / "vqa_core").rglob("*.js")
    )


def test_page_styles_and_script_are_files_gradio_is_given():
    from ui.page import launch_kwargs

    kwargs = launch_kwargs(kiosk=True, accessible=True, idle_reset_seconds=42)
    page_css = (ROOT / "ui" / "static" / "page.css").read_text(encoding="utf-8")
    kiosk_css = (ROOT / "ui" / "static" / "kiosk.css").read_text(encoding="utf-8")
    assert page_css in kwargs["css"] and kiosk_css in kwargs["css"]
    assert kiosk_css not in launch_kwargs()["css"]
    script = (ROOT / "ui" / "static" / "page.js").read_text(encoding="utf-8")
    assert script.strip() in kwargs["js"]
    assert '"idleResetSeconds": 42' in kwargs["js"] and '"kiosk": true' in kwargs["js"]


def test_every_language_file_has_every_key():
    import json

    files = {
        lang: json.loads((ROOT / "ui" / "text" / f"{lang}.json").read_text(encoding="utf-8"))
        for lang in ("en", "ar")
    }
    from ui.messages import CORE_WORDS

    for section in ("page", "messages"):
        # vqa_core's own English sentences, worded again in every other language only.
        others = {key for key in files["ar"][section] if not key.startswith(CORE_WORDS)}
        assert others == set(files["en"][section]), section
    assert not any(key.startswith(CORE_WORDS) for key in files["en"]["messages"])
