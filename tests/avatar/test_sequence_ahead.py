"""render_ahead: frames rendered in a worker thread, in order, errors and early stops handled."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from splattalk.avatar.sequence import render_ahead


def _frames(n, log=None, fail_at=None):
    try:
        for i in range(n):
            if fail_at == i:
                raise ValueError(f"frame {i} failed")
            if log is not None:
                log.append((i, threading.current_thread().name))
            yield np.full((2, 2, 3), i, np.uint8)
    finally:
        if log is not None:
            log.append(("closed", threading.current_thread().name))


def test_frames_arrive_in_order_from_a_worker_thread():
    log = []
    got = [int(f[0, 0, 0]) for f in render_ahead(_frames(7, log))]
    assert got == list(range(7))
    assert {name for _, name in log} == {"render-ahead"}
    assert log[-1][0] == "closed"


def test_worker_error_is_raised_to_the_consumer():
    it = render_ahead(_frames(5, fail_at=3))
    assert [int(f[0, 0, 0]) for f in (next(it), next(it), next(it))] == [0, 1, 2]
    with pytest.raises(ValueError, match="frame 3 failed"):
        next(it)


def test_closing_early_stops_the_worker_and_closes_the_source():
    log = []
    before = threading.active_count()
    it = render_ahead(_frames(1000, log), depth=2)
    next(it)
    it.close()  # a cancelled export
    assert threading.active_count() == before
    rendered = [i for i, _ in log if i != "closed"]
    assert len(rendered) <= 1 + 2 + 1  # consumed + queued + the one in hand
    assert log[-1] == ("closed", "render-ahead")


def test_renders_while_the_consumer_works():
    def slow(n):
        for i in range(n):
            time.sleep(0.05)
            yield i

    t0 = time.perf_counter()
    for _ in render_ahead(slow(8)):
        time.sleep(0.05)  # the "encoder"
    overlapped = time.perf_counter() - t0
    assert overlapped < 0.75  # 8 x (0.05 + 0.05) = 0.8 s if nothing overlapped; ~0.45 s when it does
