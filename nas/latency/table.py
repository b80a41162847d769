"""LatencyTable: a versioned JSON file of per-layer latencies measured on one hardware profile.

Keys are structured: a layer's static configuration (its plan entry: block type and parameters,
in/out channels, stride) plus its input size. A table belongs to one space and one profile;
loading it for another space is an error.
"""

from __future__ import annotations

import hashlib
import json
import statistics
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from nas.files import Guard, atomic_write
from nas.latency.profile import HardwareProfile
from search_spaces import SearchSpaceSpec, UserError

FORMAT = "hybrid-nas-latency-table"
VERSION = 2


class TableError(UserError):
    """A table cannot be used: wrong format, another space or another profile."""


def layer_key(layer: dict[str, Any], input_size: int) -> str:
    """Canonical JSON of the structured key (for dictionary look-ups; the file stores the structure)."""
    return json.dumps({"layer": layer, "input_size": input_size}, sort_keys=True, separators=(",", ":"))


def space_fingerprint(space: SearchSpaceSpec) -> str:
    return hashlib.sha256(json.dumps(space.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


class Entry(BaseModel):
    """One layer configuration: its in-context latency, averaged over the networks it was timed in."""

    layer: dict[str, Any]
    input_size: int
    ms: float
    spread: float = Field(0.0, description="relative standard deviation over its contexts")
    samples: list[float] = Field(default_factory=list, description="ms in each network it was timed in")

    def add(self, ms: float) -> None:
        self.samples.append(ms)
        self.ms = statistics.fmean(self.samples)
        self.spread = statistics.pstdev(self.samples) / self.ms if self.ms > 0 else 0.0


class Reference(BaseModel):
    """The network every measurement is interleaved with; `ms` is its latency at build time (the unit)."""

    arch: dict[str, Any]
    ms: float


class SpaceRef(BaseModel):
    name: str
    version: int
    input_shape: list[int]
    fingerprint: str


class Correction(BaseModel):
    """Whole network = sum of its layers' entries + constant + per_layer * layers, fitted on measured networks:
    what a plain forward call costs beyond its timed layers (the module call, the loop over layers)."""

    constant: float = 0.0
    per_layer: float = 0.0
    networks: int = 0


class LatencyTable(BaseModel):
    format: str = FORMAT
    version: int = VERSION
    space: SpaceRef
    profile: HardwareProfile
    entries: list[Entry] = Field(default_factory=list)
    reference: Reference | None = None
    networks: list[str] = Field(default_factory=list, description="ids of the archs whose layers were timed")
    correction: Correction = Correction()
    build_seconds: float = 0.0

    def lookup(self) -> dict[str, float]:
        return {layer_key(e.layer, e.input_size): e.ms for e in self.entries}

    def check_space(self, space: SearchSpaceSpec) -> None:
        if self.space.fingerprint != space_fingerprint(space):
            raise TableError(f"this latency table was built for space {self.space.name!r} "
                             f"(input {self.space.input_shape}), not for {space.name!r} (input {list(space.input_shape)})")

    def save(self, path: str | Path, guard: Guard = nullcontext) -> None:
        atomic_write(Path(path), lambda tmp: Path(tmp).write_text(self.model_dump_json(indent=1)), guard)

    @classmethod
    def load(cls, path: str | Path) -> LatencyTable:
        file = Path(path)
        if not file.is_file():
            raise TableError(f"latency table not found: {path}")
        try:
            data = json.loads(file.read_text())
        except json.JSONDecodeError as err:
            raise TableError(f"{path}: not JSON ({err})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise TableError(f"{path}: not a {FORMAT} file")
        if data.get("version") != VERSION:
            raise TableError(f"{path}: table format version {data.get('version')}, this version reads {VERSION}")
        return cls.model_validate(data)


def space_ref(space: SearchSpaceSpec) -> SpaceRef:
    return SpaceRef(name=space.name, version=space.version, input_shape=list(space.input_shape),
                    fingerprint=space_fingerprint(space))
