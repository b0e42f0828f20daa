"""The layout holds: imports run one way (notebooks -> widgets -> stage packages -> core
modules), with no cycle, not even one hidden inside a function, and the widgets use only
what the library's packages offer as public.

Read from the source with ``ast``: nothing is imported, so the test is fast and sees
every import, including those inside functions."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
from helpers import ROOT

LIBRARY = ROOT / "cvatkit"
STAGES = ("cvat", "dataset", "training", "inference", "annotate", "store", "cluster")
"""The stage packages: each a folder whose ``__init__`` is its public API."""
CORE = ("errors", "files", "logs", "ports", "processes", "progress", "records", "geometry",
        "images", "label_files", "limits", "addresses", "frame_choices", "lazy", "runs",
        "run_progress", "coco_metrics", "work_folder")
"""The modules every stage may use; they use none of the stages."""
ENTRY = ("pipeline", "cli", "cvat_function", "__main__")
"""What the user calls: the batch calls, the command line, cvat-cli's module."""
UI = ("ipywidgets", "IPython", "ipympl", "traitlets")
BELOW_THE_WIDGETS = ("boto3", "botocore", "cvat_sdk", "tensorflow", "tf_keras", "official")


def _modules() -> dict[str, Path]:
    """Every module of the kit by its dotted name."""
    out = {}
    for path in sorted(LIBRARY.rglob("*.py")):
        parts = list(path.relative_to(LIBRARY).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(["cvatkit", *parts])] = path
    return out


MODULES = _modules()


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _imports(name: str) -> list[tuple[str, tuple[str, ...], int]]:
    """(module imported, names taken from it, line) for every import statement of
    ``name``, relative ones resolved, at any depth (functions included)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    base = name.split(".") if _is_package(name) else name.split(".")[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, (), node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                target = ".".join(base[:len(base) - node.level + 1] + (
                    node.module.split(".") if node.module else []))
            else:
                target = node.module or ""
            names = tuple(a.name for a in node.names)
            # ``from . import data``: the submodule is what is imported (unless the
            # package's own face offers a name of that spelling)
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES
                    and n not in _public(target)]
            out += [(s, (), node.lineno) for s in subs] or [(target, names, node.lineno)]
    return out


def _lazy_exports(package: str) -> dict[str, str]:
    """A package's ``_EXPORTS`` (names imported on first use, as the top-level package
    and ``cvatkit.inference`` offer them): name -> the module it comes from."""
    tree = ast.parse(MODULES[package].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "_EXPORTS":
            return {k: f"{package}.{v}" for k, v in ast.literal_eval(node.value).items()}
    return {}


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name in MODULES:
        edges = {target for target, _names, _line in _imports(name) if target in MODULES}
        edges |= set(_lazy_exports(name).values()) if _is_package(name) else set()
        graph[name] = edges - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _part(module: str) -> str:
    """The part of the kit a module belongs to: a stage, core, an entry point, widgets."""
    parts = module.split(".")
    if len(parts) == 1:
        return "cvatkit"
    if parts[1] in STAGES or parts[1] == "widgets":
        return parts[1]
    if parts[1] in CORE:
        return "core"
    if parts[1] in ENTRY:
        return "entry"
    raise AssertionError(f"{module} belongs to no part of the layout: add it to a stage "
                         "package, or list it as core or an entry point in this test")


def test_every_module_has_its_place():
    for name in MODULES:
        _part(name)


def test_no_import_cycle_between_modules():
    assert _cycles(_graph()) == []


def test_no_import_cycle_between_stages():
    parts: dict[str, set[str]] = {}
    for name, edges in _graph().items():
        parts.setdefault(_part(name), set()).update(_part(e) for e in edges)
    for part in parts:
        parts[part].discard(part)
    parts.pop("cvatkit")  # the top-level package only re-exports, lazily
    for edges in parts.values():
        edges.discard("cvatkit")
    assert _cycles(parts) == []


def test_imports_run_one_way():
    allowed = {
        "core": {"core"},
        "cvat": {"core"},
        "dataset": {"core", "cvat"},
        "store": {"core"},
        "inference": {"core", "cvat", "store"},
        "training": {"core", "cvat", "dataset", "store"},
        "annotate": {"core", "cvat", "inference"},
        "cluster": {"core", "cvat", "store", "training"},  # checks what the pods will
        "entry": {"core", *STAGES, "entry"},
        "widgets": {"cvatkit", *STAGES, "widgets"},
    }
    wrong = []
    for name, edges in _graph().items():
        part = _part(name)
        if part == "cvatkit":
            continue
        for target in edges:
            if _part(target) not in allowed[part] | {part}:
                wrong.append(f"{name} ({part}) imports {target} ({_part(target)})")
    assert wrong == []


def _public(package: str) -> set[str]:
    if _lazy_exports(package):
        return set(_lazy_exports(package))
    tree = ast.parse(MODULES[package].read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "__all__":
            return set(ast.literal_eval(node.value))
    return set()


def test_widgets_import_only_public_names_of_the_library():
    wrong = []
    for name in MODULES:
        if _part(name) != "widgets":
            continue
        for target, names, line in _imports(name):
            where = f"{MODULES[name].relative_to(ROOT)} line {line}"
            top = target.split(".")[0]
            if top in BELOW_THE_WIDGETS:
                wrong.append(f"{where}: imports {target}; go through the library")
            if top != "cvatkit" or target.startswith("cvatkit.widgets"):
                continue
            if target != "cvatkit" and target.removeprefix("cvatkit.") not in STAGES:
                wrong.append(f"{where}: imports {target}, not a stage package")
                continue
            hidden = sorted(set(names) - _public(target))
            if hidden or not names:
                wrong.append(f"{where}: takes {hidden or target} from {target}, which does "
                             "not offer it in __all__")
    assert wrong == []


def test_the_library_imports_no_ui_package_and_stage_faces_only_re_export():
    for name, path in MODULES.items():
        if _part(name) == "widgets":
            continue
        ui = [t for t, _n, _l in _imports(name) if t.split(".")[0] in UI]
        assert ui == [], f"{name} imports {ui}: the library must work without widgets"
    for stage in STAGES:
        tree = ast.parse(MODULES[f"cvatkit.{stage}"].read_text(encoding="utf-8"))
        defined = [n.name for n in tree.body
                   if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        lazy = _lazy_exports(f"cvatkit.{stage}")
        if lazy:  # names imported on first use: each is in the module named for it
            assert defined == [], f"cvatkit.{stage}'s __init__ defines {defined}"
            for name, module in lazy.items():
                inner = ast.parse(MODULES[module].read_text(encoding="utf-8"))
                found = {n.name for n in inner.body
                         if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
                found |= {t.id for n in inner.body if isinstance(n, ast.Assign)
                          for t in n.targets if isinstance(t, ast.Name)}
                found |= {a.asname or a.name for n in inner.body
                          if isinstance(n, ast.ImportFrom) for a in n.names}
                assert name in found, f"cvatkit.{stage} offers {name}; {module} has none"
            continue
        assert defined == [], f"cvatkit.{stage}'s __init__ defines {defined}"
        exported = _public(f"cvatkit.{stage}")
        missing = exported - {a.asname or a.name for n in tree.body
                              if isinstance(n, ast.ImportFrom) for a in n.names}
        assert not missing, f"cvatkit.{stage}.__all__ names {missing}, never imported"


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_notebooks_use_the_pipeline_and_the_widgets(notebook):
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    imported = set()
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        code = "".join(line for line in cell["source"] if not line.startswith(("%", "!")))
        tree = ast.parse(code)
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import)
                     for a in n.names}
        imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported and imported <= {"cvatkit.pipeline", "cvatkit.widgets", "cvatkit"}


def test_this_test_sees_what_it_checks():
    """The graph is real: known edges are there, and a planted cycle is found."""
    graph = _graph()
    assert "cvatkit.dataset" in graph["cvatkit.training.hparams"]
    assert "cvatkit.cvat.tasks" in graph["cvatkit.cvat"]
    assert "cvatkit.cli.data" in graph["cvatkit.cli.main"]  # ``from . import data``
    assert "cvatkit.training" in graph["cvatkit.widgets.model"]
    assert "cvatkit.records" in graph["cvatkit"]  # through the lazy exports
    planted = {**graph, "cvatkit.records": graph["cvatkit.records"] | {"cvatkit.cvat"}}
    assert any("cvatkit.records" in group for group in _cycles(planted))


def test_importing_the_kit_loads_none_of_the_heavy_libraries():
    """``import cvatkit`` and ``cvatkit --help`` start at once: the parts load on use."""
    import subprocess
    import sys

    heavy = {"tensorflow", "tf_keras", "official", "matplotlib", "cvat_sdk", "boto3", "numpy"}
    report = "import sys; print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    runs = {"import cvatkit": "import cvatkit",
            "cvatkit --help": ("import contextlib, io, runpy, sys\n"
                               "sys.argv = ['cvatkit', '--help']\n"
                               "with contextlib.redirect_stdout(io.StringIO()):\n"
                               "    try:\n"
                               "        runpy.run_module('cvatkit', run_name='__main__')\n"
                               "    except SystemExit:\n"
                               "        pass")}
    for what, code in runs.items():
        out = subprocess.run([sys.executable, "-c", f"{code}\n{report}"],
                             capture_output=True, text=True, check=True).stdout
        loaded = set(out.split())
        assert "cvatkit" in loaded and not loaded & heavy, (what, sorted(loaded & heavy))
