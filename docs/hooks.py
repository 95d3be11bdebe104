"""MkDocs hooks: the CLI reference, generated from the typer app at build time.

``docs/reference/cli.md`` holds the marker ``<!-- cli-reference -->``; the build replaces it
with every command's ``--help``, exactly as the installed ``eventlog`` prints it, so the page
cannot go stale: a command or an option added to the app appears at the next build.
"""

from __future__ import annotations

from typing import Any

import typer

MARKER = "<!-- cli-reference -->"
WIDTH = 100

__all__ = ["MARKER", "cli_reference", "on_page_markdown"]


# typer builds click objects (its own vendored click in recent versions): used by duck typing
def _help(command: Any, name: str, parent: Any) -> str:
    # the same context the script builds (-h/--help, the width), without parsing anything
    ctx = command.make_context(name, [], parent=parent, resilient_parsing=True)
    ctx.terminal_width = ctx.max_content_width = WIDTH
    text: str = command.get_help(ctx)
    return text.rstrip()


def _commands(group: Any, ctx: Any, prefix: str) -> list[str]:
    """A section per command of ``group``, and one per subcommand of a command group."""
    parts: list[str] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        parts += [
            "",
            f"## {prefix} {name}",
            "",
            command.get_short_help_str(limit=200),
            "",
            "```text",
            _help(command, name, ctx),
            "```",
        ]
        if hasattr(command, "list_commands"):  # a group (eventlog otel): its commands too
            sub = command.make_context(name, [], parent=ctx, resilient_parsing=True)
            sub.terminal_width = sub.max_content_width = WIDTH
            parts += _commands(command, sub, f"{prefix} {name}")
    return parts


def cli_reference() -> str:
    """Markdown for the whole ``eventlog`` command: its help, then each command's."""
    from eventlog.cli import app

    group: Any = typer.main.get_command(app)
    root = group.make_context("eventlog", [], resilient_parsing=True)
    root.terminal_width = root.max_content_width = WIDTH
    parts = [
        "## eventlog",
        "",
        "```text",
        group.get_help(root).rstrip(),
        "```",
    ]
    parts += _commands(group, root, "eventlog")
    return "\n".join(parts) + "\n"


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Replace the CLI reference marker with the generated reference."""
    if MARKER in markdown:
        return markdown.replace(MARKER, cli_reference())
    return markdown
