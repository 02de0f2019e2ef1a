"""Finds where a dotted YAML path sits in a file, so config errors can give line and column."""

from __future__ import annotations

from collections.abc import Sequence

import yaml


def compose(text: str) -> yaml.Node | None:
    """Parses YAML text into a node tree that keeps positions (None for an empty document)."""
    return yaml.compose(text, Loader=yaml.SafeLoader)


def expanded_size(root: yaml.Node | None) -> int:
    """Nodes in the document with every alias expanded, computed in time linear in the nodes
    (an alias reuses a node, so a few lines of anchors can stand for billions of nodes)."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        if id(node) not in sizes:
            sizes[id(node)] = 0  # a recursive alias counts once
            if isinstance(node, yaml.MappingNode):
                total = 1 + sum(size(k) + size(v) for k, v in node.value)
            elif isinstance(node, yaml.SequenceNode):
                total = 1 + sum(size(v) for v in node.value)
            else:
                total = 1
            sizes[id(node)] = total
        return sizes[id(node)]

    return 0 if root is None else size(root)


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
