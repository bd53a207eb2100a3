"""The ``qpiset`` command group. Exit codes: 0 success, 1 bad input or failed validation,
2 usage. Each command is a thin wrapper over the library, in the module of its group."""

from __future__ import annotations

import click

from ..core.version import __version__
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
                 kernel_cmd, bench, train, show, report, demo):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="qpiset")
