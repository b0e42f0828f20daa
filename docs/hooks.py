"""mkdocs hooks: the pages made from the code, so that they say what it does (the model
catalog, every hyperparameter), and bench/README.md as the benchmarks' method page."""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[1]
BENCH_PAGE = "bench.md"


def on_files(files, config):
    files.append(File.generated(config, BENCH_PAGE,
                                abs_src_path=str(ROOT / "bench" / "README.md")))
    return files


def on_page_markdown(markdown: str, page, config, files) -> str:
    for marker, make in (("<!-- cvatkit:catalog -->", catalog_table),
                         ("<!-- cvatkit:hyperparameters -->", hyperparameters_table)):
        if marker in markdown:
            markdown = markdown.replace(marker, make())
    return markdown


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def catalog_table() -> str:
    """Every built-in model: what it is built from, its input, what it starts from."""
    from cvatkit.training import BUILT_IN, DEFAULT_MODEL, MODEL_ALIASES

    rows = ["| key | what it is | input | starts from (or) | advice |", "|---|---|---|---|---|"]
    for spec in BUILT_IN:
        aliases = [a for a, key in MODEL_ALIASES.items() if key == spec.key]
        key = f"`{spec.key}`" + (" (default)" if spec.key == DEFAULT_MODEL else "") + (
            "<br>also: " + ", ".join(f"`{a}`" for a in aliases) if aliases else "")
        others = ", ".join(spec.other_weights)
        rows.append("| " + " | ".join(_cell(c) for c in (
            key, f"{spec.title}; {spec.family}, {spec.backbone}", f"{spec.image_size} px",
            spec.weights_note + (f" (or {others})" if others else ""), spec.advice)) + " |")
    return "\n".join(rows) + "\n"


def hyperparameters_table() -> str:
    """Every hyperparameter with its default and what is allowed."""
    from cvatkit.training import PARAMS

    rows = ["| key | type | what it is (default; allowed) |", "|---|---|---|"]
    for p in PARAMS:
        rows.append(f"| `{p.key}` | {p.type.__name__} | {_cell(p.describe())} |")
    return "\n".join(rows) + "\n"
