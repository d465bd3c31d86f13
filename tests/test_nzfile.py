"""nnzip.open: streaming reads and writes shaped like gzip.open."""

from __future__ import annotations

import io
import os

import pytest

import nnzip
from nnzip import members


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 4 KiB, so that a few kilobytes span several members."""
    monkeypatch.setattr(members, "BLOCK_SIZE", 4096)
    monkeypatch.setattr("nnzip.nzfile.BLOCK_SIZE", 4096)


def test_binary_round_trip_in_pieces(tmp_path, tiny_model_path, corpus, small_blocks):
    data = corpus.valid[:10000] + os.urandom(5000)
    path = tmp_path / "data.nz"
    with nnzip.open(path, "wb", model=tiny_model_path) as f:
        for start in range(0, len(data), 777):
            f.write(data[start : start + 777])
    assert len(list(members.read_members(io.BytesIO(path.read_bytes())))) == 4

    with nnzip.open(path, "rb", model=tiny_model_path) as f:
        pieces = []
        while piece := f.read(1000):
            pieces.append(piece)
    assert b"".join(pieces) == data
    assert nnzip.decompress(path.read_bytes(), model=tiny_model_path) == data


def test_tell_counts_uncompressed_bytes(tmp_path, tiny_model_path, small_blocks):
    data = bytes(range(256)) * 40
    path = tmp_path / "data.nz"
    with nnzip.open(path, "wb", model=tiny_model_path) as f:
        f.write(data[:5000])
        assert f.tell() == 5000
        f.write(data[5000:])
        assert f.tell() == len(data)

    with nnzip.open(path, "rb", model=tiny_model_path) as f:
        assert f.tell() == 0
        f.read(4500)
        assert f.tell() == 4500
        f.read()
        assert f.tell() == len(data)


def test_text_mode_and_append(tmp_path, tiny_model_path):
    path = tmp_path / "notes.txt.nz"
    with nnzip.open(path, "wt", encoding="utf-8", model=tiny_model_path) as f:
        f.write("first line\n")
    with nnzip.open(path, "at", encoding="utf-8", model=tiny_model_path) as f:
        f.write("second line: é\n")
    with nnzip.open(path, "rt", encoding="utf-8", model=tiny_model_path) as f:
        assert f.readlines() == ["first line\n", "second line: é\n"]


def test_file_objects_and_empty_file(tiny_model_path):
    buffer = io.BytesIO()
    with nnzip.open(buffer, "wb", model=tiny_model_path):
        pass
    assert len(buffer.getvalue()) == 44
    buffer.seek(0)
    with nnzip.open(buffer, "rb", model=tiny_model_path) as f:
        assert f.read() == b""


def test_exclusive_mode_refuses_existing_file(tmp_path, tiny_model_path):
    path = tmp_path / "exists.nz"
    path.write_bytes(b"keep me")
    with pytest.raises(FileExistsError):
        nnzip.open(path, "xb", model=tiny_model_path)
    assert path.read_bytes() == b"keep me"


def test_bad_data_raises_nnzip_errors(tmp_path):
    path = tmp_path / "bad.nz"
    path.write_bytes(b"not compressed at all")
    with nnzip.open(path, "rb") as f, pytest.raises(nnzip.InvalidDataError, match="not an nnzip file"):
        f.read()


@pytest.mark.parametrize("mode", ["rw", "wbt", "z"])
def test_bad_modes_rejected(tmp_path, mode):
    with pytest.raises(ValueError, match="mode"):
        nnzip.open(tmp_path / "x.nz", mode)


def test_closed_file_and_wrong_direction(tmp_path, tiny_model_path):
    path = tmp_path / "x.nz"
    f = nnzip.open(path, "wb", model=tiny_model_path)
    with pytest.raises(io.UnsupportedOperation):
        f.read()
    f.close()
    with pytest.raises(ValueError, match="closed"):
        f.write(b"late")
