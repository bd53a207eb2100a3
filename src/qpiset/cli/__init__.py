"""The command line, one module per command group: :mod:`.generate` (generate,
generate-family, kernels), :mod:`.files` (validate, info, convert), :mod:`.inverse`
(detect, kernel, bench), :mod:`.train`, :mod:`.figures` (show, report), :mod:`.demo`;
:mod:`.common` holds what they share and :mod:`.main` the group."""

from .main import cli, main

__all__ = ["cli", "main"]
