"""The kernel-conditioned detector: a U-Net that maps an image and the file's kernel row
to per-cell scatterer probabilities and sub-pixel offsets (:mod:`.targets`).

How the kernel enters (so that one network serves kernels it never saw):

1. **Physics channels.** Besides the standardised image ``y``, the network reads the
   matched-filter response ``y ⋆ k`` and two Wiener deconvolutions
   ``F⁻¹[conj(K) Y / (|K|² + α max|K|²)]`` (α = 0.01, 0.1), all computed by FFT from the
   kernel row ``k`` inside the model: whatever the kernel, these maps peak near the
   scatterers, so what the network learns transfers across kernels.
2. **A kernel embedding.** A small CNN encodes the normalised kernel row, together with
   ``log(std(y) R / ||k||)`` (for unit strengths ``≈ ½ log N``, the scatterer count), into
   a vector that scales and shifts the decoder's features (FiLM).

The output grid is twice as fine as the image's (DECODE-style occupancy + offsets), so
scatterers closer than a pixel can both be found.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...core.checks import as_image_stack
from ...core.grid import Grid
from ..protocols import Detections, check_operator
from ..sparse import SparseDeconvolution
from . import WEIGHTS
from .nets import KernelEncoder, conv_block, load_checkpoint, save_checkpoint
from .targets import decode

__all__ = ["DetectorNet", "physics_channels", "UNetDetector", "HybridDetector",
           "load_detector", "save_detector", "merge_seeds", "DEFAULT_DETECTOR"]

#: The shipped detector's weights.
DEFAULT_DETECTOR = WEIGHTS / "detector.pt"

WIENER_ALPHAS = (0.01, 0.1)


def physics_channels(images: torch.Tensor, kernels: torch.Tensor) -> tuple[torch.Tensor,
                                                                              torch.Tensor]:
    """Input maps ``(B, 4, R, R)`` and the amplitude scalar ``(B, 1)`` (module docs) from
    images and kernel rows ``(B, R, R)`` indexed ``[iy, ix]``. One row broadcast over the
    batch (``row.expand(B, -1, -1)``, as the stream and inference pass it) has its
    transforms computed once."""
    B, R, _ = images.shape
    kernels = _one_row(kernels)
    y = images - images.flatten(1).median(dim=1).values[:, None, None]
    std = y.flatten(1).std(dim=1).clamp_min(1e-12)
    y = y / std[:, None, None]
    knorm = kernels.flatten(1).norm(dim=1).clamp_min(1e-12)
    k = kernels / knorm[:, None, None]
    P = 2 * R  # zero padding: linear, not circular, correlation
    Y = torch.fft.rfft2(y, s=(P, P))
    K = torch.fft.rfft2(k, s=(P, P))
    power = K.real**2 + K.imag**2
    top = power.flatten(1).max(dim=1).values[:, None, None]
    maps = [y]
    filters = [K.conj()] + [K.conj() / (power + a * top) for a in WIENER_ALPHAS]
    for H in filters:
        r = torch.fft.irfft2(Y * H, s=(P, P))
        # r[d] = sum_j y[j + d] k[j]; rolled by R/2, while the row's centre (0, 0) lies
        # at index (R-1)/2: the maps peak half a pixel from the scatterer, the same way
        # for every kernel on the grid (the network has learnt it)
        r = torch.roll(r, shifts=(R // 2, R // 2), dims=(1, 2))[:, :R, :R]
        r = r - r.flatten(1).mean(dim=1)[:, None, None]
        maps.append(r / r.flatten(1).std(dim=1).clamp_min(1e-12)[:, None, None])
    amplitude = torch.log(std * R / knorm).unsqueeze(1)
    return torch.stack(maps, dim=1), amplitude


def _one_row(kernels: torch.Tensor) -> torch.Tensor:
    """``kernels[:1]`` when every row of the batch is the same tensor broadcast (stride 0
    along the batch) on an accelerator, else ``kernels``: what depends on the row alone is
    then computed once and broadcast. On the CPU every row is computed as before, so CPU
    outputs stay the same to the last bit (a batched FFT rounds differently from one)."""
    if kernels.shape[0] > 1 and kernels.stride(0) == 0 and kernels.device.type != "cpu":
        return kernels[:1]
    return kernels


def kept_cells(keep: torch.Tensor, conf: torch.Tensor, shift: torch.Tensor,
               cap: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The kept cells of a batch gathered into ``cap`` slots with static shapes (no
    ``nonzero``, whose data-dependent size makes the host wait and cannot be recorded in
    a CUDA graph).

    ``keep`` ``(B, U, U)`` bool, ``conf`` ``(B, U, U)``, ``shift`` ``(B, 2, U, U)``.
    Returns the flat cell indices ``(cap,)`` in ascending order, their confidence and x,
    y offsets ``(cap, 3)``, and the number of kept cells (a 0-d tensor); slots past that
    number (or past ``cap`` when there are more) hold the last cell and are to be ignored.

    Examples
    --------
    >>> keep = torch.tensor([[[False, True], [True, False]]])
    >>> index, values, total = kept_cells(keep, torch.ones(1, 2, 2), torch.zeros(1, 2, 2, 2), 3)
    >>> int(total), index[:int(total)].tolist()
    (2, [1, 2])
    """
    flat = keep.flatten()
    rank = torch.cumsum(flat, 0)  # rank[i]: kept cells up to and including cell i
    wanted = torch.arange(1, cap + 1, device=keep.device, dtype=rank.dtype)
    index = torch.searchsorted(rank, wanted).clamp_max(flat.numel() - 1)  # the j-th kept cell
    B, U = keep.shape[0], keep.shape[-1]
    values = torch.stack([conf.flatten()[index],
                          shift[:, 0].reshape(B * U * U)[index],
                          shift[:, 1].reshape(B * U * U)[index]], dim=1)
    return index, values, rank[-1]


class _Cells:
    """Kept cells (flat indices and confidence, x and y offsets) turned into each image's
    positions (Å) and confidences, batch after batch (``decode``'s geometry)."""

    def __init__(self, grid: Grid, upsample: int, U: int) -> None:
        from .targets import _origin, cell_size

        self.size, self.x0, self.U = cell_size(grid, upsample), _origin(grid), U
        self.positions: list[np.ndarray] = []
        self.confidence: list[np.ndarray] = []

    def add(self, n: int, index: np.ndarray, values: np.ndarray) -> None:
        U = self.U
        b, cell = np.divmod(index, U * U)
        fy, fx = np.divmod(cell, U)
        dx, dy = values[:, 1].astype(np.float64), values[:, 2].astype(np.float64)
        xy = np.stack([self.x0 + (fx + 0.5 + dx) * self.size,
                       self.x0 + (fy + 0.5 + dy) * self.size], axis=1)
        cuts = np.searchsorted(b, np.arange(1, n))
        self.positions += np.split(xy, cuts)
        self.confidence += np.split(values[:, 0].astype(np.float64), cuts)


class _Done:
    """The CPU's stand-in for a CUDA event: its work is done when it is queued."""

    def synchronize(self) -> None:
        pass


def _on(device: torch.device):
    """``device`` made the current CUDA device (streams, events and graph capture follow
    it), or nothing off CUDA."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _event(device: torch.device):
    """An event recorded now on ``device``'s current stream (CUDA), or :class:`_Done`."""
    if device.type != "cuda":
        return _Done()
    event = torch.cuda.Event()
    event.record()
    return event

class DetectorNet(nn.Module):
    """U-Net (three levels) with FiLM conditioning on a kernel embedding and heads on a
    grid ``upsample`` times finer than the image: occupancy logit, x and y offsets."""

    def __init__(self, width: int = 24, embed: int = 64, upsample: int = 2) -> None:
        super().__init__()
        self.config = {"width": width, "embed": embed, "upsample": upsample}
        w = width
        self.kernel_encoder = KernelEncoder(1, 16, embed)
        self.cond = nn.Sequential(nn.Linear(embed + 1, embed), nn.SiLU())
        self.enc1 = conv_block(4, w)
        self.enc2 = conv_block(w, 2 * w)
        self.enc3 = conv_block(2 * w, 4 * w)
        self.mid = conv_block(4 * w, 4 * w)
        self.dec3 = conv_block(8 * w, 2 * w)
        self.dec2 = conv_block(4 * w, w)
        self.dec1 = conv_block(2 * w, w)
        self.films = nn.ModuleList([nn.Linear(embed, 2 * c) for c in (4 * w, 2 * w, w, w)])
        # sub-pixel convolution: 3 u² maps at the image's resolution, shuffled to u x finer
        self.head = nn.Sequential(nn.Conv2d(w, w, 3, padding=1), nn.SiLU(),
                                  nn.Conv2d(w, 3 * upsample**2, 1), nn.PixelShuffle(upsample))
        self.upsample = upsample
        with torch.no_grad():  # start at occupancy ~ 0.25 %, the prior of a cell (focal-loss trick)
            self.head[2].bias[: upsample**2] = -6.0

    @staticmethod
    def _film(h: torch.Tensor, layer: nn.Linear, e: torch.Tensor) -> torch.Tensor:
        gamma, beta = layer(e).chunk(2, dim=1)
        return h * (1 + gamma[:, :, None, None]) + beta[:, :, None, None]

    def forward(self, images: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
        """``(B, 3, U, U)``: occupancy logits, x and y offsets (cell units)."""
        x, amplitude = physics_channels(images, kernels)
        rows = _one_row(kernels)  # a broadcast row is encoded once
        k = rows / rows.flatten(1).norm(dim=1).clamp_min(1e-12)[:, None, None]
        e = self.kernel_encoder((k * kernels.shape[-1]).unsqueeze(1))
        e = e.expand(len(images), -1)
        e = self.cond(torch.cat([e, amplitude], dim=1))
        e1 = self.enc1(x)
        e2 = self.enc2(F.max_pool2d(e1, 2))
        e3 = self.enc3(F.max_pool2d(e2, 2))
        m = self._film(self.mid(F.max_pool2d(e3, 2)), self.films[0], e)
        d3 = self.dec3(torch.cat([F.interpolate(m, scale_factor=2.0), e3], dim=1))
        d3 = self._film(d3, self.films[1], e)
        d2 = self.dec2(torch.cat([F.interpolate(d3, scale_factor=2.0), e2], dim=1))
        d2 = self._film(d2, self.films[2], e)
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0), e1], dim=1))
        d1 = self._film(d1, self.films[3], e)
        return self.head(d1)


def save_detector(path, net: DetectorNet, grid: Grid, state=None, train=None,
                  **info: Any) -> None:
    """Write the weights (``state``, default the network's), architecture, training grid,
    ``info`` (thresholds, training record) and optionally the state to resume ``train``,
    in one atomic write."""
    record = {"kind": "detector", "config": net.config,
              "state": net.state_dict() if state is None else state,
              "grid": [grid.resolution, grid.fov], "info": info}
    if train is not None:
        record["train"] = train
    save_checkpoint(path, record)


class UNetDetector:
    """Detector ``unet``: a trained :class:`DetectorNet` reading the image and the file's
    kernel row (``op.kernel_row``); positions and confidences per scatterer.

    Parameters
    ----------
    weights : path, optional
        Checkpoint (default: the shipped weights); a bad one is a ``ValueError`` naming it.
    threshold, high : float, optional
        Decoding thresholds (:func:`qpiset.inverse.learned.targets.decode`); default the
        checkpoint's tuned ones.
    batch : int, optional
        Images per forward pass (default 32 on the CPU, 256 on a GPU).
    device : str, optional
        Torch device of the network (``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``;
        default :func:`qpiset.forward.device.default_device`, the CPU unless set). Another
        device changes the probabilities at float32 rounding.
    fast : bool, optional
        :meth:`detect`'s fast path (default: on CUDA only): decoding on the device, the
        kept cells gathered there and copied back, batches pipelined one deep; on CUDA
        also the network under float16 autocast, replayed from a CUDA graph. Elsewhere it
        runs eagerly in float32 and gives :meth:`decode`'s positions (how it is tested
        without a GPU).
    """

    name = "unet"

    def __init__(self, weights=None, *, threshold: float | None = None,
                 high: float | None = None, batch: int | None = None, device=None,
                 fast: bool | None = None) -> None:
        net, state = load_detector(weights, device=device)
        res, fov = state["grid"]
        info = state.get("info", {})
        self._setup(net, Grid(int(res), float(fov)),
                    info.get("threshold", 0.5) if threshold is None else threshold,
                    info.get("high", 0.9) if high is None else high, batch, fast)

    def _setup(self, net, trained: Grid | None, threshold, high, batch, fast=None) -> None:
        self.net = net.eval()
        self.device = next(net.parameters()).device
        self.trained = trained
        if batch is None:
            batch = 32 if self.device.type == "cpu" else 256
        self.threshold, self.high, self.batch = float(threshold), float(high), int(batch)
        cuda = self.device.type == "cuda"
        #: :meth:`detect`'s fast path (on CUDA by default): decoding on the device, only the
        #: kept cells come back, one batch ahead; on CUDA the network under autocast to
        #: ``amp_dtype`` (the FFT channels stay float32) with ``channels_last`` weights,
        #: replayed from a CUDA graph captured once per batch shape. The CPU's default
        #: path is unchanged.
        self.fast = cuda if fast is None else bool(fast)
        #: float16: ~10x closer to float32 than bfloat16 for this network (measured on the
        #: CPU, 64 simulated images: max logit change 0.05 against 0.45, detections gained
        #: or lost at the thresholds 0.4 % against 4 %)
        self.amp_dtype = torch.float16
        if cuda:
            torch.backends.cudnn.benchmark = True
        self._graphs: dict = {}
        self._warned: set = set()

    @classmethod
    def from_net(cls, net: DetectorNet, threshold: float = 0.5, high: float = 0.9,
                 batch: int | None = None, fast: bool | None = None) -> "UNetDetector":
        """A detector around a network in memory (e.g. one being trained), on the
        network's device."""
        self = cls.__new__(cls)
        self._setup(net, None, threshold, high, batch, fast)
        return self

    def _check(self, grid: Grid) -> None:
        if grid.resolution % 8:
            raise ValueError(f"the detector needs a resolution divisible by 8, got "
                             f"{grid.resolution}")
        trained = self.trained
        if trained is not None and abs(grid.pitch / trained.pitch - 1) > 0.1 \
                and grid.pitch not in self._warned:
            self._warned.add(grid.pitch)
            warnings.warn(f"the detector was trained at {trained.pitch:.3g} Å per pixel, these "
                          f"images have {grid.pitch:.3g}: expect lower accuracy", stacklevel=3)

    def probabilities(self, images: np.ndarray, kernel_row) -> tuple[np.ndarray, np.ndarray]:
        """Occupancy probabilities ``(N, U, U)`` and offsets ``(N, 2, U, U)`` for images
        ``(N, R, R)`` with the kernel row ``(R, R)``.

        On a GPU the batches are pipelined: each is converted to float32 into pinned
        memory and copied up without waiting, the sigmoid is taken on the device, and the
        results come back through pinned buffers while the device works on the next batch
        (no per-image work, one wait per batch for the copy of the batch before).

        These are float32 maps on every device (192 KB per image at 64², what bounds the
        rate on a GPU); :meth:`detect` on CUDA takes the fast path instead (``fast``)."""
        k = torch.as_tensor(np.asarray(kernel_row, np.float32))
        R = k.shape[-1]
        if tuple(k.shape) != (R, R):
            raise ValueError(f"kernel image shape {tuple(k.shape)} is not square")
        k = k.to(self.device)
        images = np.asarray(images).reshape(-1, R, R)
        U = R * self.net.upsample
        prob = np.empty((len(images), U, U), np.float32)
        off = np.empty((len(images), 2, U, U), np.float32)
        if self.device.type != "cuda":
            with torch.inference_mode():
                for s in range(0, len(images), self.batch):
                    x = torch.from_numpy(np.ascontiguousarray(images[s:s + self.batch],
                                                              np.float32))
                    out = self.net(x.to(self.device), k.expand(len(x), -1, -1)).float().cpu()
                    prob[s:s + len(x)] = torch.sigmoid(out[:, 0]).numpy()
                    off[s:s + len(x)] = out[:, 1:].numpy()
            return prob, off
        with _on(self.device):  # its events and streams are the network's device's
            return self._pipelined(images, k, prob, off)

    # --- fast path of detect: autocast, channels_last, one CUDA graph per shape ---------

    def _forward_fn(self, x: torch.Tensor, k: torch.Tensor, thr: torch.Tensor,
                    valid: torch.Tensor, cap: int):
        """The fast path's device work for a full batch ``x`` ``(B, R, R)`` and the row
        ``k`` ``(R, R)``: the network (half precision on CUDA), :func:`decode`'s rule on
        the probabilities, and the kept cells of the first ``valid`` images gathered into
        ``cap`` slots (:func:`kept_cells`). Every shape is static, so that it can be
        recorded as one CUDA graph. ``thr``: threshold, high."""
        B = x.shape[0]
        with torch.autocast("cuda", dtype=self.amp_dtype, enabled=x.is_cuda,
                            cache_enabled=False):
            out = self.net(x, k.expand(B, -1, -1))
        out = out.float()
        p = torch.sigmoid(out[:, 0])
        # decode's rule (targets.decode) on the device: 3x3 sum and local maximum, zero
        # outside the map (p > 0, so max pooling's -inf padding gives the same maximum)
        mass = F.avg_pool2d(p[:, None], 3, stride=1, padding=1,
                            count_include_pad=True)[:, 0] * 9.0
        peak = (p == F.max_pool2d(p[:, None], 3, stride=1, padding=1)[:, 0]) & (mass >= thr[0])
        keep = (peak | (p >= thr[1])) & (p > 0)
        keep &= (torch.arange(B, device=x.device) < valid)[:, None, None]
        conf = torch.clamp(torch.where(peak, mass, p), max=1.0)
        shift = torch.clamp(out[:, 1:], -0.5, 0.5)
        return kept_cells(keep, conf, shift, cap)

    def _graph(self, B: int, R: int, cap: int):
        """Static buffers and, on CUDA, the CUDA graph of :meth:`_forward_fn` at batch
        ``B``, built once per shape (eager elsewhere, or when capture fails: ``graph``
        None)."""
        key = (B, R, cap)
        if key in self._graphs:
            return self._graphs[key]
        x = torch.zeros((B, R, R), device=self.device)
        k = torch.zeros((R, R), device=self.device)
        k[R // 2, R // 2] = 1.0
        thr = torch.tensor([self.threshold, self.high], device=self.device)
        valid = torch.tensor(B, device=self.device)
        entry = {"x": x, "k": k, "thr": thr, "valid": valid, "cap": cap, "graph": None,
                 "out": None}
        if self.device.type == "cuda":
            try:
                stream = torch.cuda.Stream(self.device)
                stream.wait_stream(torch.cuda.current_stream(self.device))
                with torch.cuda.stream(stream):
                    for _ in range(3):  # cuDNN autotuning, cuFFT plans, allocations
                        self._forward_fn(x, k, thr, valid, cap)
                torch.cuda.current_stream(self.device).wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, capture_error_mode="thread_local"):
                    entry["out"] = self._forward_fn(x, k, thr, valid, cap)
                entry["graph"] = graph
            except Exception as exc:  # pragma: no cover - depends on the device and torch
                warnings.warn(f"CUDA graph capture failed ({type(exc).__name__}: {exc}); "
                              "running the detector eagerly", stacklevel=4)
                torch.cuda.synchronize(self.device)
                entry["graph"], entry["out"] = None, None
        self._graphs[key] = entry
        return entry

    def _run(self, entry):
        """The fast path's outputs for the static input (replayed, or run eagerly)."""
        if entry["graph"] is not None:
            entry["graph"].replay()
            return entry["out"]
        return self._forward_fn(entry["x"], entry["k"], entry["thr"], entry["valid"],
                                entry["cap"])

    def _host_slots(self, B: int, R: int, cap: int) -> list[dict]:
        """Two sets of host buffers (pinned on CUDA), used by alternate batches: the
        images going up, the kept cells coming back, and an event marking when the
        device is done with them."""
        key = (B, R, cap)
        cached = getattr(self, "_slots", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        pin = {"pin_memory": self.device.type == "cuda"}
        slots = [{"x": torch.empty((B, R, R), **pin),
                  "index": torch.empty(cap, dtype=torch.int64, **pin),
                  "values": torch.empty((cap, 3), **pin),
                  "total": torch.empty((), dtype=torch.int64, **pin), "event": None}
                 for _ in range(2)]
        self._slots = (key, slots)
        return slots

    def _fast_detect(self, images, kernel_row, grid: Grid):
        """Positions and confidences as :meth:`decode` of :meth:`probabilities` gives
        them, with the kept cells gathered on the device and only those copied back.

        Batches are pipelined one deep: batch ``i + 1`` is converted, uploaded and run
        before the host waits for batch ``i``'s cells, so the host's work (converting
        the next images, turning cells into positions) overlaps the device's. A batch
        with more kept cells than the slots hold is redone eagerly (exact, rare)."""
        k = torch.as_tensor(np.asarray(kernel_row, np.float32)).to(self.device)
        R = k.shape[-1]
        images = np.asarray(images).reshape(-1, R, R)
        B, U = self.batch, R * self.net.upsample
        cap = B * max(256, U * U // 64)
        with torch.inference_mode():  # the static buffers are inference tensors
            entry = self._graph(B, R, cap)
            entry["k"].copy_(k)
            entry["thr"].copy_(torch.tensor([self.threshold, self.high]))
        slots = self._host_slots(B, R, cap)
        cells = _Cells(grid, self.net.upsample, U)
        cuda = self.device.type == "cuda"  # copies without waiting: CUDA's events order them

        def launch(i: int, start: int) -> tuple[int, int, dict]:
            slot = slots[i % 2]
            if slot["event"] is not None:
                slot["event"].synchronize()  # its last batch's upload and cells are done
            chunk = images[start:start + B]
            n = len(chunk)
            slot["x"][:n].copy_(torch.from_numpy(np.ascontiguousarray(chunk)))
            entry["x"][:n].copy_(slot["x"][:n], non_blocking=cuda)
            entry["valid"].fill_(n)
            index, values, total = self._run(entry)
            slot["index"].copy_(index, non_blocking=cuda)
            slot["values"].copy_(values, non_blocking=cuda)
            slot["total"].copy_(total, non_blocking=cuda)
            slot["event"] = _event(self.device)
            return start, n, slot

        def collect(start: int, n: int, slot: dict) -> None:
            slot["event"].synchronize()
            total = int(slot["total"])
            if total <= cap:
                cells.add(n, slot["index"][:total].numpy(), slot["values"][:total].numpy())
                return
            x = torch.from_numpy(np.ascontiguousarray(images[start:start + n], np.float32))
            x = x.to(self.device)  # too many cells for the slots: this batch eagerly
            index, values, total = self._forward_fn(
                x, entry["k"], entry["thr"], torch.tensor(n, device=self.device), n * U * U)
            total = int(total)
            cells.add(n, index[:total].cpu().numpy(), values[:total].cpu().numpy())

        pending = None
        with torch.inference_mode():
            for i, start in enumerate(range(0, len(images), B)):
                launched = launch(i, start)
                if pending is not None:
                    collect(*pending)
                pending = launched
            if pending is not None:
                collect(*pending)
        return cells.positions, cells.confidence

    def _pipelined(self, images, k, prob, off):
        """:meth:`probabilities` on CUDA: two sets of pinned buffers in turn."""
        B, (R, U) = self.batch, (k.shape[-1], prob.shape[-1])
        stage = getattr(self, "_stage", None)
        if stage is None or stage[0] != (B, R, U):
            pinned = {"pin_memory": True}
            stage = ((B, R, U), [(torch.empty((B, R, R), **pinned),
                                  torch.empty((B, 3, U, U), **pinned)) for _ in range(2)])
            self._stage = stage
        buffers = stage[1]
        pending: list = []  # (event, output buffer, start, count), newest first

        def collect() -> None:  # the oldest batch in flight
            event, out, start, count = pending.pop()
            event.synchronize()
            torch.from_numpy(prob[start:start + count]).copy_(out[:count, 0])
            torch.from_numpy(off[start:start + count]).copy_(out[:count, 1:])

        with torch.inference_mode():
            for i, s in enumerate(range(0, len(images), B)):
                x_host, out_host = buffers[i % 2]
                if len(pending) == 2:  # the batch before last: its buffers are reused now
                    collect()
                chunk = images[s:s + B]
                n = len(chunk)
                x_host[:n].copy_(torch.from_numpy(np.ascontiguousarray(chunk)))
                x = x_host[:n].to(self.device, non_blocking=True)
                out = self.net(x, k.expand(n, -1, -1)).float()
                out = torch.cat([torch.sigmoid(out[:, :1]), out[:, 1:]], dim=1)
                out_host[:n].copy_(out, non_blocking=True)
                pending.insert(0, (_event(self.device), out_host, s, n))
            while pending:
                collect()
        return prob, off

    def decode(self, prob, off, grid: Grid) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Positions (Å) and confidences from :meth:`probabilities` at this detector's
        thresholds."""
        return decode(prob, off, grid, self.net.upsample, self.threshold, self.high)

    def detect(self, images, op) -> Detections:
        """Positions (Å) and confidences in each image of a stack ``(N, R, R)``."""
        stack, _ = as_image_stack(images, check_operator(op).grid.resolution)
        self._check(op.grid)
        if self.fast:
            with _on(self.device):
                positions, confidence = self._fast_detect(stack, op.kernel_row, op.grid)
            return Detections(positions, confidence=confidence)
        prob, off = self.probabilities(stack, op.kernel_row)
        positions, confidence = self.decode(prob, off, op.grid)
        return Detections(positions, confidence=confidence)


def load_detector(path=None, device=None) -> tuple[DetectorNet, dict[str, Any]]:
    """The network, on ``device`` (default :func:`~qpiset.forward.device.default_device`),
    and its checkpoint record (training grid, thresholds, training info); ``path=None``
    loads the shipped weights. A checkpoint saved on any device loads on any other."""
    from ...forward.device import resolve_device

    device = resolve_device(device)
    state = load_checkpoint(DEFAULT_DETECTOR if path is None else path, "detector")
    net = DetectorNet(**state["config"])
    net.load_state_dict(state["state"])
    net = net.to(device)
    if device.type == "cuda":  # NHWC convolutions (tensor cores); the CPU's stay as they were
        net = net.to(memory_format=torch.channels_last)
    return net.eval(), state


def merge_seeds(first: np.ndarray, second: np.ndarray, radius: float) -> np.ndarray:
    """``first`` plus the points of ``second`` farther than ``radius`` (Å) from all of them.

    Examples
    --------
    >>> merge_seeds(np.array([[0.0, 0.0]]), np.array([[0.5, 0.0], [5.0, 0.0]]), 1.0).tolist()
    [[0.0, 0.0], [5.0, 0.0]]
    """
    first = np.asarray(first, float).reshape(-1, 2)
    second = np.asarray(second, float).reshape(-1, 2)
    if len(first) == 0 or len(second) == 0:
        return np.concatenate([first, second])
    d = np.hypot(second[:, None, 0] - first[None, :, 0], second[:, None, 1] - first[None, :, 1])
    return np.concatenate([first, second[d.min(axis=1) > radius]])


class HybridDetector:
    """Detector ``hybrid``: the network's scatterers, plus the seeds of the l1 grid stage
    of :class:`~qpiset.inverse.SparseDeconvolution` that lie farther than a pixel from all
    of them, with least-squares strengths, start the physics fit and the evidence-based
    model selection of that detector (its stages 3-4). The network adds what the grid
    stage misses in noise; the fit places every scatterer and the evidence rule removes the
    spurious ones. ``device``: the network's (:class:`UNetDetector`); the fit runs on the
    CPU."""

    name = "hybrid"

    def __init__(self, weights=None, device=None) -> None:
        self.unet = UNetDetector(weights, device=device)
        self.sparse = SparseDeconvolution(seeder=self._seeds)

    def _seeds(self, image: np.ndarray, op) -> tuple[np.ndarray, np.ndarray]:
        found = self.unet.detect(image[None], op).positions[0]
        pos = merge_seeds(found, self.sparse.seeds(image, op)[0], op.grid.pitch)
        return pos, np.maximum(op.least_squares(image, pos).strengths, 0.0)

    def detect(self, images, op) -> Detections:
        """Positions (Å) and strengths in each image ``(N, R, R)``."""
        return self.sparse.detect(images, op)
