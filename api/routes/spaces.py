"""Search spaces: list, show (spec and JSON schema), sample."""

from __future__ import annotations

import random

from fastapi import APIRouter, HTTPException, Query

from api.deps import CurrentUser
from api.errors import error_responses
from search_spaces import BLOCKS, SearchSpaceSpec, count, get_space, list_presets

router = APIRouter(prefix="/api/v1/spaces", tags=["spaces"])


def preset(name: str) -> SearchSpaceSpec:
    if name not in list_presets():
        raise HTTPException(404, f"unknown search space {name!r}; presets: {', '.join(list_presets())}")
    return get_space(name)


@router.get("", responses=error_responses(401))
def list_spaces(user: CurrentUser) -> list[dict]:
    out = []
    for name in list_presets():
        s = get_space(name)
        out.append({"name": name, "description": s.description.strip(), "input_shape": list(s.input_shape),
                    "num_classes": s.num_classes, "log10_cardinality": round(s.log10_cardinality(), 2),
                    "block_types": sorted({b for st in s.stages for b in st.blocks})})
    return out


@router.get("/families", responses=error_responses(401))
def list_families(user: CurrentUser) -> list[dict]:
    """The registered block families: name, display label and colour, and their default elastic options."""
    return [entry.describe() for entry in BLOCKS.values()]


@router.get("/{name}", responses=error_responses(401, 404))
def show_space(name: str, user: CurrentUser) -> dict:
    space = preset(name)
    return {"spec": space.model_dump(mode="json"), "json_schema": SearchSpaceSpec.model_json_schema(),
            "cardinality": str(space.cardinality())}


@router.get("/{name}/sample", responses=error_responses(401, 404, 422))
def sample(name: str, user: CurrentUser, seed: int = Query(0, ge=0, le=2**31)) -> dict:
    space = preset(name)
    arch = space.sample(random.Random(seed))
    counts = count(space, arch)
    return {"arch_id": arch.id, "arch": arch.to_dict(), "params": counts.params, "macs": counts.macs}
