//! Tests of the `nnzip-core` binary: file handling, model lookup, messages and exit codes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("data")
}

/// A fresh, empty directory for one test, removed when the test ends.
struct Scratch(PathBuf);

impl Scratch {
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

fn scratch_dir(test: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("nnzip-core-cli-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn nnzip_core(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nnzip-core"))
        .args(args)
        .env_remove("NNZIP_MODEL_DIR")
        .output()
        .expect("the binary runs")
}

fn text(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn round_trip_matches_python_file() {
    let dir = scratch_dir("round-trip");
    let input = data_dir().join("text_10k.bin");
    let model = data_dir().join("tiny.safetensors");
    let packed = dir.join("text.nz");
    let unpacked = dir.join("text.txt");

    let output = nnzip_core(&[
        "compress",
        text(&input),
        "-o",
        text(&packed),
        "--model",
        text(&model),
        "--threads",
        "1",
        "-q",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(fs::read(&packed).unwrap() == fs::read(data_dir().join("text_10k.nz")).unwrap());

    let output = nnzip_core(&[
        "decompress",
        text(&packed),
        "-o",
        text(&unpacked),
        "--model",
        text(&model),
        "--threads",
        "2",
        "-q",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(fs::read(&unpacked).unwrap() == fs::read(&input).unwrap());

    let leftovers: Vec<_> = fs::read_dir(&*dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .filter(|name| name.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

/// Decompresses the fixture `packed` in a scratch folder, finding its model by the id in the
/// header among the fixture models, and checks that it gives the fixture `original`.
fn check_decompress_by_id(scratch: &str, packed: &str, original: &str) {
    let dir = scratch_dir(scratch);
    let copy = dir.join("file.nz");
    fs::copy(data_dir().join(packed), &copy).unwrap();

    let output = nnzip_core(&[
        "decompress",
        text(&copy),
        "--model-dir",
        text(&data_dir()),
        "-q",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let unpacked = dir.join("file");
    assert!(fs::read(unpacked).unwrap() == fs::read(data_dir().join(original)).unwrap());
}

#[test]
fn decompress_finds_model_by_id() {
    check_decompress_by_id("model-by-id", "random_5000.nz", "random_5000.bin");
}

#[test]
fn index_model_found_by_id_with_its_index() {
    // The model is found by the id in the header, and loads its index from the same folder.
    check_decompress_by_id("index-model-by-id", "text_10k.index.nz", "text_10k.bin");
}

#[test]
fn index_model_without_index_reported() {
    let dir = scratch_dir("index-model-alone");
    let model = dir.join("tiny_index.safetensors");
    fs::copy(data_dir().join("tiny_index.safetensors"), &model).unwrap();
    let output = nnzip_core(&[
        "compress",
        text(&data_dir().join("one_byte.bin")),
        "-o",
        text(&dir.join("one.nz")),
        "--model",
        text(&model),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.starts_with(&format!(
            "nnzip-core: error: model {} needs the index tiny_index.nzi (id ",
            model.display()
        )),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
}

#[test]
fn model_dir_variable_used() {
    let dir = scratch_dir("model-dir-variable");
    let unpacked = dir.join("one.bin");
    let output = Command::new(env!("CARGO_BIN_EXE_nnzip-core"))
        .args([
            "decompress",
            text(&data_dir().join("one_byte.nz")),
            "-o",
            text(&unpacked),
            "-q",
        ])
        .env("NNZIP_MODEL_DIR", data_dir())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(fs::read(unpacked).unwrap(), b"A");
}

#[test]
fn model_name_resolved_in_model_dir() {
    let dir = scratch_dir("model-name");
    let packed = dir.join("bytes.nz");
    let input = data_dir().join("all_bytes.bin");
    let output = nnzip_core(&[
        "compress",
        text(&input),
        "-o",
        text(&packed),
        "--model",
        "tiny",
        "--model-dir",
        text(&data_dir()),
        "-q",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(fs::read(&packed).unwrap() == fs::read(data_dir().join("all_bytes.nz")).unwrap());
}

#[test]
fn missing_model_in_dir_reported() {
    let dir = scratch_dir("no-model");
    let output = nnzip_core(&[
        "decompress",
        text(&data_dir().join("one_byte.nz")),
        "-o",
        text(&dir.join("out")),
        "--model-dir",
        text(&dir),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.starts_with("nnzip-core: error: no model in "),
        "{message}"
    );
    assert!(message.contains("pass --model"), "{message}");
}

#[test]
fn corrupt_input_fails_with_one_line() {
    let dir = scratch_dir("corrupt");
    let packed = dir.join("bad.nz");
    let mut blob = fs::read(data_dir().join("text_10k.nz")).unwrap();
    blob.truncate(blob.len() - 10);
    fs::write(&packed, blob).unwrap();
    let target = dir.join("bad.txt");

    let output = nnzip_core(&[
        "decompress",
        text(&packed),
        "-o",
        text(&target),
        "--model",
        text(&data_dir().join("tiny.safetensors")),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert_eq!(
        message,
        "nnzip-core: error: truncated payload: the streams need 5068 bytes, got 5058\n"
    );
    assert!(!target.exists(), "a failed run left an output file");
}

#[test]
fn existing_output_needs_force() {
    let dir = scratch_dir("force");
    let target = dir.join("out.nz");
    fs::write(&target, b"keep me").unwrap();
    let input = data_dir().join("one_byte.bin");
    let model = data_dir().join("tiny.safetensors");

    let output = nnzip_core(&[
        "compress",
        text(&input),
        "-o",
        text(&target),
        "--model",
        text(&model),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("already exists; use -f to overwrite"));
    assert_eq!(fs::read(&target).unwrap(), b"keep me");

    let output = nnzip_core(&[
        "compress",
        text(&input),
        "-o",
        text(&target),
        "--model",
        text(&model),
        "-f",
        "-q",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(fs::read(&target).unwrap() == fs::read(data_dir().join("one_byte.nz")).unwrap());
}

#[test]
fn output_equal_to_input_rejected() {
    let dir = scratch_dir("same-file");
    let input = dir.join("data.nz");
    fs::copy(data_dir().join("one_byte.nz"), &input).unwrap();
    let output = nnzip_core(&[
        "decompress",
        text(&input),
        "-o",
        text(&input),
        "-f",
        "--model",
        text(&data_dir().join("tiny.safetensors")),
    ]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("is the input file"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn decompress_without_nz_suffix_needs_output() {
    let output = nnzip_core(&["decompress", text(&data_dir().join("one_byte.bin"))]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("does not end in .nz; name the output with -o"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn missing_model_file_reported() {
    let dir = scratch_dir("missing-model");
    let output = nnzip_core(&[
        "compress",
        text(&data_dir().join("one_byte.bin")),
        "-o",
        text(&dir.join("x.nz")),
        "--model",
        "/nonexistent/model.safetensors",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let message = stderr(&output);
    assert!(
        message.starts_with("nnzip-core: error: model /nonexistent/model.safetensors not found"),
        "{message}"
    );
}
