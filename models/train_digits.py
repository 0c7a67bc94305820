"""Train the bundled default model (a small residual CNN on sklearn digits).

Run as ``python models/train_digits.py`` from the repository root (or anywhere).
Writes, next to this script:

* ``digits_calib.npz`` - 200 calibration images (keys ``x`` float32 N×1×8×8, ``y`` int64)
* ``digits_test.npz``  - 360 test images (same keys), disjoint from calibration
* ``digits_cnn.onnx``  - the float model (opset 13, input ``x``, output ``logits``,
  dynamic batch axis, BatchNormalization nodes kept in the graph)

Never imported by the tool at run time.  Deterministic (fixed seeds, 1 thread).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from digits_data import split_digits  # noqa: E402

TORCH_SEED = 0
EPOCHS = 30
BATCH = 64
LR = 1e-2


class DigitsCNN(nn.Module):
    """Conv-BN-ReLU -> Conv-BN (+residual) -> ReLU -> MaxPool -> Conv-BN-ReLU -> GAP -> Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv3 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn3 = nn.BatchNorm2d(16)
        self.gap = nn.AdaptiveAvgPool2d(1)  # exports as GlobalAveragePool
        self.fc = nn.Linear(16, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.relu(self.bn1(self.conv1(x)))
        b = self.bn2(self.conv2(a))
        h = torch.relu(b + a)
        h = self.pool(h)
        h = torch.relu(self.bn3(self.conv3(h)))
        h = torch.flatten(self.gap(h), 1)
        return self.fc(h)


def train_model(model: nn.Module, x: np.ndarray, y: np.ndarray) -> nn.Module:
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=EPOCHS)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(TORCH_SEED)
    model.train()
    for _ in range(EPOCHS):
        perm = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), BATCH):
            idx = perm[i : i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    return model


def export_onnx(model: nn.Module, path: Path) -> None:
    model.eval()
    example = torch.zeros(1, 1, 8, 8)
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=False,
        opset_version=13,
        do_constant_folding=False,  # keeps BatchNormalization (no Conv+BN fusion)
        training=torch.onnx.TrainingMode.PRESERVE,  # model is in eval mode -> inference graph
        input_names=["x"],
        output_names=["logits"],
        dynamic_axes={"x": {0: "N"}, "logits": {0: "N"}},
    )


def main() -> None:
    t0 = time.perf_counter()
    torch.manual_seed(TORCH_SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    s = split_digits()
    np.savez_compressed(HERE / "digits_calib.npz", x=s.x_calib, y=s.y_calib)
    np.savez_compressed(HERE / "digits_test.npz", x=s.x_test, y=s.y_test)

    model = train_model(DigitsCNN(), s.x_train, s.y_train)
    out = HERE / "digits_cnn.onnx"
    export_onnx(model, out)
    t_train = time.perf_counter() - t0

    import onnx
    import onnxruntime as ort

    m = onnx.load(str(out))
    onnx.checker.check_model(m, full_check=True)
    ops = sorted({n.op_type for n in m.graph.node})
    assert "BatchNormalization" in ops, ops

    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    logits = sess.run(["logits"], {"x": s.x_test})[0]
    acc = float((logits.argmax(1) == s.y_test).mean())
    with torch.no_grad():
        ref = model(torch.from_numpy(s.x_test)).numpy()
    print(f"ops: {ops}")
    print(f"max |onnxruntime - torch| = {np.abs(logits - ref).max():.3g}")
    print(f"float test accuracy (onnxruntime, {len(s.y_test)} images): {acc:.4f}")
    print(f"train+export time: {t_train:.1f} s")
    if acc < 0.95:
        raise SystemExit(f"accuracy {acc:.4f} < 0.95")


if __name__ == "__main__":
    main()
