"""The gzip-style command line: conventions, streams, and the bad-input corpus.

Most cases call `gzip_cli.main` in this process, which returns the exit code. The cases
about stdin, stdout, terminals, pipes and signals run a real `nnzip` process.
"""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nnzip import codec, gzip_cli
from nnzip.members import read_members

REPO_ROOT = Path(__file__).resolve().parent.parent
BAD_INPUTS = Path(__file__).resolve().parent / "bad-inputs"
CASES = json.loads((BAD_INPUTS / "cases.json").read_text())
BASE_TEXT = (Path(__file__).resolve().parent / "golden" / "sleepy-hollow-6k.txt").read_bytes()[:400]


def nnzip(*args: str, cwd: Path, stdin=None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run([sys.executable, "-m", "nnzip", *args], cwd=cwd, env=env, input=stdin,
                          stdout=stdout, stderr=subprocess.PIPE, timeout=300)


@pytest.fixture
def work(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def prose(work, corpus) -> Path:
    """prose.txt: text that the tiny model codes smaller than zstd, 900 bytes."""
    path = work / "prose.txt"
    path.write_bytes(corpus.train[30000:30900])
    return path


def run(capsys, *argv: str) -> tuple[int, list[str]]:
    """Run the command line in this process; return the exit code and the stderr lines."""
    code = gzip_cli.main(list(argv))
    return code, capsys.readouterr().err.splitlines()


# Conventions


def test_compress_replaces_input_after_verifying(work, prose, tiny_model_path, capsys):
    original = prose.read_bytes()
    code, errors = run(capsys, "-m", str(tiny_model_path), "prose.txt")
    assert (code, errors) == (0, [])
    assert not prose.exists()
    assert codec.decompress((work / "prose.txt.nz").read_bytes(), __import__("nnzip").intmodel.IntModel.load(tiny_model_path)) == original

    code, errors = run(capsys, "-d", "-m", str(tiny_model_path), "prose.txt.nz")
    assert (code, errors) == (0, [])
    assert prose.read_bytes() == original
    assert not (work / "prose.txt.nz").exists()


def test_keep_and_stdout_keep_the_input(work, prose, tiny_model_path, capsys):
    code, _ = run(capsys, "-k", "-m", str(tiny_model_path), "prose.txt")
    assert code == 0
    assert prose.exists()
    assert (work / "prose.txt.nz").exists()


def test_mode_and_mtime_follow_the_input(work, prose, tiny_model_path, capsys):
    prose.chmod(0o640)
    os.utime(prose, (1_000_000_000, 1_000_000_000))
    assert run(capsys, "-k", "-m", str(tiny_model_path), "prose.txt")[0] == 0
    info = (work / "prose.txt.nz").stat()
    assert info.st_mode & 0o777 == 0o640
    assert int(info.st_mtime) == 1_000_000_000


def test_existing_output_needs_force(work, prose, tiny_model_path, capsys):
    (work / "prose.txt.nz").write_bytes(b"precious")
    code, errors = run(capsys, "-m", str(tiny_model_path), "prose.txt")
    assert code == 1
    assert errors == ["nnzip: error: prose.txt: prose.txt.nz already exists; use -f to overwrite"]
    assert (work / "prose.txt.nz").read_bytes() == b"precious"
    assert prose.exists()

    assert run(capsys, "-f", "-m", str(tiny_model_path), "prose.txt")[0] == 0
    assert (work / "prose.txt.nz").read_bytes() != b"precious"


def test_warnings_exit_2_and_leave_files(work, capsys):
    (work / "done.nz").write_bytes(b"x")
    (work / "folder").mkdir()
    code, errors = run(capsys, "done.nz", "folder")
    assert code == 2
    assert errors == ["nnzip: done.nz: already has the .nz suffix -- unchanged", "nnzip: folder: is a directory -- ignored"]
    assert (work / "done.nz").read_bytes() == b"x"


def test_error_outranks_warning_and_others_still_run(work, prose, tiny_model_path, capsys):
    (work / "folder").mkdir()
    code, errors = run(capsys, "-m", str(tiny_model_path), "missing.txt", "folder", "prose.txt")
    assert code == 1
    assert errors[0] == "nnzip: error: missing.txt: no such file"
    assert (work / "prose.txt.nz").exists()


def test_links_skipped_unless_kept_or_forced(work, prose, tiny_model_path, capsys):
    os.symlink("prose.txt", work / "soft.txt")
    os.link(prose, work / "hard.txt")
    code, errors = run(capsys, "-m", str(tiny_model_path), "soft.txt", "hard.txt")
    assert code == 2
    assert errors == [
        "nnzip: soft.txt: is a symbolic link -- ignored (use -f to follow it, or -k)",
        "nnzip: hard.txt: has 1 other link -- ignored (use -f or -k)",
    ]
    assert run(capsys, "-k", "-m", str(tiny_model_path), "soft.txt", "hard.txt")[0] == 0


def test_decompress_finds_the_nz_file(work, prose, tiny_model_path, capsys):
    original = prose.read_bytes()
    assert run(capsys, "-m", str(tiny_model_path), "prose.txt")[0] == 0
    assert run(capsys, "-d", "-m", str(tiny_model_path), "prose.txt") == (0, [])
    assert prose.read_bytes() == original


def test_unknown_suffix_on_decompress_is_a_warning(work, capsys):
    (work / "data.bin").write_bytes(b"abc")
    assert run(capsys, "-d", "data.bin") == (2, ["nnzip: data.bin: unknown suffix, expected .nz -- ignored"])


def test_double_dash_ends_options(work, tiny_model_path, capsys):
    (work / "-k").write_bytes(b"a file named like an option\n" * 10)
    assert run(capsys, "-m", str(tiny_model_path), "--", "-k")[0] == 0
    assert (work / "-k.nz").exists()
    assert not (work / "-k").exists()


def test_list_and_test(work, prose, tiny_model_path, capsys):
    assert run(capsys, "-k", "-m", str(tiny_model_path), "prose.txt")[0] == 0
    code = gzip_cli.main(["-l", "prose.txt.nz"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].split() == ["compressed", "uncompressed", "ratio", "model", "uncompressed_name"]
    compressed, original, _, model, name = out[1].split()
    assert (int(compressed), int(original), name) == ((work / "prose.txt.nz").stat().st_size, 900, "prose.txt")
    assert len(model) == 32  # the tiny test model is not shipped, so -l shows its id

    assert run(capsys, "-t", "-v", "-m", str(tiny_model_path), "prose.txt.nz") == (0, ["nnzip: prose.txt.nz: OK"])


def test_invalid_command_line_exits_1(capsys):
    code, errors = run(capsys, "--no-such-option")
    assert code == 1
    assert errors == ["nnzip: error: unrecognized arguments: --no-such-option (see 'nnzip --help')"]


def test_help_documents_exit_codes(capsys):
    assert gzip_cli.main(["--help"]) == 0
    assert "0 success, 1 error, 2 warning" in capsys.readouterr().out


# Streams, terminals, pipes and signals


def test_stdin_to_stdout_round_trip(tmp_path, tiny_model_path):
    data = os.urandom(3000) + b"text " * 400
    packed = nnzip("-m", str(tiny_model_path), cwd=tmp_path, stdin=data)
    assert packed.returncode == 0
    assert packed.stderr == b""
    unpacked = nnzip("-d", "-m", str(tiny_model_path), cwd=tmp_path, stdin=packed.stdout)
    assert unpacked.returncode == 0
    assert unpacked.stdout == data
    dash = nnzip("-dc", "-m", str(tiny_model_path), "-", cwd=tmp_path, stdin=packed.stdout)
    assert dash.stdout == data


def test_compressed_data_not_written_to_a_terminal(tmp_path, tiny_model_path):
    (tmp_path / "a.txt").write_bytes(b"abc")
    leader, follower = pty.openpty()
    try:
        result = nnzip("-c", "-m", str(tiny_model_path), "a.txt", cwd=tmp_path, stdout=follower)
    finally:
        os.close(follower)
        os.close(leader)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "nnzip: error: a.txt: compressed data not written to a terminal; redirect stdout or use -f"
    ]


def test_broken_pipe_ends_quietly(tmp_path):
    (tmp_path / "big.nz").write_bytes(gzip_cli_compress(os.urandom(1 << 20)))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    # The reader is gone before nnzip writes, so its first write fails with EPIPE.
    reader, writer = os.pipe()
    os.close(reader)
    try:
        result = subprocess.run([sys.executable, "-m", "nnzip", "-dc", "big.nz"], cwd=tmp_path, env=env,
                                stdout=writer, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(writer)
    assert result.returncode == gzip_cli.BROKEN_PIPE
    assert result.stderr == b""


def gzip_cli_compress(data: bytes) -> bytes:
    import nnzip

    return nnzip.compress(data)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_leaves_no_partial_output(tmp_path, tiny_model_path, corpus, signum):
    source = tmp_path / "long.txt"
    source.write_bytes(corpus.train * 3)
    before = source.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "nnzip", "--engine", "python", "-m", str(tiny_model_path), "long.txt"],
                               cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while not any(path.name.endswith(".tmp") for path in tmp_path.iterdir()) and time.time() < deadline:
        time.sleep(0.1)
    process.send_signal(signum)
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=60) == gzip_cli.INTERRUPTED
    assert stderr.splitlines() == ["nnzip: error: interrupted"]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["long.txt"]
    assert source.read_bytes() == before


def test_closed_stdout_is_one_line_error(tmp_path):
    (tmp_path / "a.txt").write_bytes(b"abc")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-m", "nnzip", "-c", "a.txt"], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120,
                            preexec_fn=lambda: os.close(1))
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == ["nnzip: error: a.txt: stdout is closed; redirect it to a file or a pipe"]


def test_unnz_is_decompress(tmp_path, tiny_model_path):
    (tmp_path / "a.txt").write_bytes(b"unnz " * 100)
    assert nnzip("-m", str(tiny_model_path), "a.txt", cwd=tmp_path).returncode == 0
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    code = "import sys; sys.argv[0] = 'unnz'; from nnzip.cli import unnz_main; unnz_main()"
    result = subprocess.run([sys.executable, "-c", code, "-m", str(tiny_model_path), "a.txt.nz"], cwd=tmp_path,
                            env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "a.txt").read_bytes() == b"unnz " * 100
    assert gzip_cli.main(["-t", "a.txt.nz"], prog="unnz", default_mode="decompress") == 1  # a.txt.nz is gone


# The bad-input corpus


def assert_one_line_failure(code: int, errors: list[str], expected_code: int = 1) -> None:
    assert code == expected_code
    assert len(errors) == 1
    assert errors[0].startswith("nnzip: error: ")
    assert "Traceback" not in errors[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_corpus(name, work, capsys):
    shutil.copy(BAD_INPUTS / f"{name}.nz", work / f"{name}.nz")
    case = CASES[name]

    code, errors = run(capsys, "-t", f"{name}.nz")
    assert_one_line_failure(code, errors, case["exit"])
    assert errors[0].startswith(f"nnzip: error: {name}.nz: {case['error']}"), errors[0]

    code, errors = run(capsys, "-d", f"{name}.nz")
    assert_one_line_failure(code, errors, case["exit"])
    assert sorted(path.name for path in work.iterdir()) == [f"{name}.nz"]


def test_base_of_the_corpus_decodes(work, capsys):
    shutil.copy(BAD_INPUTS / "base.nz", work / "base.nz")
    assert run(capsys, "-d", "base.nz") == (0, [])
    assert (work / "base").read_bytes() == BASE_TEXT


def test_every_truncation_fails_cleanly(work, capsys):
    blob = (BAD_INPUTS / "base.nz").read_bytes()
    for length in range(len(blob)):
        (work / "cut.nz").write_bytes(blob[:length])
        code, errors = run(capsys, "-d", "-k", "cut.nz")
        assert_one_line_failure(code, errors)
        assert not (work / "cut").exists(), length


def test_every_bit_flip_fails_cleanly_or_decodes_exactly(work, capsys):
    blob = (BAD_INPUTS / "base.nz").read_bytes()
    decoded = 0
    for index in range(len(blob) * 8):
        flipped = bytearray(blob)
        flipped[index // 8] ^= 1 << (index % 8)
        (work / "flip.nz").write_bytes(flipped)
        code, errors = run(capsys, "-d", "-k", "-f", "flip.nz")
        if code == 0:
            # A flip in the coder's last bits can leave every symbol, and so the CRC, intact.
            assert (work / "flip").read_bytes() == BASE_TEXT
            decoded += 1
            (work / "flip").unlink()
        else:
            assert_one_line_failure(code, errors)
            assert not (work / "flip").exists(), index
    assert decoded < len(blob)


def test_directory_missing_and_unreadable_inputs(work, capsys):
    (work / "folder.nz").mkdir()
    assert run(capsys, "-d", "folder.nz") == (2, ["nnzip: folder.nz: is a directory -- ignored"])
    code, errors = run(capsys, "-d", "missing.nz")
    assert (code, errors) == (1, ["nnzip: error: missing.nz: no such file"])
    if os.geteuid() == 0:
        return  # root reads any file, so an unreadable file cannot be made here
    locked = work / "locked.nz"
    shutil.copy(BAD_INPUTS / "base.nz", locked)
    locked.chmod(0)
    code, errors = run(capsys, "-d", "locked.nz")
    assert (code, errors) == (1, ["nnzip: error: locked.nz: cannot read: Permission denied"])


def test_concatenated_members_listed_and_decoded(work, capsys):
    blob = (BAD_INPUTS / "base.nz").read_bytes()
    (work / "twice.nz").write_bytes(blob + blob)
    assert len(list(read_members((work / "twice.nz").open("rb")))) == 2
    assert run(capsys, "-d", "twice.nz") == (0, [])
    assert (work / "twice").read_bytes() == BASE_TEXT * 2
