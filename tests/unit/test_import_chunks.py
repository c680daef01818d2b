from backend.warnings.importfile import chunk_target


def _chunks(total: int, full: int, rejected_every: int = 0) -> list[int]:
    """The chunk sizes of a file of ``total`` rows, as the import's loop asks for them; with
    ``rejected_every``, that many rows hold one the reader rejects (it never reaches a chunk)."""
    sizes: list[int] = []
    read = 0
    while read < total:
        target = chunk_target(len(sizes), total - read, full)
        size = 0
        while size < target and read < total:
            read += 1
            if not rejected_every or read % rejected_every:
                size += 1
        sizes.append(size)
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


def test_no_sliver_of_a_chunk_before_the_last() -> None:
    # 13,000 rows left before a full chunk: 10,000 would leave 1,000 and then the last 2,000.
    for total in (100_000, 99_500, 98_200, 27_500):
        sizes = _chunks(total, 10_000)
        assert min(sizes[2:]) >= 2_000, (total, sizes)
        assert sizes[-1] == 2_000 and sum(sizes) == total

    # Rows the reader rejects fill no chunk, so the file runs out sooner than the chunks: 1 in 100
    # rejected, as a department's file may have.
    sizes = _chunks(100_000, 10_000, rejected_every=100)
    assert min(sizes[2:]) >= 1_500, sizes
    assert sum(sizes) == 99_000
