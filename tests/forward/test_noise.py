"""Noise and instrument models: their formulas, composition, spec grammar and seeding.

Statistical checks use fixed seeds; tolerances are a few standard errors computed from the
number of samples (stated at each check), so a wrong formula fails and a correct one passes
with any seed.
"""

import importlib
import inspect
import json
import pkgutil
import re

import numpy as np
import pytest

from helpers import same_bits
from qpiset.core import Grid, Recipe
from qpiset.forward import BLOCK, simulate, simulate_blocks
from qpiset.forward.noise import (NOISE_MODELS, SPEC_NAMES, Chain, NoiseModel, PinkNoise,
                                  ScanLines, Setpoint, TipBlur, White, noise_from_params,
                                  parse_noise)

GRID = Grid(64, 100.0)


def rng(seed=0):
    return np.random.default_rng(seed)


def clean_stack(n=8, res=64, seed=0):
    """Smooth random images ``delta rho / rho0`` with stds 0.05 .. 0.4 (varying density)."""
    from scipy.ndimage import gaussian_filter

    raw = gaussian_filter(rng(seed).standard_normal((n, res, res)), (0, 2, 2))
    raw /= raw.std(axis=(1, 2), keepdims=True)
    return raw * np.linspace(0.05, 0.4, n)[:, None, None]


def all_models():
    return [White(0.2), White(5.0, reference="snr"), PinkNoise(0.1, 1.5), ScanLines(0.05, 0.3),
            TipBlur(2.0), Setpoint(0.2),
            Chain(Setpoint(0.1), TipBlur(1.0), ScanLines(0.02), PinkNoise(0.05), White(0.1))]


# --------------------------------------------------------------------------- White


def test_white_std_is_level_times_clean_std():
    clean = clean_stack(n=40)
    level = 0.3
    noise = White(level)(clean, rng(1)) - clean
    ratio = noise.std(axis=(1, 2)) / clean.std(axis=(1, 2))
    # sample std of m Gaussian values: relative standard error 1/sqrt(2m)
    per_image = 1 / np.sqrt(2 * 64 * 64)
    assert np.all(np.abs(ratio / level - 1) < 5 * per_image)
    assert abs(ratio.mean() / level - 1) < 5 * per_image / np.sqrt(len(ratio))
    assert abs(noise.mean()) < 5 * level * clean.std() / np.sqrt(noise.size)


def test_snr_is_clean_std_over_noise_std():
    clean = clean_stack(n=20)
    snr = 8.0
    noise = White(snr, reference="snr")(clean, rng(2)) - clean
    measured = clean.std(axis=(1, 2)) / noise.std(axis=(1, 2))
    assert abs(measured.mean() / snr - 1) < 5 / np.sqrt(2 * noise.size)
    # SNR 10 is the fraction 0.1, to the last bit; SNR inf is no noise
    assert same_bits(White(10, reference="snr")(clean, rng(3)), White(0.1)(clean, rng(3)))
    assert same_bits(White(np.inf, reference="snr")(clean, rng(3)), clean)
    assert White(4, reference="snr").fraction == 0.25


def reference_white(clean, fraction, generator):
    """The documented white-noise rule, written out: clean + fraction * std(clean) * z,
    one image after the other, z from ``generator.standard_normal((R, R))``."""
    return np.array([img + fraction * float(np.std(img)) * generator.standard_normal(img.shape)
                     for img in clean])


def test_white_follows_its_formula_draw_for_draw():
    clean = clean_stack(n=5)
    a, b = rng(7), rng(7)
    assert same_bits(White(0.1)(clean, a), reference_white(clean, 0.1, b))
    assert a.random() == b.random()  # same number of draws
    # a single (R, R) image works too and gives an (R, R) image
    assert same_bits(White(0.4)(clean[0], rng(9)), reference_white(clean[:1], 0.4, rng(9))[0])


def test_white_reproduces_the_bytes_of_existing_noisy_datasets(cu):
    """simulate(noise=0.1) == clean images + the white-noise rule with the per-block noise
    seeds of the reproducibility contract (so files made before keep their bytes)."""
    grid, n, seed = Grid(16, 30.0), BLOCK + 5, 12
    noisy = simulate(cu, grid, n=n, seed=seed, max_scatterers=3, noise=0.1)
    for start, clean, _, _ in simulate_blocks(cu, grid,
                                                   Recipe(n=n, seed=seed, max_scatterers=3)):
        noise_ss = np.random.SeedSequence(seed, spawn_key=(start // BLOCK,)).spawn(2)[1]
        expected = reference_white(clean, 0.1, np.random.default_rng(noise_ss))
        assert same_bits(expected, noisy.images[start:start + len(clean)])


# --------------------------------------------------------------------------- 1/f noise


def raster_spectrum_slope(noise):
    """Log-log slope of the mean Hann-windowed periodogram of each image in raster order.

    Returns ``(slope, standard error)``: the periodogram averaged over n images has a
    relative scatter ~1/sqrt(n) per frequency (x sqrt(2) for the window's correlation of
    neighbouring bins), which the least-squares fit turns into the slope's error.
    """
    series = noise.reshape(len(noise), -1)
    m = series.shape[1]
    power = (np.abs(np.fft.rfft(series * np.hanning(m), axis=1)) ** 2).mean(axis=0)
    f = np.fft.rfftfreq(m)
    keep = (f >= 8 / m) & (f <= 0.4)
    logf, logp = np.log(f[keep]), np.log(power[keep])
    slope = np.polyfit(logf, logp, 1)[0]
    error = np.sqrt(2 / len(noise)) / np.sqrt(((logf - logf.mean()) ** 2).sum())
    return slope, error


@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_pink_noise_spectrum_along_the_scan_is_one_over_f_alpha(alpha):
    clean = clean_stack(n=32)
    noise = PinkNoise(1.0, exponent=alpha)(clean, rng(3)) - clean
    slope, error = raster_spectrum_slope(noise)
    assert abs(slope + alpha) < 5 * error, (slope, error)


def test_pink_noise_std_is_exactly_level_times_clean_std_and_zero_mean():
    clean = clean_stack(n=6)
    noise = PinkNoise(0.25, 1.0)(clean, rng(4)) - clean
    np.testing.assert_allclose(noise.std(axis=(1, 2)), 0.25 * clean.std(axis=(1, 2)),
                               rtol=1e-12)
    np.testing.assert_allclose(noise.mean(axis=(1, 2)), 0, atol=1e-12)


def test_pink_noise_is_streaky_along_x():
    """Neighbours along a line are closer in time (1 dwell) than across lines (R dwells)."""
    noise = PinkNoise(1.0, 1.0)(clean_stack(n=16), rng(5)) - clean_stack(n=16)
    along = np.mean(np.diff(noise, axis=2) ** 2)
    across = np.mean(np.diff(noise, axis=1) ** 2)
    assert along < 0.8 * across


# --------------------------------------------------------------------------- scan lines


def test_scan_line_offsets_constant_along_lines_with_stated_std():
    clean = clean_stack(n=30)
    level = 0.2
    step = ScanLines(level)(clean, rng(6)) - clean
    np.testing.assert_allclose(step, np.broadcast_to(step[:, :, :1], step.shape), atol=1e-12)
    per_line = step[:, :, 0] / clean.std(axis=(1, 2))[:, None]
    assert len(np.unique(per_line)) == per_line.size  # every line has its own offset
    # the documented draws: offsets are the first (n, R) standard normals
    np.testing.assert_allclose(per_line, level * rng(6).standard_normal((30, 64)), rtol=1e-9)
    assert abs(per_line.std() / level - 1) < 5 / np.sqrt(2 * per_line.size)


def test_scan_line_jitter_shifts_each_line_by_its_drawn_amount():
    wavelength, jitter = 15.0, 0.8  # Å; Cu(111) Friedel period, 0.5 px jitter
    x, _ = GRID.meshgrid()
    image = np.broadcast_to(np.sin(2 * np.pi * x / wavelength), (4, 64, 64))
    out = ScanLines(0.0, jitter)(image, rng(5), grid=GRID)
    draws = rng(5)
    draws.standard_normal((4, 64))                     # the offsets
    shift = jitter * draws.standard_normal((4, 64))    # Å, per line
    expected = np.sin(2 * np.pi * (x - shift[:, :, None]) / wavelength)
    # cubic-spline error bound (5/384) h^4 max|f''''| = (5/384) (k h)^4, with a factor 2
    kh = 2 * np.pi * GRID.pitch / wavelength
    interior = np.s_[:, :, 4:-4]  # away from the edge-replicated border
    assert np.abs(out - expected)[interior].max() < 2 * 5 / 384 * kh**4
    assert abs(shift.std() / jitter - 1) < 5 / np.sqrt(2 * shift.size)
    with pytest.raises(ValueError, match="grid"):
        ScanLines(0.1, 0.5)(image, rng(0))


def test_draws_do_not_depend_on_parameter_values():
    clean = clean_stack(n=2, res=16)
    for a, b in [(White(0.0), White(0.3)), (ScanLines(0.0), ScanLines(0.2, 0.4)),
                 (PinkNoise(0.0, 0.0), PinkNoise(0.2, 2.0))]:
        ra, rb = rng(1), rng(1)
        a(clean, ra, grid=Grid(16, 20.0))
        b(clean, rb, grid=Grid(16, 20.0))
        assert ra.random() == rb.random(), (a, b)


# --------------------------------------------------------------------------- tip blur


def second_moment_width(image, grid):
    x, y = grid.meshgrid()
    w = image / image.sum()
    return np.sqrt((w * x**2).sum()), np.sqrt((w * y**2).sum())


@pytest.mark.parametrize("spot, sigma", [(3.0, 4.0), (2.0, 1.5)])
def test_tip_blur_widths_add_in_quadrature(spot, sigma):
    x, y = GRID.meshgrid()
    image = np.exp(-(x**2 + y**2) / (2 * spot**2))
    assert second_moment_width(image, GRID) == pytest.approx((spot, spot), rel=1e-3)
    blurred = TipBlur(sigma)(image, grid=GRID)
    # the 4-sigma cut of the filter lowers its variance by ~1e-3: 1 % is ample
    assert second_moment_width(blurred, GRID) == pytest.approx(
        (np.hypot(spot, sigma),) * 2, rel=0.01)
    assert blurred.sum() == pytest.approx(image.sum(), rel=1e-6)


def test_tip_blur_keeps_constants_and_zero_width_is_identity():
    flat = np.full((3, 64, 64), -1.7)
    np.testing.assert_allclose(TipBlur(5.0)(flat, grid=GRID), flat, rtol=1e-12)
    clean = clean_stack(n=2)
    assert same_bits(TipBlur(0.0)(clean, grid=GRID), clean)
    with pytest.raises(ValueError, match="grid"):
        TipBlur(1.0)(clean)
    with pytest.raises(ValueError, match="32"):
        TipBlur(1.0)(clean, grid=Grid(32, 50.0))


# --------------------------------------------------------------------------- setpoint


def test_setpoint_formula_and_limits():
    clean = clean_stack(n=3)
    c = 0.3
    out = Setpoint(c)(clean)
    np.testing.assert_allclose(out, (1 + clean) / (1 + c * clean) - 1, rtol=1e-12, atol=1e-15)
    assert same_bits(Setpoint(0.0)(clean), clean)           # no setpoint effect
    assert np.all(Setpoint(1.0)(clean) == 0)                # complete cancellation
    assert np.all(Setpoint(0.7)(np.zeros((2, 8, 8))) == 0)  # clean surface stays clean
    # invertible: img = out / (1 - c - c out)
    np.testing.assert_allclose(out / (1 - c - c * out), clean, rtol=1e-10, atol=1e-14)


def test_setpoint_first_order_is_contrast_times_one_minus_c():
    clean = clean_stack(n=2)
    c = 0.4
    for eps in (1e-2, 1e-3):
        out = Setpoint(c)(eps * clean) / eps
        # out = (1 - c) img - c (1 - c) eps img^2 + O(eps^2)
        second = -c * (1 - c) * eps * clean**2
        assert np.abs(out - (1 - c) * clean - second).max() < 2 * c**2 * eps**2 * np.abs(
            clean).max() ** 3


def test_setpoint_rejects_negative_integrated_ldos():
    image = np.zeros((3, 4, 4))
    image[2, 1, 1] = -2.5
    with pytest.raises(ValueError, match="image 2"):
        Setpoint(0.5)(image)
    Setpoint(0.39)(image)  # 1 - 0.39 * 2.5 > 0
    with pytest.raises(ValueError, match="image 0"):
        Setpoint(-0.5)(np.full((1, 2, 2), 3.0))


# --------------------------------------------------------------------------- composition


def test_chain_applies_in_order_sharing_the_generator():
    clean = clean_stack(n=3)
    a, b = ScanLines(0.1, 0.4), White(0.2)
    chained = Chain(a, b)(clean, rng(8), grid=GRID)
    r = rng(8)
    assert same_bits(chained, b(a(clean, r, grid=GRID), r))
    assert same_bits(Chain(White(0.1))(clean, rng(8)), White(0.1)(clean, rng(8)))
    # the setpoint map is nonlinear, so it does not commute with the blur
    sharp = clean_stack(n=1)
    one = Chain(TipBlur(3.0), Setpoint(0.5))(sharp, grid=GRID)
    other = Chain(Setpoint(0.5), TipBlur(3.0))(sharp, grid=GRID)
    assert np.abs(one - other).max() > 1e-4
    assert same_bits(Chain()(clean), clean)


@pytest.mark.parametrize("model", all_models(), ids=repr)
def test_params_round_trip_and_spec_round_trip(model):
    params = json.loads(json.dumps(model.params()))
    assert isinstance(params["model"], str)
    again = noise_from_params(params)
    assert again == model and again.params() == model.params()
    chain = parse_noise(model.spec())
    assert list(chain) == (list(model) if isinstance(model, Chain) else [model])
    clean = clean_stack(n=2)
    assert same_bits(again(clean, rng(4), grid=GRID), model(clean, rng(4), grid=GRID))


@pytest.mark.parametrize("model", all_models(), ids=repr)
def test_deterministic_and_input_untouched(model):
    clean = clean_stack(n=3)
    clean.setflags(write=False)  # writing into it would raise
    before = clean.copy()
    first = model(clean, rng(11), grid=GRID)
    assert same_bits(first, model(clean, rng(11), grid=GRID))
    assert same_bits(clean, before)
    assert first is not clean and first.shape == clean.shape and first.dtype == np.float64
    if model.stochastic:
        assert not np.array_equal(first, model(clean, rng(12), grid=GRID))


def test_legacy_white_noise_record_rebuilds():
    """Files written before the noise module record white noise as {model, fraction}."""
    assert noise_from_params({"model": "white", "fraction": 0.1}) == White(0.1)
    assert White(0.1).params() == {"model": "white", "fraction": 0.1}
    assert noise_from_params(None) is None


# --------------------------------------------------------------------------- spec grammar


@pytest.mark.parametrize("spec, expected", [
    ("0.1", Chain(White(0.1))),
    (" white:0.1 , lines:0.05 ", Chain(White(0.1), ScanLines(0.05))),
    ("snr:10", Chain(White(10.0, reference="snr"))),
    ("pink:0.2", Chain(PinkNoise(0.2, 1.0))),
    ("1/f:0.2:1.5", Chain(PinkNoise(0.2, 1.5))),
    ("LINES:0.1:0.3,Blur:2", Chain(ScanLines(0.1, 0.3), TipBlur(2.0))),
    ("setpoint:-0.2,0.05", Chain(Setpoint(-0.2), White(0.05))),
    ("white:0", Chain(White(0.0))),
])
def test_parse_noise(spec, expected):
    assert parse_noise(spec) == expected


@pytest.mark.parametrize("spec", ["", "  ", "none", "None", "0", "0.0"])
def test_parse_noise_nothing(spec):
    assert parse_noise(spec) is None


@pytest.mark.parametrize("spec, bad", [
    ("white:-0.1", "white:-0.1"),
    ("foo:1", "foo:1"),
    ("white", "white"),
    ("white:0.1,,lines:0.1", "empty"),
    ("lines:0.1:0.2:0.3", "lines:0.1:0.2:0.3"),
    ("white:0.1,blur:abc", "blur:abc"),
    ("snr:0", "snr:0"),
    ("white:nan", "white:nan"),
    ("pink:0.1:-1", "pink:0.1:-1"),
    ("blur:", "blur:"),
    ("-0.5", "-0.5"),
])
def test_parse_noise_errors_name_the_item(spec, bad):
    with pytest.raises(ValueError) as info:
        parse_noise(spec)
    message = str(info.value)
    assert bad in message
    if spec in ("foo:1", "white", "white:0.1,,lines:0.1"):
        assert all(name in message for name in SPEC_NAMES)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("make", [
    lambda: White(-0.1), lambda: White(0.1, reference="dB"), lambda: White(0, "snr"),
    lambda: White(True), lambda: White(np.inf), lambda: PinkNoise(0.1, -0.5),
    lambda: PinkNoise(np.nan), lambda: ScanLines(-0.1), lambda: ScanLines(0.1, -1.0),
    lambda: TipBlur(-1.0), lambda: Setpoint(np.inf), lambda: Setpoint("0.3"),
])
def test_bad_parameters_raise(make):
    with pytest.raises(ValueError):
        make()


def test_bad_inputs_raise():
    clean = clean_stack(n=1)
    with pytest.raises(TypeError, match="Generator"):
        White(0.1)(clean, None)
    with pytest.raises(TypeError, match="Generator"):
        White(0.1)(clean, 42)
    with pytest.raises(TypeError, match="Generator"):
        Chain(TipBlur(1.0), White(0.1))(clean, np.random.RandomState(0), grid=GRID)
    with pytest.raises(ValueError, match="shape"):
        White(0.1)(np.zeros(5), rng())
    bad = clean.copy()
    bad[0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="finite"):
        Setpoint(0.1)(bad)
    with pytest.raises(TypeError):
        Chain(White(0.1), "white")


@pytest.mark.parametrize("params", [
    {"model": "brown", "level": 1}, {"level": 0.1}, {"model": "white"},
    {"model": "white", "fraction": 0.1, "snr": 10}, {"model": "blur", "sigma": 1, "x": 2},
    {"model": "pink"}, {"model": "chain", "models": {}}, [1, 2],
])
def test_noise_from_params_rejects_malformed(params):
    with pytest.raises(ValueError):
        noise_from_params(params)


# --------------------------------------------------------------------------- registry


def noise_model_classes():
    """Every concrete NoiseModel subclass defined in a module of qpiset.forward.noise (found
    by importing each module of the package, so a new model module cannot be missed)."""
    import qpiset.forward.noise as package

    found = set()
    modules = [package] + [importlib.import_module(info.name) for info in
                           pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    for module in modules:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (issubclass(cls, NoiseModel) and not inspect.isabstract(cls)
                    and cls.__module__.startswith(package.__name__ + ".")):
                found.add(cls)
    return found


def spec_values(count):
    """``count`` valid values for any model's spec item (levels, exponents, lengths)."""
    return [0.25, 1.5, 0.75, 2.0][:count]


def test_every_concrete_noise_model_is_registered_under_its_name():
    classes = noise_model_classes()
    # the walk finds the models (it cannot come back empty and pass)
    assert {White, PinkNoise, ScanLines, TipBlur, Setpoint, Chain} <= classes
    for cls in classes - {Chain}:  # a chain is the composition: "chain" is not a model name
        assert cls.name, f"{cls.__name__} declares no name"
        assert NOISE_MODELS.get(cls.name) is cls, f"{cls.__name__} is not NOISE_MODELS[{cls.name!r}]"
        assert cls.specs, f"{cls.__name__} declares no --noise spec names"
        assert set(cls.specs) <= set(SPEC_NAMES), cls.__name__
    assert "chain" not in NOISE_MODELS


def test_every_spec_name_of_every_registered_model_round_trips():
    tried = 0
    for name, cls in NOISE_MODELS.items():
        assert cls.name == name
        for spec_name, (lo, hi, _) in cls.specs.items():
            for count in range(lo, hi + 1):
                text = ":".join([spec_name] + [repr(v) for v in spec_values(count)])
                chain = parse_noise(text)
                assert isinstance(chain, Chain) and len(chain) == 1, text
                model, = chain
                assert type(model) is cls, text
                # params() -> JSON -> noise_from_params gives an equal model, same params
                params = json.loads(json.dumps(model.params()))
                assert params["model"] == name, text
                again = noise_from_params(params)
                assert type(again) is cls and again == model, text
                assert again.params() == model.params(), text
                # spec() -> parse_noise gives the same model
                assert parse_noise(model.spec()) == Chain(model), (text, model.spec())
                assert noise_from_params(json.loads(json.dumps(chain.params()))) == chain, text
                clean = clean_stack(n=2)
                assert same_bits(again(clean, rng(4), grid=GRID), model(clean, rng(4), grid=GRID))
                tried += 1
    assert tried >= len(SPEC_NAMES)


def test_unknown_name_error_lists_every_spec_name():
    names = [n for cls in NOISE_MODELS.values() for n in cls.specs]
    assert set(SPEC_NAMES) <= set(names)
    for spec in ("nosuchmodel:1", "white:0.1,nosuchmodel:1"):
        with pytest.raises(ValueError) as info:
            parse_noise(spec)
        message = str(info.value)
        assert "nosuchmodel" in message
        missing = [n for n in names
                   if not re.search(rf"(?<![\w/]){re.escape(n)}(?![\w/])", message)]
        assert not missing, (missing, message)
    with pytest.raises(ValueError) as info:
        noise_from_params({"model": "nosuchmodel", "level": 1})
    assert all(name in str(info.value) for name in NOISE_MODELS), str(info.value)
