"""Torch definitions of the test model zoo, a deterministic trainer and ONNX exporters.

Every net takes ``x`` of shape (N, 1, 8, 8) float32 (digits scaled to [0, 1]).
All but ``Gated`` output logits; ``Gated`` ends in Softmax (probabilities) and
exposes ``forward_logits`` for training.

Reusable by tests that export live::

    from zoo import nets            # or: from tests.zoo import nets
    m = nets.train(nets.build("resnet_gap"))
    nets.export_legacy(m, tmp_path / "m.onnx", opset=13)
    nets.export_dynamo(m, tmp_path / "m_dyn.onnx")   # weights in m_dyn.onnx.data
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[2]
_MODELS_DIR = REPO_ROOT / "models"
if str(_MODELS_DIR) not in sys.path:
    sys.path.insert(0, str(_MODELS_DIR))

from digits_data import DigitsSplit, split_digits  # noqa: E402

__all__ = [
    "MLP",
    "CnnBN",
    "ResNetGAP",
    "DwSep",
    "Gated",
    "NETS",
    "OPSETS",
    "OUTPUT_NAMES",
    "build",
    "digits_split",
    "train",
    "predict",
    "export_legacy",
    "export_dynamo",
]


# --------------------------------------------------------------------------- nets


class MLP(nn.Module):
    """Flatten -> Linear(64,64) -> ReLU -> Linear(64,32) -> ReLU -> Linear(32,10)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 64),
            nn.ReLU(),
            nn.Linear(64, 32),
            nn.ReLU(),
            nn.Linear(32, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CnnBN(nn.Module):
    """Conv(dilation 2)+BN+ReLU -> ZeroPad(0,1,0,1)+Conv(stride 2)+BN+ReLU -> MaxPool -> Flatten -> Linear.

    The right/bottom zero pad before the stride-2 conv is TF "SAME" padding
    (8x8 -> 4x4); it exports as a Pad node.  The first conv uses dilation 2
    with padding 2 (8x8 -> 8x8).
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=2, dilation=2)
        self.bn1 = nn.BatchNorm2d(8)
        self.pad = nn.ZeroPad2d((0, 1, 0, 1))
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=0)
        self.bn2 = nn.BatchNorm2d(16)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(16 * 2 * 2, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))  # 8x8
        h = torch.relu(self.bn2(self.conv2(self.pad(h))))  # 9x9 -> 4x4
        h = self.pool(h)  # 2x2
        return self.fc(torch.flatten(h, 1))


class _ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return torch.relu(h + x)


class ResNetGAP(nn.Module):
    """Stem conv+BN+ReLU -> 2 residual blocks (Add) -> mean over H,W (ReduceMean) -> Flatten -> Linear."""

    def __init__(self, c: int = 12) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())
        self.block1 = _ResBlock(c)
        self.block2 = _ResBlock(c)
        self.fc = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block2(self.block1(self.stem(x)))
        h = torch.mean(h, dim=(2, 3), keepdim=True)
        return self.fc(torch.flatten(h, 1))


def _dw_pw(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin),  # depthwise
        nn.BatchNorm2d(cin),
        nn.ReLU6(),
        nn.Conv2d(cin, cout, 1),  # pointwise
        nn.BatchNorm2d(cout),
        nn.ReLU6(),
    )


class DwSep(nn.Module):
    """Depthwise-separable net with ReLU6 (Clip) and two padded average pools.

    stem 8x8 -> dw/pw -> AvgPool(2, pad 1, count_include_pad=False) 5x5
    -> dw/pw -> AvgPool(3, stride 2, pad 1, count_include_pad=True) 3x3 -> Flatten -> Linear.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU6())
        self.block1 = _dw_pw(8, 16)
        self.pool1 = nn.AvgPool2d(2, stride=2, padding=1, count_include_pad=False)
        self.block2 = _dw_pw(16, 16)
        self.pool2 = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True)
        self.fc = nn.Linear(16 * 3 * 3, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.pool1(self.block1(self.stem(x)))
        h = self.pool2(self.block2(h))
        return self.fc(torch.flatten(h, 1))


class Gated(nn.Module):
    """Two branches (Tanh / LeakyReLU(0.1)) concatenated, sigmoid-gated, HardSigmoid, Linear, Softmax."""

    def __init__(self) -> None:
        super().__init__()
        self.branch_a = nn.Conv2d(1, 8, 3, padding=1)
        self.branch_b = nn.Conv2d(1, 8, 3, padding=1)
        self.leaky = nn.LeakyReLU(0.1)
        self.gate = nn.Conv2d(16, 16, 1)
        self.conv = nn.Conv2d(16, 16, 3, stride=2, padding=1)
        self.hsig = nn.Hardsigmoid()
        self.fc = nn.Linear(16 * 4 * 4, 10)
        self.softmax = nn.Softmax(dim=1)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.tanh(self.branch_a(x))
        b = self.leaky(self.branch_b(x))
        h = torch.cat([a, b], dim=1)
        h = h * torch.sigmoid(self.gate(h))
        h = self.hsig(self.conv(h))  # 4x4
        return self.fc(torch.flatten(h, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.softmax(self.forward_logits(x))


NETS: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "cnn_bn": CnnBN,
    "resnet_gap": ResNetGAP,
    "dwsep": DwSep,
    "gated": Gated,
}
OPSETS: dict[str, int] = {"mlp": 13, "cnn_bn": 17, "resnet_gap": 13, "dwsep": 13, "gated": 13}
OUTPUT_NAMES: dict[str, str] = {name: "logits" for name in NETS} | {"gated": "probs"}

# Per-net training settings (epochs, lr); chosen to pass >= 0.9 with margin quickly.
_TRAIN_CFG: dict[str, tuple[int, float]] = {
    "mlp": (40, 3e-3),
    "cnn_bn": (30, 1e-2),
    "resnet_gap": (30, 1e-2),
    "dwsep": (30, 1e-2),
    "gated": (30, 3e-3),
}


def build(name: str, seed: int = 0) -> nn.Module:
    """Construct (untrained, deterministic init) net ``name``."""
    torch.manual_seed(seed)
    return NETS[name]()


# --------------------------------------------------------------------------- training

_SPLIT: DigitsSplit | None = None


def digits_split() -> DigitsSplit:
    """The shared digits split (cached)."""
    global _SPLIT
    if _SPLIT is None:
        _SPLIT = split_digits()
    return _SPLIT


def train(
    model: nn.Module,
    x: np.ndarray | None = None,
    y: np.ndarray | None = None,
    *,
    epochs: int | None = None,
    lr: float | None = None,
    batch: int = 64,
    seed: int = 0,
) -> nn.Module:
    """Train ``model`` in place with Adam + cosine LR on the digits train split; returns it in eval mode.

    Deterministic: single thread, fixed shuffling generator.  Nets with a
    ``forward_logits`` method (probability outputs) are trained on those logits.
    Defaults for epochs / lr come from the zoo name if the class is a zoo net.
    """
    if x is None or y is None:
        s = digits_split()
        x, y = s.x_train, s.y_train
    name = next((k for k, v in NETS.items() if type(model) is v), None)
    d_epochs, d_lr = _TRAIN_CFG.get(name, (30, 1e-2)) if name else (30, 1e-2)
    epochs = d_epochs if epochs is None else epochs
    lr = d_lr if lr is None else lr

    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
        fwd = getattr(model, "forward_logits", model)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        loss_fn = nn.CrossEntropyLoss()
        g = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(len(xt), generator=g)
            for i in range(0, len(xt), batch):
                idx = perm[i : i + batch]
                opt.zero_grad()
                loss = loss_fn(fwd(xt[idx]), yt[idx])
                loss.backward()
                opt.step()
            sched.step()
    finally:
        torch.set_num_threads(n_threads)
    model.eval()
    return model


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    return model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))).numpy()


# --------------------------------------------------------------------------- export


def _output_name(model: nn.Module) -> str:
    return "probs" if isinstance(model, Gated) else "logits"


def export_legacy(
    model: nn.Module,
    path: str | Path,
    opset: int = 13,
    *,
    output_name: str | None = None,
) -> Path:
    """TorchScript (legacy, dynamo=False) export in eval mode, BatchNormalization kept.

    Input ``x`` (N,1,8,8) with dynamic batch axis ``N``; output ``logits``
    (``probs`` for :class:`Gated`) with the same dynamic batch axis.
    ``do_constant_folding=False`` is what keeps BatchNormalization nodes:
    the exporter's eval-mode Conv+BN fusion only runs as part of constant folding.
    """
    path = Path(path)
    out = output_name or _output_name(model)
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy TorchScript-based exporter"
        # ZeroPad2d: "Only steps=1 can be constant folded ... Slice" (harmless, pads subgraph kept)
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
        torch.onnx.export(
            model,
            (torch.zeros(1, 1, 8, 8),),
            str(path),
            dynamo=False,
            opset_version=opset,
            do_constant_folding=False,
            training=torch.onnx.TrainingMode.PRESERVE,
            input_names=["x"],
            output_names=[out],
            dynamic_axes={"x": {0: "N"}, out: {0: "N"}},
        )
    return path


def export_dynamo(
    model: nn.Module,
    path: str | Path,
    *,
    output_name: str | None = None,
    optimize: bool = True,
) -> Path:
    """torch.export-based (dynamo=True) export, opset 18, weights in external data.

    Writes ``path`` plus ``<path>.name + ".data"`` (the external data file,
    referenced by file name relative to the model) and returns the data file path.
    Input ``x`` with dynamic batch axis ``N``; output named ``logits``/``probs``.

    No extra arguments are needed for external data.  Observed with torch 2.13 /
    onnxscript 0.7: only initializers larger than 256 bytes go to the data file
    (biases etc. stay inline); IR version 10; with ``optimize=True`` (torch's
    default) onnxscript's rewriter fuses BatchNorm into Conv and Flatten becomes
    Reshape; with ``optimize=False`` BatchNormalization survives but the graph
    gains Shape/Expand/CastLike/Squeeze/Reshape/Concat plumbing.
    """
    path = Path(path)
    out = output_name or _output_name(model)
    model.eval()
    example = torch.zeros(2, 1, 8, 8)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=True,
        opset_version=18,
        external_data=True,
        optimize=optimize,
        verbose=False,
        input_names=["x"],
        output_names=[out],
        dynamic_shapes=({0: torch.export.Dim("N", min=1, max=1 << 16)},),
    )
    data = path.with_name(path.name + ".data")
    if not data.is_file():
        raise RuntimeError(f"dynamo export did not write external data file {data}")
    return data
