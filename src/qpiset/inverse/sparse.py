"""Sparse deconvolution: non-negative l1 on an oversampled grid, then continuous refinement.

1. **Grid stage.** FISTA solves ``min_{a>=0} 1/2||A a - y||² + lam ||a||_1`` on candidates
   twice as fine as the pixels, extending 3 pixels beyond the field, with
   ``lam = max(0.02 max(A^T y), z_seed sigma0 ||a_c||)``: a fixed fraction of the strongest
   correlation (the grid stage only has to separate scatterers; strengths and positions
   come later), raised to ``z_seed`` (1.5) noise standard deviations of a candidate's
   correlation when the image is noisy (``sigma0`` from :func:`pixel_noise`).
2. **Seeds.** Connected groups of active candidates (8-neighbours, activation > 2 % of the
   largest) become one scatterer each at their weighted centroid, with their total
   activation as strength; groups with less than 10 % of the median group's total are
   dropped as ringing.
3. **Refinement.** Levenberg-Marquardt fits positions (continuous, sub-pixel), strengths
   and a constant background to the image (:mod:`qpiset.inverse.refine`).
4. **Model selection** (the count is estimated, never read from the truth), repeated until
   nothing changes (at most ``rounds`` times). Every decision uses one evidence rule: a
   scatterer must buy, in chi², the prior odds of one in a given pixel cell,
   ``2 log(cells / k)`` with ``k`` scatterers among the candidate cells, plus an
   empirical-Bayes strength penalty ``((s - median) / spread)²`` (spread = the largest of
   the strengths' robust spread, their median standard error and 5 % of the median).

   - *remove* scatterers weaker than ``weak_fraction`` of the median, or whose z-score
     (strength / standard error) is below the same bar less a hysteresis of 2 (a typical
     strength with a neighbour within 2 pixels is kept: the halves of a close pair trade
     strength, which inflates each one's error), or that wandered more than ``margin``
     pixels outside the field;
   - *add* a scatterer at a strong peak of the residual's matched filter (z > ``z_add``,
     implied strength > ``weak_fraction`` of the median) when the evidence gain is positive;
   - *split* a scatterer stronger than ``split_ratio`` times the median (two scatterers
     closer than the pixel pitch look like one of double strength) into two, trying 0.6
     and 1.4 Å half-separations along four orientations, when the evidence gain is
     positive. Trial scatterers are fitted under the strength prior (MAP), on the pixels
     within ``local_half`` of the trial, everything else held.

   - *merge* two scatterers closer than ``merge_distance`` (0.2 pitch) into one when the
     evidence gain is positive: the halves of one scatterer at one place make the same
     image as the whole.

   The noise level is estimated from the residual, with a floor of 1e-4 of the image std
   (model precision), so noise-free images are not over-fitted.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy import ndimage
from threadpoolctl import threadpool_limits

from ..core.checks import as_image_stack
from .grid_ops import CandidateGrid, fista_nonneg_l1
from .protocols import Detections, check_operator
from .refine import Fit, refine, standard_errors

__all__ = ["SparseDeconvolution", "pixel_noise"]


def pixel_noise(image: np.ndarray) -> float:
    """Robust white-noise level of an image: the median absolute deviation of its
    discrete Laplacian (variance 20 sigma² for white noise), which scatterers, covering
    a minority of the pixels with sharp features, barely move."""
    lap = (image[1:-1, :-2] + image[1:-1, 2:] + image[:-2, 1:-1] + image[2:, 1:-1]
           - 4 * image[1:-1, 1:-1])
    return float(1.4826 * np.median(np.abs(lap - np.median(lap))) / np.sqrt(20.0))


@dataclass
class SparseDeconvolution:
    """Detector: FISTA on a 2x grid, LM refinement, evidence-guided add/remove/split.

    Examples
    --------
    >>> from qpiset.core import Grid
    >>> from qpiset.forward import Forward
    >>> from qpiset.physics import FriedelKernel
    >>> op = Forward(FriedelKernel(), Grid(32, 50.0))
    >>> image = op.render([[-8.3, 2.1], [6.6, -4.0], [0.2, 9.5]])
    >>> found = SparseDeconvolution().detect(image[None], op)
    >>> np.round(sorted(found.positions[0].tolist()), 2).tolist()
    [[-8.3, 2.1], [0.2, 9.5], [6.6, -4.0]]
    """

    oversample: int = 2
    margin: int = 3
    lam_fraction: float = 0.02
    rounds: int = 6
    z_add: float = 3.0
    z_keep: float = 2.0
    z_seed: float = 1.5
    weak_fraction: float = 0.25
    split_ratio: float = 1.3
    fista_iters: int = 80
    local_half: int = 12
    xtol: float = 1e-3
    rtol: float = 1e-5
    #: Scatterers closer than this (pitches) are one (:meth:`_merge`).
    merge_distance: float = 0.2
    #: Another source of seeds, ``f(image, op) -> (positions (k, 2) Å, strengths (k,))``,
    #: in place of stages 1-2 (the learned ``hybrid`` detector passes its network's here).
    seeder: Callable[[np.ndarray, object], tuple[np.ndarray, np.ndarray]] | None = None
    _op: object = field(default=None, init=False, repr=False, compare=False)

    def _bind(self, op) -> None:
        """Set up for the forward operator ``op``: its fitting model and the candidate grid
        (made once per operator)."""
        if op is self._op:
            return
        grid_op = CandidateGrid(op, self.oversample, self.margin)  # refuses what it cannot fit
        self.model, self.grid_op = op, grid_op
        self.cand_x, self.cand_y = grid_op.positions()
        self.cand_norm = grid_op.column_norm()
        self._op = op

    def detect(self, images, op) -> Detections:
        """Positions (Å) and strengths of the scatterers in each image ``(n, R, R)``."""
        stack, _ = as_image_stack(images, check_operator(op).grid.resolution)
        self._bind(op)
        found = [self._detect_one(img) for img in stack]
        return Detections([p for p, _ in found], [s for _, s in found])

    # -- stage 1 and 2 -----------------------------------------------------------------
    def seeds(self, image: np.ndarray, op) -> tuple[np.ndarray, np.ndarray]:
        """FISTA activations -> local maxima (3x3 on the fine grid) -> weighted centroids,
        for the forward operator ``op``."""
        self._bind(op)
        y = image - np.median(image)
        corr = self.grid_op.adjoint(y)
        lam = max(self.lam_fraction * float(corr.max()),
                  self.z_seed * pixel_noise(image) * self.cand_norm, 1e-300)
        a = fista_nonneg_l1(self.grid_op, y, lam, iters=self.fista_iters)
        o, C = self.grid_op.o, self.grid_op.C
        fine = a.transpose(2, 0, 3, 1).reshape(C * o, C * o)  # [Jy*o+phy, Jx*o+phx]
        fx = self.cand_x.transpose(2, 0, 3, 1).reshape(C * o, C * o)
        fy = self.cand_y.transpose(2, 0, 3, 1).reshape(C * o, C * o)
        if fine.max() <= 0:
            return np.zeros((0, 2)), np.zeros(0)
        peaks = (fine == ndimage.maximum_filter(fine, size=3)) & (fine > 0.02 * fine.max())
        box = np.ones((3, 3))
        mass = ndimage.convolve(fine, box, mode="constant")
        mx = ndimage.convolve(fine * fx, box, mode="constant")
        my = ndimage.convolve(fine * fy, box, mode="constant")
        iy, ix = np.nonzero(peaks)
        m = mass[iy, ix]
        keep = m >= 0.1 * np.median(m)
        iy, ix, m = iy[keep], ix[keep], m[keep]
        return np.stack([mx[iy, ix] / m, my[iy, ix] / m], axis=1), m

    # -- stage 3 and 4 -----------------------------------------------------------------
    def _noise(self, fit: Fit, y: np.ndarray) -> float:
        dof = max(y.size - 3 * len(fit.strengths) - 1, 1)
        return max(np.sqrt(fit.rss / dof), 1e-4 * float(np.std(y)) + 1e-300)

    def _detect_one(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(positions (k, 2) Å, strengths (k,))`` for one image ``[iy, ix]``."""
        # the linear algebra here is many small products and solves, for which BLAS threads
        # cost more in synchronisation than they gain (2 threads ran at half the speed of 1)
        with threadpool_limits(1, user_api="blas"):
            return self._detect(image)

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(image, dtype=float)
        flat = y.ravel()
        pos, s = self.seeds(y, self.model) if self.seeder is None else self.seeder(y, self.model)
        fit = refine(self.model, flat, pos, s, float(np.median(y)), rtol=1e-5, xtol=0.01,
                     max_iter=10)
        refused: list[np.ndarray] = []  # splits refused: (x, y, s, local rss, spread)
        for _ in range(self.rounds):
            changed = False
            sigma = self._noise(fit, flat)
            keep = self._keep(fit, sigma)
            if not keep.all():
                fit = self._rescore(flat, fit.positions[keep], fit.strengths[keep],
                                    fit.background)
                changed = True
            merged = self._merge(fit, flat)
            if merged is not None:
                fit, changed = merged, True
            model_img = self.model.image(fit.positions, fit.strengths)
            trial = self._split(fit, model_img, y, self._noise(fit, flat), refused)
            if trial is not None:
                (fit, model_img), changed = trial, True
            trial = self._add(fit, model_img, y, self._noise(fit, flat))
            if trial is not None:
                (fit, model_img), changed = trial, True
            if not changed:
                break
        fit = refine(self.model, flat, fit.positions, fit.strengths, fit.background,
                     rtol=self.rtol, xtol=self.xtol, max_iter=15)
        fit = self._merge(fit, flat) or fit
        keep = self._keep(fit, self._noise(fit, flat))
        return fit.positions[keep], fit.strengths[keep]

    def _merge(self, fit: Fit, flat: np.ndarray) -> Fit | None:
        """Merge pairs of scatterers closer than ``merge_distance`` pitches into one (their
        summed strength at their strength-weighted centre, refitted locally) when the
        evidence gain, the rule of :meth:`_add` read the other way, is positive; None
        when nothing is merged. Two halves of one scatterer at one place make the same
        image as the whole, and in a noise-free image the fit can still prefer them by
        a rounding's worth of chi²."""
        pos, s = fit.positions, fit.strengths
        if len(s) < 3:
            return None
        d = np.hypot(*(pos[:, None, :] - pos[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        pairs = np.argwhere(np.triu(d < self.merge_distance * self.model.grid.pitch))
        if len(pairs) == 0:
            return None
        sigma = self._noise(fit, flat)
        med, spread = self._strength_prior(fit, sigma)
        best = fit
        best_img = self.model.image(fit.positions, fit.strengths)
        for i, j in pairs:
            a, b = fit.positions[i], fit.positions[j]
            ia = int(np.argmin(np.hypot(*(best.positions - a).T)))
            ib = int(np.argmin(np.hypot(*(best.positions - b).T)))
            if ia == ib or np.hypot(*(best.positions[ia] - a)) > 1e-9 \
                    or np.hypot(*(best.positions[ib] - b)) > 1e-9:
                continue  # one of them went in an earlier merge
            sa, sb = best.strengths[ia], best.strengths[ib]
            total = sa + sb
            centre = (sa * a + sb * b) / max(total, 1e-300)
            keep = np.ones(len(best.strengths), bool)
            keep[[ia, ib]] = False
            trial_pos = np.vstack([best.positions[keep], centre])
            trial_s = np.concatenate([best.strengths[keep], [total]])
            t = self._local(best, best_img, flat, trial_pos, trial_s, centre)
            gain = ((best.rss - t.rss) / sigma**2 + self._odds(len(trial_s))
                    + ((sa - med) / spread) ** 2 + ((sb - med) / spread) ** 2
                    - ((t.strengths[-1] - med) / spread) ** 2)
            if gain > 0:
                best, best_img = self._commit(flat, t)
        return None if best is fit else best

    def _keep(self, fit: Fit, sigma: float) -> np.ndarray:
        """Which scatterers survive: position at most ``margin`` pixels outside the field,
        strength at least ``weak_fraction`` of the median and ``z_keep`` standard errors.

        A scatterer with a neighbour closer than two pixels and at least half the median
        strength is kept on the prior even when its own standard error is large: the two
        halves of a close pair can trade strength against each other, which inflates each
        one's error without making either less likely.
        """
        if len(fit.strengths) == 0:
            return np.ones(0, bool)
        half = self.model.grid.fov / 2 + self.margin * self.model.grid.pitch
        med = float(np.median(fit.strengths))
        se = self._stderr(fit, sigma)[:, 2]
        s = fit.strengths
        d = np.hypot(*(fit.positions[:, None, :] - fit.positions[None, :, :]).transpose(2, 0, 1))
        np.fill_diagonal(d, np.inf)
        paired = (d.min(axis=1) < 2 * self.model.grid.pitch) & (s >= 0.5 * med)
        # the evidence rule of :meth:`_add` with some hysteresis: z² >= 2 log(cells/k) - 2
        z_keep = max(self.z_keep, np.sqrt(max(self._odds(len(s)) - 2.0, 0.0)))
        weak = (s < self.weak_fraction * med) | ((s < z_keep * se) & ~paired)
        outside = np.any(np.abs(fit.positions) > half, axis=1)
        return ~(weak | outside)

    def _rescore(self, flat, pos, s, b) -> Fit:
        r = flat - self.model.image(pos, s) - b
        return Fit(pos, s, b, float(r @ r), 0)

    def _local(self, fit: Fit, model_img: np.ndarray, flat: np.ndarray, pos: np.ndarray,
               s: np.ndarray, centre: np.ndarray, prior: tuple | None = None) -> Fit:
        """Refine only the trial scatterers within 2.5 pitches of ``centre``, on the pixels
        within ``local_half`` pixels of it, the rest (and the background) held fixed.
        ``prior = (n_new, median, weight)``: a Gaussian prior on the strengths of the last
        ``n_new`` scatterers (the new ones), see :func:`refine`.

        The trial's ``rss`` is the whole image's, with the change outside the window
        neglected (the trial moves or adds a scatterer near ``centre`` only); :meth:`_commit`
        recomputes it exactly for a trial that is kept.
        """
        radius = 2.5 * self.model.grid.pitch
        w = self.model.window(centre, self.local_half)
        was = np.hypot(*(fit.positions - centre).T) < radius
        data = w.crop(flat) - fit.background
        current = w.crop(model_img)
        others = current - w.image(fit.positions[was], fit.strengths[was])
        near = np.hypot(*(pos - centre).T) < radius
        m = int(near.sum())
        if prior is not None:  # the new scatterers are the last ones, and near the centre
            prior = (np.arange(m - prior[0], m), prior[1], prior[2])
        sub = refine(w, data - others, pos[near], s[near], 0.0, max_iter=12, rtol=1e-5,
                     xtol=0.01, fit_background=False, prior=prior)
        pos, s = pos.copy(), s.copy()
        pos[near], s[near] = sub.positions, sub.strengths
        before = data - current
        return Fit(pos, s, fit.background, fit.rss - float(before @ before) + sub.rss,
                   sub.iterations)

    def _commit(self, flat: np.ndarray, trial: Fit) -> tuple[Fit, np.ndarray]:
        """A kept trial with its exact model image and residual sum of squares."""
        img = self.model.image(trial.positions, trial.strengths)
        r = flat - img - trial.background
        return Fit(trial.positions, trial.strengths, trial.background, float(r @ r), 0), img

    def _stderr(self, fit: Fit, sigma: float) -> np.ndarray:
        """Standard errors ``(k, 3)`` at noise ``sigma``; those at unit noise are kept in
        ``fit.stderr`` (they scale with the noise), so each fit pays for them once."""
        if fit.stderr is None:
            fit.stderr = standard_errors(self.model, fit, 1.0)
        return sigma * fit.stderr

    def _strength_prior(self, fit: Fit, sigma: float) -> tuple[float, float]:
        """Empirical-Bayes prior of the strengths: ``(median, spread)``, the spread being
        the largest of their robust spread, the median standard error and 5 % of the
        median."""
        med = float(np.median(fit.strengths))
        mad = 1.4826 * float(np.median(np.abs(fit.strengths - med)))
        se = float(np.median(self._stderr(fit, sigma)[:, 2]))
        return med, max(mad, se, 0.05 * med)

    def _odds(self, k: int) -> float:
        """``2 log(cells / k)``: the chi² a new scatterer must buy against the prior odds of
        one in a given pixel cell, with ``k`` scatterers among the candidate cells."""
        cells = (self.model.grid.resolution + 2 * self.margin) ** 2
        return 2 * np.log(cells / max(k, 1))

    def _add(self, fit: Fit, model_img: np.ndarray, y: np.ndarray, sigma: float):
        """Add scatterers at the strongest residual correlations when the evidence gain
        ``delta chi² - 2 log(cells / k) - ((s - median) / spread)²`` is positive: the
        fit's improvement against the prior odds of a scatterer in a pixel cell (k
        scatterers so far among the candidate cells) and the strength prior."""
        flat = y.ravel()
        resid = y - model_img.reshape(y.shape) - fit.background
        corr = self.grid_op.adjoint(resid)
        z = corr / (sigma * self.cand_norm)
        if len(fit.strengths) >= 3:
            med, spread = self._strength_prior(fit, sigma)
        else:  # too few to say what is typical: no strength prior
            med, spread = 1.0, np.inf
        implied = corr / self.cand_norm**2
        ok = (z > self.z_add) & (implied > self.weak_fraction * med)
        if not ok.any():
            return None
        zz = np.where(ok, z, 0.0).ravel()
        X, Y = self.cand_x.ravel(), self.cand_y.ravel()
        best, best_img, accepted = fit, model_img, 0
        for i in np.argsort(zz)[::-1][:30]:
            if zz[i] <= 0:
                break
            p = np.array([X[i], Y[i]])
            if len(best.positions) and np.min(np.hypot(*(best.positions - p).T)) < self.model.grid.pitch:
                continue
            pos = np.vstack([best.positions, p])
            s = np.append(best.strengths, implied.ravel()[i])
            trial = self._local(best, best_img, flat, pos, s, p,
                                prior=None if np.isinf(spread) else (1, med, (sigma / spread) ** 2))
            gain = ((best.rss - trial.rss) / sigma**2 - self._odds(len(best.strengths))
                    - ((trial.strengths[-1] - med) / spread) ** 2)
            if gain > 0:
                (best, best_img), accepted = self._commit(flat, trial), accepted + 1
        return (best, best_img) if accepted else None

    def _split(self, fit: Fit, model_img: np.ndarray, y: np.ndarray, sigma: float,
               refused: list[np.ndarray]):
        flat = y.ravel()
        if len(fit.strengths) < 2:
            return None
        med = float(np.median(fit.strengths))
        heavy = np.flatnonzero(fit.strengths > self.split_ratio * med)
        if heavy.size == 0:
            return None
        med, spread = self._strength_prior(fit, sigma)
        odds = self._odds(len(fit.strengths))
        best, best_img = fit, model_img
        for target in fit.positions[heavy]:
            j = int(np.argmin(np.hypot(*(best.positions - target).T)))
            centre = best.positions[j].copy()
            near = self.model.window(centre, 4)
            res = near.crop(flat) - near.crop(best_img) - best.background
            state = np.array([*centre, best.strengths[j], res @ res, spread])
            if np.all(np.isfinite(state)) and any(
                    np.hypot(*(r[:2] - state[:2])) < 0.05 * self.model.grid.pitch
                    and abs(r[2] - state[2]) < 0.05 * med
                    and np.all(np.abs(r[3:] - state[3:]) < 0.05 * r[3:]) for r in refused):
                continue  # tried before; neither it, its surroundings nor the prior changed
            # empirical-Bayes strength prior: one scatterer of twice the typical strength is
            # less likely than two typical ones (matters when the data alone can't tell);
            # the two halves are fitted under it (MAP), since the data alone leave the split
            # of a close pair's total strength loose
            before = ((best.strengths[j] - med) / spread) ** 2
            score, trial = -np.inf, None
            for angle, dist in itertools.product(np.arange(4) * np.pi / 4, (0.6, 1.4)):
                d = dist * np.array([np.cos(angle), np.sin(angle)])
                pos = np.vstack([np.delete(best.positions, j, 0), centre + d, centre - d])
                s = np.concatenate([np.delete(best.strengths, j), [best.strengths[j] / 2] * 2])
                t = self._local(best, best_img, flat, pos, s, centre,
                                prior=(2, med, (sigma / spread) ** 2))
                gain = ((best.rss - t.rss) / sigma**2 - odds + before
                        - np.sum(((t.strengths[-2:] - med) / spread) ** 2))
                if gain > score:
                    score, trial = gain, t
            if score > 0:
                best, best_img = self._commit(flat, trial)
            else:
                refused.append(state)
        return None if best is fit else (best, best_img)
