"""Fixtures of the jobs' tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """One OpenMP/BLAS thread: on a shared 2-core machine, spinning thread teams make the
    tiny fits here up to 10x slower; the jobs themselves keep their default threads."""
    with threadpool_limits(limits=1):
        yield
