import hashlib
import zipfile
from pathlib import Path

import pytest

from nnzip.datasets import (
    ENWIK8_CHECK,
    TRAIN_END,
    VALID_END,
    ContentCheck,
    fetch_enwik8,
    load_split,
    verify_content,
)
from nnzip.errors import NNZipError

CONTENT = bytes(range(256)) * 40 + b"<mediawiki>" * 100


def content_check(content: bytes = CONTENT, prefix_length: int = 1000) -> ContentCheck:
    return ContentCheck(len(content), prefix_length, hashlib.sha256(content[:prefix_length]).hexdigest())


def make_zip(path: Path, content: bytes = CONTENT, member: str = "enwik8") -> str:
    """Write a zip with one member and return the zip's sha256."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(member, content)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def leftover_files(directory: Path) -> list[str]:
    return sorted(path.name for path in directory.iterdir())


@pytest.fixture
def source_zip(tmp_path):
    path = tmp_path / "source" / "enwik8.zip"
    path.parent.mkdir()
    return path, make_zip(path)


@pytest.mark.parametrize("as_url", [False, True])
def test_fetch_from_local_source(tmp_path, source_zip, as_url):
    source, digest = source_zip
    dest = tmp_path / "data"
    url = source.as_uri() if as_url else str(source)

    result = fetch_enwik8(dest, url=url, expected_sha256=digest, content_check=content_check())

    assert result == dest / "enwik8"
    assert result.read_bytes() == CONTENT
    assert leftover_files(dest) == ["enwik8", "enwik8.zip"]


def test_fetch_skips_download_when_verified(tmp_path, source_zip):
    source, digest = source_zip
    dest = tmp_path / "data"
    fetch_enwik8(dest, url=str(source), expected_sha256=digest, content_check=content_check())
    missing_url = (tmp_path / "missing.zip").as_uri()

    result = fetch_enwik8(dest, url=missing_url, expected_sha256=digest, content_check=content_check())

    assert result.read_bytes() == CONTENT


def test_fetch_uses_archive_placed_by_hand(tmp_path):
    dest = tmp_path / "data"
    dest.mkdir()
    digest = make_zip(dest / "enwik8.zip")
    missing_url = (tmp_path / "missing.zip").as_uri()

    result = fetch_enwik8(dest, url=missing_url, expected_sha256=digest, content_check=content_check())

    assert result.read_bytes() == CONTENT


def test_fetch_replaces_damaged_extracted_file(tmp_path, source_zip):
    source, digest = source_zip
    dest = tmp_path / "data"
    fetch_enwik8(dest, url=str(source), expected_sha256=digest, content_check=content_check())
    (dest / "enwik8").write_bytes(b"damaged")

    result = fetch_enwik8(dest, url=str(source), expected_sha256=digest, content_check=content_check())

    assert result.read_bytes() == CONTENT


def test_checksum_mismatch_removes_download(tmp_path, source_zip):
    source, digest = source_zip
    dest = tmp_path / "data"
    wrong = "0" * 64

    with pytest.raises(NNZipError) as info:
        fetch_enwik8(dest, url=str(source), expected_sha256=wrong, content_check=content_check())

    message = str(info.value)
    assert f"expected sha256 {wrong}" in message
    assert f"got {digest}" in message
    assert "\n" not in message
    assert leftover_files(dest) == []


def test_archive_placed_by_hand_with_wrong_checksum(tmp_path):
    dest = tmp_path / "data"
    dest.mkdir()
    make_zip(dest / "enwik8.zip", content=b"something else")

    with pytest.raises(NNZipError, match="checksum mismatch .* delete it to download it again"):
        fetch_enwik8(dest, url=str(tmp_path / "missing.zip"), expected_sha256="0" * 64)


def test_unreachable_url_message(tmp_path):
    dest = tmp_path / "data"
    url = (tmp_path / "does-not-exist" / "enwik8.zip").as_uri()

    with pytest.raises(NNZipError) as info:
        fetch_enwik8(dest, url=url, expected_sha256="0" * 64)

    message = str(info.value)
    assert message.startswith(f"could not download {url}: ")
    assert message.endswith(f"; no network? place enwik8.zip in {dest} by hand")
    assert "\n" not in message
    assert leftover_files(dest) == []


def test_missing_local_path_message(tmp_path):
    with pytest.raises(NNZipError, match="could not download .*no network"):
        fetch_enwik8(tmp_path / "data", url=str(tmp_path / "missing.zip"))


def test_wrong_member_size_rejected(tmp_path, source_zip):
    source, digest = source_zip
    dest = tmp_path / "data"
    check = ContentCheck(len(CONTENT) + 1, 10, "0" * 64)

    with pytest.raises(NNZipError, match=f"has {len(CONTENT)} bytes, expected {len(CONTENT) + 1}"):
        fetch_enwik8(dest, url=str(source), expected_sha256=digest, content_check=check)

    assert "enwik8" not in leftover_files(dest)


def test_wrong_member_prefix_rejected(tmp_path, source_zip):
    source, digest = source_zip
    dest = tmp_path / "data"
    check = content_check(CONTENT[:-1] + b"X", prefix_length=len(CONTENT))

    with pytest.raises(NNZipError, match=f"sha256 of the first {len(CONTENT)} bytes"):
        fetch_enwik8(dest, url=str(source), expected_sha256=digest, content_check=check)

    assert leftover_files(dest) == ["enwik8.zip"]


def test_archive_without_member_rejected(tmp_path):
    source = tmp_path / "other.zip"
    digest = make_zip(source, member="enwik9")

    with pytest.raises(NNZipError, match="has no member 'enwik8'"):
        fetch_enwik8(tmp_path / "data", url=str(source), expected_sha256=digest)


def test_not_a_zip_rejected(tmp_path):
    source = tmp_path / "plain.zip"
    source.write_bytes(b"not a zip file")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()

    with pytest.raises(NNZipError, match="is not a valid zip archive"):
        fetch_enwik8(tmp_path / "data", url=str(source), expected_sha256=digest)


def test_verify_content(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(CONTENT)

    verify_content(path, content_check())
    with pytest.raises(NNZipError, match="size"):
        verify_content(path, content_check(CONTENT + b"!"))
    with pytest.raises(NNZipError, match="sha256 of the first 1000 bytes"):
        verify_content(path, content_check(b"?" + CONTENT[1:]))


def test_content_check_rejects_long_prefix():
    with pytest.raises(ValueError, match="prefix length"):
        ContentCheck(10, 11, "0" * 64)


def test_enwik8_check_covers_both_splits():
    assert ENWIK8_CHECK.size == 100_000_000
    assert ENWIK8_CHECK.prefix_length == VALID_END


def test_load_split(tmp_path):
    data = bytes(i % 251 for i in range(VALID_END + 17))
    path = tmp_path / "enwik8-head"
    path.write_bytes(data)

    train = load_split(path, "train")
    validation = load_split(path, "validation")

    assert train == data[:TRAIN_END]
    assert validation == data[TRAIN_END:VALID_END]


def test_load_split_short_file(tmp_path):
    path = tmp_path / "short"
    path.write_bytes(bytes(VALID_END - 1))
    with pytest.raises(NNZipError, match=f"has {VALID_END - 1} bytes, expected at least {VALID_END}"):
        load_split(path, "validation")


def test_load_split_unknown_split(tmp_path):
    path = tmp_path / "head"
    path.write_bytes(bytes(VALID_END))
    with pytest.raises(ValueError, match="unknown split 'test'"):
        load_split(path, "test")
