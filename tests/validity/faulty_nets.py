"""Hand-built networks that solve `y = 3a + b` (a, b : 0..2) exactly, and faulty variants of them.

The good network is ``CopyTwo`` (tests/engine/fixtures/hand_nets.py): layer 0 copies a and b into
rotated subspaces, the head reads them back. Each fault is one a careless builder could ship.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine" / "fixtures"))
from hand_nets import CopyTwo  # noqa: E402


class _Faulty(CopyTwo):
    def __init__(self, fault: str):
        super().__init__(n=3, rotate=True)
        self.fault = fault
        if fault == "nan_weight":
            with torch.no_grad():
                self.layers[0].weight[0, 0] = float("nan")

    def forward(self, x):
        out = super().forward(x)
        if self.fault == "nan_logits":
            return out * float("nan")
        if self.fault == "inf_logits":
            return out + float("inf")
        return out


def _one_hot(inputs, roll: int = 0, ignore_b: bool = False):
    a = torch.tensor([x["a"] for x in inputs])
    b = torch.tensor([0 if ignore_b else x["b"] for x in inputs])
    x = torch.cat([nn.functional.one_hot(a, 3), nn.functional.one_hot(b, 3)], dim=1).float()
    return torch.roll(x, roll, dims=0)


def good():
    """Unrotated: a sits exactly in neurons 0..2 of layer 0."""
    return CopyTwo(n=3, rotate=False)


def nan_logits():
    return _Faulty("nan_logits")


def inf_logits():
    return _Faulty("inf_logits")


def nan_weight():
    return _Faulty("nan_weight")


def shifted_rows():
    """An encoder whose rows are shifted by one: every example is scored on its neighbour's input."""
    return CopyTwo(n=3, rotate=True), lambda inputs: _one_hot(inputs, roll=1)


def merged_inputs():
    """An encoder that drops b: distinct inputs reach the network as the same tensor."""
    return CopyTwo(n=3, rotate=True), lambda inputs: _one_hot(inputs, ignore_b=True)


class UnusedU(nn.Module):
    """Solves y = 3a + b and also computes u = (a == 0 and b == 0) in neuron 6 of layer 0, which
    nothing downstream reads: a variable the network computes but never uses."""

    def __init__(self, scale: float = 4.0):
        super().__init__()
        lin = nn.Linear(6, 7)
        with torch.no_grad():
            lin.weight.zero_()
            lin.weight[:6, :6] = torch.eye(6)
            lin.weight[6, 0] = lin.weight[6, 3] = 1.0
            lin.bias.zero_()
            lin.bias[6] = -1.0
        self.layers = nn.ModuleList([nn.Sequential(lin, nn.ReLU())])
        read = torch.zeros(9, 7)
        for a in range(3):
            for b in range(3):
                read[3 * a + b, a] = read[3 * a + b, 3 + b] = scale
        self.head = nn.Linear(7, 9)
        with torch.no_grad():
            self.head.weight.copy_(read)
            self.head.bias.zero_()

    def forward(self, x):
        return self.head(self.layers[0](x))


def unused_u():
    return UnusedU()
