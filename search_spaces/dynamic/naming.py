"""State-dict naming shared by the elastic ops and blocks."""

from torch import Tensor


def prefixed(prefix: str, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """Name tensors as a submodule's entries of a state dict."""
    return {f"{prefix}.{k}": v for k, v in tensors.items()}
