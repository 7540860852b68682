"""Which servers a retiring server list leaves to be outdated (engine/topology.py, pure)."""

import pytest

from cachelayer.adapters.routing import rendezvous
from cachelayer.engine.topology import _gaining


@pytest.mark.parametrize(
    ("retired", "remaining", "outdated"),
    [
        (["A", "B"], [["A", "B", "C"]], ["C"]),  # a deploy added C: only C held keys no writer bumped
        (["A", "B", "C"], [["A", "B"]], ["A", "B"]),  # C removed: its keys move to A and B
        (["A", "B"], [["A", "B"]], []),  # the same list (never retired in practice)
        (["A", "B"], [["C", "D"]], ["C", "D"]),  # a new pool
        # A, B and C: the longer list routes to them what the retired one did; D: conservative
        (["A", "B", "C"], [["A", "B", "C", "D"], ["A", "B"]], ["D"]),
    ],
)
def test_servers_that_gain_keys_are_outdated(retired, remaining, outdated):
    assert _gaining(retired, remaining) == outdated


def test_a_subset_that_holds_the_winner_keeps_it():
    """The rule _gaining relies on: adding servers only moves keys to the new ones."""
    small, large = ["A", "B"], ["A", "B", "C", "D"]
    for route in map(str, range(2000)):
        winner = rendezvous(large, route)
        if winner in small:
            assert rendezvous(small, route) == winner
