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
    """Build a model whose shape, weights and precision (float32 or float64) come from
    ``arrays`` (a :class:`~fl_credit.boosting.tree.TreeEnsemble` for ``model=gbm`` arrays)."""
    from fl_credit.boosting.tree import TreeEnsemble, is_ensemble

    if is_ensemble(arrays):
        return TreeEnsemble.from_arrays(arrays)
    state = arrays.to_torch_state_dict()
    model = LogisticRegression(state["linear.weight"].shape[1]).to(state["linear.weight"].dtype)
    model.load_state_dict(state)
    return model


def predict_proba(model: nn.Module, x: np.ndarray) -> np.ndarray:
    """Default probabilities for rows ``x`` (already scaled; unscaled for a tree ensemble,
    whose ``model=gbm`` runs use :class:`~fl_credit.boosting.inputs.RawInputs`)."""
    if hasattr(model, "predict_proba"):
        return model.predict_proba(np.asarray(x, dtype=np.float64))
    model.eval()
    dtype = next(model.parameters()).dtype
    with torch.no_grad():
        logits = model(torch.as_tensor(x, dtype=dtype))
    return torch.sigmoid(logits).numpy().astype(np.float64)


def theta_from_arrays(arrays: ArrayRecord) -> np.ndarray:
    """``[w..., b]`` as float64 from the model's arrays (Newton's point)."""
    state = arrays.to_numpy_ndarrays()
    names = list(arrays.keys())
    weight = state[names.index("linear.weight")].astype(np.float64).ravel()
    bias = state[names.index("linear.bias")].astype(np.float64).ravel()
    return np.concatenate([weight, bias])


def model_from_theta(theta: np.ndarray) -> LogisticRegression:
    """A float64 model with weights ``theta[:-1]`` and bias ``theta[-1]``."""
    theta = np.asarray(theta, dtype=np.float64)
    model = LogisticRegression(len(theta) - 1).double()
    with torch.no_grad():
        model.linear.weight.copy_(torch.as_tensor(theta[:-1])[None, :])
        model.linear.bias.copy_(torch.as_tensor(theta[-1:]))
    return model
