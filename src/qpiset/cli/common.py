"""What every command shares: one-line errors and exit codes, progress bars, the options
several commands take, and choices read from the registries."""

from __future__ import annotations

import functools
import math
import os
import sys

import click

from ..core.errors import FormatError

__all__ = ["fail", "guarded", "progress", "steps_bar", "RegistryChoice", "ORDER", "WEIGHTS",
           "PHYSICS", "OVERWRITE", "BLIND", "WORKERS", "strength_option", "noise_spec", "recorded_model",
           "echo_err", "outputs", "device_option", "use_device"]


def fail(message: str) -> None:
    """One line on stderr, exit 1."""
    click.echo(message, err=True)
    sys.exit(1)


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def guarded(fn):
    """Bad input becomes one line on stderr and exit 1, never a traceback: a malformed file
    (``FormatError``: path, line, column), a file system error, or what the library refuses
    to do with valid files (``ValueError``, e.g. an anisotropic model for a detector)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FormatError as exc:
            fail(str(exc))
        except OSError as exc:
            where = exc.filename or ""
            fail(f"{where}: {exc.strerror or exc}" if where else str(exc))
        except ValueError as exc:
            fail(f"error: {exc}")

    return wrapper


def progress(total: int, desc: str, unit: str = "img"):
    """A progress bar on a terminal; silent in CI and pipes."""
    from tqdm.auto import tqdm

    quiet = not sys.stderr.isatty() or os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return tqdm(total=total, desc=desc, unit=unit, disable=quiet, file=sys.stderr,
                dynamic_ncols=True)


def steps_bar(total: int, desc: str):
    """A progress bar counting optimiser steps."""
    return progress(total, desc, unit="step")


class RegistryChoice(click.Choice):
    """A choice among the names of a registry (``module:attribute``), read when the
    command runs: a method or model registered after this module was imported is offered
    too, and the registry's layer is imported only then."""

    def __init__(self, registry: str, extra: tuple[str, ...] = ()) -> None:
        self.registry, self.extra = registry, tuple(extra)
        super().__init__((), case_sensitive=True)

    @property
    def choices(self):
        import importlib

        module, attribute = self.registry.split(":")
        return tuple(getattr(importlib.import_module(module), attribute)) + self.extra

    @choices.setter
    def choices(self, value) -> None:  # set by click.Choice.__init__; the registry decides
        pass


def _strength(ctx, param, value: str):
    try:
        if ":" in value:
            lo, hi = (float(v) for v in value.split(":", 1))
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError
            return (lo, hi)
        v = float(value)
        if not math.isfinite(v):
            raise ValueError
        return v
    except ValueError:
        raise click.BadParameter("give a number (fixed) or LO:HI (uniform), e.g. 1 or 0.5:1.5")


strength_option = click.option(
    "--strength", default="1", callback=_strength, show_default=True,
    help="Scatterer strength: fixed value or LO:HI drawn uniformly.")


def noise_spec(ctx, param, spec: str):
    """The ``--noise`` spec as a noise model (None for none); a single item stays
    unwrapped, so ``--noise 0.1`` records ``{"model": "white", "fraction": 0.1}``."""
    from ..forward import as_noise

    try:
        return as_noise(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--noise")


OVERWRITE = click.option("--overwrite", is_flag=True,
                         help="Replace outputs that exist (refused otherwise).")


def outputs(*paths, overwrite: bool = False) -> None:
    """Check, before any work, that every output can be written: its folder exists and is
    writable, and it does not exist unless ``overwrite`` (a FormatError naming it: exit 1).
    No two outputs may be one path."""
    from ..io import check_output

    seen = set()
    for path in paths:
        key = os.path.abspath(os.fspath(path))
        if key in seen:
            raise FormatError(path, None, None, "two outputs would be written to this one path")
        seen.add(key)
        check_output(path, overwrite=overwrite)


ORDER = click.option("--order", type=click.Choice(["F", "C", "auto"], case_sensitive=False),
                     default="F", show_default=True, metavar="[F|C|auto]",
                     help="Pixel order of the row format: F = column-major (published), "
                          "C = x fastest, auto = decide from the data.")

WEIGHTS = click.option("--weights", type=click.Path(dir_okay=False), default=None,
                       help="Checkpoint of a learned method (default: the shipped weights).")

PHYSICS = click.option("--physics", is_flag=True,
                       help="Use the physics model recorded in the file's metadata (sidecar "
                            "or .npz) instead of the kernel row.")

CALIBRATE = click.option("--calibrate/--no-calibrate", default=None,
                         help="Refine the kernel row's model finer than the pixels with the "
                              "scatterers of the first 20 images before detecting "
                              "(self-calibration). Default: on for an isotropic row in a "
                              "file of 10 images or more holding 1,000 scatterers or more; "
                              "--calibrate: whatever the row and the count.")

BLIND = click.option("--blind", is_flag=True,
                     help="Estimate the kernel from the file's first 10 images alone (as "
                          "qpiset kernel --method blind does) and detect with it instead of "
                          "the kernel row: for a file whose row is missing or not to be "
                          "trusted.")

WORKERS = click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
                       help="Processes fitting images side by side (one per CPU core is "
                            "the most that helps; the classical detectors: a learned one runs "
                            "its network on whole batches in one process); the results do "
                            "not depend on it.")

KERNEL_MODEL = click.option("--kernel-model", type=click.Path(dir_okay=False), default=None,
                            help="A kernel model saved by qpiset kernel --model (e.g. a "
                                 "calibrated one) to use instead of the kernel row's.")


def device_option(default: str = "auto", what: str = "the networks run on"):
    """``--device auto|cpu|cuda|mps``: the torch device ``what``; ``auto`` is an available
    GPU, else the CPU."""
    return click.option("--device", type=RegistryChoice("qpiset.forward.device:DEVICES"),
                        default=default, show_default=True,
                        help=f"Torch device {what} (auto: a GPU when there is one, else "
                             f"the CPU); asking for an absent one is an error.")


def use_device(name) -> str:
    """``--device`` resolved before any work: the device (e.g. ``"cuda"``), or one line
    on stderr and exit 1 when this machine does not have it."""
    from ..forward.device import DeviceUnavailable, resolve_device

    try:
        return str(resolve_device(name))
    except DeviceUnavailable as exc:
        fail(f"error: {exc}")


def calibration_mode(flag) -> str:
    """``--calibrate/--no-calibrate`` as a mode of :func:`qpiset.inverse.calibrated_operator`."""
    return "auto" if flag is None else "on" if flag else "off"


def recorded_model(ds, required: bool = False):
    """The physics model the file's metadata records (names it recorded under old
    spellings read quietly), or None (figures then estimate); with ``required``, a file
    without one is a FormatError."""
    from ..physics import kernel_from_record

    params = dict(ds.meta.get("kernel") or {})
    if not params:
        if required:
            raise FormatError(ds.meta.get("path", "input"), None, None,
                              "--physics: the file records no kernel model (no metadata)")
        return None
    try:
        return kernel_from_record(params)
    except (TypeError, ValueError) as exc:
        if required:
            raise FormatError(ds.meta.get("path", "input"), None, None,
                              f"--physics: the recorded kernel model is not usable ({exc})")
        click.echo(f"warning: the recorded kernel model is not usable ({exc}); "
                   "estimating from the kernel row", err=True)
        return None
