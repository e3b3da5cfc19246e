"""Safe YAML loading that remembers line numbers, so every manifest error can name its line.

`yaml.safe_load` forgets where values came from. This loader is a `SafeLoader` subclass (no
arbitrary object construction) whose mappings and sequences are `LineDict` / `LineList`: plain
`dict` / `list` subclasses that also carry the line of each key or item. Two further departures
from `safe_load`, both to keep manifests JSON-compatible and unsurprising:

* timestamps stay strings (`2024-01-01` is a prompt fragment, not a `datetime.date`);
* a key repeated in one mapping is reported (PyYAML silently keeps the last value).
"""

from __future__ import annotations

from typing import Any

import yaml

__all__ = ["DuplicateKey", "LineDict", "LineList", "load_yaml"]


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
        data = loader.get_single_data()
    finally:
        loader.dispose()
    return data, loader.duplicates
