"""``qpiset generate``, ``qpiset generate-family`` and ``qpiset kernels``: simulated data."""

from __future__ import annotations

import json
import math
import re
import warnings

import click

from ..core.errors import FormatError
from .common import (OVERWRITE, RegistryChoice, device_option, guarded, noise_spec, outputs,
                     progress, strength_option, use_device)

__all__ = ["generate", "generate_family", "kernels_cmd", "parameter_units"]

NOISE_HELP = ("Noise and instrument, applied in order: a number F (white noise, F x each clean "
              "image's std), or items like white:0.1,lines:0.05:0.2 — white:F, snr:S, "
              "pink:F[:alpha] (1/f along the scan), lines:F[:jitter Å], blur:sigma Å, "
              "setpoint:c.")

MIN_HELP = "Fewest scatterers per image; counts are uniform in [min, max]."
PLACEMENT_HELP = ("Full width (Å) of the centred square the scatterers are placed in, up to "
                  "twice --fov; e.g. --fov 400 --placement-fov 200 places them within ±100 Å "
                  "(half-width 100 Å), the window the 400 Å dataset's activation maps keep.  "
                  "[default: the field of view]")

#: The flags of the friedel model (the other models take --set KEY=VALUE).
FRIEDEL_FLAGS = ("material", "mass", "band_bottom", "phase_shift", "scatterer_radius",
                 "decay_length", "tip_sigma")


def _renamed_flag(new: str):
    def callback(ctx, param, value):
        if value is not None:
            warnings.warn(f"--{param.name} is now called --{new}; the old flag will be removed",
                          FutureWarning, stacklevel=2)
        return value
    return callback


@click.command()
@click.argument("out", type=click.Path())
@click.option("--n", "n", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Number of images.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Run seed: the same seed gives the same bytes.")
@click.option("--resolution", type=click.IntRange(min=2, max=4096), default=64,
              show_default=True, help="Pixels per side.")
@click.option("--fov", type=click.FloatRange(min=0, min_open=True), default=100.0,
              show_default=True, help="Field of view (Å), first to last pixel centre.")
@click.option("--min-scatterers", type=click.IntRange(min=0), default=1, show_default=True,
              help=MIN_HELP)
@click.option("--max-scatterers", type=click.IntRange(min=1), default=100, show_default=True,
              help="Coordinate slots per row; counts are uniform in [min, max].")
@click.option("--placement-fov", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="A", help=PLACEMENT_HELP)
@click.option("--kernel", "model", type=RegistryChoice("qpiset.physics:KERNELS"), default="friedel",
              show_default=True,
              help="Kernel model (qpiset kernels lists them): friedel = T-matrix point "
                   "scatterer in a 2D surface state; image = a kernel image (--kernel-file); "
                   "and the lattice models. Parameters beyond the named flags: --set.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="A model parameter (repeatable), e.g. --set t=0.3 --set mu=-0.5; VALUE is "
                   "read as JSON when it parses (numbers, true/false, null), else as text.")
@click.option("--kernel-file", type=click.Path(), default=None,
              help="--kernel image: a .npy image (give --kernel-fov) or a dataset file whose "
                   "kernel row to use; lattice models: a hopping file.")
@click.option("--kernel-fov", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Field of view (Å) of a .npy kernel image.")
@click.option("--material", default="Cu(111)", show_default=True,
              help="Surface-state preset: Cu(111), Ag(111), Au(111); 'none' to give "
                   "--mass and --band-bottom only.")
@click.option("--energy", type=float, default=0.0, show_default=True,
              help="Energy (eV) relative to the Fermi level.")
@click.option("--mass", type=float, default=None, help="Effective mass (m_e); overrides preset.")
@click.option("--band-bottom", type=float, default=None,
              help="Band-bottom energy (eV); overrides preset.")
@click.option("--phase-shift", type=float, default=math.pi / 2,
              help="s-wave scattering phase shift (rad); π/2 is the unitary limit.  "
                   "[default: π/2 ≈ 1.5708 rad]")
@click.option("--potential", type=float, default=None,
              help="Contact potential (eV Å²) instead of --phase-shift.")
@click.option("--scatterer-radius", type=float, default=1.0, show_default=True,
              help="Scatterer size (Å) that cuts off the on-site Green's function "
                   "(with --potential).")
@click.option("--eta", type=float, default=None,
              help="Broadening (eV): E -> E + i eta, a finite quasiparticle lifetime (every "
                   "model that has one) [default: the model's].")
@click.option("--gamma", type=float, default=None, hidden=True, callback=_renamed_flag("eta"),
              help="The former name of --eta.")
@click.option("--decay-length", type=float, default=None,
              help="Phase-coherence length (Å): envelope exp(-r/L)/r.")
@click.option("--tip-sigma", type=float, default=1.0, show_default=True,
              help="Gaussian tip broadening (Å).")
@strength_option
@click.option("--noise", default="0", show_default=True, callback=noise_spec, help=NOISE_HELP)
@click.option("--scattering", type=RegistryChoice("qpiset.forward.scattering:SCATTERING"),
              default="born", show_default=True,
              help="born: superposition of single-scatterer kernels (the seed dataset's); "
                   "full: every multiple-scattering path (the models that have it: friedel, "
                   "lattice, bdg).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Row format: rendering threads (default: all cores). .zarr: dask worker "
                   "processes of a local cluster. The output does not depend on it.")
@click.option("--scheduler", default=None, metavar="ADDR",
              help="Use an existing dask scheduler (tcp://host:port) for the blocks.")
@click.option("--layout", type=click.Choice(["padded", "ragged"]), default="padded",
              show_default=True, help="Row-format lines 1-2: padded to full width or short.")
@device_option("cpu", what="that renders and noises the images (.csv, .npz; written on the "
                          "CPU). The default cpu keeps a seed's file byte-identical; another "
                          "device gives the same scatterers, but images that differ at "
                          "float32 rounding (~1e-6 of the peak)")
@OVERWRITE
@guarded
def generate(out, n, seed, resolution, fov, min_scatterers, max_scatterers, placement_fov,
             model, settings, kernel_file, kernel_fov, material, energy, mass, band_bottom,
             phase_shift, potential, scatterer_radius, eta, gamma, decay_length, tip_sigma,
             strength, noise, scattering, workers, scheduler, layout, device, overwrite):
    """Simulate a dataset and write it to OUT (.csv, .csv.gz, .npz or .zarr by suffix).

    A .zarr store is made in blocks (on a dask cluster with --workers W or --scheduler)
    and the same command resumes an interrupted run.

    Defaults reproduce the published set: 64 px over 100 Å, up to 100 scatterers,
    Cu(111) at the Fermi level. The 400 Å / 20-scatterer variant:
    --fov 400 --max-scatterers 20 (add --placement-fov 200 to keep the scatterers within
    ±100 Å). --layout ragged files do not load with pandas (padded ones do).

    --device cuda (or mps, auto) renders the images on a GPU (extra 'ml'): the same
    scatterers and kernel row, images equal to the CPU's to float32 rounding, so the bytes
    differ from a CPU run of the same seed.
    """
    import os
    import shutil

    from ..core.grid import Grid
    from ..core.recipe import Recipe
    from ..forward import check_scattering
    from ..physics import make_kernel
    from ..workflows import generate_file

    if min_scatterers > max_scatterers:
        raise click.BadParameter(f"{min_scatterers} > --max-scatterers {max_scatterers}",
                                 param_hint="--min-scatterers")
    if device != "cpu":
        device = use_device(device)  # an absent device: one line, exit 1, before any work
        if device != "cpu" and (out.rstrip("/").endswith(".zarr") or scheduler):
            raise click.UsageError("--device renders .csv and .npz here; a .zarr store and "
                                   "--scheduler render on their workers' CPUs")
    placement = _placement(placement_fov, fov)
    ctx = click.get_current_context()
    params = _settings(settings)
    if eta is not None and gamma is not None:
        raise click.UsageError("give --eta (the new name of --gamma), not both")
    eta = gamma if eta is None else eta
    if eta is not None:
        params.setdefault("eta", eta)
    if model == "friedel":
        named = dict(material=None if material.lower() == "none" else material, energy=energy,
                     mass=mass, band_bottom=band_bottom, phase_shift=phase_shift,
                     potential=potential, scatterer_radius=scatterer_radius,
                     decay_length=decay_length, tip_sigma=tip_sigma)
        params = {**named, **params}
    else:
        given = [f"--{k.replace('_', '-')}" for k in FRIEDEL_FLAGS
                 if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"{', '.join(given)}: friedel parameters; for --kernel "
                                   f"{model} use --set KEY=VALUE (qpiset kernels lists them)")
        from ..physics import describe_kernels

        takes = describe_kernels()["models"][model]["parameters"]
        if "energy" in takes:
            params.setdefault("energy", energy)
        if potential is not None:
            params.setdefault("potential", potential)
        if kernel_file is not None:
            params.setdefault("source" if "source" in takes else "hopping_file", kernel_file)
        if kernel_fov is not None:
            params.setdefault("fov", kernel_fov)
    try:
        kernel = make_kernel(model, **params)
        grid = Grid(resolution, fov)
    except (ValueError, TypeError) as exc:
        raise click.UsageError(f"--kernel {model}: {exc}")
    except FileNotFoundError as exc:
        raise FormatError(exc.filename or kernel_file, None, None, "no such file") from None
    try:
        check_scattering(kernel, scattering)
    except ValueError as exc:
        raise click.UsageError(f"--scattering {scattering}: {exc}")
    zarr = out.rstrip("/").endswith(".zarr")
    if zarr and os.path.isdir(out) and not overwrite:
        pass  # an existing store resumes when it holds the same run (refused otherwise)
    else:
        outputs(out, overwrite=overwrite)
        if zarr and os.path.isdir(out):
            shutil.rmtree(out)
    recipe = Recipe(n=n, seed=seed, min_scatterers=min_scatterers,
                    max_scatterers=max_scatterers, strength=strength, noise=noise,
                    scattering=scattering, placement=placement)
    with progress(n, "generate") as bar:
        generate_file(out, kernel, grid, recipe, threads=None if zarr else workers,
                      layout=layout, on_block=bar.update, workers=workers if zarr else None,
                      scheduler=scheduler, device=None if device == "cpu" else device)
    click.echo(f"{out}: wrote {n} images ({resolution}x{resolution} px, fov {fov:g} Å, "
               f"{_describe(kernel)}, seed {seed})")


def _placement(placement_fov, fov):
    """The recipe's placement: ``None`` (the default, recorded nowhere) when the flag is
    absent or equals the field of view; refused beyond twice the field of view (files
    hold coordinates within ±fov)."""
    if placement_fov is None or placement_fov == fov:
        return None
    if placement_fov > 2 * fov:
        raise click.BadParameter(f"{placement_fov:g} Å is more than twice --fov {fov:g} "
                                 "(files hold coordinates within ±fov)",
                                 param_hint="--placement-fov")
    return placement_fov


def _describe(kernel) -> str:
    p = kernel.describe()
    if p.get("model") == "friedel":
        return f"friedel {p.get('material') or ''} E={p['energy']:g} eV"
    keys = [k for k in ("structure", "pairing", "energy", "source") if p.get(k) is not None]
    return " ".join([p["model"]] + [f"{k}={p[k]}" for k in keys])


def _settings(items) -> dict:
    """``KEY=VALUE`` pairs as a dict; values parsed as JSON when they parse, else text."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--set")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@click.command("generate-family")
@click.argument("outdir", type=click.Path(file_okay=False))
@click.option("--kernels", "n_kernels", type=click.IntRange(min=1), default=100,
              show_default=True, help="Distinct kernels (one file each).")
@click.option("--n", "n", type=click.IntRange(min=0), default=500, show_default=True,
              help="Images per kernel.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Family seed: kernels, images and split follow from it.")
@click.option("--resolution", type=click.IntRange(min=2, max=4096), default=64,
              show_default=True)
@click.option("--fov", type=click.FloatRange(min=0, min_open=True), default=400.0,
              show_default=True, help="Field of view (Å).")
@click.option("--min-scatterers", type=click.IntRange(min=0), default=1, show_default=True,
              help=MIN_HELP)
@click.option("--max-scatterers", type=click.IntRange(min=1), default=20, show_default=True,
              help="Coordinate slots per row; counts are uniform in [min, max].")
@click.option("--placement-fov", type=click.FloatRange(min=0, min_open=True), default=None,
              metavar="A", help=PLACEMENT_HELP)
@click.option("--models", default=None,
              help="Comma-separated models to draw from (default: all with a sampler).")
@click.option("--test-fraction", type=click.FloatRange(min=0, max=1, max_open=True),
              default=0.2, show_default=True, help="Share of kernels held out for testing.")
@click.option("--format", "suffix", type=click.Choice([".csv", ".csv.gz", ".npz"]),
              default=".csv", show_default=True)
@click.option("--noise", default="0", show_default=True, callback=noise_spec,
              help="Noise and instrument spec, as for generate.")
@click.option("--naming", type=click.Choice(["qpiset", "published"]), default="qpiset",
              show_default=True,
              help="File names: qpiset = kernel_000.csv, kernel_001.csv, ...; published = the "
                   "100-kernel dataset's 'Kernel number1.csv', 'Kernel number2.csv', ... "
                   "(numbered from 1, .csv only) with n_fold_noise.npy, the kernels' n-fold "
                   "rotational symmetry as its authors' training code reads it.")
@OVERWRITE
@guarded
def generate_family(outdir, n_kernels, n, seed, resolution, fov, min_scatterers,
                    max_scatterers, placement_fov, models, test_fraction, suffix, noise,
                    naming, overwrite):
    """Write OUTDIR/kernel_000.csv ... (one file per kernel) and OUTDIR/index.json.

    With --naming published: OUTDIR/Kernel number1.csv ..., OUTDIR/n_fold_noise.npy and
    OUTDIR/index.json (which then also records each kernel's rotational symmetry).
    """
    import os

    from ..core.errors import FormatError
    from ..core.grid import Grid
    from ..core.recipe import Recipe
    from ..workflows import generate_family as run

    if min_scatterers > max_scatterers:
        raise click.BadParameter(f"{min_scatterers} > --max-scatterers {max_scatterers}",
                                 param_hint="--min-scatterers")
    if naming == "published" and suffix != ".csv":
        raise click.BadParameter(f"--naming published writes .csv (the authors' scripts read "
                                 f"only .csv), not {suffix}", param_hint="--format")
    placement = _placement(placement_fov, fov)
    if os.path.isdir(outdir):
        if os.listdir(outdir) and not overwrite:
            raise FormatError(outdir, None, None, "is not empty; give --overwrite to write "
                                                  "the family into it anyway")
    else:
        outputs(outdir, overwrite=overwrite)
    names = None if models is None else [m.strip() for m in models.split(",") if m.strip()]
    try:
        grid = Grid(resolution, fov)
        with progress(n_kernels * n, "generate-family") as bar:
            recipe = Recipe(n=n, min_scatterers=min_scatterers, max_scatterers=max_scatterers,
                            noise=noise, placement=placement)
            index = run(outdir, n_kernels, recipe, seed=seed, grid=grid, models=names,
                        test_fraction=test_fraction, suffix=suffix, on_images=bar.update,
                        naming=naming)
    except ValueError as exc:
        raise click.UsageError(str(exc))
    kernels = "1 kernel" if n_kernels == 1 else f"{n_kernels} kernels"
    click.echo(f"{outdir}: {kernels} x {n} images; index.json "
               f"({len(index['split']['train'])} train, {len(index['split']['test'])} test)")


#: Units as the models' docstrings write them, and how ``qpiset kernels`` shows them.
_UNIT = re.compile(r"(?:\(|\bin )(eV Å²|eV Å|meV|eV|1/Å|Å²|Å|rad)(?=[\s),;:.]|$)"
                   r"|\bin (units of the electron mass)\b")
_UNIT_NAMES = {"units of the electron mass": "m_e"}


def parameter_units(cls) -> dict[str, str]:
    """Each constructor parameter's unit: the class's declared ``units`` dict if it has
    one, else read from the numpydoc ``Parameters`` section of its docstring ("in eV",
    "(Å)", "(eV Å²)", "(rad)", "in units of the electron mass" -> m_e). An entry naming
    several parameters (``t, t_prime, a : float``) gives each the first unit after its
    mention (``t``, ``t'`` for ``t_prime``, or the bare word) in the text, or, when none
    is mentioned, the one unit the entry has. Parameters without a unit are left out
    (dimensionless, or not a quantity)."""
    import inspect

    declared = getattr(cls, "units", None)
    if isinstance(declared, dict):
        return {str(k): str(v) for k, v in declared.items()}
    doc = inspect.getdoc(cls) or ""
    match = re.search(r"^Parameters\n-+\n(.*?)(?=^\S[^\n]*\n-+\n|\Z)", doc, re.S | re.M)
    if not match:
        return {}
    units: dict[str, str] = {}
    entries = re.findall(r"^(\w[\w, ]*?)\s*:[^\n]*\n((?:^[ \t]+[^\n]*\n?)*)",
                         match.group(1), re.M)
    for names_text, text in entries:
        names = [n.strip() for n in names_text.split(",") if n.strip()]
        text = " ".join(text.split())
        found = [(m.start(), _UNIT_NAMES.get(m.group(2), m.group(1) or m.group(2)))
                 for m in _UNIT.finditer(text)]
        if not found:
            continue
        if len(names) == 1:
            units[names[0]] = found[0][1]
            continue
        bare = re.sub(r"``.*?``", lambda m: " " * len(m.group(0)), text)
        mentions = {}
        for name in names:
            spelled = [f"``{name}``"] + ([f"``{name[:-6]}'``"] if name.endswith("_prime")
                                         else [])
            at = [text.find(w) for w in spelled if w in text]
            word = re.search(rf"\b{re.escape(name)}\b", bare)
            if word:
                at.append(word.start())
            if at:
                mentions[name] = min(at)
        if not mentions:
            if len({u for _, u in found}) == 1:
                units.update({name: found[0][1] for name in names})
            continue
        first = min(mentions.values())
        for name in names:
            if name in mentions:
                after = [u for pos, u in found if pos > mentions[name]]
                if after:
                    units[name] = after[0]
            elif found[0][0] < first:
                units[name] = found[0][1]
    return units


@click.command("kernels")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def kernels_cmd(as_json):
    """List the kernel models, their parameters (defaults, units) and the material presets."""
    from ..physics import KERNELS, describe_kernels

    info = describe_kernels()
    for name, entry in info["models"].items():
        units = parameter_units(KERNELS[name])
        entry["units"] = {k: units[k] for k in entry["parameters"] if k in units}
    if as_json:
        click.echo(json.dumps(info, indent=1, default=str))
        return
    for name, entry in info["models"].items():
        click.echo(f"{name}: {entry['summary']}")
        for pname, default in entry["parameters"].items():
            unit = entry["units"].get(pname)
            shown = f"    {pname} (required)" if pname in entry["required"] \
                else f"    {pname} = {default!r}"
            click.echo(f"{shown}  [{unit}]" if unit else shown)
        for old, new in entry["renamed"].items():
            click.echo(f"    ({old}: the former name of {new})")
    click.echo("presets (friedel --material):")
    for name, preset in info["materials"].items():
        click.echo(f"    {name}: " + ", ".join(f"{k}={v}" for k, v in preset.items()))
