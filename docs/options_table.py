"""Print the README's option tables from the plugin itself, so that no option is missed.

Run: python docs/options_table.py   (paste the output between the README's OPTIONS markers)
"""

from __future__ import annotations

import re

from _pytest.config.argparsing import Parser

from pytest_otel_overhead import plugin
from pytest_otel_overhead.session import option_name
from pytest_otel_overhead.settings.layers import KEYS, resolve

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


def main() -> None:
    parser = Parser(_ispytest=True)
    plugin.pytest_addoption(parser)
    group = next(g for g in parser._groups if g.name == "otel-overhead")
    ini = parser._inidict
    settings_flags = {option_name(key) for key in KEYS}

    print("| Option | ini key | What it does |")
    print("|---|---|---|")
    for option in group.options:
        names = option.names()
        flag = names[0]
        help_text = option.attrs().get("help", "")
        if flag in settings_flags or not isinstance(help_text, str) or help_text == "==SUPPRESS==":
            continue
        ini_key = flag.lstrip("-").replace("-", "_")
        ini_cell = f"`{ini_key}`" if ini_key in ini else "—"
        print(f"| `{flag}` | {ini_cell} | {_cell(help_text.replace('%%', '%'))} |")

    print()
    defaults = _resolved_defaults()
    print("| Marker kwarg | Option | ini key | Environment | Default | What it sets |")
    print("|---|---|---|---|---|---|")
    for key in KEYS.values():
        meaning, default = _split_default(key.help)
        if default is None:
            default = _show(defaults.get(key.name))
        env = ", ".join(f"`{var}`" for var in key.env) or "—"
        print(
            f"| `{key.name}` | `{option_name(key.name)}` | `otel_overhead_{key.name}` | {env} | "
            f"{_cell(default)} | {_cell(meaning)} |"
        )


if __name__ == "__main__":
    main()
