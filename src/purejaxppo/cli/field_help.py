"""Each `PPOConfig` field's help text for the commands' --help: the one-line docstring written under the field."""

from __future__ import annotations

import ast
import inspect

from purejaxppo.core.config import PPOConfig


def field_docs() -> dict[str, str]:
    """Each field's docstring (the string literal under it in `PPOConfig`), by field name."""
    body = ast.parse(inspect.getsource(PPOConfig)).body[0].body
    docs = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant) and isinstance(after.value.value, str)):
            docs[node.target.id] = after.value.value
    return docs
