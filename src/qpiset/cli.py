"""The ``qpiset`` command. Exit codes: 0 success, 1 bad input or failed validation, 2 usage.

Each command is a thin wrapper over the library; logic lives in the modules it calls.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
from pathlib import Path

import click
import numpy as np

from . import __version__
from .io import FormatError

# ----------------------------------------------------------------------------- helpers


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


def _guarded(fn):
    """Bad input becomes one line on stderr and exit 1, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except FormatError as exc:
            _fail(str(exc))
        except OSError as exc:
            where = exc.filename or ""
            _fail(f"{where}: {exc.strerror or exc}" if where else str(exc))

    return wrapper


def progress(total: int, desc: str):
    """A progress bar on a terminal; silent in CI and pipes."""
    from tqdm.auto import tqdm

    quiet = not sys.stderr.isatty() or os.environ.get("CI", "").lower() in ("1", "true", "yes")
    return tqdm(total=total, desc=desc, unit="img", disable=quiet, file=sys.stderr,
                dynamic_ncols=True)


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


ORDER = click.option("--order", type=click.Choice(["F", "C", "auto"], case_sensitive=False),
                     default="F", show_default=True,
                     help="Pixel order of the row format: F = column-major (published), "
                          "C = x fastest, auto = decide from the data.")


# ----------------------------------------------------------------------------- commands


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="qpiset")
def cli() -> None:
    """qpiset: quasiparticle-interference (QPI) scatterer datasets.

    Simulate datasets from physical kernels, read/validate/convert the row format and
    the chunked store, find scatterers, look at the data. Every command has --help.
    """
    import warnings

    warnings.showwarning = _one_line_warning  # "warning: ..." on stderr, no source lines


@cli.command()
@click.argument("out", type=click.Path())
@click.option("--n", "n", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Number of images.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Run seed: the same seed gives the same bytes.")
@click.option("--resolution", type=click.IntRange(min=2, max=4096), default=64,
              show_default=True, help="Pixels per side.")
@click.option("--fov", type=click.FloatRange(min=0, min_open=True), default=100.0,
              show_default=True, help="Field of view (Å), first to last pixel centre.")
@click.option("--min-scatterers", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--max-scatterers", type=click.IntRange(min=1), default=100, show_default=True,
              help="Coordinate slots per row; counts are uniform in [min, max].")
@click.option("--kernel", "model", default="friedel", show_default=True,
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
@click.option("--phase-shift", type=float, default=math.pi / 2, show_default=True,
              help="s-wave scattering phase shift (rad).")
@click.option("--potential", type=float, default=None,
              help="Contact potential (eV Å²) instead of --phase-shift.")
@click.option("--scatterer-radius", type=float, default=1.0, show_default=True,
              help="Scatterer size (Å) that cuts off the on-site Green's function "
                   "(with --potential).")
@click.option("--gamma", type=float, default=0.0, show_default=True,
              help="Quasiparticle broadening (eV), finite lifetime.")
@click.option("--decay-length", type=float, default=None,
              help="Phase-coherence length (Å): envelope exp(-r/L)/r.")
@click.option("--tip-sigma", type=float, default=1.0, show_default=True,
              help="Gaussian tip broadening (Å).")
@click.option("--strength", default="1", callback=_strength, show_default=True,
              help="Scatterer strength: fixed value or LO:HI drawn uniformly.")
@click.option("--noise", default="0", show_default=True, callback=lambda c, p, v: _noise(v),
              help="Noise and instrument, applied in order: a number F (white noise, F x "
                   "each clean image's std), or items like white:0.1,lines:0.05:0.2 — white:F, "
                   "snr:S, pink:F[:alpha] (1/f along the scan), lines:F[:jitter Å], "
                   "blur:sigma Å, setpoint:c.")
@click.option("--scattering", type=click.Choice(["born", "full"]), default="born",
              show_default=True,
              help="born: superposition of single-scatterer kernels (the seed dataset's); "
                   "full: every multiple-scattering path (friedel, lattice, bdg).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Row format: rendering threads (default: all cores). .zarr: dask worker "
                   "processes of a local cluster. The output does not depend on it.")
@click.option("--scheduler", default=None, metavar="ADDR",
              help="Use an existing dask scheduler (tcp://host:port) for the blocks.")
@click.option("--layout", type=click.Choice(["padded", "ragged"]), default="padded",
              show_default=True, help="Row-format lines 1-2: padded to full width or short.")
@_guarded
def generate(out, n, seed, resolution, fov, min_scatterers, max_scatterers, model, settings,
             kernel_file, kernel_fov, material, energy, mass, band_bottom, phase_shift,
             potential, scatterer_radius, gamma, decay_length, tip_sigma, strength, noise,
             scattering, workers, scheduler, layout):
    """Simulate a dataset and write it to OUT (.csv, .csv.gz, .npz or .zarr by suffix).

    A .zarr store is made in blocks (on a dask cluster with --workers W or --scheduler)
    and the same command resumes an interrupted run.

    Defaults reproduce the published set: 64 px over 100 Å, up to 100 scatterers,
    Cu(111) at the Fermi level. The 400 Å / 20-scatterer variant:
    --fov 400 --max-scatterers 20.
    """
    from .grid import Grid
    from .physics import make_kernel
    if min_scatterers > max_scatterers:
        raise click.BadParameter(f"{min_scatterers} > --max-scatterers {max_scatterers}",
                                 param_hint="--min-scatterers")
    ctx = click.get_current_context()
    params = _settings(settings)
    if model == "friedel":
        named = dict(material=None if material.lower() == "none" else material, energy=energy,
                     mass=mass, band_bottom=band_bottom, phase_shift=phase_shift,
                     potential=potential, scatterer_radius=scatterer_radius, gamma=gamma,
                     decay_length=decay_length, tip_sigma=tip_sigma)
        params = {**named, **params}
    else:
        friedel_only = ("material", "mass", "band_bottom", "phase_shift", "scatterer_radius",
                        "gamma", "decay_length", "tip_sigma")
        given = [f"--{k.replace('_', '-')}" for k in friedel_only
                 if ctx.get_parameter_source(k) == click.core.ParameterSource.COMMANDLINE]
        if given:
            raise click.UsageError(f"{', '.join(given)}: friedel parameters; for --kernel "
                                   f"{model} use --set KEY=VALUE (qpiset kernels lists them)")
        if model != "image":
            params.setdefault("energy", energy)
        if potential is not None:
            params.setdefault("potential", potential)
        if kernel_file is not None:
            params.setdefault("source" if model == "image" else "hopping_file", kernel_file)
        if kernel_fov is not None:
            params.setdefault("fov", kernel_fov)
    try:
        kernel = make_kernel(model, **params)
        grid = Grid(resolution, fov)
    except (ValueError, TypeError) as exc:
        raise click.UsageError(f"--kernel {model}: {exc}")
    except FileNotFoundError as exc:
        raise FormatError(exc.filename or kernel_file, None, None, "no such file") from None
    from .pipeline import generate_file

    if scattering == "full" and kernel.name not in ("friedel", "lattice", "bdg"):
        raise click.UsageError(f"--scattering full is implemented for --kernel friedel, "
                               f"lattice and bdg, not {kernel.name}")
    with progress(n, "generate") as bar:
        generate_file(out, kernel, grid, n, seed=seed, min_scatterers=min_scatterers,
                      max_scatterers=max_scatterers, strength=strength,
                      noise=noise, threads=None if out.endswith(".zarr") else workers,
                      scattering=scattering, layout=layout, on_block=bar.update,
                      workers=workers if out.endswith(".zarr") else None,
                      scheduler=scheduler)
    click.echo(f"{out}: wrote {n} images ({resolution}x{resolution} px, fov {fov:g} Å, "
               f"{_describe(kernel)}, seed {seed})")


def _describe(kernel) -> str:
    p = kernel.params()
    if p.get("model") == "friedel":
        return f"friedel {p.get('material') or ''} E={p['energy']:g} eV"
    keys = [k for k in ("structure", "pairing", "energy", "source") if p.get(k) is not None]
    return " ".join([p["model"]] + [f"{k}={p[k]}" for k in keys])


def _noise(spec: str):
    """The --noise spec as a noise model (None for none); a single item stays unwrapped, so
    ``--noise 0.1`` records ``{"model": "white", "fraction": 0.1}`` as before."""
    from .noise import parse_noise

    try:
        chain = parse_noise(spec)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--noise")
    if chain is not None and len(chain.models) == 1:
        return chain.models[0]
    return chain


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


@cli.command("generate-family")
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
@click.option("--min-scatterers", type=click.IntRange(min=0), default=1, show_default=True)
@click.option("--max-scatterers", type=click.IntRange(min=1), default=20, show_default=True)
@click.option("--models", default=None,
              help="Comma-separated models to draw from (default: all with a sampler).")
@click.option("--test-fraction", type=click.FloatRange(min=0, max=1, max_open=True),
              default=0.2, show_default=True, help="Share of kernels held out for testing.")
@click.option("--format", "suffix", type=click.Choice([".csv", ".csv.gz", ".npz"]),
              default=".csv", show_default=True)
@click.option("--noise", default="0", show_default=True, callback=lambda c, p, v: _noise(v),
              help="Noise and instrument spec, as for generate.")
@_guarded
def generate_family(outdir, n_kernels, n, seed, resolution, fov, min_scatterers,
                    max_scatterers, models, test_fraction, suffix, noise):
    """Write OUTDIR/kernel_000.csv ... (one file per kernel) and OUTDIR/index.json."""
    from .families import generate_family as run
    from .grid import Grid

    if min_scatterers > max_scatterers:
        raise click.BadParameter(f"{min_scatterers} > --max-scatterers {max_scatterers}",
                                 param_hint="--min-scatterers")
    names = None if models is None else [m.strip() for m in models.split(",") if m.strip()]
    try:
        grid = Grid(resolution, fov)
        with progress(n_kernels * n, "generate-family") as bar:
            index = run(outdir, n_kernels, n, seed=seed, grid=grid,
                        min_scatterers=min_scatterers, max_scatterers=max_scatterers,
                        models=names, test_fraction=test_fraction, suffix=suffix,
                        noise=noise, on_images=bar.update)
    except ValueError as exc:
        raise click.UsageError(str(exc))
    click.echo(f"{outdir}: {n_kernels} kernels x {n} images; index.json "
               f"({len(index['split']['train'])} train, {len(index['split']['test'])} test)")


@cli.command("kernels")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def kernels_cmd(as_json):
    """List the kernel models, their parameters (defaults) and the material presets."""
    from .physics import describe_kernels

    info = describe_kernels()
    if as_json:
        click.echo(json.dumps(info, indent=1, default=str))
        return
    for name, entry in info["models"].items():
        click.echo(f"{name}: {entry['summary']}")
        for pname, default in entry["parameters"].items():
            click.echo(f"    {pname} = {default!r}")
    click.echo("presets (friedel --material):")
    for name, preset in info["materials"].items():
        click.echo(f"    {name}: " + ", ".join(f"{k}={v}" for k, v in preset.items()))


@cli.command()
@click.argument("path", type=click.Path())
@ORDER
@_guarded
def validate(path, order):
    """Check every line of a dataset file: exit 0 and a summary, or exit 1 and PATH:LINE:COL."""
    from .io import validate as check

    click.echo(check(path, order=order).line())


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@ORDER
@_guarded
def info(path, as_json, order):
    """Resolution, field of view, slots, image count and scatterer-count statistics."""
    from .io import summarize

    s = summarize(path, order=order)
    if as_json:
        click.echo(json.dumps(s.as_dict(), indent=2, sort_keys=True))
        return
    c, i = s.counts, s.intensity
    rows = [
        ("file", f"{s.path} ({s.format}{', ' + s.layout if s.layout else ''})"),
        ("resolution", f"{s.resolution} x {s.resolution} px"),
        ("field of view", f"{s.fov:g} Å (pitch {s.pitch:.4f} Å)"),
        ("max_scatterers", str(s.max_scatterers)),
        ("images", str(s.n_images)),
        ("scatterers/image", f"min {c['min']}, median {c['median']:g}, mean {c['mean']:.2f}, "
                             f"max {c['max']} (total {c['total']})"),
        ("intensity", f"min {i['min']:.4g}, max {i['max']:.4g}, mean {i['mean']:.4g}, "
                      f"std {i['std']:.4g}"),
    ]
    kernel = s.meta.get("kernel")
    if kernel:
        params = ", ".join(f"{k}={v}" for k, v in kernel.items() if v is not None and k != "model")
        rows.append(("kernel", f"{kernel.get('model')}: {params}"))
    if "seed" in s.meta:
        rows.append(("generated", f"{s.meta.get('generator')}, seed {s.meta['seed']}, "
                                  f"noise {s.meta.get('noise')}"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        click.echo(f"{k:<{width}}  {v}")


@cli.command()
@click.argument("src", type=click.Path())
@click.argument("dst", type=click.Path())
@click.option("--layout", type=click.Choice(["padded", "ragged"]), default="padded",
              show_default=True)
@ORDER
@_guarded
def convert(src, dst, layout, order):
    """Convert between the row format (.csv, .csv.gz), .npz and a .zarr store; row-format
    and store output are streamed."""
    from .io import convert as run

    n = run(src, dst, layout=layout, order=order)
    click.echo(f"{dst}: wrote {n} images from {src}")


PHYSICS = click.option("--physics", is_flag=True,
                       help="Use the physics model recorded in the file's metadata (sidecar "
                            "or .npz) instead of the kernel row.")


WEIGHTS = click.option("--weights", type=click.Path(dir_okay=False), default=None,
                       help="Checkpoint of a learned method (default: the shipped weights).")


def _method(name, model, grid, row, weights):
    """A detector by name; a learned one without torch, or a bad checkpoint, is a clear
    error (exit 1)."""
    from .methods import make_method

    try:
        return make_method(name, model, grid, row, weights=weights)
    except ValueError as exc:
        _fail(str(exc))


def _kernel_for(ds, physics: bool):
    from .inverse import file_kernel
    from .physics import make_kernel

    if not physics:
        return file_kernel(ds.kernel, ds.grid)
    params = dict(ds.meta.get("kernel") or {})
    if not params:
        raise FormatError(ds.meta.get("path", "input"), None, None,
                          "--physics: the file records no kernel model (no metadata)")
    return make_kernel(**params)


def _write_json(path, record) -> None:
    from .io import atomic_output

    with atomic_output(path, compress=False) as f:
        f.write((json.dumps(record, indent=1) + "\n").encode())


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--method", type=click.Choice(["matched", "sparse", "unet", "hybrid"]),
              default="sparse", show_default=True,
              help="unet: the learned detector (extra 'ml'); hybrid: its scatterers refined "
                   "and model-selected by the physics fit of sparse.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Predictions JSON: {\"method\": M, \"positions\": [[[x, y], ...], ...]} "
                   "(unet adds \"confidence\", one list per image).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N images only.")
@WEIGHTS
@PHYSICS
@ORDER
@_guarded
def detect(path, method, out, limit, weights, physics, order):
    """Find the scatterers in every image of PATH (positions in Å, one list per image row)."""
    from .io import read
    from .synth import kernel_image

    ds = read(path, order=order)
    model = _kernel_for(ds, physics)
    row = kernel_image(model, ds.grid) if physics else ds.kernel
    detector = _method(method, model, ds.grid, row, weights)
    n = ds.n_images if limit is None else min(limit, ds.n_images)
    found, confidence = [], []
    with progress(n, f"detect ({method})") as bar:
        for s in range(0, n, 64):
            images = np.asarray(ds.images[s:min(n, s + 64)])
            if method == "unet":  # a batch at once, with confidences
                pos, conf = detector.detect(images)
                confidence += [np.round(c, 4).tolist() for c in conf]
            else:
                pos = [detector(img) for img in images]
            found += [np.asarray(p).round(6).tolist() for p in pos]
            bar.update(len(images))
    record = {"method": method, "positions": found}
    if confidence:
        record["confidence"] = confidence
    _write_json(out, record)
    total = sum(len(f) for f in found)
    click.echo(f"{out}: {total} scatterers in {n} images ({method})")


@cli.command("kernel")
@click.argument("path", type=click.Path())
@click.option("--method", type=click.Choice(["lsq", "blind", "vae", "direct"]), default="lsq",
              show_default=True,
              help="lsq: least squares with the file's positions; blind: from the images alone; "
                   "vae: learned, two-step latent alignment (extra 'ml'); direct: its one-step "
                   "baseline.")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Kernel image (.npy), indexed [iy, ix] on the file's grid.")
@click.option("--images", "n_images", type=click.IntRange(min=1), default=8, show_default=True,
              help="How many images to use.")
@WEIGHTS
@ORDER
@_guarded
def kernel_cmd(path, method, out, n_images, weights, order):
    """Estimate the single-scatterer kernel from the images; compare with the kernel row."""
    from .bench import kernel_nmse
    from .inverse import blind_kernel, kernel_from_positions
    from .io import atomic_output, read

    ds = read(path, order=order)
    n = min(n_images, ds.n_images)
    if n == 0:
        raise FormatError(path, None, None, "no images to estimate a kernel from")
    images = ds.images[:n]
    if method in ("vae", "direct"):
        img = _learned_kernel(images, ds.grid, method, weights)
    elif method == "lsq":
        img = kernel_from_positions(images, ds.positions[:n], ds.grid).image(ds.grid)
    else:
        img = blind_kernel(images, ds.grid)[0].image(ds.grid)
    with atomic_output(out, compress=False) as f:
        np.save(f, img)
    click.echo(f"{out}: kernel from {n} images ({method}); NMSE against the file's kernel row "
               f"(best scale and sign): {kernel_nmse(img, ds.kernel):.3e}")


def _learned_kernel(images, grid, method, weights) -> np.ndarray:
    """The learned kernel extractor's estimate, scaled like the kernel row is not known:
    unit RMS (compare with best scale and sign)."""
    from .methods import learned_available

    if not learned_available():
        _fail(f"method {method!r} needs torch: pip install 'qpiset[ml]'")
    from .ml.kernel_vae import load_kernel_extractor

    try:
        extractor, state = load_kernel_extractor(weights)
    except ValueError as exc:
        _fail(str(exc))
    res, fov = state["grid"]
    if grid.resolution != int(res):
        _fail(f"the kernel model takes {int(res)} px images, these have {grid.resolution}")
    if abs(grid.fov / float(fov) - 1) > 0.1:
        click.echo(f"warning: the kernel model was trained on a {float(fov):g} Å field, these "
                   f"images cover {grid.fov:g} Å", err=True)
    try:
        return extractor(images, method)
    except ValueError as exc:  # e.g. a checkpoint without the one-step baseline
        _fail(f"{weights or 'the shipped kernel model'}: {exc}")


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--methods", default="matched,sparse", show_default=True,
              help="Comma-separated detectors to run (matched, sparse; unet and hybrid with "
                   "the extra 'ml'), and optionally "
                   "'oracle', a fit started at the true positions (a reference that uses the "
                   "truth); empty for none.")
@click.option("--predictions", "prediction_files", multiple=True, type=click.Path(),
              help="Someone's predictions JSON to score the same way (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Results JSON; a Markdown table is written beside it (.md).")
@click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=1.5,
              show_default=True, help="Matching tolerance (Å).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="First N images only.")
@WEIGHTS
@PHYSICS
@ORDER
@_guarded
def bench(path, methods, prediction_files, out, tol, limit, weights, physics, order):
    """Run detectors on every image of PATH and score them against the file's positions."""
    from .bench import markdown_table, run_benchmark
    from .io import atomic_output, read
    from .methods import DETECTOR_NAMES, LEARNED, learned_available

    ds = read(path, order=order)
    names = [m.strip() for m in methods.split(",") if m.strip()]
    for m in names:
        if m not in DETECTOR_NAMES + ("oracle",):
            raise click.BadParameter(f"unknown method {m!r}", param_hint="--methods")
        if m in LEARNED and not learned_available():
            _fail(f"method {m!r} needs torch: pip install 'qpiset[ml]'")
        if m in LEARNED:  # a bad checkpoint is bad input, named before any work
            from .ml.detector import load_detector

            try:
                load_detector(weights)
            except ValueError as exc:
                _fail(str(exc))
    predictions = {}
    for p in prediction_files:
        predictions[_prediction_name(p, predictions)] = _load_predictions(p, ds.n_images)
    if not names and not predictions:
        raise click.UsageError("nothing to score: give --methods or --predictions")
    n = ds.n_images if limit is None else min(limit, ds.n_images)
    with progress(n * (len(names) + len(predictions)), "bench") as bar:
        results = run_benchmark(ds, names, tol=tol, kernel=_kernel_for(ds, physics) if physics
                                else None, predictions=predictions, limit=limit,
                                on_image=bar.update, weights=weights)
    results["config"]["path"] = str(path)
    _write_json(out, results)
    table = markdown_table(results)
    md = Path(out).with_suffix(".md")
    with atomic_output(md, compress=False) as f:
        f.write(table.encode())
    click.echo(table, nl=False)
    click.echo(f"{out}: results; {md}: table")


@cli.group()
def train() -> None:
    """Train learned models (extra 'ml': pip install 'qpiset[ml]')."""


def _need_torch() -> None:
    from .methods import learned_available

    if not learned_available():
        _fail("training needs torch: pip install 'qpiset[ml]'")


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def _range(ctx, param, value: str):
    try:
        lo, hi = (float(v) for v in value.split(":", 1))
        if not (0 <= lo <= hi and math.isfinite(hi)):
            raise ValueError
        return (lo, hi)
    except ValueError:
        raise click.BadParameter("give LO:HI with 0 <= LO <= HI, e.g. 0:1.2") from None


@train.command("detector")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint (.pt): best weights and the state to resume from.")
@click.option("--data", type=click.Path(), default=None,
              help="Train on this row-format file or .zarr store instead of simulated data.")
@click.option("--simulate", "simulate_", is_flag=True, default=False,
              help="Train on the simulated stream (the default when --data is not given).")
@click.option("--kernels", "n_kernels", type=click.IntRange(min=0), default=48,
              show_default=True, help="Family kernels in the simulated bank (plus Cu(111)).")
@click.option("--kernel-seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--noise", default="0:1.2", show_default=True, callback=_range,
              help="White-noise levels LO:HI (fraction of image std) of the stream.")
@click.option("--default-weight", type=click.FloatRange(min=0, max=1), default=0.25,
              show_default=True,
              help="Fraction of simulated batches made with the default kernel (Cu(111), E_F).")
@click.option("--width", type=click.IntRange(min=4), default=16, show_default=True,
              help="Channels of the network's first level.")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--steps-per-epoch", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=2e-3,
              show_default=True)
@click.option("--patience", type=click.IntRange(min=1), default=10, show_default=True,
              help="Early stopping: epochs without a better validation F1.")
@click.option("--max-minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop after the epoch that passes this wall-clock budget.")
@click.option("--val-images", type=click.IntRange(min=1), default=32, show_default=True,
              help="Validation images per kernel and noise level.")
@click.option("--val-kernels", type=click.IntRange(min=0), default=4, show_default=True,
              help="Held-out family kernels in the validation set.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue the run saved in --out (same settings).")
@click.option("--order", type=click.Choice(["F", "C"]), default="F", show_default=True,
              help="Pixel order of a row-format --data file.")
@_guarded
def train_detector_cmd(out, data, simulate_, n_kernels, kernel_seed, noise, default_weight,
                       order, width, batch_size,
                       steps_per_epoch, epochs, lr, patience, max_minutes, val_images,
                       val_kernels, seed, resume):
    """Train the kernel-conditioned detector (qpiset detect --method unet --weights OUT)."""
    _need_torch()
    if data is not None and simulate_:
        raise click.UsageError("give --data or --simulate, not both")
    from .ml.train import train_detector

    try:
        record = train_detector(
            out, data=data, n_kernels=n_kernels, kernel_seed=kernel_seed, width=width,
            batch_size=batch_size, steps_per_epoch=steps_per_epoch, epochs=epochs, lr=lr,
            noise=noise, default_weight=default_weight, patience=patience, seed=seed,
            resume=resume, max_minutes=max_minutes, val_images=val_images,
            val_kernels=val_kernels, order=order, progress=_steps_bar, log=_echo_err)
    except ValueError as exc:
        _fail(str(exc))
    best = record["val_best"]
    click.echo(f"{out}: detector after {record['step']} steps ({record['seconds'] / 60:.1f} min); "
               f"validation F1 {best['all']['f1']:.3f}, 51-100 scatterers "
               f"{best['51-100'].get('f1', float('nan')):.3f}; thresholds "
               f"{record['threshold']:g}/{record['high']:g}")


def _steps_bar(total: int, desc: str):
    bar = progress(total, desc)
    bar.unit = "step"
    return bar


@train.command("kernel-vae")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Checkpoint (.pt): VAE, observation encoder and one-step baseline.")
@click.option("--kernels", "n_kernels", type=click.IntRange(min=3), default=240,
              show_default=True, help="Kernels in the family (from the physics engine).")
@click.option("--test-kernels", "n_test", type=click.IntRange(min=1), default=40,
              show_default=True, help="Kernels held out for testing.")
@click.option("--images-per-kernel", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--vae-steps", type=click.IntRange(min=1), default=3000, show_default=True,
              help="Step 1: the VAE of kernels.")
@click.option("--observer-steps", type=click.IntRange(min=1), default=5000, show_default=True,
              help="Step 2: the observation encoder; the one-step baseline gets the same.")
@click.option("--align-weight", type=click.FloatRange(min=0), default=0.1, show_default=True,
              help="Weight of the latent distance in step 2's loss (besides the decoded "
                   "kernel's error).")
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--latent", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--width", type=click.IntRange(min=4), default=16, show_default=True)
@click.option("--noise", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Training white noise up to this fraction of image std.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes building the kernel bank (the result does not depend on it).")
@_guarded
def train_kernel_vae_cmd(out, n_kernels, n_test, images_per_kernel, vae_steps, observer_steps,
                         align_weight, batch_size, latent, width, noise, seed, workers):
    """Train the kernel extractor (two-step latent alignment, and the one-step baseline)."""
    _need_torch()
    from .ml.train_kernel import train_kernel_vae

    try:
        record = train_kernel_vae(
            out, n_kernels=n_kernels, n_test=n_test, images_per_kernel=images_per_kernel,
            vae_steps=vae_steps, observer_steps=observer_steps, align_weight=align_weight,
            batch_size=batch_size, latent=latent, width=width, noise=noise, seed=seed,
            workers=workers, progress=_steps_bar, log=_echo_err)
    except ValueError as exc:
        _fail(str(exc))
    ev = record["evaluation"]
    click.echo(f"{out}: held-out kernel NMSE (single image) two-step "
               f"{ev['vae']['nmse_image_mean']:.3f}, one-step {ev['direct']['nmse_image_mean']:.3f}"
               f" ({100 * ev['improvement']:.0f} % lower); {record['seconds'] / 60:.1f} min")


def _prediction_name(path, taken) -> str:
    name = Path(path).stem
    while name in taken:
        name += "'"
    return name


def _load_json(path):
    """A JSON file's content; a missing file or bad JSON is a FormatError naming the place."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise FormatError(path, None, None, "no such file") from None
    except json.JSONDecodeError as exc:
        raise FormatError(path, exc.lineno, exc.colno, f"not JSON: {exc.msg}") from None


def _load_predictions(path, n_images: int) -> list:
    """Read a predictions JSON; malformed content is a FormatError naming the place."""
    record = _load_json(path)
    positions = record.get("positions") if isinstance(record, dict) else None
    if not isinstance(positions, list):
        raise FormatError(path, None, None, 'expected {"positions": [[[x, y], ...], ...]}')
    if len(positions) != n_images:
        raise FormatError(path, None, None, f"{len(positions)} position lists for "
                                            f"{n_images} images")
    out = []
    for i, p in enumerate(positions):
        try:
            arr = np.asarray(p, dtype=float).reshape(-1, 2)
        except (TypeError, ValueError):
            raise FormatError(path, None, None, f"image {i}: positions must be [x, y] pairs") from None
        if not np.all(np.isfinite(arr)):
            raise FormatError(path, None, None, f"image {i}: non-finite position")
        out.append(arr)
    return out


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--index", type=click.IntRange(min=0), default=0, show_default=True,
              help="Image to show (0 = the first image row, after the kernel row).")
@click.option("--out", type=click.Path(dir_okay=False), required=True,
              help="Figure file: .png, .pdf or .svg.")
@click.option("--predictions", type=click.Path(), default=None,
              help="Detections JSON (qpiset detect): mark found, missed and extra scatterers.")
@click.option("--contributions", is_flag=True,
              help="Draw each scatterer's term, their sum and what is left instead.")
@click.option("--tol", type=click.FloatRange(min=0, min_open=True), default=1.5,
              show_default=True, help="Matching tolerance (Å) for --predictions.")
@ORDER
@_guarded
def show(path, index, out, predictions, contributions, tol, order):
    """Draw image INDEX of PATH: overlays, kernel, radial profile and q-space (Å, 1/Å).

    When the file records its physics model (sidecar or .npz), the profile shows it and
    the q-space ring is its 2k_F; otherwise the ring is estimated from the kernel row."""
    from .io import atomic_output, read
    from .viz import FORMATS, figure_bytes, figure_contributions, figure_show

    fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise click.BadParameter(f"{out}: the suffix must be one of "
                                 f"{', '.join('.' + f for f in FORMATS)}", param_hint="--out")
    ds = read(path, order=order)
    if index >= ds.n_images:
        raise click.BadParameter(f"{path} has {ds.n_images} images (0..{ds.n_images - 1})",
                                 param_hint="--index")
    model = _recorded_model(ds)
    if contributions:
        fig = figure_contributions(ds, index, kernel_model=model)
    else:
        pred = None if predictions is None else _load_predictions(predictions, ds.n_images)[index]
        name = None if predictions is None else Path(predictions).stem
        fig = figure_show(ds, index, predictions=pred, tol=tol, kernel_model=model, method=name)
    with atomic_output(out, compress=False) as f:
        f.write(figure_bytes(fig, fmt))
    click.echo(f"{out}: image {index} of {path}")


@cli.command()
@click.argument("path", type=click.Path())
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="HTML file.")
@click.option("--results", type=click.Path(), default=None,
              help="Benchmark results JSON (qpiset bench --out): tables and example overlays.")
@click.option("--gallery", type=click.IntRange(min=0), default=8, show_default=True,
              help="Images in the gallery.")
@ORDER
@_guarded
def report(path, out, results, gallery, order):
    """One self-contained HTML page: summary, kernel, gallery, q-space, benchmark."""
    from .io import atomic_output, read
    from .viz import build_report

    ds = read(path, order=order)
    res = None if results is None else _load_results(results)
    page = build_report(ds, label=str(path), results=res, gallery=gallery,
                        kernel_model=_recorded_model(ds))
    with atomic_output(out, compress=False) as f:
        f.write(page.encode("utf-8"))
    click.echo(f"{out}: report on {path} ({len(page) / 1e6:.1f} MB)")


def _recorded_model(ds):
    """The physics model the file's metadata records, or None (figures then estimate)."""
    from .physics import make_kernel

    params = dict(ds.meta.get("kernel") or {})
    if not params:
        return None
    try:
        return make_kernel(**params)
    except (TypeError, ValueError) as exc:
        click.echo(f"warning: the recorded kernel model is not usable ({exc}); "
                   "estimating from the kernel row", err=True)
        return None


def _load_results(path) -> dict:
    """Read a benchmark results JSON; malformed content is a FormatError naming the place."""
    record = _load_json(path)
    methods = record.get("methods") if isinstance(record, dict) else None
    if not isinstance(methods, dict) or not all(
            isinstance(m, dict) and isinstance(m.get("bands"), dict) for m in methods.values()):
        raise FormatError(path, None, None, 'expected qpiset bench results: {"methods": '
                                            '{name: {"bands": ..., "overall": ...}}}')
    return record


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), default="demo", show_default=True,
              help="Output folder.")
@click.option("--n", "n", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--bench-images", type=click.IntRange(min=0), default=20, show_default=True,
              help="Images to benchmark the detectors on (0: skip).")
@_guarded
def demo(out, n, seed, bench_images):
    """The main job on built-in defaults: generate the seed dataset, validate it, print
    info, benchmark the detectors."""
    from .pipeline import run_demo

    run_demo(Path(out), n=n, seed=seed, echo=click.echo, progress=progress,
             bench_images=bench_images)


def _one_line_warning(message, category, filename, lineno, file=None, line=None):
    """Warnings as ``warning: message`` on stderr (no source lines for users)."""
    click.echo(f"warning: {message}", err=True)


def main() -> None:
    cli(prog_name="qpiset")


if __name__ == "__main__":  # pragma: no cover
    main()
