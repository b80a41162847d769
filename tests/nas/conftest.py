import pytest

from nas.schemas import SearchConfig


def tiny_config(**overrides) -> SearchConfig:
    data = {
        "space": "hybrid-tiny",
        "dataset": {"name": "digits"},
        "train": {"steps": 12, "batch_size": 32, "checkpoint_every": 4, "warmup_steps": 2},
        "search": {"evaluations": 10, "population": 4, "bn_batches": 2},
        "finalize": {"enabled": True, "top_k": 1, "epochs": 1},
        "trust": {"enabled": False},  # by default it would follow whenever the budget allows
    }
    for key, value in overrides.items():
        data[key] = data[key] | value if isinstance(value, dict) and key in data else value
    return SearchConfig.model_validate(data)


@pytest.fixture
def tiny():
    return tiny_config
