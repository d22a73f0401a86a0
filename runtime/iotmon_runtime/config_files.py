"""User YAML (agents, rules, cameras, registries) validated into pydantic models.

Bad files fail with the file, the key path as the user wrote it and the line,
e.g. ``edge.yaml: drivers.0.count: Input should be greater than 0 (line 7)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """Configuration that cannot be used; the message names the file and key path."""


def load_yaml_model(path: Path, model: type[M]) -> M:
    """Read and validate a YAML file; raises ConfigError naming file, key path and line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return parse_yaml_model(text, model, source=str(path))


def parse_yaml_model(text: str, model: type[M], source: str = "<config>") -> M:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError("\n".join(describe_config_error(exc, data, root, source))) from None


def describe_config_error(
    error: ValidationError, data: Any, root: yaml.Node | None, source: str
) -> list[str]:
    """One line per problem: ``file: key.path: message (line N)``; inputs never echoed."""
    lines = []
    for item in error.errors(include_url=False, include_input=False):
        path = _user_path(item["loc"], data)
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] in {"union_tag_not_found", "union_tag_invalid"}:
            path = [*path, "type"]
            if item["type"] == "union_tag_not_found":
                message = "Field required (the type)"
        where = ".".join(str(part) for part in path) or "<top level>"
        line = _line_of(root, path)
        suffix = f" (line {line})" if line is not None else ""
        lines.append(f"{source}: {where}: {message}{suffix}")
    return lines


def _user_path(loc: Sequence[int | str], data: Any) -> list[int | str]:
    """The key path as the user wrote it: drop the union tags pydantic inserts.

    pydantic reports ``drivers.0.simulated_environment.count``; the YAML says
    ``drivers.0.count``. A segment that does not exist in the input (and is not
    the last, which may be a missing key) is such a tag.
    """
    path: list[int | str] = []
    node = data
    for position, part in enumerate(loc):
        last = position == len(loc) - 1
        in_dict = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_dict or in_list:
            node = node[part]
        elif not last:
            continue
        path.append(part)
    return path


def _line_of(root: yaml.Node | None, path: Sequence[int | str]) -> int | None:
    """1-based line of the deepest YAML node on ``path`` (best effort)."""
    node = root
    line = None
    for part in path:
        if node is None:
            break
        if isinstance(node, yaml.MappingNode):
            pair = next(
                (kv for kv in node.value if getattr(kv[0], "value", None) == str(part)), None
            )
            if pair is None:
                break
            line = pair[0].start_mark.line + 1
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
