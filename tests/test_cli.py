"""Command line tests: success paths run through CliRunner, failures through a real
`python -m nnzip` process, so the tests check the exit code and stderr that a shell gets."""

import csv
import dataclasses
import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nnzip.cli import app, current_umask, expand_level_flags
from nnzip import codec
from nnzip.container import pack, unpack
from nnzip.intmodel import IntModel
from nnzip.models import DEFAULT_MODEL, FAST_MODEL

REPO_ROOT = Path(__file__).resolve().parent.parent
TEXT = b"The quick brown fox jumps over the lazy dog.\n" * 20


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def run_nnzip(*args: str, cwd: Path, model_dir: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    if model_dir is not None:
        env["NNZIP_MODEL_DIR"] = str(model_dir)
    return subprocess.run(
        [sys.executable, "-m", "nnzip", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Contents of every file under `folder`, by relative path."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def assert_clean_failure(
    result: subprocess.CompletedProcess, folder: Path, before: dict[str, bytes], code: int = 1
) -> str:
    """Check the failure contract and return the error message."""
    lines = result.stderr.splitlines()
    assert result.returncode == code
    assert "Traceback" not in result.stderr
    assert len(lines) == 1, f"expected one stderr line, got: {result.stderr!r}"
    assert lines[0].startswith("nnzip: error: ")
    assert result.stdout == ""
    assert list(folder.glob(".*.tmp")) == []
    assert sorted(snapshot(folder)) == sorted(before), "files were created or removed"
    assert snapshot(folder) == before, "a file changed"
    return lines[0]


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_bytes(TEXT)
    return path


@pytest.fixture
def prose_file(tmp_path: Path, corpus) -> Path:
    """prose.txt: text from the tiny model's training corpus, which the tiny model codes smaller than zstd."""
    path = tmp_path / "prose.txt"
    path.write_bytes(corpus.train[30000:30900])
    return path


@pytest.fixture
def nz_file(text_file: Path, tiny_model: IntModel) -> Path:
    """notes.txt.nz beside notes.txt: one member coded by the tiny model.

    `nnzip compress` would store this repetitive text as zstd, which needs no model, so the
    fixture calls the codec to get a model-coded member for the model checks.
    """
    path = text_file.with_name("notes.txt.nz")
    path.write_bytes(codec.compress(TEXT, tiny_model))
    return path


def test_roundtrip(tmp_path, text_file, tiny_model_path):
    packed, unpacked = tmp_path / "packed.nz", tmp_path / "unpacked.txt"

    compressed = invoke("compress", str(text_file), "-o", str(packed), "--model", str(tiny_model_path))
    assert compressed.exit_code == 0, compressed.stderr
    decompressed = invoke("decompress", str(packed), "-o", str(unpacked), "--model", str(tiny_model_path))
    assert decompressed.exit_code == 0, decompressed.stderr

    assert unpacked.read_bytes() == TEXT
    assert text_file.read_bytes() == TEXT
    assert list(tmp_path.glob(".*.tmp")) == []


def test_compress_summary(text_file, tiny_model_path):
    result = invoke("compress", str(text_file), "--model", str(tiny_model_path))
    assert result.exit_code == 0
    assert result.stderr.startswith("nnzip: ")
    assert "bpb" in result.stderr


def test_quiet_prints_nothing(text_file, tiny_model_path):
    result = invoke("compress", str(text_file), "--model", str(tiny_model_path), "--quiet")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert result.stdout == ""


def test_default_output_names(nz_file, text_file, tiny_model_path):
    assert nz_file.is_file()
    text_file.unlink()

    result = invoke("decompress", str(nz_file), "--model", str(tiny_model_path), "--quiet")

    assert result.exit_code == 0, result.stderr
    assert text_file.read_bytes() == TEXT


def test_force_overwrites(nz_file, text_file, tiny_model_path):
    nz_file.write_bytes(b"old output")
    result = invoke("compress", str(text_file), "--model", str(tiny_model_path), "-f", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert nz_file.read_bytes() != b"old output"
    assert unpack(nz_file.read_bytes())[0].original_length == len(TEXT)


def test_compress_existing_output(tmp_path, nz_file, text_file, tiny_model_path):
    nz_file.write_bytes(b"old output")
    before = snapshot(tmp_path)
    result = run_nnzip("compress", text_file.name, "--model", str(tiny_model_path), cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "already exists" in message
    assert "-f" in message


def test_decompress_existing_output(tmp_path, nz_file, text_file, tiny_model_path):
    before = snapshot(tmp_path)
    result = run_nnzip("decompress", nz_file.name, "--model", str(tiny_model_path), cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "already exists" in message


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_output_is_input(tmp_path, text_file, tiny_model_path, force):
    before = snapshot(tmp_path)
    args = ["compress", text_file.name, "-o", text_file.name, "--model", str(tiny_model_path)]
    result = run_nnzip(*args, *(["-f"] if force else []), cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "is the input file" in message


def test_missing_input(tmp_path, tiny_model_path):
    before = snapshot(tmp_path)
    result = run_nnzip("compress", "missing.txt", "--model", str(tiny_model_path), cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "missing.txt" in message


def test_directory_input(tmp_path, tiny_model_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "inside.txt").write_bytes(b"content")
    before = snapshot(tmp_path)
    result = run_nnzip("compress", "folder", "--model", str(tiny_model_path), cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "is a directory" in message


def test_missing_model(tmp_path, text_file):
    before = snapshot(tmp_path)
    result = run_nnzip("compress", text_file.name, "--model", "no-such-model", cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "no-such-model" in message


def test_missing_default_model(tmp_path, text_file):
    empty = tmp_path / "models"
    empty.mkdir()
    before = snapshot(tmp_path)
    result = run_nnzip("compress", text_file.name, cwd=tmp_path, model_dir=empty)
    message = assert_clean_failure(result, tmp_path, before)
    assert "not found" in message


def test_decompress_without_suffix(tmp_path, text_file, tiny_model_path):
    before = snapshot(tmp_path)
    result = run_nnzip("decompress", text_file.name, "--model", str(tiny_model_path), cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "-o" in message


def test_not_nz_file(tmp_path, tiny_model_path):
    (tmp_path / "fake.nz").write_bytes(TEXT)
    before = snapshot(tmp_path)
    result = run_nnzip("decompress", "fake.nz", "--model", str(tiny_model_path), cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "not an nnzip file" in message


def test_not_nz_file_default_model(tmp_path):
    (tmp_path / "fake.nz").write_bytes(TEXT)
    before = snapshot(tmp_path)
    result = run_nnzip("decompress", "fake.nz", cwd=tmp_path, model_dir=tmp_path / "no-models")
    message = assert_clean_failure(result, tmp_path, before)
    assert "not an nnzip file" in message


def test_truncated_nz(tmp_path, nz_file, text_file, tiny_model_path):
    text_file.unlink()
    nz_file.write_bytes(nz_file.read_bytes()[:-3])
    before = snapshot(tmp_path)
    result = run_nnzip("decompress", nz_file.name, "--model", str(tiny_model_path), cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "truncated" in message


def test_corrupted_payload_nz(tmp_path, nz_file, text_file, tiny_model_path):
    text_file.unlink()
    blob = bytearray(nz_file.read_bytes())
    blob[-5] ^= 0xFF
    nz_file.write_bytes(bytes(blob))
    before = snapshot(tmp_path)
    result = run_nnzip("decompress", nz_file.name, "--model", str(tiny_model_path), cwd=tmp_path)
    assert_clean_failure(result, tmp_path, before)


def test_checksum_mismatch_nz(tmp_path, nz_file, text_file, tiny_model_path):
    text_file.unlink()
    header, payloads = unpack(nz_file.read_bytes())
    wrong_crc = dataclasses.replace(header, crc32=header.crc32 ^ 1)
    nz_file.write_bytes(pack(wrong_crc, [bytes(p) for p in payloads]))
    before = snapshot(tmp_path)
    result = run_nnzip("decompress", nz_file.name, "--model", str(tiny_model_path), cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "checksum mismatch" in message


def test_wrong_model(tmp_path, nz_file, text_file, tiny_model, other_model, other_model_path):
    text_file.unlink()
    before = snapshot(tmp_path)
    result = run_nnzip("decompress", nz_file.name, "--model", str(other_model_path), cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert tiny_model.id[:16].hex() in message
    assert other_model.id[:16].hex() in message


def test_export_command(tmp_path, tiny_run, tiny_model):
    path = tmp_path / "exported.safetensors"
    result = invoke("export", str(tiny_run), "-o", str(path))
    assert result.exit_code == 0, result.stderr
    assert IntModel.load(path).id == tiny_model.id, "export is not deterministic"
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~current_umask()


def test_export_existing_output(tmp_path, tiny_run):
    (tmp_path / "exported.safetensors").write_bytes(b"old")
    before = snapshot(tmp_path)
    result = run_nnzip("export", str(tiny_run), "-o", "exported.safetensors", cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "already exists" in message


def test_top_level_help():
    result = invoke("--help")
    assert result.exit_code == 0
    assert "Examples" in result.stdout


@pytest.mark.parametrize("command", ["compress", "decompress", "train", "export", "bench", "fetch-enwik8"])
def test_command_help(command):
    result = invoke(command, "--help")
    assert result.exit_code == 0
    assert "Example" in result.stdout
    assert f"nnzip {command}" in result.stdout


def test_device_output_rejected(tmp_path, text_file, tiny_model_path):
    device = tmp_path / "device"
    os.mkfifo(device)
    result = run_nnzip("compress", text_file.name, "-o", "device", "-f", "--model", str(tiny_model_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "not a regular file" in result.stderr
    assert stat.S_ISFIFO(device.stat().st_mode)


def test_output_mode_follows_umask(tmp_path, text_file, tiny_model_path):
    result = run_nnzip("compress", text_file.name, "--model", str(tiny_model_path), cwd=tmp_path)
    assert result.returncode == 0
    mode = stat.S_IMODE((tmp_path / (text_file.name + ".nz")).stat().st_mode)
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask


def test_current_dir_input(tmp_path, tiny_model_path):
    result = run_nnzip("compress", ".", "--model", str(tiny_model_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "is a directory" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def level_model_dir(tmp_path, tiny_model_path, other_model_path) -> Path:
    """A model folder whose fast model is the tiny model and whose default model is the other one."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / FAST_MODEL).write_bytes(tiny_model_path.read_bytes())
    (folder / DEFAULT_MODEL).write_bytes(other_model_path.read_bytes())
    return folder


@pytest.mark.parametrize(
    ("flags", "fast"),
    [(["-1"], True), (["-3"], True), (["-4"], False), (["-9"], False), (["--level", "2"], True), ([], False)],
    ids=["-1", "-3", "-4", "-9", "--level-2", "default"],
)
def test_level_chooses_model(tmp_path, prose_file, level_model_dir, tiny_model, other_model, flags, fast):
    original = prose_file.read_bytes()
    result = run_nnzip("compress", *flags, prose_file.name, "-q", cwd=tmp_path, model_dir=level_model_dir)
    assert result.returncode == 0, result.stderr
    blob = prose_file.with_name("prose.txt.nz").read_bytes()
    expected = tiny_model if fast else other_model
    assert expected.id.startswith(unpack(blob)[0].model_id)

    prose_file.unlink()
    result = run_nnzip("decompress", "prose.txt.nz", "-q", cwd=tmp_path, model_dir=level_model_dir)
    assert result.returncode == 0, result.stderr
    assert prose_file.read_bytes() == original


@pytest.mark.parametrize("args", [["--level", "0"], ["--level", "10"], ["--level", "-1"]], ids=["0", "10", "minus-1"])
def test_level_out_of_range(tmp_path, text_file, level_model_dir, args):
    before = snapshot(tmp_path)
    result = run_nnzip("compress", *args, text_file.name, cwd=tmp_path, model_dir=level_model_dir)
    message = assert_clean_failure(result, tmp_path, before, code=1)
    assert message.startswith("nnzip: error: compression level")


def test_level_and_model_conflict(tmp_path, text_file, level_model_dir, tiny_model_path):
    before = snapshot(tmp_path)
    result = run_nnzip("compress", "-1", "--model", str(tiny_model_path), text_file.name, cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before, code=1)
    assert "not both" in message


def test_level_flags_stop_at_double_dash():
    assert expand_level_flags(["compress", "-9", "--", "-1"]) == ["compress", "--level", "9", "--", "-1"]


def test_level_flags_only_for_compress():
    assert expand_level_flags(["decompress", "a.nz", "-9"]) == ["decompress", "a.nz", "-9"]


def test_level_value_not_rewritten():
    assert expand_level_flags(["compress", "--level", "-1"]) == ["compress", "--level", "-1"]


def test_level_flag_out_of_range(tmp_path, text_file):
    before = snapshot(tmp_path)
    result = run_nnzip("compress", "-10", text_file.name, cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before, code=1)
    assert "-10" in message


@pytest.mark.parametrize(
    "args",
    [["compress", "notes.txt", "--bogus"], ["compress"], ["decompress", "notes.txt.nz", "-9"]],
    ids=["unknown-option", "missing-file", "level-on-decompress"],
)
def test_usage_errors_one_line(tmp_path, text_file, args):
    before = snapshot(tmp_path)
    result = run_nnzip(*args, cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before, code=1)
    assert "--help" in message


def test_version_and_short_help(tmp_path):
    version = run_nnzip("--version", cwd=tmp_path)
    assert version.returncode == 0
    assert version.stdout.startswith("nnzip ")
    short = run_nnzip("compress", "-h", cwd=tmp_path)
    assert short.returncode == 0
    assert "--level" in short.stdout


def test_write_failure_is_one_line(tmp_path, text_file, tiny_model_path):
    # A file size limit of 100 bytes makes the write fail with EFBIG, as a full disk would.
    before = snapshot(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    limit = "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (100, 100))"
    result = subprocess.run(
        [sys.executable, "-c", f"{limit}; import sys; sys.argv = ['nnzip'] + sys.argv[1:]; "
         "from nnzip.cli import main; main()", "compress", text_file.name, "-o", "big.nz",
         "--model", str(tiny_model_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    message = assert_clean_failure(result, tmp_path, before)
    assert "cannot write big.nz" in message


def test_decompress_summary_reads_forward(tmp_path, nz_file, text_file, tiny_model_path):
    out = tmp_path / "copy.txt"
    result = invoke("decompress", str(nz_file), "-o", str(out), "--model", str(tiny_model_path))
    assert result.exit_code == 0, result.stderr
    assert f"{nz_file.stat().st_size:,} -> {len(TEXT):,} bytes" in result.stderr


def test_export_refuses_transformer_run(tmp_path, tiny_config):
    import dataclasses

    from nnzip.train import train

    run = tmp_path / "transformer-run"
    train(dataclasses.replace(tiny_config, arch="transformer", steps=2, eval_every=2), run, progress=False)
    before = snapshot(tmp_path)
    result = run_nnzip("export", str(run), "-o", "out.safetensors", cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before)
    assert "transformer run" in message


def test_bench_json_rows(tmp_path, level_model_dir):
    (tmp_path / "book.txt").write_bytes(TEXT * 4)
    result = run_nnzip("bench", "book.txt", "--vs", "gzip,xz,zstd", "--json", cwd=tmp_path, model_dir=level_model_dir)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["compressor"] for row in rows] == ["nnzip", "gzip", "xz", "zstd"]
    for row in rows:
        assert row["round_trip"] == "ok"
        assert row["original_bytes"] == len(TEXT) * 4
        assert row["bpb"] == pytest.approx(8 * row["compressed_bytes"] / row["original_bytes"])
        assert row["compress_bytes_per_s"] > 0
        assert row["decompress_bytes_per_s"] > 0
        assert row["peak_rss_mib"] > 0


def test_bench_csv_and_external_command(tmp_path, level_model_dir):
    (tmp_path / "book.txt").write_bytes(TEXT)
    vs = f"copy={sys.executable} -c 'import shutil,sys; shutil.copy(sys.argv[1], sys.argv[2])' {{in}} {{out}}"
    vs += f" :: {sys.executable} -c 'import shutil,sys; shutil.copy(sys.argv[1], sys.argv[2])' {{in}} {{out}}"
    result = run_nnzip("bench", "book.txt", "--vs", vs, "--csv", cwd=tmp_path, model_dir=level_model_dir)
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["compressor"] for row in rows] == ["nnzip", "copy"]
    assert rows[1]["compressed_bytes"] == str(len(TEXT))
    assert rows[1]["round_trip"] == "ok"


def test_bench_failing_external_command(tmp_path, level_model_dir):
    (tmp_path / "book.txt").write_bytes(TEXT)
    vs = f"broken={sys.executable} -c 'import sys; sys.exit(3)' {{in}} {{out}}"
    result = run_nnzip("bench", "book.txt", "--vs", vs, "--json", cwd=tmp_path, model_dir=level_model_dir)
    assert result.returncode == 1
    rows = json.loads(result.stdout)
    assert rows[1]["round_trip"].startswith("FAILED")
    assert "exited with 3" in rows[1]["round_trip"]
    assert result.stderr.startswith("nnzip: error: failed: broken on book.txt")


def test_bench_unknown_compressor(tmp_path):
    (tmp_path / "book.txt").write_bytes(TEXT)
    before = snapshot(tmp_path)
    result = run_nnzip("bench", "book.txt", "--vs", "gzip,lz5", cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before, code=1)
    assert "lz5" in message


@pytest.mark.parametrize(
    ("plot", "expected"),
    [("book.txt", "must end in .png"), ("in.png", "input files"), ("old.png", "already exists"),
     ("missing/p.png", "not found")],
    ids=["suffix", "input", "existing", "no-folder"],
)
def test_bench_plot_path_checked_first(tmp_path, plot, expected):
    (tmp_path / "book.txt").write_bytes(TEXT)
    (tmp_path / "in.png").write_bytes(b"not really a png")
    (tmp_path / "old.png").write_bytes(b"old plot")
    before = snapshot(tmp_path)
    inputs = ["book.txt", "in.png"]
    result = run_nnzip("bench", *inputs, "--plot", plot, cwd=tmp_path)
    message = assert_clean_failure(result, tmp_path, before, code=1)
    assert expected in message


@pytest.mark.parametrize(
    "vs",
    ["x=cp {out}", "x=cp '{in} {out}", "=cp {in} {out}", "gzip=cp {in} {out}"],
    ids=["no-in", "quote", "no-name", "builtin-name"],
)
def test_bench_bad_templates(tmp_path, vs):
    (tmp_path / "book.txt").write_bytes(TEXT)
    before = snapshot(tmp_path)
    result = run_nnzip("bench", "book.txt", "--vs", vs, cwd=tmp_path)
    assert_clean_failure(result, tmp_path, before, code=1)


def test_bench_plot(tmp_path, level_model_dir):
    pytest.importorskip("matplotlib")
    (tmp_path / "book.txt").write_bytes(TEXT)
    result = run_nnzip("bench", "book.txt", "--plot", "plot.png", "--csv", cwd=tmp_path, model_dir=level_model_dir)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_wrong_model_names_shipped_model(tmp_path, prose_file, level_model_dir):
    result = run_nnzip("compress", "-1", prose_file.name, "-q", cwd=tmp_path, model_dir=level_model_dir)
    assert result.returncode == 0, result.stderr
    before = snapshot(tmp_path)
    wrong = str(level_model_dir / DEFAULT_MODEL)
    result = run_nnzip("decompress", "prose.txt.nz", "-o", "out.txt", "--model", wrong, cwd=tmp_path,
                       model_dir=level_model_dir)
    message = assert_clean_failure(result, tmp_path, before)
    assert f"shipped model {FAST_MODEL.removesuffix('.safetensors')}; leave out --model" in message


def test_gzip_mode_wrong_model_names_shipped_model(tmp_path, prose_file, level_model_dir):
    result = run_nnzip("compress", "-1", prose_file.name, "-q", cwd=tmp_path, model_dir=level_model_dir)
    assert result.returncode == 0, result.stderr
    before = snapshot(tmp_path)
    wrong = str(level_model_dir / DEFAULT_MODEL)

    result = run_nnzip("-dc", "-m", wrong, "prose.txt.nz", cwd=tmp_path, model_dir=level_model_dir)

    message = assert_clean_failure(result, tmp_path, before)
    assert f"shipped model {FAST_MODEL.removesuffix('.safetensors')}; leave out --model" in message


def test_api_rejects_int_data():
    import nnzip

    with pytest.raises(TypeError):
        nnzip.compress(5)
