"""The block interface, the registry of block families, and the shared transition entry."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from search_spaces.arch import Layer
from search_spaces.dynamic import ElasticConvNormAct, prefixed
from search_spaces.spec import BlockParams
from search_spaces.standalone import LAYERS


@dataclass(frozen=True)
class Site:
    """Where a block sits in the supernet: the largest shapes it must serve."""

    dims: int  # 2 for images, 1 for sequences
    cin_max: int
    cout_max: int
    stride: int
    first: bool  # first layer of its stage: token blocks then start with a Transition
    params: BlockParams


class ElasticBlock(nn.Module, ABC):
    """One block family at one layer position; the active choice is an argument, never state."""

    family: ClassVar[str]

    def __init__(self, site: Site):
        super().__init__()
        self.site = site

    @abstractmethod
    def forward(self, x: Tensor, cout: int, layer: Any) -> Tensor:
        """x: (B, cin, *S) -> (B, cout, *S'), for the choices in `layer`."""

    @abstractmethod
    def plan(self, cin: int, cout: int, layer: Any) -> dict[str, Any]:
        """The static layer's type and constructor arguments (see standalone.LAYERS)."""

    @abstractmethod
    def weights(self, cin: int, cout: int, layer: Any) -> dict[str, Tensor]:
        """The sliced weights, named as in the static layer's state dict."""

    def extract(self, cin: int, cout: int, layer: Layer) -> nn.Module:
        """A plain torch layer holding copies of the sliced weights."""
        plan = self.plan(cin, cout, layer)
        module = LAYERS[plan["type"]](**{k: v for k, v in plan.items() if k != "type"})
        module.load_state_dict({k: v.detach() for k, v in self.weights(cin, cout, layer).items()})
        return module


BLOCKS: dict[str, type[ElasticBlock]] = {}


def register_block(name: str) -> Callable[[type[ElasticBlock]], type[ElasticBlock]]:
    """Class decorator: make a block family available to search spaces under `name`."""

    def add(cls: type[ElasticBlock]) -> type[ElasticBlock]:
        if name in BLOCKS:
            raise ValueError(f"block family {name!r} is already registered")
        cls.family = name
        BLOCKS[name] = cls
        return cls

    return add


class ElasticTransition(nn.Module):
    """Elastic twin of standalone.Transition (strided depthwise 3x3 + 1x1 projection)."""

    def __init__(self, site: Site):
        super().__init__()
        self.depthwise = ElasticConvNormAct(site.dims, site.cin_max, site.cin_max, (3,), site.stride, True, act=False)
        self.pointwise = ElasticConvNormAct(site.dims, site.cin_max, site.cout_max, act=False)

    def forward(self, x: Tensor, cout: int) -> Tensor:
        return self.pointwise(self.depthwise(x, x.shape[1]), cout)

    def weights(self, cin: int, cout: int) -> dict[str, Tensor]:
        return prefixed("depthwise", self.depthwise.weights(cin, cin)) | prefixed(
            "pointwise", self.pointwise.weights(cin, cout)
        )


class TokenBlock(ElasticBlock):
    """Base of blocks that mix tokens (attention, SSM): an optional transition, then the mixer."""

    def __init__(self, site: Site):
        super().__init__(site)
        self.transition = ElasticTransition(site) if site.first else None

    def enter(self, x: Tensor, cout: int) -> Tensor:
        return self.transition(x, cout) if self.transition is not None else x

    def entry_plan(self, cin: int, cout: int) -> dict[str, Any]:
        return {"dims": self.site.dims, "cin": cin, "cout": cout, "stride": self.site.stride, "transition": self.site.first}

    def entry_weights(self, cin: int, cout: int) -> dict[str, Tensor]:
        return prefixed("transition", self.transition.weights(cin, cout)) if self.transition is not None else {}
