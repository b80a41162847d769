import os

import pytest
import torch

# Two cores: keep torch from oversubscribing them when pytest runs
torch.set_num_threads(int(os.environ.get("NAS_TEST_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
