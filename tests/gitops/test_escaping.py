"""Output nobody can forge: user text in a diagnostic stays on its line, and in the pull-request comment
stays inert, as a CommonMark parser (markdown-it-py, with GitHub's tables) reads it."""

from __future__ import annotations

import pytest
from markdown_it import MarkdownIt

from infra.diagnostics import Diagnostic, escape
from infra.review import md_code, md_fence

HOSTILE = [
    "plain",
    "line\nworkloads/dev/ok.yaml:1: $: fine",
    "carriage\rreturn",
    "\x1b[31mred\x1b[0m and \x1b]8;;http://x\x07link",
    "nel\x85and\u2028line\u2029separators",
    "bidi \u202eevil\u202c \u2066x\u2069",
    "nul\x00byte",
    "`one` ``two`` ```three```",
    "```",
    "`",
    "a | b || c",
    "# heading\n## another",
    "<img src=x onerror=alert(1)> <details> </details> <!-- -->",
    "**bold** _it_ [link](http://x) ![i](http://y)",
    "\\`escaped\\`",
    " ",
]
MD = MarkdownIt("commonmark").enable("table")


@pytest.mark.parametrize("text", HOSTILE)
def test_a_diagnostic_is_one_line_whatever_its_fields_hold(text: str) -> None:
    shown = str(Diagnostic(f"workloads/dev/{text}.yaml", 3, f"$.spec.{text}", f"bad {text}", f"fix {text}"))
    assert len(shown.splitlines()) == 1, shown
    assert not any(ch in shown for ch in "\x00\x1b\r\x85\u2028\u2029\u202e\u2066"), shown
    assert shown.startswith("workloads/dev/")


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_keeps_printable_text_as_it_is(text: str) -> None:
    shown = escape(text)
    assert "\n" not in shown
    if text.isprintable():
        assert shown == text


@pytest.mark.parametrize("text", ["lone \ud800 surrogate", "\udfff", "non \ufffe character \uffff"])
def test_escape_output_can_always_be_written_and_loaded_as_yaml(text: str) -> None:
    """Text from JSON (a cluster's condition message) may hold what UTF-8 cannot encode or YAML refuses."""
    import yaml

    shown = escape(text)
    shown.encode("utf-8")
    assert yaml.safe_load(f"# {shown}\nkey: 1\n") == {"key": 1}
    assert escape(shown) == shown


def _inline(markdown: str) -> list:
    tokens = MD.parse(markdown)
    assert [t.type for t in tokens] == ["paragraph_open", "inline", "paragraph_close"], tokens
    return tokens[1].children


@pytest.mark.parametrize("text", HOSTILE)
def test_inline_code_is_one_code_span_holding_the_escaped_text(text: str) -> None:
    children = _inline(f"Against {md_code(text)}; done.")
    kinds = [c.type for c in children]
    assert kinds == ["text", "code_inline", "text"], kinds
    expected = escape(text)
    assert children[1].content in (expected, expected.strip()) or "|" in text


@pytest.mark.parametrize("text", HOSTILE)
def test_inline_code_in_a_table_cell_stays_in_its_cell(text: str) -> None:
    tokens = MD.parse(f"| key | value |\n|---|---|\n| {md_code(text)} | after |\n")
    cells = [t for t in tokens if t.type == "inline"]
    assert len(cells) == 4, [c.content for c in cells]  # two headers, two cells: no extra cell, no lost one
    assert cells[3].content == "after"
    assert [c.type for c in cells[2].children] == ["code_inline"]


@pytest.mark.parametrize("text", HOSTILE)
def test_a_fenced_block_holds_every_line_and_nothing_escapes_it(text: str) -> None:
    lines = ["before", text, f"{text} middle {text}", "after"]
    tokens = MD.parse("\n".join(md_fence(lines, "diff") + ["", "## outside"]))
    assert tokens[0].type == "fence" and tokens[0].info == "diff"
    assert tokens[0].content.splitlines()[0] == "before" and tokens[0].content.splitlines()[-1] == "after"
    assert len(tokens[0].content.splitlines()) == 4
    assert [t.type for t in tokens[1:]] == ["heading_open", "inline", "heading_close"]  # the fence closed where we did
