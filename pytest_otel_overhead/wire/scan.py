"""A run's JSON document decoded member by member by ``json``'s own scanner: each test's text beside it.

A merge writes a test as it was read, so it needs each test's text as well as its value; and the tests
of a suite mostly share one settings object, whose text is then decoded once and the value shared
(``decode_sharing``). The values are ``json.loads``'s, and so are the failures: a document the scanner
cannot read here is ``None``, and ``json.loads`` of the text then says what is wrong.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["TESTS_KEY", "Shared", "decode_sharing", "decode_with_tests"]

TESTS_KEY = "tests"
# The decoder's own scanner (``json.scanner``; its stubs do not name it): a value's object and where its text ends.
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
_SPACE = re.compile(r"[ \t\n\r]*")
_FAILURES = (StopIteration, ValueError, RecursionError)
"""How the scanner says the text is not JSON where a value should start, or not of the shape expected."""
_SHARED_AT_LEAST = 64
"""The shortest text worth sharing: a settings object is several hundred characters."""


@dataclass(frozen=True)
class Shared:
    """A member's value that recurs in the tests, decoded once: its text, and what stands for it in their texts."""

    text: str
    token: str
    """A JSON string no document holds (made from a random marker): the tests' texts hold it for ``text``."""
    value: Any
    """What ``text`` decodes to: the one object the tests hold."""

    def restore(self, test_text: str) -> str:
        """A test's text as the document held it."""
        return test_text.replace(self.token, self.text)


def _skip(text: str, at: int, expected: str = "") -> int:
    """Where the next token after ``at`` starts, past ``expected`` (raises ``ValueError`` when it is not there)."""
    at = _SPACE.match(text, at).end()  # type: ignore[union-attr]  # the pattern matches the empty text
    if expected:
        if text[at : at + 1] != expected:
            raise ValueError(f"no {expected!r} at {at}")
        at = _SPACE.match(text, at + 1).end()  # type: ignore[union-attr]
    return at


def _tests_list(text: str, at: int) -> tuple[list[Any], list[str], int]:
    """The list of tests starting at ``at``: each test, its text, and where the list ends."""
    tests: list[Any] = []
    texts: list[str] = []
    at = _skip(text, at, "[")
    while text[at : at + 1] != "]":
        if tests:
            at = _skip(text, at, ",")
        test, end = _SCAN(text, at)
        tests.append(test)
        texts.append(text[at:end])
        at = _skip(text, end)
    return tests, texts, at + 1


def _first_member(text: str, at: int, key: str) -> str | None:
    """The text of the ``key`` member's object in the first test of the list starting at ``at``, when it is
    among the test's first members and long enough to be worth sharing."""
    try:
        at = _skip(text, _skip(text, at, "["), "{")
        for _ in range(4):  # a test's settings come second, after its node id
            name, at = _SCAN(text, at)
            at = _skip(text, at, ":")
            value, end = _SCAN(text, at)
            if name == key:
                return text[at:end] if isinstance(value, dict) and value and end - at >= _SHARED_AT_LEAST else None
            at = _skip(text, end, ",")
    except _FAILURES:  # the list as written says what is wrong
        pass
    return None


def _tests_sharing(text: str, at: int, key: str, marker: str) -> tuple[list[Any], list[str], int, Shared | None]:
    """``_tests_list``, with every test's ``key`` member that is written as the first test's decoded once.

    Each occurrence of that text after the list's start stands replaced by a string token; the tokens must
    all be, after decoding, the ``key`` members of tests (else the list is decoded as written). An object's
    text is the whole of its value wherever it is one, so those tests hold exactly that value."""
    shared = _first_member(text, at, key) if marker else None
    if shared is None:
        return (*_tests_list(text, at), None)
    token = json.dumps(marker)
    replaced = text[:at] + text[at:].replace(shared, token)
    try:
        tests, texts, end = _tests_list(replaced, at)
    except _FAILURES:  # the list as written says what is wrong
        return (*_tests_list(text, at), None)
    value = json.loads(shared)
    placed = 0
    for test in tests:
        if type(test) is dict and test.get(key) == marker:
            test[key] = value
            placed += 1
    if placed != replaced.count(token, at, end):  # a token outside a test's member: decoded as written instead
        return (*_tests_list(text, at), None)
    return tests, texts, end + placed * (len(shared) - len(token)), Shared(shared, token, value)


def decode_sharing(text: str, key: str, marker: str) -> tuple[dict[str, Any], list[str], Shared | None] | None:
    """``json.loads(text)`` of a run's document, the text of each of its tests as it stands in ``text`` (but
    for the shared member), and that member (``Shared``) when the tests' ``key`` members written as the first
    test's were decoded once (their value one object); ``None`` when the document is no JSON object, or not
    valid JSON. ``marker`` makes the token standing for the shared text: a string no document holds."""
    data: dict[str, Any] = {}
    texts: list[str] = []
    shared = None
    try:
        at = _skip(text, 0, "{")
        while text[at : at + 1] != "}":
            if data:
                at = _skip(text, at, ",")
            name, at = _SCAN(text, at)
            if not isinstance(name, str):
                return None
            at = _skip(text, at, ":")
            if name == TESTS_KEY and text[at : at + 1] == "[":
                data[name], texts, at, shared = _tests_sharing(text, at, key, marker)
            else:
                data[name], at = _SCAN(text, at)
            at = _skip(text, at)
        if _skip(text, at + 1) != len(text):
            return None
    except _FAILURES:
        return None
    return data, texts, shared


def decode_with_tests(text: str) -> tuple[dict[str, Any], list[str]] | None:
    """``json.loads(text)`` of a run's document, and the text of each of its tests as it stands in ``text``;
    ``None`` when the document is no JSON object, or not valid JSON (``json.loads`` then says what is wrong).

    The document's members are decoded one by one by the decoder's own scanner, so a test's text comes
    from where the scanner read it: a merge writes it as read rather than encoding it again.
    """
    decoded = decode_sharing(text, "", "")
    return None if decoded is None else decoded[:2]
