"""Where the forward operator's loops run: the compiled loops, once, behind one seam.

A backend adds scatterers' patterns to images from the kernel's tables; the operator
(:class:`~.operator.Forward`) prepares the tables and the padded inputs with numpy and
hands them over. ``"numba"`` is the CPU backend (compiled, multi-threaded over images); a
backend for other devices implements the same three methods and registers itself in
:data:`BACKENDS`, and no caller of the operator changes.

- :meth:`NumbaBackend.render_radial`: isotropic kernel, a radial table, linear
  interpolation, accumulated in float32 (the simulator's images);
- :meth:`NumbaBackend.render_grid`: any kernel, a 2D table, cubic convolution (Keys 1981);
- :meth:`NumbaBackend.radial_model`: isotropic kernel, the same radial rule in float64,
  with the Jacobian with respect to every scatterer's ``(x, y, s)`` (for fits);
- :meth:`NumbaBackend.grid_model`: any kernel, the 2D rule in float64, with the same
  Jacobian (for fits).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["NumbaBackend", "BACKENDS", "get_backend"]


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def _accumulate(img, x, pos, strength, count, table, slope, inv_step):  # pragma: no cover - jit
    """img[ix, iy] += s_j K(|(x[ix], x[iy]) - pos_j|) for j < count (table lerp)."""
    res = x.shape[0]
    dy2 = np.empty(res, np.float32)
    last = table.shape[0] - 2
    for j in range(count):
        px = np.float32(pos[j, 0])
        py = np.float32(pos[j, 1])
        s = np.float32(strength[j])
        for iy in range(res):
            d = (x[iy] - py) * inv_step
            dy2[iy] = d * d
        for ix in range(res):
            d = (x[ix] - px) * inv_step
            dx2 = d * d
            for iy in range(res):
                t = np.sqrt(dx2 + dy2[iy])
                i = min(np.int32(t), last)
                f = t - np.float32(i)
                img[ix, iy] += s * (table[i] + f * slope[i])


@numba.njit(cache=True, parallel=True)
def _accumulate_batch(out, x, pos, strength, counts, table, slope, inv_step):  # pragma: no cover
    for n in numba.prange(out.shape[0]):
        _accumulate(out[n], x, pos[n], strength[n], counts[n], table, slope, inv_step)


@numba.njit(cache=True, inline="always")
def _cubic_weights(f):  # pragma: no cover - jit
    """Keys' cubic convolution weights (a = -1/2) of the 4 samples around a point at
    fraction ``f`` in [0, 1) past the second one: third-order accurate."""
    f2 = f * f
    f3 = f2 * f
    return (-0.5 * f3 + f2 - 0.5 * f, 1.5 * f3 - 2.5 * f2 + 1.0,
            -1.5 * f3 + 2.0 * f2 + 0.5 * f, 0.5 * f3 - 0.5 * f2)


@numba.njit(cache=True, inline="always")
def _cubic_slopes(f):  # pragma: no cover - jit
    """Derivatives of :func:`_cubic_weights` with respect to ``f``."""
    f2 = f * f
    return (-1.5 * f2 + 2.0 * f - 0.5, 4.5 * f2 - 5.0 * f, -4.5 * f2 + 4.0 * f + 0.5,
            1.5 * f2 - f)


@numba.njit(cache=True, inline="always")
def _axis_weights(x, p, inv_step, centre, last, index, weights, slopes):  # pragma: no cover
    """For each sample ``x[i]``: the first of its 4 table samples along one axis for a
    scatterer at ``p`` (-1 outside the table), their cubic weights and their slopes."""
    for i in range(x.shape[0]):
        u = (x[i] - p) * inv_step + centre
        index[i] = -1
        if u >= 1.0 and u < last:
            k = np.int64(u)
            index[i] = k
            w0, w1, w2, w3 = _cubic_weights(u - k)
            weights[i, 0], weights[i, 1], weights[i, 2], weights[i, 3] = w0, w1, w2, w3
            d0, d1, d2, d3 = _cubic_slopes(u - k)
            slopes[i, 0], slopes[i, 1], slopes[i, 2], slopes[i, 3] = d0, d1, d2, d3


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def _accumulate_2d(img, x, pos, strength, count, table, inv_step, centre):  # pragma: no cover
    """img[ix, iy] += s_j K(x[ix] - x_j, x[iy] - y_j) by cubic convolution in a 2D table
    [iy, ix] whose sample (centre, centre) is K(0, 0); zero outside the table."""
    res = x.shape[0]
    last = table.shape[0] - 2
    wu = np.empty((res, 4))
    du = np.empty((res, 4))
    iu = np.empty(res, np.int64)
    for j in range(count):
        px = pos[j, 0]
        py = pos[j, 1]
        s = strength[j]
        _axis_weights(x, px, inv_step, centre, last, iu, wu, du)
        for iy in range(res):
            v = (x[iy] - py) * inv_step + centre
            if v < 1.0 or v >= last:
                continue
            k = np.int64(v)
            v0, v1, v2, v3 = _cubic_weights(v - k)
            for ix in range(res):
                i = iu[ix]
                if i < 0:
                    continue
                acc = 0.0
                for dv in range(4):
                    row = k - 1 + dv
                    r = (wu[ix, 0] * table[row, i - 1] + wu[ix, 1] * table[row, i]
                         + wu[ix, 2] * table[row, i + 1] + wu[ix, 3] * table[row, i + 2])
                    acc += (v0 if dv == 0 else v1 if dv == 1 else v2 if dv == 2 else v3) * r
                img[ix, iy] += np.float32(s * acc)


@numba.njit(cache=True, parallel=True)
def _accumulate_batch_2d(out, x, pos, strength, counts, table, inv_step, centre):  # pragma: no cover
    for n in numba.prange(out.shape[0]):
        _accumulate_2d(out[n], x, pos[n], strength[n], counts[n], table, inv_step, centre)


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def _model_jacobian(xs, ys, pos, s, table, dtable, inv_step, img, jac, with_jac):  # pragma: no cover
    nx = xs.shape[0]
    last = table.shape[0] - 2
    for j in range(pos.shape[0]):
        px, py, sj = pos[j, 0], pos[j, 1], s[j]
        for iy in range(ys.shape[0]):
            dy = ys[iy] - py
            for ix in range(nx):
                dx = xs[ix] - px
                r = np.sqrt(dx * dx + dy * dy)
                t = r * inv_step
                i = min(int(t), last)
                f = t - i
                k = table[i] + f * (table[i + 1] - table[i])
                p = iy * nx + ix
                img[p] += sj * k
                if with_jac:
                    dk = dtable[i] + f * (dtable[i + 1] - dtable[i])
                    if r > 0:
                        g = -sj * dk / r
                        jac[p, 3 * j] = g * dx
                        jac[p, 3 * j + 1] = g * dy
                    else:
                        jac[p, 3 * j] = 0.0
                        jac[p, 3 * j + 1] = 0.0
                    jac[p, 3 * j + 2] = k


@numba.njit(cache=True, fastmath=True, boundscheck=False)
def _grid_model_jacobian(xs, ys, pos, s, table, inv_step, centre, img, jac,
                         with_jac):  # pragma: no cover - jit
    """img[p] += s_j K(x - x_j, y - y_j) by cubic convolution in the table [iy, ix] whose
    sample (centre, centre) is K(0, 0) (zero outside it), in float64; with ``with_jac``,
    jac[p, 3j:3j+3] = (-s_j dK/dx, -s_j dK/dy, K), the derivatives of the same rule."""
    nx = xs.shape[0]
    last = table.shape[0] - 2
    wu = np.empty((nx, 4))
    du = np.empty((nx, 4))
    iu = np.empty(nx, np.int64)
    for j in range(pos.shape[0]):
        px, py, sj = pos[j, 0], pos[j, 1], s[j]
        _axis_weights(xs, px, inv_step, centre, last, iu, wu, du)
        for iy in range(ys.shape[0]):
            v = (ys[iy] - py) * inv_step + centre
            inside = v >= 1.0 and v < last
            k = np.int64(v) if inside else 0
            v0, v1, v2, v3 = _cubic_weights(v - k)
            e0, e1, e2, e3 = _cubic_slopes(v - k)
            for ix in range(nx):
                p = iy * nx + ix
                i = iu[ix]
                if not inside or i < 0:
                    if with_jac:
                        jac[p, 3 * j] = 0.0
                        jac[p, 3 * j + 1] = 0.0
                        jac[p, 3 * j + 2] = 0.0
                    continue
                val = 0.0
                gx = 0.0
                gy = 0.0
                for dv in range(4):
                    row = k - 1 + dv
                    t0 = table[row, i - 1]
                    t1 = table[row, i]
                    t2 = table[row, i + 1]
                    t3 = table[row, i + 2]
                    r = wu[ix, 0] * t0 + wu[ix, 1] * t1 + wu[ix, 2] * t2 + wu[ix, 3] * t3
                    wv = v0 if dv == 0 else v1 if dv == 1 else v2 if dv == 2 else v3
                    val += wv * r
                    if with_jac:
                        dr = du[ix, 0] * t0 + du[ix, 1] * t1 + du[ix, 2] * t2 + du[ix, 3] * t3
                        ev = e0 if dv == 0 else e1 if dv == 1 else e2 if dv == 2 else e3
                        gx += wv * dr
                        gy += ev * r
                img[p] += sj * val
                if with_jac:
                    jac[p, 3 * j] = -sj * gx * inv_step
                    jac[p, 3 * j + 1] = -sj * gy * inv_step
                    jac[p, 3 * j + 2] = val


class NumbaBackend:
    """The CPU backend: numba-compiled loops, parallel over the images of a batch.

    Images are written ``[n, ix, iy]`` (the file's column-major order) by the render
    loops and flat ``p = iy * nx + ix`` by :meth:`radial_model`.
    """

    name = "numba"

    def _threads(self, threads: int | None):
        """Context: numba's thread count for this call (results do not depend on it)."""
        import contextlib

        @contextlib.contextmanager
        def limit():
            if threads is not None and int(threads) < 1:
                raise ValueError(f"threads must be >= 1, got {threads!r}")
            previous = numba.get_num_threads()
            if threads:  # numba's thread count is per calling thread; restored below
                numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
            try:
                yield
            finally:
                numba.set_num_threads(previous)

        return limit()

    def render_radial(self, out, x, pos, amp, counts, table, slope, inv_step,
                      threads=None) -> None:
        """``out[n, ix, iy] += sum_j amp[n, j] K(|r - pos[n, j]|)``, float32 (``x``,
        ``table``, ``slope``, ``inv_step`` float32)."""
        with self._threads(threads):
            _accumulate_batch(out, x, pos, amp, counts, table, slope, inv_step)

    def render_grid(self, out, x, pos, amp, counts, table, inv_step, centre,
                    threads=None) -> None:
        """``out[n, ix, iy] += sum_j amp[n, j] K(r - pos[n, j])`` from a 2D table
        ``[iy, ix]`` (float32) whose sample ``(centre, centre)`` is ``K(0, 0)``."""
        with self._threads(threads):
            _accumulate_batch_2d(out, x, pos, amp, counts, table, inv_step, centre)

    def radial_model(self, xs, ys, pos, s, table, dtable, inv_step, img, jac,
                     with_jac: bool) -> None:
        """``img[iy * nx + ix] += sum_j s_j K(r_p - pos_j)`` in float64 and, with
        ``with_jac``, ``jac[p, 3j:3j+3] = d/d(x_j, y_j, s_j)``."""
        _model_jacobian(xs, ys, pos, s, table, dtable, inv_step, img, jac, with_jac)

    def grid_model(self, xs, ys, pos, s, table, inv_step, centre, img, jac,
                   with_jac: bool) -> None:
        """As :meth:`radial_model` for any kernel: a 2D table ``[iy, ix]`` (float64) whose
        sample ``(centre, centre)`` is ``K(0, 0)``, cubic convolution (the rule of
        :meth:`render_grid`) and its derivatives."""
        _grid_model_jacobian(xs, ys, pos, s, table, inv_step, centre, img, jac, with_jac)


def _registered() -> dict[str, object]:
    from .torch_backend import TorchBackend  # torch itself loads only when it renders

    return {"numba": NumbaBackend(), "torch": TorchBackend()}


#: Backends by name: ``"numba"`` (CPU) and ``"torch"`` (:mod:`.torch_backend`, on the
#: CPU by default; ``TorchBackend(device)`` for another device).
BACKENDS: dict[str, object] = _registered()


def get_backend(name="numba"):
    """The backend registered under ``name``; a backend object is returned as it is (e.g.
    ``TorchBackend("cuda")``)."""
    if not isinstance(name, str):
        return name
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; backends: {', '.join(BACKENDS)}") from None
