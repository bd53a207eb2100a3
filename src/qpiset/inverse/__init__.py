"""Inverse problems: where are the scatterers, and what is the kernel?

Every method honours one protocol (:mod:`.protocols`): a detector's
``detect(images, op) -> Detections`` and a kernel estimator's
``estimate(images, grid, positions) -> Kernel``, with ``op`` the forward operator
(:class:`~qpiset.forward.Forward`). One registry names them (:mod:`.registry`):

- detectors: ``"matched"`` (:class:`MatchedFilter`), ``"sparse"``
  (:class:`SparseDeconvolution`), and, with the extra ``ml``, ``"unet"`` and ``"hybrid"``
  (:mod:`.learned`);
- kernel estimators: ``"lsq"`` (:mod:`.kernel`), ``"blind"`` (:mod:`.blind`), ``"calibrate"``
  (:mod:`.calibrate`), ``"vae"`` and ``"direct"`` (:mod:`.learned`).

Detectors work from what a file gives, the images and the kernel row
(:func:`file_operator`: isotropic, or 2D when the row is not), or from a physics model when
the user names one; :func:`calibrated_operator` refines the row's kernel finer than the
pixels with the scatterers the images hold (self-calibration).
"""

from .calibrate import (CalibratedKernel, Calibration, calibrate, calibrate_kernel,
                        calibrated_operator, calibration_steps)
from .file_kernel import ANISOTROPY, file_kernel, file_operator
from .blind import BLIND_IMAGES, BlindKernel, BlindResult, blind_kernel, blind_steps
from .kernel import LeastSquaresKernel, SplineKernel, kernel_from_positions, ring_wavevector
from .matched import MatchedFilter
from .parallel import detect_images
from .protocols import Detections, Detector, KernelEstimator
from .registry import (DETECTORS, KERNEL_ESTIMATORS, Method, detect, estimate_kernel,
                       learned_available, make_detector, make_kernel_estimator,
                       register_detector, register_kernel_estimator, worker_count)
from .sparse import SparseDeconvolution, pixel_noise

__all__ = ["Detections", "Detector", "KernelEstimator", "DETECTORS", "KERNEL_ESTIMATORS",
           "Method", "register_detector", "register_kernel_estimator", "make_detector",
           "make_kernel_estimator", "detect", "estimate_kernel", "learned_available",
           "MatchedFilter", "SparseDeconvolution", "pixel_noise", "SplineKernel",
           "LeastSquaresKernel", "BlindKernel", "kernel_from_positions", "blind_kernel",
           "ring_wavevector", "file_kernel", "file_operator", "ANISOTROPY", "calibrate",
           "calibrate_kernel", "calibrated_operator", "calibration_steps", "Calibration",
           "CalibratedKernel", "detect_images", "worker_count", "BlindResult", "blind_steps", "BLIND_IMAGES"]
