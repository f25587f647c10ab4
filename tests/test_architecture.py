"""The one-way import rule of docs/architecture.md, checked on the source (every import, also inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "openchat_hf"

# The parts, and the other parts each may import (docs/architecture.md, "One-way imports"). Everything else in the
# package (model_types, templates, folder_info, errors, resources, ...) is the core, which imports no part.
PART_DEPENDENCIES: dict[str, set[str]] = {
    "data": set(),
    "modeling": set(),
    "training": {"modeling"},
    "serving": {"modeling"},  # modeling.context.context_length: one source for the served context
    "evaluation": set(),
    "visualization": {"data", "evaluation"},  # reads their output formats
}
ENTRY_MODULES = {"cli", "demo"}  # openchat_hf/cli.py and demo.py run the parts; nothing imports them


def _layer(module: str) -> str:
    """``openchat_hf.data.clean`` -> ``data``; ``openchat_hf.templates`` -> ``templates``; ``openchat_hf`` -> ``core``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "core"


def _imports(path: Path, module: str) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the importing module's package
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found += [(node.lineno, target)]
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]  # `from pkg import sub`
    return [(line, name) for line, name in found if name == "openchat_hf" or name.startswith("openchat_hf.")]


def violations(package: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package.parent).with_suffix("")
        module = ".".join(rel.parts).removesuffix(".__init__")
        source = _layer(module)
        if source in ENTRY_MODULES or path.name == "__main__.py":
            continue
        seen = set()
        for line, target in _imports(path, module):
            layer = _layer(target)
            if layer == source or target in ("openchat_hf", "openchat_hf.__version__") or (line, layer) in seen:
                continue
            seen.add((line, layer))
            where = f"{path.relative_to(package.parent)}:{line} imports {target}"
            if layer in ENTRY_MODULES:
                out.append(f"{where}: nothing imports the command modules")
            elif layer in PART_DEPENDENCIES and source not in PART_DEPENDENCIES:
                out.append(f"{where}: the core imports no part")
            elif layer in PART_DEPENDENCIES and layer not in PART_DEPENDENCIES[source]:
                out.append(f"{where}: {source} may import only {sorted(PART_DEPENDENCIES[source]) or 'the core'}")
    return out


def test_imports_run_one_way():
    assert violations() == []


def test_the_rule_catches_a_backwards_import(tmp_path):
    """The scan sees imports inside functions, relative imports and `from openchat_hf import part`."""
    package = tmp_path / "openchat_hf"
    for name, text in {
        "templates.py": "def f():\n    from openchat_hf.serving import app\n",
        "data/__init__.py": "",
        "data/clean.py": "from ..modeling import export\n",
        "modeling/__init__.py": "from openchat_hf import training\n",
        "training/__init__.py": "from openchat_hf.modeling import patch\nfrom openchat_hf.cli import main\n",
        "serving/__main__.py": "from openchat_hf.cli import main\n",
    }.items():
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_text(text)
    found = violations(package)
    assert len(found) == 4, found
    for expected in (
        "templates.py:2 imports openchat_hf.serving: the core imports no part",
        "clean.py:1 imports openchat_hf.modeling: data may import only the core",
        "modeling/__init__.py:1 imports openchat_hf.training: modeling may import only the core",
        "training/__init__.py:2 imports openchat_hf.cli: nothing imports the command modules",
    ):
        assert any(expected in v for v in found), (expected, found)


@pytest.mark.parametrize("doc", ["docs/architecture.md"])
def test_the_documented_rule_is_the_tested_rule(doc):
    text = (PACKAGE.parent / doc).read_text(encoding="utf-8")
    for part, deps in PART_DEPENDENCIES.items():
        assert f"`{part}`" in text
        for dep in deps:
            assert f"`{part}` -> `{dep}`" in text, f"{doc} must list the allowed import {part} -> {dep}"


# ------------------------------------------------------------------------------------------ license and metadata
def test_license_file_and_spdx_license_expression():
    import tomllib

    root = PACKAGE.parent
    project = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == "Apache-2.0"  # PEP 639: an SPDX expression, not the deprecated table
    assert project["license-files"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in project.get("classifiers", []))  # forbidden beside SPDX
    text = (root / "LICENSE").read_text(encoding="utf-8")
    assert text.split()[:4] == ["Apache", "License", "Version", "2.0,"]
    assert "END OF TERMS AND CONDITIONS" in text and "APPENDIX: How to apply the Apache License" in text


def test_model_card_has_no_placeholder_link():
    import re
    from types import SimpleNamespace

    from openchat_hf.training.model_card import build_model_card

    card = build_model_card(
        model_name="m", base_model="/b", dataset="/d", model_type="openchat", chat_template="{{ x }}",
        args=SimpleNamespace(learning_rate=1e-3),
    )  # fmt: skip
    assert "openchat-hf" in card
    for url in re.findall(r"https?://[^\s)\]]+", card):
        assert re.match(r"https?://[^/]+/[^/\s]+", url), f"placeholder link {url!r} in the model card"
