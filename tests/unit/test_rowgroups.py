import asyncio

from backend.lib.rowgroups import grouped, grouped_in_thread


def _keys(row: tuple[str, ...]) -> list[str]:
    return [key for key in row[1:] if key]


def test_rows_naming_the_same_key_become_neighbours_in_the_order_of_their_first_row() -> None:
    rows = [("1", "ann"), ("2", "bob"), ("3", "ann"), ("4", "cy"), ("5", "bob"), ("6", "ann")]

    assert [row[0] for row in grouped(rows, _keys, window=100)] == ["1", "3", "6", "2", "5", "4"]


def test_rows_joined_through_another_row_stay_in_file_order_within_their_group() -> None:
    # Row 4 shares "x" with row 2 and "ann" with row 1: one group, so rows 1, 2 and 4 keep their order.
    rows = [("1", "ann", ""), ("2", "bob", "x"), ("3", "cy", ""), ("4", "ann", "x")]

    assert [row[0] for row in grouped(rows, _keys, window=100)] == ["1", "2", "4", "3"]


def test_each_window_is_grouped_on_its_own_and_nothing_is_lost() -> None:
    rows = [(str(n), "same" if n % 2 else f"own{n}") for n in range(10)]

    out = [row[0] for row in grouped(rows, _keys, window=4)]

    assert out == ["0", "1", "3", "2", "4", "5", "7", "6", "8", "9"]
    assert sorted(out, key=int) == [str(n) for n in range(10)]


def test_grouping_in_a_thread_gives_the_same_rows_in_the_same_order() -> None:
    rows = [(str(n), f"p{n % 7}", "") for n in range(50)]

    async def collect() -> list[tuple[str, ...]]:
        return [row async for row in grouped_in_thread(rows, _keys, window=16)]

    assert asyncio.run(collect()) == list(grouped(rows, _keys, window=16))
