"""lmms-eval's own command-line parser, built without importing lmms-eval's evaluator.

``parse_eval_args`` lives in ``lmms_eval/__main__.py``, which imports torch, transformers and every
metric at module level: about 10 s before a single flag is read. egotask's ``lmms_eval`` needs the
parser first, for ``--help`` and argument errors, and to check the model, judge and data before any
of that loads. So it compiles just that function, and the helpers it calls, from lmms-eval's installed
source, with the standard-library (and loguru) imports they use. If that source ever holds something
else (another lmms-eval version), it imports the module as before: slower, never wrong.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib.util
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path

PARSER_FUNCTION = "parse_eval_args"
UPSTREAM_MODULE = "lmms_eval.__main__"
CHEAP_IMPORTS = frozenset(sys.stdlib_module_names) | {"loguru"}

ParseArgs = Callable[[], tuple[argparse.ArgumentParser, argparse.Namespace]]


@cache
def parse_eval_args_function() -> ParseArgs:
    """lmms-eval's ``parse_eval_args`` (it parses ``sys.argv``), compiled on its own when possible."""
    try:
        return compile_parser_function()
    except (LookupError, OSError, SyntaxError):  # not the source this was written for
        from lmms_eval.__main__ import parse_eval_args

        return parse_eval_args


def compile_parser_function() -> ParseArgs:
    spec = importlib.util.find_spec(UPSTREAM_MODULE)  # imports the package lmms_eval only: cheap
    if spec is None or not spec.origin:
        raise LookupError(f"{UPSTREAM_MODULE} not found")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    imports = {alias.asname or alias.name.split(".")[0]: (node, alias) for node in tree.body
               if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
    wanted: list[ast.stmt] = []
    todo, seen = [PARSER_FUNCTION], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        if name in functions:
            wanted.append(functions[name])
            todo.extend(free_names(functions[name]))
        elif name in imports and _import_root(*imports[name]) in CHEAP_IMPORTS:
            wanted.insert(0, _only(*imports[name]))
        elif not hasattr(builtins, name):
            raise LookupError(f"{spec.origin}: {PARSER_FUNCTION} needs {name!r}, which is not cheap to import")
    namespace: dict[str, object] = {"__name__": UPSTREAM_MODULE}
    exec(compile(ast.Module(body=wanted, type_ignores=[]), spec.origin, "exec"), namespace)
    return namespace[PARSER_FUNCTION]  # type: ignore[return-value]


def free_names(function: ast.FunctionDef) -> set[str]:
    """Names a function reads that it does not bind itself (globals and builtins)."""
    bound: set[str] = set()
    loaded: set[str] = set()
    for node in ast.walk(function):
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node is not function:
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
    return loaded - bound


def _import_root(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> str:
    """The top-level package an import takes a name from ("" for relative imports)."""
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] if node.level == 0 else ""
    return alias.name.split(".")[0]


def _only(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> ast.stmt:
    """The import statement reduced to one name (``from a import b, c`` -> ``from a import b``)."""
    copy = ast.ImportFrom(node.module, [alias], node.level) if isinstance(node, ast.ImportFrom) else ast.Import([alias])
    return ast.fix_missing_locations(ast.copy_location(copy, node))
