"""Dataset uploads: an .npz file per upload, stored under the user's own folder."""

from __future__ import annotations

import uuid

import numpy as np
from fastapi import APIRouter, UploadFile

from api.deps import CurrentUser, SettingsDep
from api.errors import InvalidField, error_responses
from api.models import DatasetUploaded
from nas.data import DataError
from nas.data.npz import load_npz

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


@router.post("", status_code=201, response_model=DatasetUploaded, responses=error_responses(401, 413, 422))
async def upload(file: UploadFile, user: CurrentUser, settings: SettingsDep) -> DatasetUploaded:
    """Upload an .npz with arrays x, y (and optionally x_test, y_test); use the returned path in a config."""
    folder = settings.data_dir / "datasets" / str(user.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.npz"  # the name comes from an id, never from the upload
    size = 0
    with open(path, "wb") as out:
        while chunk := await file.read(1 << 20):
            size += len(chunk)
            out.write(chunk)
    try:
        load_npz(str(path), None)  # validate now: bad data is a 422 here, not a failed search later
    except (DataError, ValueError, np.exceptions.AxisError) as err:
        path.unlink(missing_ok=True)
        raise InvalidField(("body", "file"), str(err)) from None
    return DatasetUploaded(path=str(path), size=size)
