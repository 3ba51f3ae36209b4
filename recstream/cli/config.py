"""``recstream config``: the effective settings, or the documented table of every setting."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from recstream.security import MASK
from recstream.settings import CHECKOUT_LAYOUT, ENV_PREFIX, SECRET_FIELDS, Settings, load_settings

#: Default column of the writable paths, computed at start-up (see recstream/settings.py).
PATH_DEFAULTS = {
    "home": "`$XDG_DATA_HOME/recstream` (`~/.local/share/recstream`); in a checkout: `.`",
    **{
        name: f"`<home>/{in_home}`; in a checkout: `./{in_checkout}`"
        for name, (in_checkout, in_home) in CHECKOUT_LAYOUT.items()
    },
    "docs_dir": "`<reports_dir>`; in a checkout: `./docs`",
    "cache_dir": "`~/.cache/recstream`; `<home>/cache` if `RECSTREAM_HOME` is set",
    "embedding_cache_dir": "`<cache_dir>/embeddings`; in a checkout: `./artifacts/cache`",
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``config`` command."""
    p = sub.add_parser("config", help="show effective settings (secrets masked) or the settings table")
    p.add_argument("--markdown", action="store_true", help="print the README's configuration table")
    p.add_argument(
        "--update-readme",
        metavar="PATH",
        nargs="?",
        const="README.md",
        help="rewrite the table between the config-table markers of PATH (default README.md)",
    )
    p.set_defaults(func=run)


def markdown_table() -> str:
    """Every ``RECSTREAM_*`` variable with its default and meaning, as a Markdown table."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        shown = PATH_DEFAULTS.get(name) or f"`{'' if default is None else default}`"
        desc = field.description or ""
        rows.append(f"| `{ENV_PREFIX}{name.upper()}` | {shown} | {desc} |")
    return "\n".join(rows)


START, END = "<!-- config-table:start -->", "<!-- config-table:end -->"


def update_readme(path: Path) -> bool:
    """Replace the configuration table in ``path``; returns whether the file changed."""
    text = path.read_text()
    i, j = text.index(START) + len(START), text.index(END)
    new = text[:i] + "\n" + markdown_table() + "\n" + text[j:]
    if new != text:
        path.write_text(new)
    return new != text


def run(args: argparse.Namespace) -> int:
    """Print the table, update the README, or print the effective settings as JSON."""
    if args.update_readme:
        changed = update_readme(Path(args.update_readme))
        print(f"{args.update_readme}: {'updated' if changed else 'already current'}")
        return 0
    if args.markdown:
        print(markdown_table())
        return 0
    print(json.dumps(effective_settings(load_settings()), indent=2, default=str))
    return 0


def effective_settings(settings: Settings) -> dict[str, Any]:
    """Every setting as JSON values, each secret replaced by a mask (null when unset).

    Secrets are masked by name here, not only by their ``SecretStr`` type, so the output stays
    safe even if a serializer for the type changes.
    """
    out = settings.model_dump(mode="json")
    for name in SECRET_FIELDS:
        out[name] = None if getattr(settings, name) is None else MASK
    return out
