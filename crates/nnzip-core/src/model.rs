//! Loading an exported integer model: the safetensors file, its metadata, the model id and
//! the bounds that docs/inference-spec.md assumes.
//!
//! The inference itself is in `inference.rs`. Messages follow `IntModel.load` in
//! `nnzip/intmodel.py`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;
use sha2::{Digest, Sha256};

use crate::coder::ALPHABET_SIZE;
use crate::config::{Mlp, ModelConfig, Retrieval};
use crate::error::{Error, Result};
use crate::fixedpoint::{Requant, DECAY_BITS, DELTA_BITS, RESIDUAL_LIMIT};
use crate::index::{id_hex, Index};
use crate::pyrepr::str_repr;
use crate::retrieval::bucket_count;

pub const EXPORT_FORMAT: &str = "nnzip-int";
pub const EXPORT_VERSION: i64 = 1;

/// Rows of the embedding: the 256 byte values and BOS.
pub const INPUT_VOCAB: usize = ALPHABET_SIZE + 1;

/// The input id fed before the first byte of every stream.
pub const BOS: u32 = 256;

/// Entries of a table indexed by an int8 value in [-127, 127].
pub const INT8_TABLE_LEN: usize = 255;

const MAX_MULTIPLIER: i64 = 1 << 24;
const MAX_SHIFT: i64 = 62;
const GAIN_LIMIT: i64 = 1 << 30;
/// |bias| < 2**37 keeps the conv accumulator below 2**38 with at most 1024 taps of 127 * 127.
const CONV_BIAS_LIMIT: i64 = 1 << 37;
/// Δ is at most 8 in Q16, which keeps Δ x m B below 2**57.
const MAX_DELTA: i64 = 8 << DELTA_BITS;
const MAX_DECAY: i64 = 1 << DECAY_BITS;
const MAX_EXP_WEIGHT: i64 = 1 << 30;

/// The retrieval gate's range in logit units (1/64 nat): -8 to 32 nats.
pub(crate) const GATE_LOW: i64 = -8 << 6;
pub(crate) const GATE_HIGH: i64 = 32 << 6;
/// Bound of the retrieval bias and boost entries, far above any useful value (2**20 / 64 nats),
/// which keeps logit sums far from overflow.
const RETRIEVAL_LIMIT: i64 = 1 << 20;

/// An int8 matmul followed by a requantization per output row.
#[derive(Debug)]
pub(crate) struct Linear {
    /// The weight transposed to (inputs, outputs), as float32 integers for Candle's matmul.
    pub weight_t: Tensor,
    pub outputs: usize,
    pub requant: Vec<Requant>,
}

/// A lookup table over the int8 inputs -127..=127. Its fixed length lets the compiler drop
/// the bounds check of a lookup by a clamped index.
pub(crate) type Int8Table = [i64; INT8_TABLE_LEN];

/// The tensors of one residual block, widened to i64.
#[derive(Debug)]
pub(crate) struct Layer {
    pub norm_gain: Vec<i64>,
    pub in_proj: Linear,
    /// (d_conv, conv_dim), oldest input first: the exported (conv_dim, d_conv) weight
    /// transposed, so that each tap is a contiguous row for the vectorized convolution.
    pub conv_taps: Vec<i64>,
    pub conv_bias: Vec<i64>,
    /// The conv requantization per channel, as two arrays for the same reason.
    pub conv_multiplier: Vec<i64>,
    pub conv_shift: Vec<i64>,
    pub silu_table: Int8Table,
    pub gate_table: Int8Table,
    /// (n_heads, 255), Δ in Q16.
    pub delta_table: Vec<i64>,
    /// (n_heads, 255), exp(Δ A) in Q20.
    pub decay_table: Vec<i64>,
    pub ssm_input: Requant,
    /// The int8 skip weight D per head.
    pub skip: Vec<i64>,
    pub y_c: Requant,
    pub y_d: Requant,
    pub gate: Requant,
    pub out_proj: Linear,
    /// The MLP after the mixer, present when the config's `mlp` is "gated".
    pub mlp: Option<GatedMlp>,
}

/// The tensors of a gated (SwiGLU) MLP sub-block.
#[derive(Debug)]
pub(crate) struct GatedMlp {
    pub norm_gain: Vec<i64>,
    /// (2F, d_model): the F rows of the value a, then the F rows of the gate input g.
    pub up: Linear,
    /// SiLU(g) over the int8 g.
    pub gate_table: Int8Table,
    /// Requantization of a * SiLU(g) into int8.
    pub gate: Requant,
    /// (d_model, F), into the residual scale.
    pub down: Linear,
}

/// An exported integer model, ready for exact inference.
#[derive(Debug)]
pub struct Model {
    pub config: ModelConfig,
    /// The full sha256 model id; the `.nz` header stores its first 16 bytes.
    pub id: [u8; 32],
    /// (257, d_model), the residual-stream value of each input id.
    pub(crate) embedding: Vec<i64>,
    pub(crate) layers: Vec<Layer>,
    pub(crate) norm_f_gain: Vec<i64>,
    pub(crate) head: Linear,
    /// `round(2**30 * exp(-j / 64))` for each logit distance j.
    pub(crate) exp_table: Vec<i64>,
    pub(crate) retrieval: Option<RetrievalHead>,
    /// The external index of retrieval "history+index", whose id the config names.
    index: Option<Index>,
}

/// The retrieval head: the boost that a match adds to the logit of its predicted byte.
#[derive(Debug)]
pub(crate) struct RetrievalHead {
    /// (1, d_model): the gate from the head input, in logit units.
    pub gate: Linear,
    /// Per length bucket, in logit units.
    pub bias: Vec<i64>,
    /// softplus over [GATE_LOW, GATE_HIGH], in logit units.
    pub softplus_table: Vec<i64>,
}

/// The parts of an export that identify it: its validated config and its model id.
#[derive(Debug, Clone)]
pub struct ExportInfo {
    pub config: ModelConfig,
    pub id: [u8; 32],
}

impl Model {
    /// Loads an export written by `nnzip.export`, and for retrieval "history+index" the
    /// index that its config names from the same folder. Returns `ModelLoad` on any problem.
    pub fn load(path: &Path) -> Result<Model> {
        let bytes = read_model_file(path)?;
        Model::from_bytes(path, &bytes)
    }

    /// Loads an export from bytes in memory. `path` is used in messages, and its folder is
    /// where the index of a "history+index" model is read from.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Model> {
        let mut model = ExportFile::parse(path, bytes)?.build_model()?;
        model.index = load_model_index(path, &model.config)?;
        Ok(model)
    }

    /// Returns the external index of a model with retrieval "history+index", else None.
    pub fn index(&self) -> Option<&Index> {
        self.index.as_ref()
    }

    /// Returns the first 16 bytes of the model id, as stored in the `.nz` header.
    pub fn short_id(&self) -> [u8; 16] {
        self.id[..16].try_into().expect("the id has 32 bytes")
    }
}

/// Reads the config and computes the model id of an export without building the model.
pub fn read_export_info(path: &Path) -> Result<ExportInfo> {
    let bytes = read_model_file(path)?;
    let file = ExportFile::parse(path, &bytes)?;
    Ok(ExportInfo {
        config: file.config,
        id: file.id,
    })
}

/// Loads the index that a model with retrieval "history+index" names, from the model's
/// folder, and checks its id against the config.
fn load_model_index(path: &Path, config: &ModelConfig) -> Result<Option<Index>> {
    if config.retrieval != Retrieval::HistoryIndex {
        return Ok(None);
    }
    let index_path = path
        .parent()
        .unwrap_or_else(|| Path::new(""))
        .join(&config.index);
    if !index_path.is_file() {
        return Err(Error::ModelLoad(format!(
            "model {} needs the index {} (id {}) next to it, but {} does not exist; \
             copy the index that shipped with the model there",
            path.display(),
            config.index,
            config.index_id,
            index_path.display()
        )));
    }
    let index = Index::load(&index_path)?;
    let id = id_hex(&index.id);
    if id != config.index_id {
        return Err(Error::ModelLoad(format!(
            "index {} has id {id}, but model {} was trained with index id {}; \
             copy the index that shipped with the model there",
            index_path.display(),
            path.display(),
            config.index_id
        )));
    }
    Ok(Some(index))
}

fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    if !path.is_file() {
        return Err(Error::ModelLoad(format!(
            "model file {} not found",
            path.display()
        )));
    }
    std::fs::read(path)
        .map_err(|error| Error::ModelLoad(format!("cannot read model {}: {error}", path.display())))
}

/// A parsed safetensors export whose metadata and config are valid.
struct ExportFile<'a> {
    path: PathBuf,
    tensors: SafeTensors<'a>,
    config: ModelConfig,
    id: [u8; 32],
}

impl<'a> ExportFile<'a> {
    fn parse(path: &Path, bytes: &'a [u8]) -> Result<ExportFile<'a>> {
        let display = path.display();
        let unreadable = |error: safetensors::SafeTensorError| {
            Error::ModelLoad(format!(
                "cannot read model {display}: not a safetensors export ({error}); \
                 pass a file written by nnzip export or a shipped model name"
            ))
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(unreadable)?;
        let tensors = SafeTensors::deserialize(bytes).map_err(unreadable)?;
        let empty = HashMap::new();
        let metadata = header.metadata().as_ref().unwrap_or(&empty);

        let format = metadata.get("format");
        if format.map(String::as_str) != Some(EXPORT_FORMAT) {
            let format_repr = format.map_or_else(|| "None".to_owned(), |text| str_repr(text));
            return Err(Error::ModelLoad(format!(
                "{display} is not an nnzip integer export (format {format_repr})"
            )));
        }

        let version_text = metadata.get("version").map_or("0", String::as_str);
        // Python's int() accepts surrounding whitespace, and so does this.
        let version: i64 = version_text.trim().parse().map_err(|_| {
            Error::ModelLoad(format!(
                "{display} has an invalid export version {}; this nnzip reads {EXPORT_VERSION}",
                str_repr(version_text)
            ))
        })?;
        if version != EXPORT_VERSION {
            return Err(Error::ModelLoad(format!(
                "{display} has export version {version}; this nnzip reads {EXPORT_VERSION}"
            )));
        }

        let config_text = metadata.get("config").ok_or_else(|| {
            Error::ModelLoad(format!(
                "{display} has an invalid config: the metadata key 'config' is missing"
            ))
        })?;
        let config = ModelConfig::from_json(config_text).map_err(|message| {
            Error::ModelLoad(format!("{display} has an invalid config: {message}"))
        })?;

        let id = model_id(path, &config.to_canonical_json(), &tensors)?;
        Ok(ExportFile {
            path: path.to_path_buf(),
            tensors,
            config,
            id,
        })
    }

    fn build_model(&self) -> Result<Model> {
        let c = &self.config;
        let d = c.d_model;

        let embedding = self.int_tensor("embedding", &[INPUT_VOCAB, d])?;
        self.check_range("embedding", &embedding, -RESIDUAL_LIMIT, RESIDUAL_LIMIT)?;

        let mut layers = Vec::with_capacity(c.n_layer);
        for i in 0..c.n_layer {
            layers.push(self.build_layer(i)?);
        }

        let norm_f_gain = self.gain("norm_f.gain", d)?;
        let head = self.linear("head", ALPHABET_SIZE, d)?;
        let exp_table = self.exp_table()?;
        let retrieval = self.build_retrieval()?;

        Ok(Model {
            config: c.clone(),
            id: self.id,
            embedding,
            layers,
            norm_f_gain,
            head,
            exp_table,
            retrieval,
            index: None,
        })
    }

    /// Loads the retrieval head, if the config has a retriever.
    fn build_retrieval(&self) -> Result<Option<RetrievalHead>> {
        if self.config.retrieval == Retrieval::None {
            return Ok(None);
        }
        let buckets = bucket_count(self.config.retrieval);
        let bias = self.int_tensor("retrieval.bias", &[buckets])?;
        self.check_range("retrieval.bias", &bias, -RETRIEVAL_LIMIT, RETRIEVAL_LIMIT)?;
        let table_len = (GATE_HIGH - GATE_LOW + 1) as usize;
        let softplus_table = self.int_tensor("retrieval.softplus_table", &[table_len])?;
        self.check_range(
            "retrieval.softplus_table",
            &softplus_table,
            0,
            RETRIEVAL_LIMIT,
        )?;
        Ok(Some(RetrievalHead {
            gate: self.linear("retrieval.gate", 1, self.config.d_model)?,
            bias,
            softplus_table,
        }))
    }

    fn build_layer(&self, i: usize) -> Result<Layer> {
        let c = &self.config;
        let (d, e, h, n, k, cd) = (
            c.d_model,
            c.d_inner(),
            c.n_heads(),
            c.d_state,
            c.d_conv,
            c.conv_dim(),
        );
        let p = format!("layers.{i}.");
        let name = |suffix: &str| format!("{p}{suffix}");

        let conv_weight = self.int_tensor(&name("conv.weight"), &[cd, k])?;
        self.check_int8(&name("conv.weight"), &conv_weight)?;
        let conv_bias = self.int_tensor(&name("conv.bias"), &[cd])?;
        self.check_range(
            &name("conv.bias"),
            &conv_bias,
            1 - CONV_BIAS_LIMIT,
            CONV_BIAS_LIMIT - 1,
        )?;

        let delta_table = self.int_tensor(&name("delta_table"), &[h, INT8_TABLE_LEN])?;
        self.check_range(&name("delta_table"), &delta_table, 0, MAX_DELTA)?;
        let decay_table = self.int_tensor(&name("decay_table"), &[h, INT8_TABLE_LEN])?;
        self.check_range(&name("decay_table"), &decay_table, 0, MAX_DECAY)?;

        let skip = self.int_tensor(&name("D"), &[h])?;
        self.check_int8(&name("D"), &skip)?;

        let mut conv_taps = vec![0; cd * k];
        for (channel, taps) in conv_weight.chunks_exact(k).enumerate() {
            for (tap, &weight) in taps.iter().enumerate() {
                conv_taps[tap * cd + channel] = weight;
            }
        }
        let conv_requant = self.requant_rows(&name("conv.multiplier"), &name("conv.shift"), cd)?;

        Ok(Layer {
            norm_gain: self.gain(&name("norm.gain"), d)?,
            in_proj: self.linear(&name("in_proj"), 2 * e + 2 * n + h, d)?,
            conv_taps,
            conv_bias,
            conv_multiplier: conv_requant.iter().map(|r| r.multiplier).collect(),
            conv_shift: conv_requant.iter().map(|r| i64::from(r.shift)).collect(),
            silu_table: self.int8_table(&name("silu_table"))?,
            gate_table: self.int8_table(&name("gate_table"))?,
            delta_table,
            decay_table,
            ssm_input: self
                .requant_scalar(&name("ssm.input_multiplier"), &name("ssm.input_shift"))?,
            skip,
            y_c: self.requant_scalar(&name("y.c_multiplier"), &name("y.c_shift"))?,
            y_d: self.requant_scalar(&name("y.d_multiplier"), &name("y.d_shift"))?,
            gate: self.requant_scalar(&name("gate.multiplier"), &name("gate.shift"))?,
            out_proj: self.linear(&name("out_proj"), d, e)?,
            mlp: self.build_mlp(&p)?,
        })
    }

    /// Loads the gated MLP of the layer with tensor prefix `p`, if the config has one.
    fn build_mlp(&self, p: &str) -> Result<Option<GatedMlp>> {
        if self.config.mlp == Mlp::None {
            return Ok(None);
        }
        let (d, f) = (self.config.d_model, self.config.mlp_hidden);
        let name = |suffix: &str| format!("{p}{suffix}");
        Ok(Some(GatedMlp {
            norm_gain: self.gain(&name("mlp_norm.gain"), d)?,
            up: self.linear(&name("mlp.up"), 2 * f, d)?,
            gate_table: self.int8_table(&name("mlp.gate_table"))?,
            gate: self.requant_scalar(&name("mlp.gate.multiplier"), &name("mlp.gate.shift"))?,
            down: self.linear(&name("mlp.down"), d, f)?,
        }))
    }

    /// Loads `{name}.weight` (outputs, inputs) and its per-row multiplier and shift.
    fn linear(&self, name: &str, outputs: usize, inputs: usize) -> Result<Linear> {
        let weight_name = format!("{name}.weight");
        let weight = self.int_tensor(&weight_name, &[outputs, inputs])?;
        self.check_int8(&weight_name, &weight)?;

        // Transposed once here, so that each matmul reads a contiguous right operand.
        let mut transposed = vec![0f32; outputs * inputs];
        for (row, values) in weight.chunks_exact(inputs).enumerate() {
            for (column, &value) in values.iter().enumerate() {
                transposed[column * outputs + row] = value as f32;
            }
        }
        let weight_t =
            Tensor::from_vec(transposed, (inputs, outputs), &Device::Cpu).map_err(|error| {
                self.invalid(&weight_name, &format!("cannot build a tensor: {error}"))
            })?;

        let requant = self.requant_rows(
            &format!("{name}.multiplier"),
            &format!("{name}.shift"),
            outputs,
        )?;
        Ok(Linear {
            weight_t,
            outputs,
            requant,
        })
    }

    fn requant_rows(
        &self,
        multiplier_name: &str,
        shift_name: &str,
        rows: usize,
    ) -> Result<Vec<Requant>> {
        let multipliers = self.int_tensor(multiplier_name, &[rows])?;
        self.check_range(multiplier_name, &multipliers, 0, MAX_MULTIPLIER)?;
        let shifts = self.int_tensor(shift_name, &[rows])?;
        self.check_range(shift_name, &shifts, 1, MAX_SHIFT)?;
        Ok(multipliers
            .iter()
            .zip(&shifts)
            .map(|(&multiplier, &shift)| Requant {
                multiplier,
                shift: shift as u32,
            })
            .collect())
    }

    fn requant_scalar(&self, multiplier_name: &str, shift_name: &str) -> Result<Requant> {
        Ok(self.requant_rows(multiplier_name, shift_name, 1)?[0])
    }

    fn gain(&self, name: &str, width: usize) -> Result<Vec<i64>> {
        let gain = self.int_tensor(name, &[width])?;
        self.check_range(name, &gain, 1 - GAIN_LIMIT, GAIN_LIMIT - 1)?;
        Ok(gain)
    }

    fn int8_table(&self, name: &str) -> Result<Int8Table> {
        let table = self.int_tensor(name, &[INT8_TABLE_LEN])?;
        self.check_int8(name, &table)?;
        Ok(table
            .try_into()
            .expect("int_tensor returns the checked shape"))
    }

    fn exp_table(&self) -> Result<Vec<i64>> {
        let name = "head.exp_table";
        let view = self.view(name)?;
        // The exporter writes 1536 entries, but the frequency rule only needs one: a logit
        // distance beyond the table uses its last entry, as the Python reference does.
        if view.shape().len() != 1 || view.shape()[0] == 0 {
            return Err(self.invalid(
                name,
                &format!(
                    "has shape {}, expected one dimension of at least 1 entry",
                    shape_repr(view.shape())
                ),
            ));
        }
        let table = self.int_values(name, &view)?;
        self.check_range(name, &table, 0, MAX_EXP_WEIGHT)?;
        // The top symbol has distance 0, so exp_table[0] >= 1 keeps the sum of weights positive.
        if table[0] < 1 {
            return Err(self.invalid(
                name,
                &format!("starts with {}, expected at least 1", table[0]),
            ));
        }
        Ok(table)
    }

    fn view(&self, name: &str) -> Result<TensorView<'a>> {
        self.tensors.tensor(name).map_err(|_| {
            Error::ModelLoad(format!(
                "{} has no tensor {}, which export version {EXPORT_VERSION} requires",
                self.path.display(),
                str_repr(name)
            ))
        })
    }

    /// Reads an integer tensor of the given shape, widened to i64.
    fn int_tensor(&self, name: &str, shape: &[usize]) -> Result<Vec<i64>> {
        let view = self.view(name)?;
        if view.shape() != shape {
            return Err(self.invalid(
                name,
                &format!(
                    "has shape {}, expected {}",
                    shape_repr(view.shape()),
                    shape_repr(shape)
                ),
            ));
        }
        self.int_values(name, &view)
    }

    fn int_values(&self, name: &str, view: &TensorView<'_>) -> Result<Vec<i64>> {
        let data = view.data();
        let values = match view.dtype() {
            Dtype::I8 => data.iter().map(|&byte| i64::from(byte as i8)).collect(),
            Dtype::U8 => data.iter().map(|&byte| i64::from(byte)).collect(),
            Dtype::I16 => widen::<2>(data, |b| i64::from(i16::from_le_bytes(b))),
            Dtype::U16 => widen::<2>(data, |b| i64::from(u16::from_le_bytes(b))),
            Dtype::I32 => widen::<4>(data, |b| i64::from(i32::from_le_bytes(b))),
            Dtype::U32 => widen::<4>(data, |b| i64::from(u32::from_le_bytes(b))),
            Dtype::I64 => widen::<8>(data, i64::from_le_bytes),
            other => {
                return Err(self.invalid(
                    name,
                    &format!(
                        "has dtype {other:?}, expected an integer type (int16, int32 or int64)"
                    ),
                ))
            }
        };
        Ok(values)
    }

    fn check_int8(&self, name: &str, values: &[i64]) -> Result<()> {
        self.check_range(name, values, i64::from(i8::MIN), i64::from(i8::MAX))
    }

    /// Rejects a tensor with a value outside [low, high], the bounds under which
    /// docs/inference-spec.md proves that no i64 step overflows.
    fn check_range(&self, name: &str, values: &[i64], low: i64, high: i64) -> Result<()> {
        match values.iter().position(|value| !(low..=high).contains(value)) {
            None => Ok(()),
            Some(index) => Err(self.invalid(
                name,
                &format!(
                    "has the value {} at flat index {index}, expected {low} to {high} for exact integer inference",
                    values[index]
                ),
            )),
        }
    }

    fn invalid(&self, name: &str, problem: &str) -> Error {
        Error::ModelLoad(format!(
            "tensor {} in {} {problem}",
            str_repr(name),
            self.path.display()
        ))
    }
}

fn widen<const N: usize>(data: &[u8], convert: impl Fn([u8; N]) -> i64) -> Vec<i64> {
    data.chunks_exact(N)
        .map(|chunk| convert(chunk.try_into().expect("chunks_exact yields N bytes")))
        .collect()
}

/// Formats a shape as Python's `list(array.shape)`, for example `[257, 192]` or `[]`.
fn shape_repr(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(usize::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// Returns numpy's `dtype.str` of a safetensors dtype, or None for one numpy cannot hold.
fn numpy_dtype_str(dtype: Dtype) -> Option<&'static str> {
    Some(match dtype {
        Dtype::BOOL => "|b1",
        Dtype::U8 => "|u1",
        Dtype::I8 => "|i1",
        Dtype::I16 => "<i2",
        Dtype::U16 => "<u2",
        Dtype::F16 => "<f2",
        Dtype::I32 => "<i4",
        Dtype::U32 => "<u4",
        Dtype::F32 => "<f4",
        Dtype::I64 => "<i8",
        Dtype::U64 => "<u8",
        Dtype::F64 => "<f8",
        Dtype::C64 => "<c8",
        _ => return None,
    })
}

/// Computes the model id: the sha256 of the canonical config JSON and every tensor of the
/// file in ascending byte order of the names, as docs/inference-spec.md defines it.
///
/// Tensors that inference does not use count too, because the Python reference hashes every
/// tensor in the file.
fn model_id(path: &Path, config_json: &str, tensors: &SafeTensors<'_>) -> Result<[u8; 32]> {
    let mut digest = Sha256::new();
    digest.update(b"nnzip-model\n");
    digest.update(config_json.as_bytes());

    let mut named = tensors.tensors();
    // String order is the byte order of UTF-8, which is Python's code point order.
    named.sort_by(|left, right| left.0.cmp(&right.0));
    for (name, view) in &named {
        let dtype = numpy_dtype_str(view.dtype()).ok_or_else(|| {
            Error::ModelLoad(format!(
                "tensor {} in {} has dtype {:?}, which has no numpy equivalent",
                str_repr(name),
                path.display(),
                view.dtype()
            ))
        })?;
        let header = format!("\n{name}\n{dtype}\n{}\n", shape_repr(view.shape()));
        digest.update(header.as_bytes());
        // safetensors stores little-endian bytes, which is what the id covers.
        digest.update(view.data());
    }
    Ok(digest.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_format_like_python_lists() {
        assert_eq!(shape_repr(&[257, 192]), "[257, 192]");
        assert_eq!(shape_repr(&[255]), "[255]");
        assert_eq!(shape_repr(&[]), "[]");
    }

    #[test]
    fn missing_file_rejected() {
        let error = Model::load(Path::new("/nonexistent/model.safetensors")).unwrap_err();
        assert!(matches!(error, Error::ModelLoad(_)), "{error:?}");
        assert_eq!(
            error.to_string(),
            "model file /nonexistent/model.safetensors not found"
        );
    }

    #[test]
    fn garbage_file_rejected() {
        let error = Model::from_bytes(Path::new("junk"), b"not a safetensors file").unwrap_err();
        assert!(matches!(error, Error::ModelLoad(_)), "{error:?}");
        assert!(error
            .to_string()
            .starts_with("cannot read model junk: not a safetensors export ("));
        assert!(error.to_string().ends_with("or a shipped model name"));
    }
}
