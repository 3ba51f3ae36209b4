"""The README documents every setting: its table is the generated one."""

from __future__ import annotations

from pathlib import Path

from recstream.cli.config import markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_is_current() -> None:
    text = README.read_text()
    start = text.index("<!-- config-table:start -->") + len("<!-- config-table:start -->")
    end = text.index("<!-- config-table:end -->")
    assert text[start:end].strip() == markdown_table(), (
        "README configuration table is stale: regenerate with `recstream config --update-readme`"
    )
