"""One skill per module, and no skill module imports another (read from the source).

A skill module is one that defines actions (a class based on rasa_sdk's Action
or FormValidationAction). What skills share lives in actions/common/, which
defines no action, so the rule keeps itself: a module that starts defining
actions becomes a skill, and the skills importing it fail here.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Set

from devtools.project import ROOT

PACKAGE = ROOT / "actions"
ACTION_BASES = {"Action", "FormValidationAction"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def trees() -> Dict[str, ast.Module]:
    return {
        module_name(path): ast.parse(path.read_text(encoding="utf-8"))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def defines_actions(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for base in node.bases:
                name = base.attr if isinstance(base, ast.Attribute) else base
                if getattr(name, "id", name) in ACTION_BASES:
                    return True
    return False


def imported_modules(tree: ast.Module, known: Set[str]) -> Set[str]:
    """Project modules a module imports (``from actions import x`` counts as x)."""
    found: Set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found & known


def skills() -> Dict[str, ast.Module]:
    return {name: tree for name, tree in trees().items() if defines_actions(tree)}


def test_the_skill_modules_are_found() -> None:
    expected = {
        "actions.clarify",
        "actions.diagnosis_form",
        "actions.handoff",
    }
    assert expected <= set(skills())
    # the parts of the diagnosis form's turn define no action of their own
    assert not {"actions.diagnose", "actions.fixes", "actions.resume"} & set(skills())
    assert not [name for name in skills() if name.startswith("actions.common")]


def test_no_skill_module_imports_another() -> None:
    found = skills()
    crossings = {
        name: sorted(imported_modules(tree, set(found)) - {name})
        for name, tree in found.items()
    }
    assert {name: mods for name, mods in crossings.items() if mods} == {}


def test_the_check_sees_an_import_between_skills() -> None:
    tree = ast.parse(
        "from actions.fixes import record_outcome\n"
        "from actions import handoff\n"
        "import actions.clarify\n"
    )
    known = {"actions.fixes", "actions.handoff", "actions.clarify"}
    assert imported_modules(tree, known) == known
