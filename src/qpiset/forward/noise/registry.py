"""The noise models by name: one registry for ``--noise`` specs, recorded metadata and
``qpiset generate --help``. A new model is its module plus one line here."""

from __future__ import annotations

from .base import NoiseModel
from .blur import TipBlur
from .chain import Chain
from .lines import ScanLines
from .pink import PinkNoise
from .setpoint import Setpoint
from .white import White

__all__ = ["NOISE_MODELS", "SPEC_NAMES", "register_noise", "parse_noise", "noise_from_params",
           "as_noise"]

#: Noise models by the ``"model"`` name of their parameters.
NOISE_MODELS: dict[str, type[NoiseModel]] = {}


def register_noise(cls: type[NoiseModel]) -> type[NoiseModel]:
    """Add a model under ``cls.name`` (its spec names come from ``cls.specs``)."""
    if not (isinstance(cls, type) and issubclass(cls, NoiseModel)) or not cls.name \
            or cls.name == "chain":
        raise TypeError(f"register a named NoiseModel subclass, got {cls!r}")
    NOISE_MODELS[cls.name] = cls
    return cls


for _cls in (White, PinkNoise, ScanLines, TipBlur, Setpoint):
    register_noise(_cls)


def _specs() -> dict[str, tuple[type[NoiseModel], tuple[int, int, str]]]:
    """``spec name -> (class, (fewest values, most values, meaning))``."""
    return {name: (cls, spec) for cls in NOISE_MODELS.values() for name, spec in cls.specs.items()}


#: The model names :func:`parse_noise` accepts (of the built-in models).
SPEC_NAMES: tuple[str, ...] = tuple(_specs())


def _valid_names() -> str:
    return ", ".join(f"{name} ({meaning})" for name, (_, (_, _, meaning)) in _specs().items())


def parse_noise(spec: str) -> Chain | None:
    """Read a noise specification (the ``--noise`` text) into a :class:`Chain`.

    Grammar::

        spec  := number | "none" | "" | item ("," item)*
        item  := number                      (same as white:number)
               | name ":" number (":" number)*
        name  := white | snr | pink | 1/f | lines | blur | setpoint     (case-insensitive)

    ``white:F`` noise std = F x image std; ``snr:S`` std(image)/std(noise) = S;
    ``pink:F[:ALPHA]`` (or ``1/f``) 1/f^ALPHA noise in time along the scan, std = F x image
    std (ALPHA defaults to 1); ``lines:F[:J]`` per-line offsets with std F x image std, and
    line jitter with std J Å; ``blur:SIGMA`` Gaussian tip blur of SIGMA Å;
    ``setpoint:C`` setpoint effect of strength C. Items apply left to right. A bare number
    is the historical meaning of ``--noise`` (white noise fraction); ``"0"``, ``""`` and
    ``"none"`` mean no noise and give ``None``.

    Raises
    ------
    ValueError
        Naming the bad item and listing the valid names.

    Examples
    --------
    >>> parse_noise("0.1")
    Chain(White(level=0.1, reference='std'))
    >>> parse_noise("blur:1.5, white:0.1").spec()
    'blur:1.5,white:0.1'
    >>> parse_noise("0") is None
    True
    """
    if not isinstance(spec, str):
        raise ValueError(f"noise spec must be a string, got {spec!r}")
    text = spec.strip()
    if text.lower() in ("", "none", "off"):
        return None
    try:
        if float(text) == 0:
            return None
    except ValueError:
        pass
    models = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            raise ValueError(f"noise spec {spec!r} has an empty item; give items like "
                             f"'white:0.1' separated by commas. Valid names: {_valid_names()}")
        fields = [f.strip() for f in item.split(":")]
        name = fields[0].lower()
        values_text = fields[1:]
        if len(fields) == 1:
            try:
                float(name)
            except ValueError:
                raise ValueError(f"noise item {item!r}: expected name:value; valid names: "
                                 f"{_valid_names()}") from None
            name, values_text = "white", fields
        table = _specs()
        if name not in table:
            raise ValueError(f"noise item {item!r}: unknown model {fields[0]!r}; valid names: "
                             f"{_valid_names()}")
        cls, (lo, hi, meaning) = table[name]
        if not lo <= len(values_text) <= hi:
            count = f"{lo}" if lo == hi else f"{lo} to {hi}"
            raise ValueError(f"noise item {item!r}: {name!r} takes {count} value(s) "
                             f"({meaning}), got {len(values_text)}")
        values = []
        for v in values_text:
            try:
                values.append(float(v))
            except ValueError:
                raise ValueError(f"noise item {item!r}: {v!r} is not a number "
                                 f"({name}:{meaning})") from None
        try:
            models.append(cls.from_spec(name, values))
        except ValueError as exc:
            raise ValueError(f"noise item {item!r}: {exc}") from None
    return Chain(*models)


def noise_from_params(params: dict | None) -> NoiseModel | None:
    """Rebuild a model from its :meth:`~.base.NoiseModel.params` (e.g. a dataset's
    metadata); ``None`` (no noise) gives ``None``.

    Examples
    --------
    >>> m = Chain(Setpoint(0.3), ScanLines(0.05, 0.2), White(20, reference="snr"))
    >>> noise_from_params(m.params()) == m
    True
    """
    if params is None:
        return None
    if not isinstance(params, dict) or "model" not in params:
        raise ValueError(f"noise parameters must be a dict with a 'model' key, got {params!r}")
    kind = params["model"]
    rest = {k: v for k, v in params.items() if k != "model"}
    if kind == "chain":
        if set(rest) != {"models"} or not isinstance(rest["models"], list):
            raise ValueError(f"chain parameters must be {{'model': 'chain', 'models': [...]}}, "
                             f"got {params!r}")
        return Chain(*(noise_from_params(p) for p in rest["models"]))
    if kind not in NOISE_MODELS:
        raise ValueError(f"unknown noise model {kind!r}; known: chain, "
                         f"{', '.join(NOISE_MODELS)}")
    return NOISE_MODELS[kind].from_params(rest)


def as_noise(value) -> NoiseModel | None:
    """A noise model from what a user or a file gives: a model, its recorded parameters
    (dict), a white-noise fraction (number; 0 for none), a ``--noise`` spec (a single item
    stays unwrapped, so ``"0.1"`` records ``{"model": "white", "fraction": 0.1}``), or
    ``None``.

    Examples
    --------
    >>> as_noise(0.1)
    White(level=0.1, reference='std')
    >>> as_noise("blur:1,white:0.1").spec()
    'blur:1.0,white:0.1'
    >>> as_noise(0) is None
    True
    """
    if value is None or isinstance(value, NoiseModel):
        return value
    if isinstance(value, dict):
        return noise_from_params(value)
    if isinstance(value, str):
        chain = parse_noise(value)
        if chain is not None and len(chain.models) == 1:
            return chain.models[0]
        return chain
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"noise must be a noise model, its parameters, a number or a spec, "
                         f"got {value!r}")
    return White(float(value)) if value > 0 else None
