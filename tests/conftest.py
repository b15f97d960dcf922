import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

# Tests live in one folder per package (tests/viewer/, tests/tracking/, …) without __init__.py files, so
# test file names stay unique across folders. Shared helpers (talk_helpers.py, viewer_helpers.py, …) sit
# next to the tests of their package; every folder is on sys.path so a test of another package can
# import them by module name as well.
for _folder in sorted(Path(__file__).resolve().parent.iterdir()):
    if _folder.is_dir() and not _folder.name.startswith((".", "_")) and _folder.name != "data":
        sys.path.insert(0, str(_folder))

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
