"""The ``qpiset`` command group. Exit codes: 0 success, 1 bad input or failed validation,
2 usage. Each command is a thin wrapper over the library, in the module of its group."""

from __future__ import annotations

import click

from ..core.version import __version__
from .analyse import analyse
from .demo import demo
from .files import convert, info, validate
from .figures import report, show
from .generate import generate, generate_family, kernels_cmd
from .inverse import bench, detect, kernel_cmd
from .train import train

__all__ = ["cli", "main"]


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as ``warning: message`` on stderr (no source lines for users)."""
    click.echo(f"warning: {message}", err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="qpiset")
def cli() -> None:
    """qpiset: quasiparticle-interference (QPI) scatterer datasets.

    Simulate datasets from physical kernels, read/validate/convert the row format and
    the chunked store, find scatterers, look at the data. Every command has --help.
    """
    import warnings

    warnings.showwarning = _one_line_warning  # "warning: ..." on stderr, no source lines


for _command in (generate, generate_family, kernels_cmd, validate, info, convert, detect,
                 kernel_cmd, bench, train, show, report, demo, analyse):
    cli.add_command(_command)


class Interrupted(BaseException):
    """A signal that ends the command (SIGINT, SIGTERM, SIGHUP). It unwinds like
    KeyboardInterrupt, so every writer removes its temporary file on the way out, and
    :func:`main` exits with the conventional status 128 + the signal's number."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum, frame) -> None:
    raise Interrupted(signum)


def main() -> None:
    """The console script: the command group, with the signals that end it turned into a
    clean exit (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP) and nothing left behind."""
    import signal
    import sys

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), _interrupt)
    try:
        cli(prog_name="qpiset")
    except Interrupted as exc:
        name = signal.Signals(exc.signum).name
        click.echo(f"qpiset: interrupted by {name}; partial outputs removed", err=True)
        sys.exit(128 + exc.signum)
