"""Dataset uploads: an .npz file per upload, stored under the user's own folder."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from fastapi import APIRouter, UploadFile

from api.deps import CurrentUser, SettingsDep
from api.errors import InvalidField, error_responses
from api.models import DatasetUploaded
from nas.data import DataError
from nas.data.npz import NpzLimits, npz_sources, unpacked_copies

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])


def _remove(path: Path) -> None:
    """The upload and anything unpacked from it."""
    for file in [path, *unpacked_copies(str(path))]:
        file.unlink(missing_ok=True)


@router.post("", status_code=201, response_model=DatasetUploaded, responses=error_responses(400, 401, 413, 422))
def upload(file: UploadFile, user: CurrentUser, settings: SettingsDep) -> DatasetUploaded:
    """Upload an .npz with arrays x, y (and optionally x_test, y_test); use the returned path in a config.

    A plain `def`: copying and validating run in the thread pool, never on the event loop."""
    folder = settings.data_dir / "datasets" / str(user.id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.npz"  # the name comes from an id, never from the upload
    try:
        with open(path, "wb") as out:
            shutil.copyfileobj(file.file, out, 1 << 20)
        # validate now, headers before data and then a chunk at a time: bad data is a 422 here, not a failed
        # search (or a full memory) later
        npz_sources(str(path), None, NpzLimits(settings.max_dataset_bytes, settings.max_classes), source="the upload")
    except DataError as err:
        _remove(path)
        raise InvalidField(("body", "file"), str(err)) from None
    except BaseException:
        _remove(path)
        raise
    settings.artifact_store().push(path)  # workers on other machines fetch it from there
    return DatasetUploaded(path=str(path), size=path.stat().st_size)
