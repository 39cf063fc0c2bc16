"""The record index: first event seq → stream sequence, answered only for records still held."""

from __future__ import annotations

from gateway.ports.cluster.index import RecordIndex


def test_locate_finds_the_record_holding_a_seq_and_nothing_the_stream_dropped() -> None:
    index = RecordIndex()
    for first_seq, sseq in [(1, 1), (11, 2), (21, 4), (31, 5)]:  # sseq 3: not a record of this node's
        index.add(first_seq, sseq)
    assert [index.locate(s) for s in (0, 1, 10, 11, 25, 99)] == [None, 1, 1, 2, 4, 5]
    assert index.oldest_seq() == 1
    index.trim(3)
    assert (index.locate(5), index.locate(11), index.locate(21)) == (None, None, 4)
    assert index.oldest_seq() == 21
    index.trim(6)
    assert index.oldest_seq() is None and index.locate(40) is None


def test_trim_forgets_pairs_in_chunks_and_clear_empties() -> None:
    index = RecordIndex()
    for i in range(10):
        index.add(i * 10 + 1, i + 1)
    index.trim(4)  # 3 of 10 below the stream: kept for now (less than half)
    assert len(index.sseqs) == 10
    index.trim(7)  # 6 of 10: cut
    assert list(index.sseqs) == [7, 8, 9, 10] and list(index.seqs) == [61, 71, 81, 91]
    index.clear()
    assert index.oldest_seq() is None and index.first_sseq == 7
