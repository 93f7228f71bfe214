"""Write the option tables of docs/options.md from the plugin itself, so that no option is missed.

Run ``python docs/options_table.py`` after changing an option: it rewrites the part of
docs/options.md between the OPTIONS markers. ``--check`` only compares, and exits 1 when the page
is out of date (the test suite runs the same comparison).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from _pytest.config.argparsing import Parser

from pytest_otel_overhead import plugin
from pytest_otel_overhead.settings.flags import GROUPS
from pytest_otel_overhead.settings.keys import KEYS
from pytest_otel_overhead.settings.merge import resolve
from pytest_otel_overhead.settings.sources import option_name

PAGE = Path(__file__).resolve().parent / "options.md"
BEGIN = "<!-- OPTIONS: written by docs/options_table.py; edit the option's help text, not this table -->"
END = "<!-- /OPTIONS -->"
_DEFAULT_VALUE = re.compile(r"\s*\(default:? ([^()]*(?:\([^()]*\)[^()]*)*)\)")  # "(default 5000)"
_DEFAULT_MARK = re.compile(r"(\S+) \(default\)")  # "warn (default)": the word before is the default


def _cell(text: str) -> str:
    return text.replace("|", "\\|").strip()


def _split_default(help_text: str) -> tuple[str, str | None]:
    """The help text without its '(default X)' part, and the default it names, if it names one."""
    match = _DEFAULT_VALUE.search(help_text)
    if match is not None:
        return (help_text[: match.start()] + help_text[match.end() :]).strip(), match.group(1)
    mark = _DEFAULT_MARK.search(help_text)
    if mark is not None:
        return help_text, mark.group(1).rstrip(",")
    return help_text, None


def _resolved_defaults() -> dict[str, object]:
    values = resolve([]).as_dict()
    pipeline = {**values, **{k[:-3]: v for k, v in values.items() if k.endswith("_ms")}}
    return {**pipeline, **{k[:-2]: v for k, v in values.items() if k.endswith("_s")}}


def _show(value: object) -> str:
    if value is None or value == [] or value == ():
        return "none"
    return str(value)


def tables() -> str:
    """Both tables, as Markdown: the general options, then every measurement setting."""
    parser = Parser(_ispytest=True)
    plugin.pytest_addoption(parser)
    options = [option for g in parser._groups if g.name in GROUPS for option in g.options]
    ini = parser._inidict
    settings_flags = {option_name(key) for key in KEYS}

    lines = ["| Option | ini key | What it does |", "|---|---|---|"]
    for option in options:
        names = option.names()
        flag = names[0]
        help_text = option.attrs().get("help", "")
        if flag in settings_flags or not isinstance(help_text, str) or help_text == "==SUPPRESS==":
            continue
        ini_key = flag.lstrip("-").replace("-", "_")
        ini_cell = f"`{ini_key}`" if ini_key in ini else "—"
        lines.append(f"| `{flag}` | {ini_cell} | {_cell(help_text.replace('%%', '%'))} |")

    lines.append("")
    defaults = _resolved_defaults()
    lines.append("| Marker kwarg | Option | ini key | Environment | Default | What it sets |")
    lines.append("|---|---|---|---|---|---|")
    for key in KEYS.values():
        meaning, default = _split_default(key.help)
        if default is None:
            default = _show(defaults.get(key.name))
        env = ", ".join(f"`{var}`" for var in key.env) or "—"
        lines.append(
            f"| `{key.name}` | `{option_name(key.name)}` | `otel_overhead_{key.name}` | {env} | "
            f"{_cell(default)} | {_cell(meaning)} |"
        )
    return "\n".join(lines) + "\n"


def page_with_tables(page: str) -> str:
    """``page`` with the text between its OPTIONS markers replaced by freshly written tables."""
    start, end = page.find(BEGIN), page.find(END)
    if start < 0 or end < start:
        raise SystemExit(f"{PAGE}: the markers {BEGIN!r} and {END!r} are missing")
    return page[: start + len(BEGIN)] + "\n\n" + tables() + "\n" + page[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when docs/options.md is stale")
    args = parser.parse_args(argv)
    current = PAGE.read_text(encoding="utf-8")
    fresh = page_with_tables(current)
    if args.check:
        if fresh != current:
            print(f"{PAGE}: the option tables are out of date; run python docs/options_table.py", file=sys.stderr)
            return 1
        return 0
    if fresh != current:
        PAGE.write_text(fresh, encoding="utf-8")
        print(f"wrote {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
