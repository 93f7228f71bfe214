"""Parsers of the harness's command-line values: each turns a text into its value or an ``ArgumentTypeError``
that names what is wrong."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from benchmarks.real.budgets import OffsetScale, parse_offsets
from benchmarks.real.plan import WORKLOADS
from benchmarks.real.tools import budget_fraction


def count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}")
        return value

    return parse


def positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not above 0")
    return value


def existing_file(text: str) -> str:
    """A file that exists, as an absolute path: the plugin runs start in a work directory of their own."""
    path = Path(text).expanduser().resolve()
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text!r} is not a file")
    return str(path)


def workload_list(text: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [n for n in names if n not in WORKLOADS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown workload {', '.join(map(repr, unknown)) or 'list (empty)'}; known: {', '.join(WORKLOADS)}"
        )
    return names


def percentage(text: str) -> str:
    try:
        budget_fraction(text)  # the tools' own check, at parse time
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def offsets(text: str) -> tuple[float, ...]:
    try:
        return parse_offsets(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def offset_scale(text: str) -> OffsetScale:
    try:
        return OffsetScale(text.strip().lower())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: one of {', '.join(map(str, OffsetScale))}") from None


def spans_by_workload(text: str) -> tuple[tuple[str, int], ...]:
    """``manual=2,flask=10``: the regression variant's child spans per call, by workload."""
    found = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, number = part.partition("=")
        workload_list(name)  # the workload's own check
        found[name.strip()] = count(1)(number.strip())
    if not found:
        raise argparse.ArgumentTypeError("no WORKLOAD=N given")
    return tuple(found.items())
