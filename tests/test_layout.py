"""Which code may import which: the bot's runtime code never imports devtools/,
scripts/ and devtools/ never import tests/, and the runtime image leaves devtools/ out.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, List, Tuple

from devtools.project import ROOT

# Top-level folders that hold no code of the bot: the development tools and
# what is built, installed or generated locally.
NOT_RUNTIME = {
    "devtools",
    "scripts",
    "tests",
    "node_modules",
    "build",
    "models",
    "results",
}


def imported_packages(path: Path) -> Iterator[Tuple[str, int]]:
    """The top-level package of every absolute import in a module, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name.split(".")[0], node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield node.module.split(".")[0], node.lineno


def runtime_modules() -> List[Path]:
    """Every Python file of the bot's own code (any top-level folder but the tools)."""
    folders = [
        path
        for path in ROOT.iterdir()
        if path.is_dir()
        and not path.name.startswith(".")
        and path.name not in NOT_RUNTIME
    ]
    return sorted(ROOT.glob("*.py")) + sorted(
        module for folder in folders for module in folder.rglob("*.py")
    )


def importers(modules: List[Path], package: str) -> List[str]:
    return [
        f"{module.relative_to(ROOT)}:{line}"
        for module in modules
        for name, line in imported_packages(module)
        if name == package
    ]


def test_the_scan_sees_the_runtime_packages() -> None:
    scanned = {module.relative_to(ROOT).parts[0] for module in runtime_modules()}
    assert {"actions", "nlu"} <= scanned


def test_runtime_code_never_imports_devtools() -> None:
    assert importers(runtime_modules(), "devtools") == []


def test_scripts_and_devtools_never_import_tests() -> None:
    modules = sorted((ROOT / "scripts").rglob("*.py")) + sorted(
        (ROOT / "devtools").rglob("*.py")
    )
    assert len(modules) > 5
    assert importers(modules, "tests") == []


def test_the_runtime_image_leaves_devtools_out() -> None:
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split("\n")
    assert "devtools" in ignored
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    copies = [line for line in dockerfile.splitlines() if line.startswith("COPY")]
    assert copies and not [line for line in copies if "devtools" in line]
