"""Finds where a dotted YAML path sits in a file, so config errors can give line and column."""

from __future__ import annotations

from collections.abc import Sequence

import yaml


def compose(text: str) -> yaml.Node | None:
    """Parses YAML text into a node tree that keeps positions (None for an empty document)."""
    return yaml.compose(text, Loader=yaml.SafeLoader)


def locate(root: yaml.Node | None, path: Sequence[str | int]) -> tuple[int, int]:
    """Returns the 1-based (line, column) of the deepest node on `path` that exists."""
    node = root
    best = (node.start_mark.line + 1, node.start_mark.column + 1) if node is not None else (0, 0)
    for key in path:
        child = _child(node, key)
        if child is None:
            break
        node = child
        best = (node.start_mark.line + 1, node.start_mark.column + 1)
    return best


def _child(node: yaml.Node | None, key: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == str(key):
                return v
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and 0 <= key < len(node.value):
        return node.value[key]
    return None
