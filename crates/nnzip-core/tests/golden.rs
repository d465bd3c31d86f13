//! The golden `.nz` files of the repository (tests/golden), written by the Python reference
//! with the shipped models, decode to their originals here and encode to the same bytes.

use std::path::{Path, PathBuf};

use nnzip_core::{codec, members, Model};

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join("..")
}

fn shipped_models() -> Vec<Model> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repository_root().join("models"))
        .expect("the models folder exists")
        .map(|entry| entry.expect("a readable folder entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "safetensors"))
        .collect();
    paths.sort();
    paths
        .iter()
        .map(|path| Model::load(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())))
        .collect()
}

/// Returns the original of a golden file `NAME[.TAG].nz`: the golden file `NAME` whose name,
/// followed by a dot, is the longest prefix of the `.nz` file's name.
fn original_path(nz: &Path) -> PathBuf {
    let name = nz.file_name().unwrap().to_str().unwrap();
    let originals = std::fs::read_dir(nz.parent().unwrap())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|candidate| {
            !candidate.ends_with(".nz") && name.starts_with(&format!("{candidate}."))
        });
    let original = originals
        .max_by_key(String::len)
        .unwrap_or_else(|| panic!("no original for {name}"));
    nz.with_file_name(original)
}

#[test]
fn golden_files_round_trip_with_shipped_models() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        std::env::set_var("RAYON_NUM_THREADS", "2");
    }
    let models = shipped_models();
    let mut checked = 0;
    let mut checked_members = 0;
    for entry in std::fs::read_dir(repository_root().join("tests").join("golden")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|ext| ext != "nz") {
            continue;
        }
        let blob = std::fs::read(&path).unwrap();
        let original = std::fs::read(original_path(&path)).unwrap();
        let model_id = members::first_model_id(&blob)
            .unwrap()
            .unwrap_or_else(|| panic!("{} has no model-coded member", path.display()));
        let model = models
            .iter()
            .find(|model| model.short_id() == model_id)
            .unwrap_or_else(|| panic!("no shipped model wrote {}", path.display()));

        // nnzip-core writes single members only; the Python command line writes the others.
        if path.to_string_lossy().ends_with(".members.nz") {
            let decoded = members::decompress(&blob, Some(model), &mut |_| Ok(())).unwrap();
            assert_eq!(decoded, original, "{}", path.display());
            checked_members += 1;
            continue;
        }

        assert_eq!(
            codec::decompress(&blob, model).unwrap(),
            original,
            "{}",
            path.display()
        );
        assert_eq!(
            codec::compress(&original, model).unwrap(),
            blob,
            "{}",
            path.display()
        );
        checked += 1;
    }
    assert!(
        checked >= 6,
        "expected the golden files of both shipped models, found {checked}"
    );
    assert!(
        checked_members >= 1,
        "expected a golden file of several members"
    );
}
