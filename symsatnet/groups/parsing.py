"""Reading a group back from its ``repr`` (safely: only the group constructors and
literals are allowed)."""

from __future__ import annotations

import ast

from .base import Group
from .families import Cyclic, DirectSum, Extend, FromGenerators, Product, Symmetric, Trivial, Wreath
from .ready_made import SudokuTransposed, cube_group, sudoku_group


_CONSTRUCTORS = {
    constructor.__name__: constructor
    for constructor in (
        Trivial,
        Symmetric,
        Cyclic,
        FromGenerators,
        Extend,
        DirectSum,
        Product,
        Wreath,
        SudokuTransposed,
        sudoku_group,
        cube_group,
    )
}


def parse_group(text: str) -> Group:
    """Read a group back from its ``repr`` without ``eval``: only the constructors of this
    module, integer and boolean literals and lists of them are accepted, so text from a file
    cannot run code."""

    def evaluate(node: ast.AST):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _CONSTRUCTORS:
            arguments = [evaluate(argument) for argument in node.args]
            keywords = {keyword.arg: evaluate(keyword.value) for keyword in node.keywords if keyword.arg}
            if len(keywords) != len(node.keywords):
                raise ValueError("**keyword unpacking is not part of a group expression")
            try:
                return _CONSTRUCTORS[node.func.id](*arguments, **keywords)
            except TypeError as error:  # wrong arguments for the constructor
                raise ValueError(f"bad arguments in {ast.unparse(node)!r}: {error}") from None
        if isinstance(node, (ast.List, ast.Tuple)):
            return [evaluate(element) for element in node.elts]
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, bool)):
            return node.value
        raise ValueError(f"not part of a group expression: {ast.unparse(node)!r}")

    if not isinstance(text, str):
        raise ValueError(f"expected a group expression as a string, got {type(text).__name__}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as error:
        raise ValueError(f"not a group expression: {error.msg}") from None
    group = evaluate(tree.body)
    if not isinstance(group, Group):
        raise ValueError(f"{text!r} does not describe a group")
    return group
