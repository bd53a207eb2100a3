"""Renamed parameters keep working: the old keyword is accepted with a ``FutureWarning``."""

from __future__ import annotations

import functools
import warnings

__all__ = ["renamed_parameters"]


def renamed_parameters(**old_to_new: str):
    """Decorate a function or constructor so that each old keyword is passed on under its new name,
    with a ``FutureWarning``; giving both is an error. (A :class:`~.base.Kernel` subclass
    declares ``renamed = {old: new}`` and gets this applied to its constructor.)

    Examples
    --------
    >>> class K:
    ...     @renamed_parameters(tp="t_prime")
    ...     def __init__(self, t_prime=0.0):
    ...         self.t_prime = t_prime
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     K(tp=0.3).t_prime, w[0].category.__name__
    (0.3, 'FutureWarning')
    """
    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            for old, new in old_to_new.items():
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"give {new} (the new name of {old}), not both")
                    owner = fn.__qualname__.replace(".__init__", "")
                    warnings.warn(f"parameter {old!r} of {owner} is now called "
                                  f"{new!r}; the old name will be removed", FutureWarning,
                                  stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return fn(*args, **kwargs)

        return inner

    return wrap
