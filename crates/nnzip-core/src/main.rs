//! The `nnzip-core` command line: argument parsing and file handling; the library does the rest.
//!
//! Messages go to stderr with an `nnzip-core:` prefix. Exit codes: 0 success, 1 error, 2 an
//! invalid command line (clap's convention).

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use nnzip_core::container::model_id_hex;
use nnzip_core::model::read_export_info;
use nnzip_core::{codec, container, members, Error, Model, Result};

const NZ_SUFFIX: &str = "nz";
const MODEL_SUFFIX: &str = ".safetensors";
const MODEL_DIR_VARIABLE: &str = "NNZIP_MODEL_DIR";

/// Lossless compression with a byte-level neural network and a range coder.
///
/// Writes and reads the same .nz files as the Python nnzip, bit for bit.
#[derive(Debug, Parser)]
#[command(name = "nnzip-core", version)]
struct Cli {
    /// Worker threads for the model (the rayon pool). Default: RAYON_NUM_THREADS, else one per
    /// CPU. The output is the same for every thread count.
    #[arg(long, global = true, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    threads: Option<u16>,

    /// Print errors only.
    #[arg(long, short, global = true)]
    quiet: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compress IN to IN.nz (or -o OUT.nz).
    Compress {
        /// File to compress.
        input: PathBuf,
        /// Output path. Default: IN.nz.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Model file, or the name of a model in the model directory.
        #[arg(long, short)]
        model: String,
        /// Directory of named models. Default: $NNZIP_MODEL_DIR, else ./models.
        #[arg(long, value_name = "DIR")]
        model_dir: Option<PathBuf>,
        /// Overwrite an existing output file.
        #[arg(long, short)]
        force: bool,
    },
    /// Decompress IN.nz to IN without .nz (or -o OUT).
    Decompress {
        /// The .nz file to decompress.
        input: PathBuf,
        /// Output path. Default: IN without its .nz suffix.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Model file or name. Default: the model in the model directory whose id the file
        /// header names.
        #[arg(long, short)]
        model: Option<String>,
        /// Directory of named models. Default: $NNZIP_MODEL_DIR, else ./models.
        #[arg(long, value_name = "DIR")]
        model_dir: Option<PathBuf>,
        /// Overwrite an existing output file.
        #[arg(long, short)]
        force: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(message) = configure_threads(cli.threads) {
        eprintln!("nnzip-core: error: {message}");
        return ExitCode::FAILURE;
    }

    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            let message = error.to_string().replace('\n', " ");
            eprintln!("nnzip-core: error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Sets RAYON_NUM_THREADS and starts the global rayon pool with that many threads.
///
/// Candle 0.11 sizes the parallelism of each matmul from RAYON_NUM_THREADS. Without it, every
/// matmul counts the physical cores by reading /proc/cpuinfo, which costs more than the
/// decoder's arithmetic. The variable is set here, before any other thread starts.
fn configure_threads(requested: Option<u16>) -> std::result::Result<(), String> {
    let from_environment = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|text| text.parse::<usize>().ok())
        .filter(|&threads| threads > 0);
    let threads = match (requested, from_environment) {
        (Some(threads), _) => usize::from(threads),
        (None, Some(threads)) => threads,
        (None, None) => std::thread::available_parallelism().map_or(1, usize::from),
    };
    std::env::set_var("RAYON_NUM_THREADS", threads.to_string());
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build_global()
        .map_err(|error| format!("cannot start {threads} threads: {error}"))
}

fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Compress {
            input,
            output,
            model,
            model_dir,
            force,
        } => {
            let target = output.clone().unwrap_or_else(|| with_nz_suffix(input));
            check_output(input, &target, *force)?;
            let data = read_input(input)?;
            let model = Model::load(&resolve_model(model, model_dir.as_deref())?)?;

            let started = Instant::now();
            let mut meter = Meter::new(cli.quiet, "compress", data.len());
            let blob = codec::compress_with_progress(&data, &model, &mut |n| meter.advance(n))?;
            drop(meter);
            write_atomically(&target, &blob)?;
            report(cli.quiet, input, data.len(), blob.len(), started);
        }
        Command::Decompress {
            input,
            output,
            model,
            model_dir,
            force,
        } => {
            let target = match output {
                Some(path) => path.clone(),
                None => without_nz_suffix(input)?,
            };
            check_output(input, &target, *force)?;
            let blob = read_input(input)?;
            // A file of stored members needs no model.
            let model_path = match (model, members::first_model_id(&blob)?) {
                (Some(spec), _) => Some(resolve_model(spec, model_dir.as_deref())?),
                (None, Some(id)) => Some(find_model_by_id(&id, model_dir.as_deref())?),
                (None, None) => None,
            };
            let model = model_path.map(|path| Model::load(&path)).transpose()?;

            let started = Instant::now();
            let total = members::original_length(&blob)?;
            let mut meter = Meter::new(cli.quiet, "decompress", total as usize);
            let data = members::decompress(&blob, model.as_ref(), &mut |n| meter.advance(n))?;
            drop(meter);
            write_atomically(&target, &data)?;
            report(cli.quiet, input, data.len(), blob.len(), started);
        }
    }
    Ok(())
}

/// A one-line percentage on stderr, redrawn at most every half second, shown only when
/// stderr is a terminal and -q is not given.
struct Meter {
    enabled: bool,
    label: &'static str,
    total: usize,
    done: usize,
    last_draw: Instant,
}

impl Meter {
    fn new(quiet: bool, label: &'static str, total: usize) -> Self {
        Meter {
            enabled: !quiet && std::io::stderr().is_terminal(),
            label,
            total,
            done: 0,
            last_draw: Instant::now(),
        }
    }

    fn advance(&mut self, coded: usize) -> Result<()> {
        self.done += coded;
        if self.enabled && self.last_draw.elapsed().as_millis() >= 500 {
            self.last_draw = Instant::now();
            let percent = 100 * self.done as u64 / self.total.max(1) as u64;
            eprint!("\rnnzip-core: {} {percent:>3}%", self.label);
        }
        Ok(())
    }
}

impl Drop for Meter {
    /// Clears the line of the percentage, so that the summary or an error starts clean.
    fn drop(&mut self) {
        if self.enabled {
            eprint!("\r\x1b[2K");
        }
    }
}

fn report(quiet: bool, input: &Path, original: usize, compressed: usize, started: Instant) {
    if quiet {
        return;
    }
    let seconds = started.elapsed().as_secs_f64();
    let bits_per_byte = if original > 0 {
        8.0 * compressed as f64 / original as f64
    } else {
        0.0
    };
    let kilobytes_per_second = if seconds > 0.0 {
        original as f64 / seconds / 1000.0
    } else {
        0.0
    };
    eprintln!(
        "nnzip-core: {}: {original} -> {compressed} bytes ({bits_per_byte:.3} bpb) in {seconds:.2} s, \
         {kilobytes_per_second:.1} KB/s",
        input.display()
    );
}

fn with_nz_suffix(input: &Path) -> PathBuf {
    let mut name = OsString::from(input.as_os_str());
    name.push(".");
    name.push(NZ_SUFFIX);
    PathBuf::from(name)
}

fn without_nz_suffix(input: &Path) -> Result<PathBuf> {
    if input
        .extension()
        .is_some_and(|extension| extension == NZ_SUFFIX)
    {
        return Ok(input.with_extension(""));
    }
    Err(Error::InvalidArgument(format!(
        "{} does not end in .{NZ_SUFFIX}; name the output with -o",
        input.display()
    )))
}

fn read_input(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "{} is a directory, expected a file",
            path.display()
        )));
    }
    fs::read(path).map_err(|error| Error::io("read", path, error))
}

fn check_output(source: &Path, target: &Path, force: bool) -> Result<()> {
    let same_file = match (fs::canonicalize(source), fs::canonicalize(target)) {
        (Ok(source), Ok(target)) => source == target,
        _ => false,
    };
    if same_file {
        return Err(Error::InvalidArgument(format!(
            "output {} is the input file; choose another output with -o",
            target.display()
        )));
    }
    if target.is_dir() {
        return Err(Error::InvalidArgument(format!(
            "output {} is a directory, expected a file path",
            target.display()
        )));
    }
    // Replacing by rename would turn a device, pipe or socket into a regular file, even with -f.
    if target.exists() && !target.is_file() {
        return Err(Error::InvalidArgument(format!(
            "output {} is not a regular file; choose a file path with -o",
            target.display()
        )));
    }
    if target.exists() && !force {
        return Err(Error::InvalidArgument(format!(
            "{} already exists; use -f to overwrite",
            target.display()
        )));
    }
    Ok(())
}

/// Returns the folder of named models: --model-dir, else $NNZIP_MODEL_DIR, else ./models.
fn model_dir(option: Option<&Path>) -> PathBuf {
    if let Some(dir) = option {
        return dir.to_path_buf();
    }
    match std::env::var_os(MODEL_DIR_VARIABLE) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("models"),
    }
}

/// Turns a --model value into a file path: an existing file as is, else a name in the model
/// directory, with or without the .safetensors suffix.
fn resolve_model(spec: &str, dir_option: Option<&Path>) -> Result<PathBuf> {
    let path = PathBuf::from(spec);
    if path.is_file() {
        return Ok(path);
    }
    let dir = model_dir(dir_option);
    for name in [spec.to_owned(), format!("{spec}{MODEL_SUFFIX}")] {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(Error::ModelLoad(format!(
        "model {spec} not found as a file or in {}",
        dir.display()
    )))
}

/// Returns the model in the model directory whose id starts with the one in the header.
/// Files that are not valid exports are skipped, as the Python reference does.
fn find_model_by_id(
    id: &[u8; container::MODEL_ID_SIZE],
    dir_option: Option<&Path>,
) -> Result<PathBuf> {
    let dir = model_dir(dir_option);
    let not_found = || {
        Error::ModelLoad(format!(
            "no model in {} has the id {} that the file names; pass --model with the matching model",
            dir.display(),
            model_id_hex(id)
        ))
    };

    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(_) => return Err(not_found()),
    };
    let mut candidates: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.to_string_lossy().ends_with(MODEL_SUFFIX) && path.is_file())
        .collect();
    candidates.sort();
    for path in candidates {
        if let Ok(info) = read_export_info(&path) {
            if info.id.starts_with(id) {
                return Ok(path);
            }
        }
    }
    Err(not_found())
}

/// Writes to a new temporary file beside `target`, then renames it, so a failure leaves no
/// partial output and never changes an existing file.
fn write_atomically(target: &Path, data: &[u8]) -> Result<()> {
    let folder = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();

    let (temporary, mut file) = create_temporary(&folder, &name)?;
    let written = file
        .write_all(data)
        .and_then(|()| file.sync_all())
        .and_then(|()| fs::rename(&temporary, target));
    if let Err(error) = written {
        // Removing the temporary file is best effort: the write error is the one to report.
        let _ = fs::remove_file(&temporary);
        return Err(Error::io("write", target, error));
    }
    Ok(())
}

fn create_temporary(folder: &Path, name: &str) -> Result<(PathBuf, File)> {
    let process = std::process::id();
    let mut attempt = 0u32;
    loop {
        let path = folder.join(format!(".{name}.{process}.{attempt}.tmp"));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists && attempt < 100 => {
                attempt += 1;
            }
            Err(error) => return Err(Error::io("write to", folder, error)),
        }
    }
}
