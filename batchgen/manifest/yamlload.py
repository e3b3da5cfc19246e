"""Safe YAML loading that remembers line numbers, so every manifest error can name its line.

`yaml.safe_load` forgets where values came from. This loader is a `SafeLoader` subclass (no
arbitrary object construction) whose mappings and sequences are `LineDict` / `LineList`: plain
`dict` / `list` subclasses that also carry the line of each key or item. Two further departures
from `safe_load`, both to keep manifests JSON-compatible and unsurprising:

* timestamps stay strings (`2024-01-01` is a prompt fragment, not a `datetime.date`);
* a key repeated in one mapping is reported (PyYAML silently keeps the last value).

A manifest may come from anyone, so the loader also refuses documents built to exhaust the
machine before they are built: nesting deeper than `MAX_DEPTH` (PyYAML's composer recurses, and
would die with a RecursionError traceback), aliases that refer to themselves, and aliases that
expand to more than `MAX_ALIAS_VALUES` extra values (a "billion laughs" bomb is a few lines that
expand to billions of values; the node graph is measured, never expanded).
"""

from __future__ import annotations

from typing import Any, Final

import yaml

__all__ = [
    "MAX_ALIAS_VALUES",
    "MAX_DEPTH",
    "DuplicateKey",
    "LineDict",
    "LineList",
    "YamlLimit",
    "load_yaml",
]

MAX_DEPTH: Final = 64  # a manifest needs about 5 levels; PyYAML's recursion dies near 300
MAX_ALIAS_VALUES: Final = 100_000  # values that aliases may add beyond those written out


class YamlLimit(yaml.MarkedYAMLError):
    """The document is refused (too deep, self-referring or an alias bomb), not malformed."""


class LineDict(dict[Any, Any]):
    """A mapping from YAML: `line` is where it starts, `key_lines[key]` where each key is."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = 0
        self.key_lines: dict[Any, int] = {}

    def line_of(self, key: Any) -> int:
        """The line of `key`, or of the mapping itself when the key is absent."""
        return self.key_lines.get(key, self.line)


class LineList(list[Any]):
    """A sequence from YAML: `line` is where it starts, `item_lines[i]` where item i is."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.line = 0
        self.item_lines: list[int] = []


class DuplicateKey(tuple[Any, int, int]):
    """(key, first line, repeated line) of a key given twice in one mapping."""

    __slots__ = ()


class _LineLoader(yaml.SafeLoader):
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[DuplicateKey] = []
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        """PyYAML's composer, refusing to descend past MAX_DEPTH (it recurses per level)."""
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise YamlLimit(
                    problem=f"is nested deeper than {MAX_DEPTH} levels", problem_mark=mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_LineLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_map(loader: _LineLoader, node: yaml.MappingNode) -> Any:
    data = LineDict()
    data.line = node.start_mark.line + 1
    yield data
    first_seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            key = loader.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in first_seen:
                loader.duplicates.append(DuplicateKey((key, first_seen[key], line)))
            first_seen.setdefault(key, line)
    data.update(loader.construct_mapping(node))
    for key_node, _ in node.value:  # flattened by now: merged keys first, own keys last
        key = loader.construct_object(key_node)
        data.key_lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _LineLoader, node: yaml.SequenceNode) -> Any:
    data = LineList()
    data.line = node.start_mark.line + 1
    data.item_lines = [item.start_mark.line + 1 for item in node.value]
    yield data
    data.extend(loader.construct_sequence(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def load_yaml(text: str) -> tuple[Any, list[DuplicateKey]]:
    """Parse one YAML document safely; return it and any duplicated keys.

    Raises `yaml.YAMLError` (with `problem_mark` for syntax errors) on malformed input.
    """
    loader = _LineLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, []
        _check_aliases(node)
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return data, loader.duplicates


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _check_aliases(root: yaml.Node) -> None:
    """Refuse a node graph that refers to itself or expands far beyond what is written.

    Iterative, with one size per distinct node: the cost is that of the text, not of its
    expansion (sizes such as 9**30 are just big ints; nothing is built).
    """
    distinct = 0
    expanded: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        if done:
            on_path.discard(key)
            total = 1 + sum(expanded[id(child)] for child in _children(node))
            expanded[key] = total
            continue
        if key in expanded:
            continue
        distinct += 1
        on_path.add(key)
        stack.append((node, True))
        for child in _children(node):
            if id(child) in on_path:
                raise YamlLimit(
                    problem="has an alias that refers to itself", problem_mark=child.start_mark
                )
            if id(child) not in expanded:
                stack.append((child, False))
    if expanded[id(root)] > distinct + MAX_ALIAS_VALUES:
        raise YamlLimit(
            problem=f"has aliases that expand to more than {MAX_ALIAS_VALUES:,} values "
            "(an alias bomb?)",
            problem_mark=root.start_mark,
        )
