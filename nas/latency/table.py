"""LatencyTable: a versioned JSON file of per-layer latencies measured on one hardware profile.

Entries are keyed by each static layer's own configuration (block type and parameters, in/out
channels, stride) plus its input size, and by nothing else: one table serves every space, and every
space re-targeted to a dataset, whose layers it holds. A search that needs layers a table lacks has
them measured on the same profile first (`build_table` extends a table). The table keeps the
reference network every measurement was paired with, as a plan, so that predictions can be
calibrated to the host's speed now (nas.latency.calibration).
"""

from __future__ import annotations

import hashlib
import json
import statistics
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from nas.files import Guard, atomic_write
from nas.latency.allocator import UNRECORDED
from nas.latency.profile import HardwareProfile
from search_spaces import SearchSpaceSpec, UserError

FORMAT = "hybrid-nas-latency-table"
VERSION = 3


class TableError(UserError):
    """A table cannot be used: wrong format, missing layers or another profile."""


def layer_key(layer: dict[str, Any], input_size: int) -> str:
    """Canonical JSON of the structured key (for dictionary look-ups; the file stores the structure)."""
    return json.dumps({"layer": layer, "input_size": input_size}, sort_keys=True, separators=(",", ":"))


def space_fingerprint(space: SearchSpaceSpec) -> str:
    return hashlib.sha256(json.dumps(space.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def network_id(plan: list[dict[str, Any]], input_shape: list[int] | tuple[int, ...]) -> str:
    """A measured network's identity, independent of the space it was sampled from."""
    text = json.dumps({"plan": plan, "input_shape": list(input_shape)}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


FIRST = "-"  # the predecessor kind of a network's first layer


class Entry(BaseModel):
    """One layer configuration: its latency in context, from the networks it was timed in. `ms` is its
    latency after a layer of no particular kind: the samples with their predecessors' effect divided out
    (see `fit_contexts`), or their mean before that fit."""

    layer: dict[str, Any]
    input_size: int
    ms: float
    spread: float = Field(0.0, description="relative standard deviation over its contexts")
    samples: list[float] = Field(default_factory=list, description="ms in each network it was timed in")
    contexts: list[str] = Field(default_factory=list, description="the kind of the layer before it, per sample")

    def add(self, ms: float, after: str) -> None:
        self.samples.append(ms)
        self.contexts.append(after)
        self.ms = statistics.fmean(self.samples)
        self.spread = statistics.pstdev(self.samples) / self.ms if self.ms > 0 else 0.0


class Reference(BaseModel):
    """The network every measurement is interleaved with; `ms` is its latency at build time (the unit)."""

    plan: list[dict[str, Any]]
    input_shape: list[int]
    ms: float


class SpaceRef(BaseModel):
    """A space (as re-targeted) whose layers the table was measured for: provenance, not a binding."""

    name: str
    input_shape: list[int]
    fingerprint: str


class OverheadPoint(BaseModel):
    """One whole network measured end to end: what the overhead is fitted on."""

    layer_sum: float = Field(description="the sum of its layers' entries when it was measured")
    layers: int
    kinds: dict[str, int] = Field(default_factory=dict, description="its layers by kind (block family, stem, ...)")
    measured: float = Field(description="the whole network, in reference units")
    space: str = Field("", description="fingerprint of the space it was sampled from")
    source: str = Field("build", description="'build' (random networks) or 'device' (a search's front, re-measured)")
    arch: dict[str, Any] | None = Field(None, description="the network, as an arch of that space (so that an offline "
                                                          "refit can rebuild it); absent in tables built before")


class Correction(BaseModel):
    """Whole network = sum of its layers' entries + constant + per layer (per_layer + per_kind[its kind]),
    fitted on measured networks: what a plain forward call costs beyond its timed layers."""

    constant: float = 0.0
    per_layer: float = 0.0
    per_kind: dict[str, float] = Field(default_factory=dict)
    networks: int = 0


class LatencyTable(BaseModel):
    format: str = FORMAT
    version: int = VERSION
    profile: HardwareProfile
    spaces: list[SpaceRef] = Field(default_factory=list, description="spaces whose layers were measured")
    entries: list[Entry] = Field(default_factory=list)
    reference: Reference | None = None
    networks: list[str] = Field(default_factory=list, description="ids of the networks whose layers were timed")
    points: list[OverheadPoint] = Field(default_factory=list)
    correction: Correction = Correction()
    context: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="'previous kind>kind': (scale, offset ms) of a layer's latency after a "
                                          "layer of that kind (a layer after an SSM block runs slower, one after "
                                          "its own kind faster: caches and kernels left cold or warm)")
    build_seconds: float = 0.0

    def lookup(self) -> dict[str, float]:
        return {layer_key(e.layer, e.input_size): e.ms for e in self.entries}

    def in_context(self, ms: float, after: str, kind: str) -> float:
        """An entry's latency after a layer of kind `after`."""
        scale, offset = self.context.get(f"{after}>{kind}", (1.0, 0.0))
        return ms * scale + offset

    def fit_contexts(self, rounds: int = 30, ridge: float = 1e-2) -> None:
        """Fit sample = entry * scale[pair] + offset[pair] (pair: previous kind > kind) by alternating least
        squares over every sample: a cold or warm cache costs both a share of a layer's time and a fixed
        amount. Each kind's scales average one and its offsets zero over its samples, so entries stay the
        latency in an average context; `ridge` pulls rare pairs towards (1, 0)."""
        samples = [(i, f"{after}>{e.layer['type']}", v) for i, e in enumerate(self.entries)
                   for v, after in zip(e.samples, e.contexts, strict=False)]
        if not samples:
            return
        keys = sorted({k for _, k, _ in samples})
        entry = np.array([i for i, _, _ in samples])
        key = np.array([keys.index(k) for _, k, _ in samples])
        t = np.array([v for _, _, v in samples])
        kinds = sorted({k.split(">")[1] for k in keys})
        kind_of_key = np.array([kinds.index(k.split(">")[1]) for k in keys])
        n_entries, n_keys = len(self.entries), len(keys)
        per_entry = np.bincount(entry, minlength=n_entries)
        per_key = np.bincount(key, minlength=n_keys).astype(float)
        base = np.bincount(entry, t, n_entries) / np.maximum(per_entry, 1)
        scale, offset = np.ones(n_keys), np.zeros(n_keys)
        for _ in range(rounds):
            x = base[entry]
            sxx, sx = np.bincount(key, x * x, n_keys), np.bincount(key, x, n_keys)
            sxy, sy = np.bincount(key, x * t, n_keys), np.bincount(key, t, n_keys)
            lam_s, lam_o = ridge * sxx + 1e-12, ridge * per_key + 1e-12  # (sxx + lam_s) s + sx o = sxy + lam_s
            det = (sxx + lam_s) * (per_key + lam_o) - sx * sx
            scale = ((sxy + lam_s) * (per_key + lam_o) - sx * sy) / det
            offset = ((sxx + lam_s) * sy - sx * (sxy + lam_s)) / det
            weight = np.bincount(kind_of_key, per_key, len(kinds))
            scale /= (np.bincount(kind_of_key, scale * per_key, len(kinds)) / weight)[kind_of_key]
            offset -= (np.bincount(kind_of_key, offset * per_key, len(kinds)) / weight)[kind_of_key]
            s_k, o_k = scale[key], offset[key]
            base = np.bincount(entry, s_k * (t - o_k), n_entries) / np.maximum(np.bincount(entry, s_k * s_k, n_entries),
                                                                                 1e-12)
        for i in np.flatnonzero(per_entry):
            self.entries[i].ms = float(base[i])
        self.context = {k: (float(a), float(b)) for k, a, b in zip(keys, scale, offset, strict=True)}

    def samples_by_key(self) -> dict[str, int]:
        return {layer_key(e.layer, e.input_size): max(1, len(e.samples)) for e in self.entries}  # an entry is a sample

    def space_names(self) -> str:
        return ", ".join(dict.fromkeys(s.name for s in self.spaces))

    def note_space(self, space: SearchSpaceSpec) -> None:
        ref = space_ref(space)
        if ref not in self.spaces:
            self.spaces.append(ref)

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
        if data.get("version") == 2:
            data = _upgrade_v2(data, path)
        if data.get("version") != VERSION:
            raise TableError(f"{path}: table format version {data.get('version')}, this version reads {VERSION}")
        if isinstance(data.get("profile"), dict):
            data["profile"].setdefault("allocator", UNRECORDED)
        return cls.model_validate(data)


def space_ref(space: SearchSpaceSpec) -> SpaceRef:
    return SpaceRef(name=space.name, input_shape=list(space.input_shape), fingerprint=space_fingerprint(space))


def _upgrade_v2(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """Version 2 tables were bound to one space and kept their reference as an arch of it: rebuild the
    reference's plan from that space (a preset, as version 2 tables were)."""
    from search_spaces import get_space, plan

    space_data = data.pop("space", {}) or {}
    try:
        space = get_space(space_data.get("name", ""))
    except UserError:
        raise TableError(f"{path}: a version 2 table of space {space_data.get('name')!r}, which is not a preset "
                         "here: rebuild it with this version") from None
    if space_fingerprint(space) != space_data.get("fingerprint"):
        raise TableError(f"{path}: a version 2 table of a space that no longer matches preset {space.name!r}: rebuild it")
    reference = data.get("reference")
    if reference is not None:
        arch = space.parse(reference["arch"])
        data["reference"] = {"plan": plan(space, arch),
                             "input_shape": list(space.input_shape), "ms": reference["ms"]}
    data["spaces"] = [space_ref(space).model_dump()]
    data["version"] = VERSION
    return data
