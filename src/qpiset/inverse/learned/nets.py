"""Network building blocks and checkpoint files shared by the detector and the kernel
extractor (torch ``nn.Module`` pieces, no physics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ...io.atomic import atomic_output

__all__ = ["conv_block", "KernelEncoder", "save_checkpoint", "load_checkpoint"]


def conv_block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 convolutions with SiLU, size-preserving."""
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.SiLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.SiLU())


class KernelEncoder(nn.Module):
    """A (1, R, R) map -> a vector: four stride-2 convolutions, global average pooling,
    a linear layer. R a multiple of 16 (64 for the dataset)."""

    def __init__(self, cin: int = 1, width: int = 16, out: int = 64) -> None:
        super().__init__()
        chans = [cin, width, 2 * width, 4 * width, 4 * width]
        layers: list[nn.Module] = []
        for a, b in zip(chans[:-1], chans[1:]):
            layers += [nn.Conv2d(a, b, 3, stride=2, padding=1), nn.SiLU()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1], out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x).mean(dim=(2, 3)))


def save_checkpoint(path, state: dict[str, Any]) -> None:
    """``torch.save`` through the atomic writer: a crash never leaves a half-written
    checkpoint under the final name."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, compress=False) as f:
        torch.save(state, f)


def load_checkpoint(path, kind: str) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` and check it holds a ``kind``
    model; a clear ``ValueError`` naming the file otherwise."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as exc:  # torch raises many types for a damaged file
        raise ValueError(f"{path}: not a qpiset checkpoint (torch.load failed: "
                         f"{type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("kind") != kind:
        found = state.get("kind") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"{path}: holds a {found!r} model, expected {kind!r}")
    return state
