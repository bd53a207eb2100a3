"""Sparse deconvolution: non-negative l1 on an oversampled grid, then continuous refinement.

1. **Grid stage.** FISTA solves ``min_{a>=0} 1/2||A a - y||² + lam ||a||_1`` on candidates
   twice as fine as the pixels, extending 3 pixels beyond the field, with
   ``lam = max(0.02 max(A^T y), 3 sigma0 ||a_c||)``: a fixed fraction of the strongest
   correlation (the grid stage only has to separate scatterers; strengths and positions
   come later), raised to 3 noise standard deviations of a candidate's correlation when
   the image is noisy (``sigma0`` from :func:`pixel_noise`).
2. **Seeds.** Connected groups of active candidates (8-neighbours, activation > 2 % of the
   largest) become one scatterer each at their weighted centroid, with their total
   activation as strength; groups with less than 10 % of the median group's total are
   dropped as ringing.
3. **Refinement.** Levenberg-Marquardt fits positions (continuous, sub-pixel), strengths
   and a constant background to the image (:mod:`qpiset.inverse.refine`).
4. **Model selection** (the count is estimated, never read from the truth), repeated until
   nothing changes (at most ``rounds`` times):

   - *remove* scatterers whose strength is below ``max(0.25 median(s), 3 stderr)`` or that
     wandered more than 3 pixels outside the field;
   - *add* a scatterer at the strongest peak of the residual's matched filter if its
     z-score exceeds 5 and its implied strength exceeds 0.25 median(s);
   - *split* a scatterer whose strength exceeds 1.3 median(s) (two scatterers closer than
     the pixel pitch look like one of double strength) into two, trying 1.2 and 2.8 Å
     separations along four orientations, when that lowers the Bayesian information
     criterion plus an empirical-Bayes strength penalty ``sum((s_i - median)/spread)²``
     (spread = robust spread of the fitted strengths) by more than 10.

   The noise level is estimated from the residual, with a floor of 1e-4 of the image std
   (model precision), so noise-free images are not over-fitted.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .grid_ops import CandidateGrid, fista_nonneg_l1
from .model import PixelModel
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
    """Detector: FISTA on a 2x grid, LM refinement, BIC-guided add/remove/split."""

    model: PixelModel
    oversample: int = 2
    margin: int = 3
    lam_fraction: float = 0.02
    rounds: int = 6
    z_add: float = 4.5
    z_keep: float = 2.0
    z_seed: float = 1.5
    weak_fraction: float = 0.25
    split_ratio: float = 1.3
    fista_iters: int = 80

    def __post_init__(self) -> None:
        self.op = CandidateGrid(self.model, self.oversample, self.margin)
        self.cand_x, self.cand_y = self.op.positions()
        self.cand_norm = self.op.column_norm()

    # -- stage 1 and 2 -----------------------------------------------------------------
    def seeds(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """FISTA activations -> local maxima (3x3 on the fine grid) -> weighted centroids."""
        y = image - np.median(image)
        corr = self.op.adjoint(y)
        lam = max(self.lam_fraction * float(corr.max()),
                  self.z_seed * pixel_noise(image) * self.cand_norm, 1e-300)
        a = fista_nonneg_l1(self.op, y, lam, iters=self.fista_iters)
        o, C = self.op.o, self.op.C
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

    def _bic_gain(self, before: float, after: float, extra: int, n: int) -> float:
        """Decrease of the Bayesian information criterion when RSS goes ``before`` ->
        ``after`` with ``extra`` more parameters (positive = better)."""
        return n * np.log(max(before, 1e-300) / max(after, 1e-300)) - extra * np.log(n)

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """Scatterer positions ``(k, 2)`` in Å for one image ``[iy, ix]``."""
        return self.detect(image)[0]

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(positions (k, 2) Å, strengths (k,))`` for one image ``[iy, ix]``."""
        y = np.asarray(image, dtype=float)
        flat = y.ravel()
        pos, s = self.seeds(y)
        fit = refine(self.model, flat, pos, s, float(np.median(y)), rtol=1e-5, max_iter=10)
        half = self.model.grid.fov / 2 + self.margin * self.model.grid.pitch
        for _ in range(self.rounds):
            changed = False
            sigma = self._noise(fit, flat)
            if len(fit.strengths):  # remove
                med = float(np.median(fit.strengths))
                se = standard_errors(self.model, fit, sigma)[:, 2]
                weak = fit.strengths < np.maximum(self.weak_fraction * med, self.z_keep * se)
                outside = np.any(np.abs(fit.positions) > half, axis=1)
                drop = weak | outside
                if drop.any():
                    fit = self._rescore(flat, fit.positions[~drop], fit.strengths[~drop],
                                        fit.background)
                    changed = True
            model_img = self.model.image(fit.positions, fit.strengths)
            for step in (self._split, self._add):
                trial = step(fit, model_img, y, self._noise(fit, flat))
                if trial is not None:
                    (fit, model_img), changed = trial, True
            if not changed:
                break
        fit = refine(self.model, flat, fit.positions, fit.strengths, fit.background,
                     rtol=1e-8, max_iter=15)
        return fit.positions, fit.strengths

    def _rescore(self, flat, pos, s, b) -> Fit:
        r = flat - self.model.image(pos, s) - b
        return Fit(pos, s, b, float(r @ r), 0)

    def _local(self, fit: Fit, model_img: np.ndarray, flat: np.ndarray, pos: np.ndarray,
               s: np.ndarray, centre: np.ndarray) -> tuple[Fit, np.ndarray]:
        """Refine only the trial scatterers within 2.5 pitches of ``centre``, the rest (and
        the background) held fixed; returns the trial fit and its model image."""
        radius = 2.5 * self.model.grid.pitch
        was = np.hypot(*(fit.positions - centre).T) < radius
        fixed = model_img - self.model.image(fit.positions[was], fit.strengths[was])
        near = np.hypot(*(pos - centre).T) < radius
        sub = refine(self.model, flat - fit.background - fixed, pos[near], s[near], 0.0,
                     max_iter=12, rtol=1e-7, fit_background=False)
        pos, s = pos.copy(), s.copy()
        pos[near], s[near] = sub.positions, sub.strengths
        new_img = fixed + self.model.image(sub.positions, sub.strengths)
        return Fit(pos, s, fit.background, sub.rss, sub.iterations), new_img

    def _add(self, fit: Fit, model_img: np.ndarray, y: np.ndarray, sigma: float):
        flat = y.ravel()
        resid = y - model_img.reshape(y.shape) - fit.background
        corr = self.op.adjoint(resid)
        z = corr / (sigma * self.cand_norm)
        med = float(np.median(fit.strengths)) if len(fit.strengths) else 1.0
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
            trial, img = self._local(best, best_img, flat, pos, s, p)
            if self._bic_gain(best.rss, trial.rss, 3, flat.size) > 0:
                best, best_img, accepted = trial, img, accepted + 1
        return (best, best_img) if accepted else None

    def _split(self, fit: Fit, model_img: np.ndarray, y: np.ndarray, sigma: float):
        flat = y.ravel()
        if len(fit.strengths) < 2:
            return None
        med = float(np.median(fit.strengths))
        heavy = np.flatnonzero(fit.strengths > self.split_ratio * med)
        if heavy.size == 0:
            return None
        mad = 1.4826 * float(np.median(np.abs(fit.strengths - med)))
        se = float(np.median(standard_errors(self.model, fit, sigma)[:, 2]))
        spread = max(mad, se, 0.05 * med)
        best, best_img = fit, model_img
        for target in fit.positions[heavy]:
            j = int(np.argmin(np.hypot(*(best.positions - target).T)))
            centre = best.positions[j].copy()
            trials = []
            for angle, dist in itertools.product(np.arange(4) * np.pi / 4, (0.6, 1.4)):
                d = dist * np.array([np.cos(angle), np.sin(angle)])
                pos = np.vstack([np.delete(best.positions, j, 0), centre + d, centre - d])
                s = np.concatenate([np.delete(best.strengths, j), [best.strengths[j] / 2] * 2])
                trials.append(self._local(best, best_img, flat, pos, s, centre))
            trial, img = min(trials, key=lambda t: t[0].rss)
            # empirical-Bayes strength prior: one scatterer of twice the typical strength is
            # less likely than two typical ones (matters when the data alone can't tell)
            prior = ((best.strengths[j] - med) / spread) ** 2 - np.sum(
                ((trial.strengths[-2:] - med) / spread) ** 2)
            if self._bic_gain(best.rss, trial.rss, 3, flat.size) + prior > 10:
                best, best_img = trial, img
        return None if best is fit else (best, best_img)
