"""SearchSpaceSpec: a search space as data (YAML presets validated by pydantic).

A spec describes the input, a stem, stages (elastic depth and width, stride, allowed block
types), elastic parameters per block type and a classifier head. Sampling, membership, the
cardinality and the integer / one-hot encoding used by search strategies live here too.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from search_spaces import registry
from search_spaces.arch import Arch, LayerChoice, StageArch
from search_spaces.errors import ArchError, SpaceError, field_messages, read_yaml


class _Spec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def sorted_choices(values: list, name: str) -> list:
    if not values:
        raise ValueError(f"{name} must list at least one choice")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} has duplicate choices: {values}")
    return sorted(values)


def odd_kernels(values: list[int], low: int, high: int) -> list[int]:
    """Kernel-size choices: odd sizes in low..high (centred padding keeps the resolution), sorted."""
    if any(k % 2 == 0 or not low <= k <= high for k in values):
        raise ValueError(f"kernels must be odd sizes in {low}..{high}, got {values}")
    return sorted_choices(values, "kernels")


class InputSpec(_Spec):
    kind: Literal["image", "sequence"]
    channels: int
    size: int  # image height = width, or sequence length, as the dataset provides it
    scales: list[float] = [1.0]  # elastic resolution: fractions of `size` an arch may pick

    @field_validator("channels", "size")
    @classmethod
    def _positive(cls, v: int) -> int:
        if v < 1:
            raise ValueError("must be >= 1")
        return v

    @field_validator("scales")
    @classmethod
    def _scales(cls, v: list[float]) -> list[float]:
        if any(not 0 < s <= 1 for s in v):
            raise ValueError(f"scales must lie in (0, 1], got {v}")
        return sorted_choices(v, "scales")

    @property
    def dims(self) -> int:
        return 2 if self.kind == "image" else 1

    @property
    def resolutions(self) -> list[int]:
        return sorted({max(2, round(self.size * s)) for s in self.scales})

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.channels,) + (self.size,) * self.dims


class StemSpec(_Spec):
    widths: list[int]
    kernel: int = 3
    stride: int = 1

    _w = field_validator("widths")(classmethod(lambda cls, v: sorted_choices(v, "stem.widths")))


TRANSITIONS = ("conv", "embed", "pool")  # see standalone.Downsample


class StageSpec(_Spec):
    depths: list[int]
    widths: list[int]
    stride: int = 1
    blocks: list[str]
    # searchable downsampling: a separate transition layer of one of these kinds starts the stage
    # (instead of its first block striding), with its stride one of `strides` (default: [stride])
    transitions: list[str] = []
    strides: list[int] = []

    @field_validator("transitions")
    @classmethod
    def _transitions(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v) or any(k not in TRANSITIONS for k in v):
            raise ValueError(f"transitions must list distinct kinds among {', '.join(TRANSITIONS)}, got {v}")
        return v

    @field_validator("strides")
    @classmethod
    def _strides(cls, v: list[int]) -> list[int]:
        if any(s < 1 for s in v) or len(set(v)) != len(v):
            raise ValueError(f"strides must list distinct values >= 1, got {v}")
        return sorted(v, reverse=True)  # largest() takes the last: stride 1 is the bigger network

    @model_validator(mode="after")
    def _strides_need_transitions(self) -> StageSpec:
        if self.strides and not self.transitions:
            raise ValueError("strides is a choice of the stage's transition layer: list transitions too")
        return self

    @property
    def stride_choices(self) -> list[int]:
        return self.strides or [self.stride]

    @field_validator("depths", "widths")
    @classmethod
    def _positive_choices(cls, v: list[int], info: ValidationInfo) -> list[int]:
        if any(n < 1 for n in v):
            raise ValueError(f"{info.field_name} must be >= 1, got {v}")
        return sorted_choices(v, str(info.field_name))

    @field_validator("blocks")
    @classmethod
    def _blocks(cls, v: list[str]) -> list[str]:
        # Order matters: smallest() takes the first listed type, largest() the last.
        if len(set(v)) != len(v) or not v:
            raise ValueError(f"blocks must list distinct block types, got {v}")
        for name in v:
            registry.family(name)  # an unknown name is a ValueError that lists the registered ones
        return v


class FamilyParams(_Spec):
    """Base of a block family's elastic options in a space (YAML `block_params.<family>`)."""

    def options(self) -> dict[str, list]:
        """The elastic choices, keyed by the field of the family's LayerChoice that each sets."""
        raise NotImplementedError

    def check_width(self, width: int) -> str | None:
        """Why a stage of this width cannot host the family (None if it can)."""
        return None


class HeadSpec(_Spec):
    width: int = 0  # a 1x1 feature layer before pooling; 0 means none
    dropout: float = 0.0


class Dimension(_Spec):
    """One categorical choice of the integer encoding (inactive layer slots encode as index 0)."""

    name: str
    choices: tuple


class SearchSpaceSpec(_Spec):
    name: str
    version: int = 1
    description: str = ""
    input: InputSpec
    num_classes: int
    stem: StemSpec
    stages: list[StageSpec]
    block_params: dict[str, SerializeAsAny[FamilyParams]] = {}
    head: HeadSpec = HeadSpec()

    @field_validator("block_params", mode="before")
    @classmethod
    def _family_params(cls, v: Any) -> dict[str, FamilyParams]:
        if not isinstance(v, Mapping):
            raise ValueError("block_params must map block types to their options")
        out = {}
        for name, value in v.items():
            entry = registry.family(name)
            try:
                out[name] = value if isinstance(value, entry.params) else entry.params.model_validate(value or {})
            except ValidationError as err:
                raise ValueError(f"{name}: {'; '.join(field_messages(err))}") from None
        return out

    @model_validator(mode="after")
    def _consistent(self) -> SearchSpaceSpec:
        if self.num_classes < 2:
            raise ValueError("num_classes must be >= 2")
        if not self.stages:
            raise ValueError("a space needs at least one stage")
        for i, stage in enumerate(self.stages):
            for name in stage.blocks:
                params = self.block_params.setdefault(name, registry.family(name).params())  # defaults
                for w in stage.widths:
                    problem = params.check_width(w)
                    if problem:
                        raise ValueError(f"stages[{i}].widths: width {w}: {problem}")
        return self

    def options(self, block: str) -> dict[str, list]:
        """The elastic choices of one block type in this space, keyed by the layer field they set."""
        return self.block_params[block].options()

    # ---- shape -------------------------------------------------------------------------
    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.input.shape

    def with_input(self, shape: tuple[int, ...], num_classes: int) -> SearchSpaceSpec:
        """The same space re-targeted to a dataset's input shape `(C,H,W)` / `(C,L)` and classes."""
        kind = "image" if len(shape) == 3 else "sequence"
        if kind != self.input.kind:
            raise SpaceError(
                f"space {self.name!r} is for {self.input.kind} inputs but the data is {kind} with shape {shape}"
            )
        if kind == "image" and shape[1] != shape[2]:
            raise SpaceError(f"images must be square, got height {shape[1]} and width {shape[2]}")
        inp = self.input.model_copy(update={"channels": shape[0], "size": shape[1]})
        return self.model_copy(update={"input": inp, "num_classes": num_classes})

    # ---- sampling ------------------------------------------------------------------------
    def _layer(self, block: str, pick) -> LayerChoice:
        opts = self.options(block)
        return registry.family(block).choice(**{k: pick(v) for k, v in opts.items()})

    def _arch(self, pick, family: str | None = None) -> Arch:
        stages = []
        for stage in self.stages:
            depth = pick(stage.depths)
            block = family if family in stage.blocks else None
            layers = tuple(self._layer(block or pick(stage.blocks), pick) for _ in range(depth))
            down = {"transition": pick(stage.transitions), "stride": pick(stage.stride_choices)} if stage.transitions else {}
            stages.append(StageArch(width=pick(stage.widths), layers=layers, **down))
        return Arch(
            resolution=pick(self.input.resolutions), stem_width=pick(self.stem.widths), stages=tuple(stages)
        )

    def sample(self, rng: random.Random) -> Arch:
        """A uniformly random choice per dimension (block type first, then its parameters)."""
        return self._arch(rng.choice)

    def largest(self, family: str | None = None) -> Arch:
        """Every choice at its maximum; layers use `family` where their stage allows it, else the last block
        type their stage lists."""
        return self._arch(lambda v: v[-1], family)

    def smallest(self, family: str | None = None) -> Arch:
        """Every choice at its minimum; layers use `family` where their stage allows it, else the first block
        type their stage lists."""
        return self._arch(lambda v: v[0], family)

    def families(self) -> list[str]:
        """The block types the space's stages list, in order of first appearance."""
        return list(dict.fromkeys(b for stage in self.stages for b in stage.blocks))

    # ---- membership ----------------------------------------------------------------------
    def parse(self, data: Mapping[str, Any] | Arch) -> Arch:
        """Validate a JSON object (or Arch) into an Arch of this space, or raise ArchError."""
        if isinstance(data, Arch):
            arch = data
        else:
            try:
                arch = Arch.model_validate(data)
            except ValidationError as err:
                first = err.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise ArchError(f"arch field {where or '<root>'}: {first['msg']}") from None
        self.contains(arch)
        return arch

    def contains(self, arch: Arch) -> bool:
        """True if `arch` belongs to the space; otherwise ArchError names the offending field."""

        def check(field: str, value: Any, allowed: list) -> None:
            if value not in allowed:
                raise ArchError(f"{field} = {value!r} is not allowed; allowed values: {allowed}")

        check("resolution", arch.resolution, self.input.resolutions)
        check("stem_width", arch.stem_width, self.stem.widths)
        if len(arch.stages) != len(self.stages):
            raise ArchError(f"stages has {len(arch.stages)} entries; the space has {len(self.stages)}")
        for i, (stage, spec) in enumerate(zip(arch.stages, self.stages, strict=True)):
            check(f"stages[{i}].width", stage.width, spec.widths)
            check(f"stages[{i}].depth", stage.depth, spec.depths)
            if spec.transitions:
                check(f"stages[{i}].transition", stage.transition, spec.transitions)
                check(f"stages[{i}].stride", stage.stride, spec.stride_choices)
            elif stage.transition is not None or stage.stride is not None:
                raise ArchError(f"stages[{i}]: the space's stage has a fixed stride; leave out stride and transition")
            for j, layer in enumerate(stage.layers):
                where = f"stages[{i}].layers[{j}]"
                check(f"{where}.type", layer.type, spec.blocks)
                for key, allowed in self.options(layer.type).items():
                    check(f"{where}.{key}", getattr(layer, key), allowed)
        return True

    # ---- size of the space ---------------------------------------------------------------
    def _layer_choices(self, stage: StageSpec) -> int:
        return sum(math.prod(len(v) for v in self.options(b).values()) for b in stage.blocks)

    def cardinality(self) -> int:
        """The exact number of distinct archs."""
        total = len(self.input.resolutions) * len(self.stem.widths)
        for stage in self.stages:
            per_layer = self._layer_choices(stage)
            total *= len(stage.widths) * sum(per_layer**d for d in stage.depths)
            if stage.transitions:
                total *= len(stage.transitions) * len(stage.stride_choices)
        return total

    def log10_cardinality(self) -> float:
        return math.log10(self.cardinality())

    # ---- integer / one-hot encoding ------------------------------------------------------
    def dimensions(self) -> list[Dimension]:
        """The categorical dimensions of the encoding, in a fixed order."""
        dims = [
            Dimension(name="resolution", choices=tuple(self.input.resolutions)),
            Dimension(name="stem_width", choices=tuple(self.stem.widths)),
        ]
        for i, stage in enumerate(self.stages):
            dims.append(Dimension(name=f"stages.{i}.depth", choices=tuple(stage.depths)))
            dims.append(Dimension(name=f"stages.{i}.width", choices=tuple(stage.widths)))
            if stage.transitions:
                dims.append(Dimension(name=f"stages.{i}.transition", choices=tuple(stage.transitions)))
                dims.append(Dimension(name=f"stages.{i}.stride", choices=tuple(stage.stride_choices)))
            for j in range(max(stage.depths)):
                dims.append(Dimension(name=f"stages.{i}.layers.{j}.type", choices=tuple(stage.blocks)))
                for block in stage.blocks:
                    for key, opts in self.options(block).items():
                        dims.append(Dimension(name=f"stages.{i}.layers.{j}.{block}.{key}", choices=tuple(opts)))
        return dims

    def to_values(self, arch: Arch) -> dict[str, Any]:
        """Arch -> {dimension name: chosen value}; dimensions of inactive slots take their first choice."""
        values = {d.name: d.choices[0] for d in self.dimensions()}
        values["resolution"] = arch.resolution
        values["stem_width"] = arch.stem_width
        for i, stage in enumerate(arch.stages):
            values[f"stages.{i}.depth"] = stage.depth
            values[f"stages.{i}.width"] = stage.width
            if stage.transition is not None:
                values[f"stages.{i}.transition"], values[f"stages.{i}.stride"] = stage.transition, stage.stride
            for j, layer in enumerate(stage.layers):
                values[f"stages.{i}.layers.{j}.type"] = layer.type
                for key in self.options(layer.type):
                    values[f"stages.{i}.layers.{j}.{layer.type}.{key}"] = getattr(layer, key)
        return values

    def from_values(self, values: Mapping[str, Any]) -> Arch:
        """{dimension name: value} -> Arch (values of inactive slots are ignored)."""
        stages = []
        for i in range(len(self.stages)):
            layers = []
            for j in range(values[f"stages.{i}.depth"]):
                block = values[f"stages.{i}.layers.{j}.type"]
                opts = self.options(block)
                layers.append(
                    registry.family(block).choice(**{k: values[f"stages.{i}.layers.{j}.{block}.{k}"] for k in opts})
                )
            down = ({"transition": values[f"stages.{i}.transition"], "stride": values[f"stages.{i}.stride"]}
                    if self.stages[i].transitions else {})
            stages.append(StageArch(width=values[f"stages.{i}.width"], layers=tuple(layers), **down))
        arch = Arch(resolution=values["resolution"], stem_width=values["stem_width"], stages=tuple(stages))
        self.contains(arch)
        return arch

    def encode(self, arch: Arch) -> list[int]:
        """Arch -> one choice index per dimension."""
        values = self.to_values(arch)
        return [d.choices.index(values[d.name]) for d in self.dimensions()]

    def decode(self, indices: list[int]) -> Arch:
        return self.from_values({d.name: d.choices[i] for d, i in zip(self.dimensions(), indices, strict=True)})

    def one_hot(self, arch: Arch) -> np.ndarray:
        """A 0/1 vector for predictors; dimensions of inactive layer slots are all zero."""
        values = self.to_values(arch)
        active = self.active_dimensions(arch)
        parts = []
        for d in self.dimensions():
            vec = np.zeros(len(d.choices), dtype=np.float32)
            if d.name in active:
                vec[d.choices.index(values[d.name])] = 1.0
            parts.append(vec)
        return np.concatenate(parts)

    def active_dimensions(self, arch: Arch) -> set[str]:
        active = {"resolution", "stem_width"}
        for i, stage in enumerate(arch.stages):
            active |= {f"stages.{i}.depth", f"stages.{i}.width"}
            if stage.transition is not None:
                active |= {f"stages.{i}.transition", f"stages.{i}.stride"}
            for j, layer in enumerate(stage.layers):
                active.add(f"stages.{i}.layers.{j}.type")
                active |= {f"stages.{i}.layers.{j}.{layer.type}.{k}" for k in self.options(layer.type)}
        return active


# ---- loading ---------------------------------------------------------------------------------
def list_presets() -> list[str]:
    """Names of the bundled presets."""
    folder = resources.files("search_spaces") / "presets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def space_from_dict(data: Any, source: str = "<dict>") -> SearchSpaceSpec:
    if not isinstance(data, dict):
        raise SpaceError(f"invalid search space {source}: expected a mapping at the top level")
    try:
        return SearchSpaceSpec.model_validate(data)
    except ValidationError as err:
        raise SpaceError("\n  ".join([f"invalid search space {source}:", *field_messages(err)])) from None


def load_space_file(path: str | Path) -> SearchSpaceSpec:
    return space_from_dict(read_yaml(path, SpaceError, "search space file"), str(path))


def get_space(name_or_path: str | Path) -> SearchSpaceSpec:
    """A preset by name (e.g. 'hybrid-small') or a YAML file by path."""
    name = str(name_or_path)
    if name in list_presets():
        text = (resources.files("search_spaces") / "presets" / f"{name}.yaml").read_text()
        return space_from_dict(yaml.safe_load(text), f"preset {name!r}")
    if name.endswith((".yaml", ".yml", ".json")) or Path(name).is_file():
        return load_space_file(name)
    raise SpaceError(f"unknown search space {name!r}; presets: {', '.join(list_presets())}")
