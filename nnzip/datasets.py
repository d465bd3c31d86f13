"""Download and split enwik8, the first 10**8 bytes of an English Wikipedia XML dump (2006).

enwik8 is the test file of the Hutter Prize and the Large Text Compression Benchmark. The
experiments here use its first 3,600,000 bytes: [0, TRAIN_END) for training and
[TRAIN_END, VALID_END) for validation.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from nnzip.errors import NNZipError

ENWIK8_URL = "http://mattmahoney.net/dc/enwik8.zip"

# sha256 of the 36,445,475-byte enwik8.zip at ENWIK8_URL, as listed in the download
# checksums of the enwik8 dataset in huggingface/datasets (datasets/enwik8/dataset_infos.json).
ENWIK8_ZIP_SHA256 = "547994d9980ebed1288380d652999f38a14fe291a6247c157c3d33d4932534bc"
ENWIK8_MEMBER = "enwik8"

TRAIN_END = 3_200_000
VALID_END = 3_600_000
SPLITS = {"train": (0, TRAIN_END), "validation": (TRAIN_END, VALID_END)}

DOWNLOAD_TIMEOUT_S = 60
_CHUNK_SIZE = 1 << 20


@dataclass(frozen=True)
class ContentCheck:
    """Expected size of a file and sha256 (hex) of its first prefix_length bytes."""

    size: int
    prefix_length: int
    prefix_sha256: str

    def __post_init__(self) -> None:
        if not 0 <= self.prefix_length <= self.size:
            raise ValueError(f"prefix length {self.prefix_length}, expected 0 <= prefix length <= size {self.size}")


# NOTE: the prefix digest was computed on a stored copy of the first 3,600,000 bytes of
# enwik8, not on a fresh download of the full file.
ENWIK8_CHECK = ContentCheck(
    size=100_000_000,
    prefix_length=VALID_END,
    prefix_sha256="81fda0858f6d6b72ab12c3c1a6dfc71d00f4b3c1ac07673ed2e45335362948cc",
)


def fetch_enwik8(
    dest_dir: Path,
    url: str = ENWIK8_URL,
    expected_sha256: str | None = ENWIK8_ZIP_SHA256,
    content_check: ContentCheck | None = ENWIK8_CHECK,
) -> Path:
    """Download enwik8.zip into dest_dir, verify it, extract `enwik8` and return its path.

    `url` may be an http(s) or file:// URL or a local path. An existing `enwik8` that passes
    content_check is returned as it is. An existing `enwik8.zip` is verified and extracted
    without a download, so a user without network access can place it there by hand.
    With expected_sha256 None the archive is not checked, and with content_check None the
    extracted file is not checked. Raises NNZipError when the download fails or a check
    does not match.
    """
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / ENWIK8_MEMBER
    archive = dest_dir / "enwik8.zip"

    if target.exists() and content_check is not None and _find_content_problem(target, content_check) is None:
        return target

    if archive.exists():
        _verify_existing_archive(archive, expected_sha256)
    else:
        _download(url, archive, expected_sha256)

    _extract_member(archive, target, content_check)
    return target


def verify_content(path: Path, check: ContentCheck) -> None:
    """Raise NNZipError unless the file has the expected size and prefix sha256."""
    problem = _find_content_problem(Path(path), check)
    if problem is not None:
        raise NNZipError(f"{path}: {problem}")


def load_split(path: Path, split: str) -> bytes:
    """Read the `train` or `validation` bytes from enwik8 or a file with its first VALID_END bytes."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}, expected one of {sorted(SPLITS)}")

    path = Path(path)
    size = path.stat().st_size
    if size < VALID_END:
        raise NNZipError(f"{path} has {size} bytes, expected at least {VALID_END} (the first bytes of enwik8)")

    start, end = SPLITS[split]
    with path.open("rb") as file:
        file.seek(start)
        return file.read(end - start)


def _verify_existing_archive(archive: Path, expected_sha256: str | None) -> None:
    if expected_sha256 is None:
        return

    with archive.open("rb") as file:
        digest = _sha256_of_stream(file)
    if digest != expected_sha256:
        raise NNZipError(
            f"checksum mismatch for {archive}: expected sha256 {expected_sha256}, got {digest}; "
            f"delete it to download it again"
        )


def _download(url: str, archive: Path, expected_sha256: str | None) -> None:
    """Copy url into a temporary file next to archive, verify it and rename it to archive."""
    handle, temp_name = tempfile.mkstemp(dir=archive.parent, prefix=f".{archive.name}.", suffix=".part")
    temp_path = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as output:
            digest = _copy_url(url, output, archive.parent)

        if expected_sha256 is not None and digest != expected_sha256:
            raise NNZipError(
                f"checksum mismatch for {url}: expected sha256 {expected_sha256}, got {digest}; "
                f"the downloaded file was removed"
            )
        os.replace(temp_path, archive)
    finally:
        temp_path.unlink(missing_ok=True)


def _copy_url(url: str, output: BinaryIO, dest_dir: Path) -> str:
    """Copy url to output and return the sha256 of the copied bytes."""
    hasher = hashlib.sha256()

    def write(chunk: bytes) -> None:
        hasher.update(chunk)
        try:
            output.write(chunk)
        except OSError as error:
            # Raised as NNZipError so that the handler below does not report it as a network error.
            raise NNZipError(f"could not write the download to {dest_dir}: {error}") from error

    try:
        if "://" in url:
            with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
                _copy_chunks(response, write)
        else:
            with open(url, "rb") as source:
                _copy_chunks(source, write)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = error.reason if isinstance(error, urllib.error.URLError) else error
        raise NNZipError(
            f"could not download {url}: {reason}; no network? place enwik8.zip in {dest_dir} by hand"
        ) from error

    return hasher.hexdigest()


def _copy_chunks(source: BinaryIO, write: Callable[[bytes], None]) -> None:
    while chunk := source.read(_CHUNK_SIZE):
        write(chunk)


def _extract_member(archive: Path, target: Path, content_check: ContentCheck | None) -> None:
    try:
        with zipfile.ZipFile(archive) as zip_file:
            info = _find_member(zip_file, archive, content_check)
            with zip_file.open(info) as source:
                _write_verified(source, target, content_check, f"member {ENWIK8_MEMBER!r} of {archive}")
    except zipfile.BadZipFile as error:
        # ZipExtFile also raises BadZipFile when the member's CRC32 does not match.
        raise NNZipError(f"{archive} is not a valid zip archive: {error}; delete it and fetch again") from error


def _write_verified(source: BinaryIO, target: Path, content_check: ContentCheck | None, label: str) -> None:
    """Copy source into a temporary file next to target, check it and rename it to target.

    `label` names the source in the error message.
    """
    handle, temp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    temp_path = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as output:
            shutil.copyfileobj(source, output, _CHUNK_SIZE)
        problem = None if content_check is None else _find_content_problem(temp_path, content_check)
        if problem is not None:
            raise NNZipError(f"{label}: {problem}")
        os.replace(temp_path, target)
    finally:
        temp_path.unlink(missing_ok=True)


def _find_member(zip_file: zipfile.ZipFile, archive: Path, content_check: ContentCheck | None) -> zipfile.ZipInfo:
    try:
        info = zip_file.getinfo(ENWIK8_MEMBER)
    except KeyError:
        raise NNZipError(f"{archive} has no member {ENWIK8_MEMBER!r}, found {zip_file.namelist()[:5]}") from None

    # Checking the declared size first avoids writing a member of unexpected size to disk.
    if content_check is not None and info.file_size != content_check.size:
        raise NNZipError(
            f"{archive}: member {ENWIK8_MEMBER!r} has {info.file_size} bytes, expected {content_check.size}"
        )
    return info


def _find_content_problem(path: Path, check: ContentCheck) -> str | None:
    size = path.stat().st_size
    if size != check.size:
        return f"size {size} bytes, expected {check.size}"

    with path.open("rb") as file:
        digest = _sha256_of_stream(file, limit=check.prefix_length)
    if digest != check.prefix_sha256:
        return f"sha256 of the first {check.prefix_length} bytes is {digest}, expected {check.prefix_sha256}"
    return None


def _sha256_of_stream(file: BinaryIO, limit: int | None = None) -> str:
    hasher = hashlib.sha256()
    remaining = limit
    while remaining is None or remaining > 0:
        size = _CHUNK_SIZE if remaining is None else min(_CHUNK_SIZE, remaining)
        chunk = file.read(size)
        if not chunk:
            break
        hasher.update(chunk)
        if remaining is not None:
            remaining -= len(chunk)
    return hasher.hexdigest()
