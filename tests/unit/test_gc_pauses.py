"""The live services' collector: what survives a full collection is frozen (later ones skip
it), and the night's full collection reclaims the cycles that died meanwhile."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from streaming.services import gc_pauses

pytestmark = pytest.mark.unit


class Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the collector frees it


@pytest.fixture
def installed() -> Iterator[None]:
    gc_pauses.keep_gc_pauses_short()
    yield
    gc.callbacks.remove(gc_pauses._after)  # leave the test process's collector as it was
    gc_pauses._installed = False
    gc.unfreeze()


def test_survivors_of_a_full_collection_are_frozen_and_the_night_reclaims_dead_cycles(
    installed: None,
) -> None:
    assert gc.get_freeze_count() > 0  # what was alive at the start
    node = Node()
    gc.collect()  # a full collection during the day: the node survives it
    assert gc.is_tracked(node) and gc.get_freeze_count() > 0
    assert not any(node is o for o in gc.get_objects())  # frozen: later collections skip it
    dead = weakref.ref(node)
    del node
    gc.collect()
    assert dead() is not None  # a frozen cycle waits for the night
    assert gc_pauses.collect_all() >= 1
    assert dead() is None
    assert gc.get_freeze_count() > 0  # and what is alive is frozen again


def test_a_cycle_that_dies_before_a_full_collection_is_collected_as_usual(
    installed: None,
) -> None:
    dead = weakref.ref(Node())
    gc.collect(1)
    assert dead() is None
