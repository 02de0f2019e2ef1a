"""The dependency rule of docs/architecture.md, checked on the source."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORT = re.compile(r"^\s*(?:from|import)\s+((?:router|backends|policies)(?:\.\w+)*)", re.MULTILINE)


def imports(folder: str) -> dict[str, set[str]]:
    """Each module under `folder` -> the project modules it imports (at any depth)."""
    return {
        str(path.relative_to(ROOT)): set(IMPORT.findall(path.read_text()))
        for path in (ROOT / folder).rglob("*.py")
    }


def test_the_kernel_imports_nothing_else_of_the_project():
    """router/core imports only router.core: no face, runtime, plugin or tool."""
    bad = {
        module: sorted(m for m in found if not m.startswith("router.core"))
        for module, found in imports("router/core").items()
    }
    assert {m: b for m, b in bad.items() if b} == {}


def test_plugins_import_only_the_kernel():
    """backends/ and policies/ import router.core (and their own family), nothing else of router."""
    bad = {}
    for folder in ("backends", "policies"):
        for module, found in imports(folder).items():
            others = sorted(
                m for m in found if m.startswith("router") and not m.startswith("router.core")
            )
            if others:
                bad[module] = others
    assert bad == {}
