"""A worker's start-up heap, set aside from the garbage collector in two steps
(server.set_aside_startup_heap, then settle_heap once the model is loaded)."""

import gc
import weakref

import pytest

from taichu_runtime.server import set_aside_startup_heap, settle_heap


class Node:
    def __init__(self) -> None:
        self.partner = self


@pytest.fixture
def thawed():
    yield
    gc.unfreeze()  # this test process goes on collecting as before


def test_what_the_load_leaves_as_garbage_is_freed_not_frozen(thawed):
    set_aside_startup_heap()  # what the imports made
    frozen = gc.get_freeze_count()

    model = Node()
    garbage = Node()  # a cycle the load made and dropped
    gone = weakref.ref(garbage)
    del garbage
    settle_heap()
    assert gone() is None
    assert gc.get_freeze_count() > frozen  # the model's objects are set aside too
    assert model.partner is model


def test_the_second_step_walks_only_what_came_after_the_first(thawed):
    set_aside_startup_heap()
    tracked_after = len(gc.get_objects())
    assert (
        tracked_after < gc.get_freeze_count()
    )  # the rest is out of the collector's way
