"""What every command of the command line shares: the consoles, one-line errors, output checks.

Both ``posecli.cli`` and ``posecli.cli_research`` import this; neither imports the other's
commands back (``cli`` registers the research commands, one way).
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from posecli.errors import OutputError, PosecliError

err = Console(stderr=True)
out = Console()


class CliError(PosecliError):
    """An expected failure found by the CLI itself: printed as one line, exit status 1."""


def fail(msg: str) -> None:
    """Print ``error: msg`` (one line) and exit with status 1."""
    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


def check_writable(directory: Path) -> None:
    """Create ``directory`` and check a file can be written there; OutputError otherwise."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as e:
        raise OutputError(f"cannot write to output directory {directory}: {e.strerror or e}") from None


def check_file_writable(path: Path, option: str) -> None:
    """Before any work: ``path`` (a file an option names, e.g. ``--log``) can be written:
    not a folder, and its folder can be created and written to. OutputError otherwise."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name")
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise OutputError(f"{option} {path}: {above} is a file, not a folder")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path.parent):
            pass
    except OSError as e:
        raise OutputError(f"{option} {path}: cannot write there: {e.strerror or e}") from None


class ReadableCommand(typer.core.TyperCommand):
    """A command whose --help reads plainly: ``posecli lift [OPTIONS] INPUTS...`` as usage, no
    ``<bool>`` after flags (``--help`` included) and no ``<list[str]>`` after arguments (their
    metavar says it). Flags get ``metavar=""``; arguments a metavar such as ``INPUTS``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, typer.core.TyperArgument):
                param.display_type_rich = lambda ctx: None  # the metavar names it

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, typer.core.TyperArgument):
                name = param.display_name_raw + ("..." if param.nargs != 1 else "")
                pieces.append(name if param.required else f"[{name}]")
        return pieces
