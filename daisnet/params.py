"""Reading params.yaml: stages read their own params (DVC dict unpacking drops false values)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from daisnet.errors import InputError


def load_params(path: str | Path = "params.yaml") -> dict[str, Any]:
    path = Path(path)
    try:
        with path.open() as f:
            params = yaml.safe_load(f)
    except FileNotFoundError:
        raise InputError("params file not found", path=path) from None
    except yaml.YAMLError as exc:
        raise InputError(f"not valid YAML ({exc})", path=path) from None
    if not isinstance(params, dict):
        raise InputError("expected a mapping at the top level", path=path)
    return params


def section(params: dict[str, Any], dotted: str) -> Any:
    """`section(p, "features.normals")` with a clear error when a key is missing."""
    node: Any = params
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            raise InputError(f"missing key {dotted!r}", path="params.yaml")
        node = node[key]
    return node
