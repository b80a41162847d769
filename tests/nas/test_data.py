import numpy as np
import pytest
import torch
from PIL import Image

from nas.data import DataError, load_dataset
from nas.schemas import DatasetConfig


def test_digits_split_is_seeded_and_disjoint():
    a = load_dataset(DatasetConfig(name="digits"))
    b = load_dataset(DatasetConfig(name="digits"))
    assert a.input_shape == (1, 8, 8) and a.num_classes == 10
    assert len(a.y_train) + len(a.y_val) + len(a.y_test) == 1797
    assert torch.equal(a.x_val, b.x_val) and torch.equal(a.y_test, b.y_test)
    other = load_dataset(DatasetConfig(name="digits", seed=1))
    assert not torch.equal(a.y_val, other.y_val)
    norm = a.normalized()
    assert abs(norm.x_train.mean().item()) < 1e-4 and abs(norm.x_train.std().item() - 1) < 0.01


@pytest.mark.parametrize(
    ("shape", "kind", "expected"),
    [((40, 6, 6), None, (1, 6, 6)), ((40, 3, 6, 6), None, (3, 6, 6)), ((40, 16), None, (1, 16)),
     ((40, 2, 16), None, (2, 16)), ((40, 4, 4), "sequence", (4, 4))],
)
def test_npz_shapes(tmp_path, shape, kind, expected):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.random.rand(*shape).astype(np.float32), y=np.arange(40) % 3)
    data = load_dataset(DatasetConfig(name="npz", path=str(path), kind=kind))
    assert data.input_shape == expected and data.num_classes == 3


def test_npz_with_given_test_split(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.random.rand(50, 8), y=np.arange(50) % 2, x_test=np.random.rand(7, 8), y_test=np.arange(7) % 2)
    data = load_dataset(DatasetConfig(name="npz", path=str(path)))
    assert len(data.y_test) == 7 and len(data.y_train) + len(data.y_val) == 50


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((10, 8)), "y": np.zeros(9)}, "10 inputs but 9 labels"),
        ({"x": np.zeros((10, 8)), "y": -np.ones(10)}, ">= 0"),
        ({"x": np.zeros((10, 8))}, "missing arrays"),
        ({"x": np.zeros((10, 8)), "y": np.array([0, 2] * 5)}, r"classes \[1\] have no training examples"),
        ({"x": np.zeros((10, 8)), "y": np.arange(10) % 2, "x_test": np.zeros((2, 8))}, "both x_test and y_test"),
        ({"x": np.zeros((10, 8)), "y": np.arange(10) % 2, "x_test": np.zeros((2, 9)), "y_test": np.zeros(2)},
         "x_test has shape"),
        ({"x": np.zeros((10, 2, 3, 4, 5)), "y": np.arange(10) % 2}, "inputs must be"),
        ({"x": np.full((10, 8), np.nan), "y": np.arange(10) % 2}, "NaN"),
        ({"x": np.zeros((10, 8)), "y": np.linspace(0, 1, 10)}, "integer class indices"),
    ],
)
def test_npz_errors_say_what_is_wrong(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(DataError, match=message):
        load_dataset(DatasetConfig(name="npz", path=str(path)))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(DataError, match="not found"):
        load_dataset(DatasetConfig(name="npz", path=str(tmp_path / "none.npz")))
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(DataError, match="not an .npz file"):
        load_dataset(DatasetConfig(name="npz", path=str(junk)))
    with pytest.raises(DataError, match="not found"):
        load_dataset(DatasetConfig(name="folder", path=str(tmp_path / "nofolder")))


def test_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ["cat", "dog"]:
        (tmp_path / cls).mkdir()
        for i in range(12):
            Image.fromarray((rng.random((10, 10, 3)) * 255).astype(np.uint8)).save(tmp_path / cls / f"{i}.png")
    data = load_dataset(DatasetConfig(name="folder", path=str(tmp_path), image_size=8))
    assert data.input_shape == (3, 8, 8) and data.num_classes == 2
    assert float(data.x_train.max()) <= 1.0
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"without images: \['empty'\]"):
        load_dataset(DatasetConfig(name="folder", path=str(tmp_path)))


def test_path_required_for_user_data():
    with pytest.raises(ValueError, match="needs a 'path'"):
        DatasetConfig(name="npz")
