"""Under xdist the plugin starts the slow modules first, one head per worker's slice."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from dchat_testing.pytest_plugin import pytest_collection_modifyitems


@dataclass
class _Item:
    nodeid: str
    slow: bool

    def get_closest_marker(self, name: str) -> object:
        return "slow" if self.slow and name == "slow" else None


@dataclass
class _Config:
    workerinput: dict[str, object]


def _collection() -> list[_Item]:
    items = [_Item(f"test_a.py::quick{i}", slow=False) for i in range(6)]
    items += [_Item(f"test_b.py::long{i}", slow=True) for i in range(2)]
    items += [_Item(f"test_c.py::quick{i}", slow=False) for i in range(6)]
    items += [_Item("test_d.py::long", slow=True)]
    items += [_Item(f"test_e.py::long{i}", slow=True) for i in range(2)]
    return items


def _order(workers: int | None) -> list[str]:
    items = _collection()
    config = _Config({} if workers is None else {"workercount": workers})
    pytest_collection_modifyitems(config, items)  # type: ignore[arg-type]
    return [item.nodeid for item in items]


def test_each_workers_slice_starts_with_whole_slow_modules() -> None:
    order = _order(2)
    assert sorted(order) == sorted(item.nodeid for item in _collection())  # nothing lost
    first, second = order[: len(order) // 2], order[len(order) // 2 :]
    # worksteal gives the first half to one worker and the rest to the other:
    # each begins with slow modules (b and e on one, d on the other), kept whole.
    assert first[:4] == [
        "test_b.py::long0",
        "test_b.py::long1",
        "test_e.py::long0",
        "test_e.py::long1",
    ]
    assert second[:1] == ["test_d.py::long"]
    # The quick tests fill the slices' tails, in their own order: what an idle worker steals.
    quick = [nodeid for nodeid in order if "quick" in nodeid]
    assert quick == [item.nodeid for item in _collection() if not item.slow]
    assert all("quick" in nodeid for nodeid in first[4:] + second[1:])


@pytest.mark.parametrize("workers", [None, 1])
def test_without_xdist_workers_the_order_is_left_alone(workers: int | None) -> None:
    assert _order(workers) == [item.nodeid for item in _collection()]
