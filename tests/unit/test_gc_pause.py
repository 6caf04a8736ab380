"""The collector pause around bulk ingestion: off while any batch runs, back as it was after the last."""

from __future__ import annotations

import gc
import threading

from api.gc_pause import collection_paused, paused


def test_the_collector_is_off_while_batches_overlap_and_back_on_after_the_last() -> None:
    assert gc.isenabled()
    first_in, second_done, states = threading.Event(), threading.Event(), []

    def second() -> None:
        first_in.wait(timeout=10)
        with collection_paused():
            states.append(gc.isenabled())
        second_done.set()

    worker = threading.Thread(target=second)
    worker.start()
    with collection_paused():
        first_in.set()
        second_done.wait(timeout=10)
        states.append(gc.isenabled())  # the other batch ended, this one still runs
    worker.join(timeout=10)

    assert states == [False, False] and gc.isenabled()


def test_a_collector_that_was_off_stays_off_and_errors_still_end_the_pause() -> None:
    @paused
    def failing() -> None:
        raise ValueError("bad batch")

    try:
        failing()
    except ValueError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        with collection_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
