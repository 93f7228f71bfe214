"""Write the record tables of docs/json-schema.md from the records themselves, so that no field is missed.

Each row is one key of the document: a field of the record (its key, its JSON type from the field's
type, its meaning from the field's docstring, or from its ``form(doc=...)`` where the document form
differs), the rows of a record whose fields stand among its own (``form(inline=True)``), or a
figure the record derives for readers (``DERIVED``). Run
``python docs/schema_tables.py`` after changing a record: it rewrites the text between each pair of
SCHEMA markers. ``--check`` only compares, and exits 1 when the page is out of date (the test suite
runs the same comparison).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import inspect
import re
import sys
import textwrap
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pytest_otel_overhead.results import MetricResult, PipelineHealth, ProcessProbe, Replica, TestResult
from pytest_otel_overhead.settings.records import MeasureSettings
from pytest_otel_overhead.wire.document import derived_of
from pytest_otel_overhead.wire.fields import Form, form_of

PAGE = Path(__file__).resolve().parent / "json-schema.md"
TABLES: dict[str, type] = {
    "tests": TestResult,
    "settings": MeasureSettings,
    "metrics": MetricResult,
    "pipeline": PipelineHealth,
    "process": ProcessProbe,
    "replicas": Replica,
}
"""The record behind each generated table, by the name in its markers."""


def begin(name: str) -> str:
    return f"<!-- SCHEMA {name}: written by docs/schema_tables.py from the record; edit its docstrings -->"


def end(name: str) -> str:
    return f"<!-- /SCHEMA {name} -->"


def field_docstrings(kind: type) -> dict[str, str]:
    """The docstrings under the fields of a dataclass (the string right after each annotated name)."""
    (node,) = ast.parse(textwrap.dedent(inspect.getsource(kind))).body
    assert isinstance(node, ast.ClassDef)
    docs = {}
    for here, after in zip(node.body, node.body[1:], strict=False):
        if (
            isinstance(here, ast.AnnAssign)
            and isinstance(here.target, ast.Name)
            and isinstance(after, ast.Expr)
            and isinstance(after.value, ast.Constant)
            and isinstance(after.value.value, str)
        ):
            docs[here.target.id] = after.value.value
    return docs


def as_cell(text: str) -> str:
    """A docstring as one table cell: one line, Markdown code spans, ``None`` as JSON's null."""
    text = " ".join(text.split()).replace("``None``", "null")
    text = re.sub(r"``(.+?)``", r"`\1`", text).rstrip(".").replace("|", "\\|")
    return text[0].lower() + text[1:] if len(text) > 1 and text[1].islower() else text


def _shape_of_hint(hint: Any) -> str:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        (chosen,) = [option for option in typing.get_args(hint) if option is not type(None)]
        return _shape_of_hint(chosen).removesuffix(" or null") + " or null"
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        return "array of strings" if args == (str, Ellipsis) else "array"
    named = {float: "number or null", int: "integer", str: "string", bool: "boolean"}
    if hint in named:
        return named[hint]
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return "string"
    return "object"


def shape(hint: Any, spec: Form) -> str:
    """The JSON type of a field's value in the document, as the page names it."""
    if spec.shape is not None:
        return spec.shape
    if spec.keyed_by is not None or spec.entries or (spec.per is not None and typing.get_origin(hint) is tuple):
        return "object"
    if spec.per is not None:
        return "number or null"
    return _shape_of_hint(hint)


def rows(kind: type) -> list[tuple[str, str, str]]:
    """(key, JSON type, meaning) for each key the record writes: its fields, then what it derives."""
    hints = typing.get_type_hints(kind)
    docs = field_docstrings(kind)
    found = []
    for field in dataclasses.fields(kind):
        spec = form_of(field)
        if spec.inline:
            found += rows(hints[field.name])
            continue
        meaning = spec.doc or docs.get(field.name)
        if meaning is None:
            raise SystemExit(f"{kind.__name__}.{field.name}: no docstring to say what it means")
        found.append((spec.key_of(field.name), shape(hints[field.name], spec), as_cell(meaning)))
    found += [(derived.key, derived.shape, derived.doc) for derived in derived_of(kind)]
    return found


def table(kind: type) -> str:
    lines = ["| field | type | meaning |", "| --- | --- | --- |"]
    lines += [f"| `{key}` | {json_type} | {meaning} |" for key, json_type, meaning in rows(kind)]
    return "\n".join(lines) + "\n"


def page_with_tables(page: str) -> str:
    """``page`` with the text between each pair of SCHEMA markers replaced by a freshly written table."""
    for name, kind in TABLES.items():
        start, stop = page.find(begin(name)), page.find(end(name))
        if start < 0 or stop < start:
            raise SystemExit(f"{PAGE}: the markers {begin(name)!r} and {end(name)!r} are missing")
        page = page[: start + len(begin(name))] + "\n\n" + table(kind) + "\n" + page[stop:]
    return page


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when docs/json-schema.md is stale")
    args = parser.parse_args(argv)
    current = PAGE.read_text(encoding="utf-8")
    fresh = page_with_tables(current)
    if args.check:
        if fresh != current:
            print(f"{PAGE}: the record tables are out of date; run python docs/schema_tables.py", file=sys.stderr)
            return 1
        return 0
    if fresh != current:
        PAGE.write_text(fresh, encoding="utf-8")
        print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
