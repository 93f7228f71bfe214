"""A measured workload is called thousands of times: what says so when it cannot be.

* :class:`RepetitionFailed`: the workload passed its first, ordinary call but raised on a measured
  repetition. The error names the repetition (phase, arm, block, call) and chains the workload's
  own exception; :meth:`RepetitionFailed.report` gives the fix first, then the workload's own
  frames and exception, without the plugin's frames between them.
* :func:`single_use_argument`: a coroutine object among the arguments of a measured callable can
  run only once (the second ``asyncio.run`` of it fails with "cannot reuse already awaited
  coroutine"), and a generator that the first call exhausted yields nothing more. Both are found
  before measuring, and the message says how to pass such code. A generator left suspended (an
  endless source of ids, say) can go on, and is left alone.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable
from pathlib import Path

__all__ = ["RepetitionFailed", "single_use_argument"]

_PACKAGE = Path(__file__).resolve().parents[1]


class RepetitionFailed(Exception):
    """The measured code raised on a repetition after its first call had passed."""

    def __init__(self, phase: str, instrumented: bool, block: int, call: int, calls: int) -> None:
        arm = "instrumented" if instrumented else "baseline"
        self.phase, self.instrumented, self.block, self.call = phase, instrumented, block, call
        super().__init__(
            "a measured body must be repeatable, each call starting from the same state: create what a call "
            f"uses up inside it, or reset it (it passed its first call but raised on a measured repetition: "
            f"{phase}, {arm} arm, block {block}, call {call} of {calls})"
        )

    def report(self) -> str:
        """The fix on the first line, then the measured code's own traceback, the plugin's frames left out."""
        cause = self.__cause__
        if cause is None:
            return str(self)
        frames = [f for f in traceback.extract_tb(cause.__traceback__) if not _in_package(f.filename)]
        own = "".join(traceback.format_list(frames) + traceback.format_exception_only(type(cause), cause))
        return f"{self}\n\nTraceback of the measured code (most recent call last):\n{own.rstrip()}"


def _in_package(filename: str) -> bool:
    try:
        return Path(filename).resolve().is_relative_to(_PACKAGE)
    except (OSError, ValueError):
        return False


def _single_use_kind(value: object) -> str | None:
    """``coroutine``, or ``(async) generator`` once exhausted; ``None`` for anything a call can reuse."""
    if inspect.iscoroutine(value):
        return "coroutine"
    if inspect.isasyncgen(value) and value.ag_frame is None:
        return "async generator"
    if inspect.isgenerator(value) and value.gi_frame is None:
        return "generator"
    return None


def _name(function: object) -> str:
    name = str(getattr(function, "__qualname__", None) or getattr(function, "__name__", None) or function)
    module = str(getattr(function, "__module__", "") or "")
    # asyncio.run lives in asyncio.runners: show it as it is written.
    return f"asyncio.{name}" if module.split(".", 1)[0] == "asyncio" else name


def _advice(caller: str, function: object, kind: str, value: object) -> str:
    made = f"{getattr(value, '__qualname__', kind)}(...)"
    return (
        f"{caller}({_name(function)}, ...) was given the {kind} object {made}, which the first call uses up, "
        "while a measurement calls the function thousands of times; pass a callable that makes a new one "
        f"on each call, e.g. {caller}(lambda: {_name(function)}({made}))"
    )


def single_use_argument(workload: Callable[[], object], caller: str, body: object = None) -> str | None:
    """Why ``workload`` cannot be repeated, if it is a ``functools.partial`` over a coroutine, or over a
    generator its first call exhausted.

    ``caller`` names what the user called (``otel_overhead``, ``benchmark``); ``body`` is the test
    function when the workload is a marked test's body, whose arguments are fixture values.
    """
    if not isinstance(workload, functools.partial):
        return None
    for name, value in [*((None, v) for v in workload.args), *workload.keywords.items()]:
        kind = _single_use_kind(value)
        if kind is None:
            continue
        if body is not None and workload.func is body:
            return (
                f"the fixture {name!r} gives the measured test a {kind} object, which the first run of the body "
                f"uses up, while a measurement runs it thousands of times; make the fixture return something "
                f"reusable (a list, or a function that makes a new {kind})"
            )
        return _advice(caller, workload.func, kind, value)
    return None
