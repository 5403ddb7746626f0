"""examples/train_digits.py: its training loop learns (on synthetic 8x8 data, no scikit-learn)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "train_digits.py"


def _example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("train_digits_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _synthetic(example: ModuleType, n: int, seed: int) -> object:
    """Ten noisy 8x8 prototypes in [0, 1], shaped like the digits data set."""
    rng = np.random.default_rng(seed)
    prototypes = rng.uniform(0, 1, (10, 64))
    labels = np.arange(n) % 10
    images = prototypes[labels] + 0.3 * rng.standard_normal((n, 64))
    images = np.clip(images, 0, 1).astype(np.float32)
    split = n * 4 // 5
    return example.Data(images[:split], labels[:split], images[split:], labels[split:])


def test_mlp_training_loop_learns_and_is_reproducible(capsys: pytest.CaptureFixture) -> None:
    example = _example()
    data = _synthetic(example, 500, seed=1)
    first = example.train("mlp", data, seed=3, epochs=4)
    printed = capsys.readouterr().out
    assert printed.count("mlp  epoch") == 4
    assert first >= 0.9
    again = example.train("mlp", data, seed=3, epochs=4)
    assert again == first
    # Each epoch line shows the loss; it goes down.
    losses = [float(line.split("train loss ")[1].split()[0]) for line in printed.splitlines()]
    assert losses[-1] < losses[0] / 2


def test_missing_scikit_learn_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    example = _example()
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now raises ImportError
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(SystemExit) as exit_info:
        example.load_digits(0)
    assert exit_info.value.code == 1
    assert "pip install 'graphflow[examples]'" in capsys.readouterr().err
