"""The block interface, `register_block`, and the transition shared by token blocks."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from search_spaces import registry
from search_spaces.arch import LayerChoice
from search_spaces.counts import Counts, conv_norm
from search_spaces.dynamic import ElasticConvNormAct, prefixed
from search_spaces.spec import FamilyParams
from search_spaces.standalone import LAYERS
from search_spaces.walk import Placement


@dataclass(frozen=True)
class Site(Placement):
    """Where an elastic block sits in the supernet: the largest placement it must serve (cin and cout are
    the maxima), and its family's options in the space."""

    params: Any = None  # the family's FamilyParams in this space


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
    def weights(self, cin: int, cout: int, layer: Any) -> dict[str, Tensor]:
        """The sliced weights, named as in the static layer's state dict."""

    @staticmethod
    @abstractmethod
    def static_config(at: Placement, layer: Any, params: Any) -> dict[str, Any]:
        """The static layer's constructor arguments (pure: no weights)."""

    def placement(self, cin: int, cout: int) -> Placement:
        return Placement(self.site.dims, cin, cout, self.site.stride, self.site.first)

    def extract(self, cin: int, cout: int, layer: LayerChoice) -> nn.Module:
        """A plain torch layer holding copies of the sliced weights."""
        module = registry.family(self.family).static(**self.static_config(self.placement(cin, cout), layer, self.site.params))
        module.load_state_dict({k: v.detach() for k, v in self.weights(cin, cout, layer).items()})
        return module


def register_block(
    name: str, *, choice: type[LayerChoice], params: type[FamilyParams], static: type[nn.Module],
    count: Callable[[dict[str, Any], int], Counts], label: str, colour: str, letter: str | None = None,
) -> Callable[[type[ElasticBlock]], type[ElasticBlock]]:
    """Class decorator on a family's elastic block: register the family under `name` with everything
    the product needs for it (see registry.BlockFamily)."""

    def add(cls: type[ElasticBlock]) -> type[ElasticBlock]:
        registry.add_family(registry.BlockFamily(
            name=name, choice=choice, params=params, elastic=cls, static=static, config=cls.static_config,
            count=count, label=label, colour=colour, letter=letter or name[0]))
        cls.family = name
        LAYERS[name] = static  # standalone.Network builds the family's layers by type
        return cls

    return add


def unregister_block(name: str) -> None:
    """Remove a family registered with `register_block` (for tests that define their own)."""
    registry.remove_family(name)
    LAYERS.pop(name, None)


class ElasticTransition(nn.Module):
    """Elastic twin of standalone.Transition (strided depthwise 3x3 + 1x1 projection)."""

    def __init__(self, site: Site):
        super().__init__()
        self.depthwise = ElasticConvNormAct(site.dims, site.cin, site.cin, (3,), site.stride, True, act=False)
        self.pointwise = ElasticConvNormAct(site.dims, site.cin, site.cout, act=False)

    def forward(self, x: Tensor, cout: int) -> Tensor:
        return self.pointwise(self.depthwise(x, x.shape[1]), cout)

    def weights(self, cin: int, cout: int) -> dict[str, Tensor]:
        return prefixed("depthwise", self.depthwise.weights(cin, cin)) | prefixed(
            "pointwise", self.pointwise.weights(cin, cout)
        )


def entry_config(at: Placement) -> dict[str, Any]:
    """The constructor arguments every token block's static layer shares (its optional transition)."""
    return {"dims": at.dims, "cin": at.cin, "cout": at.cout, "stride": at.stride, "transition": at.first}


def transition_counts(p: dict[str, Any], size: int) -> list[Counts]:
    """Counts of the optional strided transition a token block starts its stage with."""
    if not p["transition"]:
        return [Counts(0, 0, size)]
    dw = conv_norm(p["dims"], p["cin"], p["cin"], 3, p["stride"], p["cin"], size)
    return [dw, conv_norm(p["dims"], p["cin"], p["cout"], 1, 1, 1, dw.size)]


class TokenBlock(ElasticBlock):
    """Base of blocks that mix tokens (attention, SSM): an optional transition, then the mixer."""

    def __init__(self, site: Site):
        super().__init__(site)
        self.transition = ElasticTransition(site) if site.first else None

    def enter(self, x: Tensor, cout: int) -> Tensor:
        return self.transition(x, cout) if self.transition is not None else x

    def entry_weights(self, cin: int, cout: int) -> dict[str, Tensor]:
        return prefixed("transition", self.transition.weights(cin, cout)) if self.transition is not None else {}
