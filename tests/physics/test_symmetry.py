"""Each kernel model declares its rotational symmetry about the scatterer
(``Kernel.rotational_symmetry``), and the declaration holds: rotating the pattern by
``2 pi / n`` leaves it unchanged, and it is no more symmetric than declared."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from qpiset.core import Grid
from qpiset.physics import (BdGKernel, FriedelKernel, ImageKernel, Kernel, LatticeKernel,
                            SampledKernel, TightBinding, make_kernel)
from qpiset.physics.base import ISOTROPIC, measure_rotational_symmetry


def _rotation_error(kernel, angle, radius=20.0):
    """max |K(R r) - K(r)| / max |K| over a polar grid of points within ``radius``."""
    r = np.linspace(0.5, radius, 50)
    phi = np.linspace(0.0, 2 * np.pi, 97)[:-1]
    rr, pp = np.meshgrid(r, phi)
    x, y = rr * np.cos(pp), rr * np.sin(pp)
    ref = kernel.evaluate(x, y)
    c, s = math.cos(angle), math.sin(angle)
    return float(np.max(np.abs(kernel.evaluate(c * x - s * y, s * x + c * y) - ref))
                 / np.max(np.abs(ref)))


def _holds(kernel, n):
    return _rotation_error(kernel, 2 * math.pi / n) < 1e-9


def test_the_base_declares_nothing_and_radial_kernels_are_isotropic():
    assert Kernel.rotational_symmetry is None  # a model that declares nothing: unknown
    assert ISOTROPIC == math.inf
    assert FriedelKernel().rotational_symmetry == ISOTROPIC
    g = Grid(64, 100.0)
    assert SampledKernel.from_image(FriedelKernel().sample(g), g).rotational_symmetry \
        == ISOTROPIC


@pytest.mark.parametrize("kernel, order", [
    (LatticeKernel("square", energy=0.1, mu=-1.0, t_prime=-0.2, reach=25.0), 4),
    (LatticeKernel("honeycomb", energy=0.6, eta=0.05, reach=25.0), 3),
    # on the B site (at tau_B, off the kernel's centre) no rotation about the centre holds
    (LatticeKernel("honeycomb", energy=-0.5, eta=0.05, reach=25.0, impurity_orbital=1), 1),
    (BdGKernel(0.02, pairing="d", reach=25.0), 4),
    (BdGKernel(0.01, pairing="s", scatterer="magnetic", reach=25.0), 4),
    (BdGKernel(0.03, pairing="d", scatterer="magnetic", reach=25.0), 4),
], ids=["square", "honeycomb-A", "honeycomb-B", "bdg-d", "bdg-s-magnetic", "bdg-d-magnetic"])
def test_lattice_declarations_hold_and_are_the_largest(kernel, order):
    assert kernel.rotational_symmetry == order
    assert order == 1 or _holds(kernel, order)
    # no larger group: the next orders fail clearly (a honeycomb site is C3, not C6; the
    # d-wave gap's sign change under 90° leaves the LDOS C4)
    for n in (2, 3, 4, 6):
        if n % order == 0 and n != order or order % n != 0:
            assert _rotation_error(kernel, 2 * math.pi / n) > 0.05, n
    assert _rotation_error(kernel, 1.0) > 0.05  # not isotropic


def _model(lattice, tau, onsite, hoppings):
    return TightBinding(np.array(lattice, float), np.array(tau, float), np.array(onsite, float),
                        tuple(hoppings))


def test_symmetry_from_the_lattice_and_hoppings():
    sq3 = math.sqrt(3) / 2
    triangular = _model([[2.5, 0], [1.25, 2.5 * sq3]], [[0, 0]], [0.0],
                        [(0, 0, (1, 0), -1.0), (0, 0, (0, 1), -1.0), (0, 0, (1, -1), -1.0)])
    assert triangular.rotational_symmetry() == 6
    # the same lattice missing one bond direction keeps only the inversion
    assert _model(triangular.lattice, [[0, 0]], [0.0],
                  [(0, 0, (1, 0), -1.0), (0, 0, (0, 1), -1.0)]).rotational_symmetry() == 2
    rectangle = _model([[2.5, 0], [0, 3.0]], [[0, 0]], [0.0],
                       [(0, 0, (1, 0), -1.0), (0, 0, (0, 1), -0.6)])
    assert rectangle.rotational_symmetry() == 2
    # a square lattice with unequal bonds along x and y: C2
    assert _model([[2.5, 0], [0, 2.5]], [[0, 0]], [0.0],
                  [(0, 0, (1, 0), -1.0), (0, 0, (0, 1), -0.5)]).rotational_symmetry() == 2
    # boron nitride: two sublattices of different on-site energy, C3 about the A site at
    # the origin; an impurity on B (away from the origin) is kept by no rotation about it
    hbn = TightBinding.honeycomb()
    hbn = _model(hbn.lattice, hbn.tau, [0.5, -0.5], hbn.hoppings)
    assert hbn.rotational_symmetry(0) == 3 and hbn.rotational_symmetry(1) == 1
    # the same with B moved to the origin: C3 about it
    shifted = _model(hbn.lattice, hbn.tau - hbn.tau[1], [0.5, -0.5], hbn.hoppings)
    assert shifted.rotational_symmetry(1) == 3
    # a complex hopping along y breaks even the inversion (E(k) != E(-k)); no gauge is tried
    assert _model([[2.5, 0], [0, 2.5]], [[0, 0]], [0.0],
                  [(0, 0, (1, 0), -1.0), (0, 0, (0, 1), -1j)]).rotational_symmetry() == 1
    # a CuO2-like plane: Cu at the origin, O on the bond centres: C4 about Cu
    cuo2 = _model([[3.8, 0], [0, 3.8]], [[0, 0], [1.9, 0], [0, 1.9]], [0.0, -1.0, -1.0],
                  [(0, 1, (0, 0), 1.0), (0, 1, (1, 0), 1.0),    # Cu of cells 0, a1 - O_x
                   (0, 2, (0, 0), 1.0), (0, 2, (0, 1), 1.0)])   # Cu of cells 0, a2 - O_y
    assert cuo2.rotational_symmetry(0) == 4 and cuo2.rotational_symmetry(1) == 1
    with pytest.raises(ValueError, match="orbital"):
        cuo2.rotational_symmetry(3)


def test_a_hopping_file_lattice_kernel_declares_its_models_symmetry(tmp_path):
    text = {"lattice": [[2.5, 0], [1.25, 2.5 * math.sqrt(3) / 2]],
            "orbitals": [{"name": "s", "position": [0, 0], "onsite": 0.0}],
            "hoppings": [["s", "s", [1, 0], -1.0], ["s", "s", [0, 1], -1.0],
                         ["s", "s", [1, -1], -1.0]]}
    path = tmp_path / "triangular.json"
    path.write_text(json.dumps(text))
    kernel = make_kernel("lattice", structure="file", hopping_file=str(path), energy=0.5,
                         eta=0.08, reach=20.0)
    assert kernel.rotational_symmetry == 6
    assert _holds(kernel, 6)


def _image(kind, g):
    X, Y = g.meshgrid()
    envelope = np.exp(-(X**2 + Y**2) / 800)
    ks = [(math.cos(a), math.sin(a)) for a in (0, 2 * math.pi / 3, 4 * math.pi / 3)]
    waves = {
        1: np.sin(0.5 * X) + 0.3 * np.cos(0.5 * Y),
        2: np.cos(0.5 * X) + 0.3 * np.cos(0.5 * Y),
        3: sum(np.sin(0.5 * (kx * X + ky * Y)) for kx, ky in ks),  # odd: C3 without C6
        4: np.cos(0.5 * X) + np.cos(0.5 * Y),
        6: sum(np.cos(0.5 * (kx * X + ky * Y)) for kx, ky in ks),
    }
    return waves[kind] * envelope


@pytest.mark.parametrize("order", [1, 2, 3, 4, 6])
def test_image_kernels_measure_their_symmetry(order):
    g = Grid(64, 100.0)
    assert ImageKernel(image=_image(order, g), fov=100.0).rotational_symmetry == order


def test_image_kernels_of_physical_patterns():
    g = Grid(64, 100.0)
    # an isotropic kernel sampled finely enough measures as isotropic
    assert ImageKernel(image=FriedelKernel().sample(g), fov=100.0).rotational_symmetry \
        == ISOTROPIC
    square = LatticeKernel("square", energy=0.1, mu=-1.0, t_prime=-0.2, reach=60.0)
    assert ImageKernel(image=square.sample(g), fov=100.0).rotational_symmetry == 4
    assert ImageKernel(image=np.zeros((16, 16)), fov=10.0).rotational_symmetry == ISOTROPIC


def test_measure_rotational_symmetry_refuses_an_empty_disc():
    with pytest.raises(ValueError, match="radius"):
        measure_rotational_symmetry(FriedelKernel(), 0.0)
