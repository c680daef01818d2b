from backend.warnings.importfile import chunk_target


def _chunks(total: int, full: int) -> list[int]:
    """The chunk sizes of a file of ``total`` valid rows, as the import's loop asks for them."""
    sizes: list[int] = []
    read = 0
    while read < total:
        size = min(chunk_target(len(sizes), total - read, full), total - read)
        sizes.append(size)
        read += size
    return sizes


def test_a_large_file_starts_and_ends_with_small_chunks_and_keeps_every_row() -> None:
    sizes = _chunks(100_000, 10_000)

    assert sizes[:3] == [2_000, 5_000, 10_000]  # the first write starts after 2,000 rows are planned
    assert sizes[-1] == 2_000  # the write nobody overlaps is a small one
    assert max(sizes) == 10_000
    assert sum(sizes) == 100_000


def test_a_file_that_does_not_say_its_length_still_starts_small() -> None:
    assert [chunk_target(n, None, 10_000) for n in range(4)] == [2_000, 5_000, 10_000, 10_000]


def test_small_chunks_are_left_as_asked() -> None:
    assert _chunks(7, 2) == [2, 2, 2, 1]
    assert _chunks(3_000, 1_000) == [1_000, 1_000, 1_000]


def test_a_short_file_is_one_chunk() -> None:
    assert _chunks(1_500, 10_000) == [1_500]
