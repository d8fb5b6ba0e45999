import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def compile_cache(tmp_path_factory):
    """CLI runs in the tests share one fresh compilation cache: hermetic, yet warm after the first compile."""
    os.environ["PUREJAXPPO_CACHE"] = str(tmp_path_factory.mktemp("jax-cache"))
