"""Parse YAML/JSON text into plain data, with errors that give the line and column."""

from __future__ import annotations

from typing import Any

import yaml

from cloudgw.errors import InvalidInput, Problem


def parse_yaml(text: str, source: str = "input") -> Any:
    """YAML is a superset of JSON, so this reads both."""
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        problem = exc.problem or str(exc)
        raise InvalidInput(
            [Problem(f"{source} {where}", f"malformed YAML: {problem}", "fix the syntax at that line")],
            what=source,
        ) from None
    except yaml.YAMLError as exc:
        raise InvalidInput([Problem(source, f"malformed YAML: {exc}")], what=source) from None


def pydantic_problems(exc: Any, prefix: str = "") -> list[Problem]:
    """Turn a pydantic ValidationError into Problems whose field is a readable path."""
    problems = []
    for error in exc.errors():
        path = prefix
        for part in error.get("loc", ()):
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += f".{part}" if path else str(part)
        message = error.get("msg", "invalid")
        if message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
            problems.append(Problem(path, message, "remove it or check its spelling"))
            continue
        if error.get("type") == "string_pattern_mismatch" and path.endswith(("name", "site", "gateway")):
            message = "must be lower-case letters, digits and '-' (1-63 characters)"
        problems.append(Problem(path, message))
    return problems


def _path_parts(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in path.split("."):
        name, _, rest = chunk.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            if index.isdigit():
                parts.append(int(index))
            rest = rest.lstrip("[")
    return parts


def line_of(text: str, path: str) -> int | None:
    """The 1-based line of the YAML node at `path` ("pools[2].range"), or of its nearest parent."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = node.start_mark.line + 1 if node is not None else None
    for part in _path_parts(path):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                return line
            key, node = match
            line = key.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
