"""The credit-scoring model: logistic regression as one linear layer, and its weights."""

from __future__ import annotations

import numpy as np
import torch
from flwr.app import ArrayRecord
from torch import nn


class LogisticRegression(nn.Module):
    """``P(default | x) = sigmoid(w.x + b)``; ``forward`` returns the logit."""

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape ``(rows,)``."""
        return self.linear(x).squeeze(-1)


def new_model(n_features: int, seed: int) -> LogisticRegression:
    """A model with zero weights (the convex problem needs no random start; ``seed`` kept
    so that a future non-convex model has one place to seed)."""
    torch.manual_seed(seed)
    model = LogisticRegression(n_features)
    with torch.no_grad():
        model.linear.weight.zero_()
        model.linear.bias.zero_()
    return model


def to_arrays(model: nn.Module) -> ArrayRecord:
    """The model's weights as a Flower ArrayRecord (plain module keys, no Opacus prefix)."""
    return ArrayRecord(plain_state_dict(model))


def plain_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """State dict with any ``_module.`` prefix left by Opacus wrappers removed."""
    return {k.removeprefix("_module."): v.detach().clone() for k, v in model.state_dict().items()}


def load_arrays(model: nn.Module, arrays: ArrayRecord) -> nn.Module:
    """Load Flower arrays into ``model`` in place and return it."""
    model.load_state_dict(arrays.to_torch_state_dict())
    return model


def model_from_arrays(arrays: ArrayRecord) -> LogisticRegression:
    """Build a model whose shape and weights come from ``arrays``."""
    state = arrays.to_torch_state_dict()
    model = LogisticRegression(state["linear.weight"].shape[1])
    model.load_state_dict(state)
    return model


def predict_proba(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Default probabilities for rows ``x`` (already scaled)."""
    model.eval()
    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=torch.float32))
    return torch.sigmoid(logits).numpy().astype(np.float64)
