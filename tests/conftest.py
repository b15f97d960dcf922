import os

import numpy as np
import pytest
import torch

# Keep test runs reproducible and within the 2-core budget.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def _seed():
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def isolated_assets(tmp_path, monkeypatch):
    """An empty $SPLATTALK_ASSETS so tests never see the developer's real files."""
    root = tmp_path / "assets"
    root.mkdir()
    monkeypatch.setenv("SPLATTALK_ASSETS", str(root))
    return root
