"""The zero-copy segment reader behaves as the BytesIO it replaces, and is in use."""

from __future__ import annotations

import io

from hypothesis import given, settings
from hypothesis import strategies as st
from whoosh.filedb import compound

from searchsvc.index import mapped_files

operations = st.lists(st.one_of(
    st.tuples(st.just("read"), st.integers(-1, 40)),
    st.tuples(st.just("readline"), st.integers(-1, 40)),
    st.tuples(st.just("readinto"), st.integers(0, 40)),
    st.tuples(st.just("seek"), st.integers(0, 60), st.sampled_from([0, 1, 2])),
    st.tuples(st.just("tell")),
), max_size=30)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(data=st.binary(max_size=300).map(lambda b: b.replace(b"\x00", b"\n")), ops=operations)
def test_view_reader_matches_bytesio(data, ops):
    ours, theirs = mapped_files._ViewReader(memoryview(data)), io.BytesIO(data)
    for op in ops:
        if op[0] == "readinto":
            a, b = bytearray(op[1]), bytearray(op[1])
            assert (ours.readinto(a), a) == (theirs.readinto(b), b)
        elif op[0] == "seek":
            offset = op[1] if op[2] == 0 else op[1] - 30
            if op[2] != 0 and theirs.tell() + offset < 0 and op[2] == 1:
                continue  # BytesIO refuses a negative position; nothing reads there
            if op[2] == 2 and len(data) + offset < 0:
                continue
            assert ours.seek(offset, op[2]) == theirs.seek(offset, op[2])
        else:
            assert getattr(ours, op[0])(*op[1:]) == getattr(theirs, op[0])(*op[1:]), op


def test_whoosh_opens_segment_files_through_it(search_index):
    from searchsvc.index.store import IndexStore

    ix = IndexStore(search_index).open()
    assert compound.BufferFile is mapped_files.ViewFile
    with ix.reader() as reader:
        segment_reader = reader.leaf_readers()[0][0]
        assert isinstance(segment_reader._terms._postfile, mapped_files.ViewFile)
