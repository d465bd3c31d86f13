//! The model configuration stored in an export: parsing, validation and the canonical JSON
//! that the model id covers.
//!
//! This follows `ModelConfig` in `nnzip/config.py`: missing keys take the Python defaults,
//! unknown keys are rejected, and the checks run in the same order with the same messages.

use serde_json::{Map, Value};

use crate::pyrepr::{json_repr, json_string, str_list_repr, str_repr};

/// Every config key, in the sorted order of the canonical JSON.
const KNOWN_KEYS: [&str; 14] = [
    "arch",
    "chunk_size",
    "d_conv",
    "d_model",
    "d_state",
    "expand",
    "headdim",
    "index",
    "index_id",
    "kan_grid",
    "mlp",
    "mlp_hidden",
    "n_layer",
    "retrieval",
];

/// Integer fields added after the first shipped models, whose default is 0. The canonical
/// JSON leaves them out at 0, and the string fields `index` and `index_id` when empty, so the
/// ids of older exports do not change.
const LATER_KEYS: [&str; 2] = ["mlp_hidden", "kan_grid"];

/// Length of `index_id`: the 16-byte index id in hex.
const INDEX_ID_HEX_DIGITS: usize = 32;

/// Integer fields that must be positive, in the order `ModelConfig.validate` checks them.
const POSITIVE_KEYS: [&str; 7] = [
    "d_model",
    "n_layer",
    "expand",
    "headdim",
    "d_state",
    "d_conv",
    "chunk_size",
];

/// Int8 matmul sums stay below 2**24, and so exact in float32, only for K <= 1024.
pub const MAX_MATMUL_INPUTS: u64 = 1024;

/// `C h` stays below 2**38, the input bound of requantization, only for d_state <= 64.
pub const MAX_D_STATE: u64 = 64;

/// Bounds the convolution accumulator together with the conv bias bound of the model loader.
pub const MAX_D_CONV: u64 = 1024;

/// The sub-block after each mixer, the config's `mlp` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mlp {
    None,
    /// SwiGLU with `mlp_hidden` channels.
    Gated,
}

impl Mlp {
    fn name(self) -> &'static str {
        match self {
            Mlp::None => "none",
            Mlp::Gated => "gated",
        }
    }
}

/// The retriever whose feature codes feed the head, the config's `retrieval` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retrieval {
    None,
    /// The match model over the container's own history (`crate::retrieval`).
    History,
    /// The history match where there is one, else the longest match in the model's external
    /// index (`crate::index`).
    HistoryIndex,
}

impl Retrieval {
    fn name(self) -> &'static str {
        match self {
            Retrieval::None => "none",
            Retrieval::History => "history",
            Retrieval::HistoryIndex => "history+index",
        }
    }
}

/// A validated model configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelConfig {
    pub d_model: usize,
    pub n_layer: usize,
    pub expand: usize,
    pub headdim: usize,
    pub d_state: usize,
    pub d_conv: usize,
    /// Chunk length of the parallel training scan; it has no effect on inference.
    pub chunk_size: usize,
    pub mlp: Mlp,
    /// Hidden width of the gated MLP; kept for the canonical JSON when the MLP is not gated.
    pub mlp_hidden: usize,
    /// Basis functions per input of the KAN MLP, which nnzip-core does not run; kept only for
    /// the canonical JSON, where a gated or MLP-free config may still carry it.
    pub kan_grid: usize,
    pub retrieval: Retrieval,
    /// With `Retrieval::HistoryIndex`: the file name of the index, in the model's folder;
    /// else empty.
    pub index: String,
    /// With `Retrieval::HistoryIndex`: the index id as 32 lower-case hex digits; else empty.
    pub index_id: String,
}

impl ModelConfig {
    /// Width of the SSM branch, `expand * d_model`.
    pub fn d_inner(&self) -> usize {
        self.expand * self.d_model
    }

    pub fn n_heads(&self) -> usize {
        self.d_inner() / self.headdim
    }

    /// Channels of the convolution, which runs over x, B and C together.
    pub fn conv_dim(&self) -> usize {
        self.d_inner() + 2 * self.d_state
    }

    /// Parses the config JSON of an export and validates it.
    ///
    /// Returns a one-line message naming the first invalid field, worded as in
    /// `nnzip/config.py`.
    pub fn from_json(text: &str) -> Result<ModelConfig, String> {
        let value: Value = serde_json::from_str(text).map_err(|error| error.to_string())?;
        let Value::Object(data) = value else {
            return Err(format!(
                "config is {}, expected a JSON object",
                json_repr(&value)
            ));
        };
        Self::from_map(&data)
    }

    fn from_map(data: &Map<String, Value>) -> Result<ModelConfig, String> {
        let mut unknown: Vec<&str> = data
            .keys()
            .map(String::as_str)
            .filter(|key| !KNOWN_KEYS.contains(key))
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(format!(
                "unknown config keys {}; known keys: {}",
                str_list_repr(&unknown),
                str_list_repr(&KNOWN_KEYS)
            ));
        }

        let mut sizes = [0u64; POSITIVE_KEYS.len()];
        for (size, key) in sizes.iter_mut().zip(POSITIVE_KEYS) {
            *size = positive_field(data, key)?;
        }
        let [d_model, n_layer, expand, headdim, d_state, d_conv, chunk_size] = sizes;

        // Products in u128, because a u64 field times another can overflow u64.
        let d_inner = u128::from(expand) * u128::from(d_model);
        if d_inner % u128::from(headdim) != 0 {
            return Err(format!(
                "d_inner ({d_inner}) must be a multiple of headdim ({headdim})"
            ));
        }
        if u128::from(d_model).max(d_inner) > u128::from(MAX_MATMUL_INPUTS) {
            return Err(format!(
                "d_model and d_inner must be <= {MAX_MATMUL_INPUTS} for exact int8 matmuls, \
                 got d_model={d_model}, d_inner={d_inner}"
            ));
        }
        check_choice(data, "arch", "ssm")?;
        let mlp_name = mlp_field(data)?;
        let mut later = [0u64; LATER_KEYS.len()];
        for (value, key) in later.iter_mut().zip(LATER_KEYS) {
            *value = non_negative_field(data, key)?;
        }
        let [mlp_hidden, kan_grid] = later;
        if mlp_name == "gated" && !(1..=MAX_MATMUL_INPUTS).contains(&mlp_hidden) {
            return Err(format!(
                "the gated MLP needs 1 <= mlp_hidden <= {MAX_MATMUL_INPUTS} (exact int8 matmuls), \
                 got {mlp_hidden}"
            ));
        }
        if mlp_name == "kan"
            && !(kan_grid >= 2
                && u128::from(d_model) * u128::from(kan_grid) <= u128::from(MAX_MATMUL_INPUTS))
        {
            return Err(format!(
                "the KAN MLP needs kan_grid >= 2 and d_model * kan_grid <= {MAX_MATMUL_INPUTS} \
                 (exact int8 matmuls), got kan_grid={kan_grid}, d_model={d_model}"
            ));
        }
        let retrieval = retrieval_field(data)?;
        let (index, index_id) = index_fields(data, retrieval)?;
        // The Python reference runs KAN models; nnzip-core leaves them out, because the
        // ablation kept the gated MLP.
        let mlp = match mlp_name {
            "none" => Mlp::None,
            "gated" => Mlp::Gated,
            _ => {
                return Err(
                    "mlp 'kan' is not supported by nnzip-core, which runs 'none' and 'gated'; \
                     use the Python engine (--engine python) for this model"
                        .to_owned(),
                )
            }
        };

        // NOTE: nnzip/config.py has no checks of these two bounds. docs/inference-spec.md
        // assumes them for its int64 bounds, and the exporter's presets stay inside them.
        if d_state > MAX_D_STATE {
            return Err(format!(
                "d_state must be <= {MAX_D_STATE} for exact integer inference, got {d_state}"
            ));
        }
        if d_conv > MAX_D_CONV {
            return Err(format!(
                "d_conv must be <= {MAX_D_CONV} for exact integer inference, got {d_conv}"
            ));
        }

        // n_layer and chunk_size have no upper bound, so they can exceed a 32-bit usize.
        let size = |value: u64| usize::try_from(value).map_err(|_| format!("{value} is too large"));
        Ok(ModelConfig {
            d_model: size(d_model)?,
            n_layer: size(n_layer)?,
            expand: size(expand)?,
            headdim: size(headdim)?,
            d_state: size(d_state)?,
            d_conv: size(d_conv)?,
            chunk_size: size(chunk_size)?,
            mlp,
            mlp_hidden: size(mlp_hidden)?,
            kan_grid: size(kan_grid)?,
            retrieval,
            index,
            index_id,
        })
    }

    /// Returns the config as `json.dumps(dataclasses.asdict(config), sort_keys=True)` writes
    /// it, which is the text that the model id covers.
    ///
    /// `mlp_hidden` and `kan_grid` are left out at 0, and `index` and `index_id` when empty,
    /// as Python's `to_json` does.
    pub fn to_canonical_json(&self) -> String {
        let later = |key: &str, value: usize| {
            if value == 0 {
                String::new()
            } else {
                format!("\"{key}\": {value}, ")
            }
        };
        let later_text = |key: &str, value: &str| {
            if value.is_empty() {
                String::new()
            } else {
                format!("\"{key}\": {}, ", json_string(value))
            }
        };
        format!(
            "{{\"arch\": \"ssm\", \"chunk_size\": {}, \"d_conv\": {}, \"d_model\": {}, \
             \"d_state\": {}, \"expand\": {}, \"headdim\": {}, {}{}{}\"mlp\": \"{}\", {}\
             \"n_layer\": {}, \"retrieval\": \"{}\"}}",
            self.chunk_size,
            self.d_conv,
            self.d_model,
            self.d_state,
            self.expand,
            self.headdim,
            later_text("index", &self.index),
            later_text("index_id", &self.index_id),
            later("kan_grid", self.kan_grid),
            self.mlp.name(),
            later("mlp_hidden", self.mlp_hidden),
            self.n_layer,
            self.retrieval.name()
        )
    }
}

/// Returns the Python default of an integer field, used when the key is missing.
fn default_size(key: &str) -> u64 {
    match key {
        "d_model" => 256,
        "n_layer" => 4,
        "expand" => 2,
        "headdim" => 64,
        "d_state" => 32,
        "d_conv" => 4,
        "chunk_size" => 64,
        _ => unreachable!("{key} is not an integer config field"),
    }
}

/// Reads a positive integer field.
///
/// NOTE: Python accepts `true` here, because bool is a subclass of int there, and `false`
/// fails its positivity check. This rejects both booleans.
fn positive_field(data: &Map<String, Value>, key: &str) -> Result<u64, String> {
    let Some(value) = data.get(key) else {
        return Ok(default_size(key));
    };
    match value.as_u64() {
        Some(size) if size >= 1 && !value.is_boolean() => Ok(size),
        _ => Err(format!(
            "config field {key} must be a positive integer, got {}",
            json_repr(value)
        )),
    }
}

/// Reads a non-negative integer field added after the first models; missing means 0.
fn non_negative_field(data: &Map<String, Value>, key: &str) -> Result<u64, String> {
    let Some(value) = data.get(key) else {
        return Ok(0);
    };
    match value.as_u64() {
        Some(size) if !value.is_boolean() => Ok(size),
        _ => Err(format!(
            "config field {key} must be a non-negative integer, got {}",
            json_repr(value)
        )),
    }
}

/// Reads the `mlp` field: one of the names the Python config accepts, "none" when missing.
fn mlp_field(data: &Map<String, Value>) -> Result<&str, String> {
    match data.get("mlp") {
        None => Ok("none"),
        Some(Value::String(text)) if ["none", "gated", "kan"].contains(&text.as_str()) => {
            Ok(text.as_str())
        }
        Some(value) => Err(format!(
            "unknown mlp {}; expected 'none', 'gated' or 'kan'",
            json_repr(value)
        )),
    }
}

/// Reads the `retrieval` field, "none" when missing.
fn retrieval_field(data: &Map<String, Value>) -> Result<Retrieval, String> {
    match data.get("retrieval") {
        None => Ok(Retrieval::None),
        Some(Value::String(text)) if text == "none" => Ok(Retrieval::None),
        Some(Value::String(text)) if text == "history" => Ok(Retrieval::History),
        Some(Value::String(text)) if text == "history+index" => Ok(Retrieval::HistoryIndex),
        Some(value) => Err(format!(
            "unknown retrieval {}; expected 'none', 'history' or 'history+index'",
            json_repr(value)
        )),
    }
}

/// Reads and checks `index` and `index_id`, which "history+index" needs and every other
/// retrieval kind leaves empty, as `ModelConfig.validate_index` does.
fn index_fields(
    data: &Map<String, Value>,
    retrieval: Retrieval,
) -> Result<(String, String), String> {
    let empty = Value::String(String::new());
    let index_value = data.get("index").unwrap_or(&empty);
    let id_value = data.get("index_id").unwrap_or(&empty);
    let (Value::String(index), Value::String(index_id)) = (index_value, id_value) else {
        return Err(format!(
            "config fields index and index_id must be strings, got {} and {}",
            json_repr(index_value),
            json_repr(id_value)
        ));
    };
    if retrieval != Retrieval::HistoryIndex {
        if !index.is_empty() || !index_id.is_empty() {
            return Err(format!(
                "index {} and index_id {} are set, but retrieval {} reads no index",
                str_repr(index),
                str_repr(index_id),
                str_repr(retrieval.name())
            ));
        }
        return Ok((String::new(), String::new()));
    }
    // A plain file name, so the index can only be the one beside the model.
    if index.is_empty() || index.contains(['/', '\\']) || index == "." || index == ".." {
        return Err(format!(
            "retrieval 'history+index' needs index, a file name next to the model, got {}",
            str_repr(index)
        ));
    }
    let lower_hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
    if index_id.chars().count() != INDEX_ID_HEX_DIGITS || !index_id.chars().all(lower_hex) {
        return Err(format!(
            "index_id must be {INDEX_ID_HEX_DIGITS} lower-case hex digits, got {}",
            str_repr(index_id)
        ));
    }
    Ok((index.clone(), index_id.clone()))
}

/// Checks a string field whose only valid value (and Python default) is `expected`.
fn check_choice(data: &Map<String, Value>, key: &str, expected: &str) -> Result<(), String> {
    match data.get(key) {
        None => Ok(()),
        Some(Value::String(text)) if text == expected => Ok(()),
        Some(value) => Err(format!(
            "unknown {key} {}; expected {}",
            json_repr(value),
            str_repr(expected)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TINY: &str = r#"{"arch": "ssm", "chunk_size": 16, "d_conv": 4, "d_model": 32, "d_state": 8, "expand": 2, "headdim": 16, "mlp": "none", "n_layer": 2, "retrieval": "none"}"#;

    #[test]
    fn canonical_json_round_trips() {
        let config = ModelConfig::from_json(TINY).unwrap();
        assert_eq!(config.to_canonical_json(), TINY);
        assert_eq!(config.d_inner(), 64);
        assert_eq!(config.n_heads(), 4);
        assert_eq!(config.conv_dim(), 80);
    }

    #[test]
    fn missing_keys_take_python_defaults() {
        let config = ModelConfig::from_json(r#"{"d_model": 192, "headdim": 48}"#).unwrap();
        assert_eq!(
            config.to_canonical_json(),
            r#"{"arch": "ssm", "chunk_size": 64, "d_conv": 4, "d_model": 192, "d_state": 32, "expand": 2, "headdim": 48, "mlp": "none", "n_layer": 4, "retrieval": "none"}"#
        );
    }

    #[test]
    fn unknown_key_rejected() {
        let message = ModelConfig::from_json(r#"{"width": 3, "depth": 1}"#).unwrap_err();
        assert_eq!(
            message,
            "unknown config keys ['depth', 'width']; known keys: ['arch', 'chunk_size', 'd_conv', \
             'd_model', 'd_state', 'expand', 'headdim', 'index', 'index_id', 'kan_grid', 'mlp', \
             'mlp_hidden', 'n_layer', 'retrieval']"
        );
    }

    #[test]
    fn non_positive_fields_rejected() {
        let message = ModelConfig::from_json(r#"{"n_layer": 0}"#).unwrap_err();
        assert_eq!(
            message,
            "config field n_layer must be a positive integer, got 0"
        );
        let message = ModelConfig::from_json(r#"{"d_model": "32"}"#).unwrap_err();
        assert_eq!(
            message,
            "config field d_model must be a positive integer, got '32'"
        );
        let message = ModelConfig::from_json(r#"{"d_model": 32.0}"#).unwrap_err();
        assert_eq!(
            message,
            "config field d_model must be a positive integer, got 32.0"
        );
    }

    #[test]
    fn shape_rules_rejected() {
        let message = ModelConfig::from_json(r#"{"d_model": 100, "headdim": 64}"#).unwrap_err();
        assert_eq!(message, "d_inner (200) must be a multiple of headdim (64)");
        let message = ModelConfig::from_json(r#"{"d_model": 1024}"#).unwrap_err();
        assert_eq!(
            message,
            "d_model and d_inner must be <= 1024 for exact int8 matmuls, got d_model=1024, d_inner=2048"
        );
        let message = ModelConfig::from_json(r#"{"d_state": 65}"#).unwrap_err();
        assert!(message.starts_with("d_state must be <= 64"), "{message}");
    }

    #[test]
    fn unknown_choices_rejected() {
        let message = ModelConfig::from_json(r#"{"arch": "transformer"}"#).unwrap_err();
        assert_eq!(message, "unknown arch 'transformer'; expected 'ssm'");
        let message = ModelConfig::from_json(r#"{"mlp": null}"#).unwrap_err();
        assert_eq!(
            message,
            "unknown mlp None; expected 'none', 'gated' or 'kan'"
        );
    }

    #[test]
    fn gated_mlp_fields_in_canonical_json() {
        let text = r#"{"arch": "ssm", "chunk_size": 16, "d_conv": 4, "d_model": 32, "d_state": 8, "expand": 2, "headdim": 16, "kan_grid": 3, "mlp": "gated", "mlp_hidden": 40, "n_layer": 2, "retrieval": "none"}"#;
        let config = ModelConfig::from_json(text).unwrap();
        assert_eq!(config.mlp, Mlp::Gated);
        assert_eq!(config.mlp_hidden, 40);
        assert_eq!(config.to_canonical_json(), text);
    }

    #[test]
    fn mlp_bounds_rejected() {
        let message = ModelConfig::from_json(r#"{"mlp": "gated"}"#).unwrap_err();
        assert_eq!(
            message,
            "the gated MLP needs 1 <= mlp_hidden <= 1024 (exact int8 matmuls), got 0"
        );
        let message = ModelConfig::from_json(r#"{"mlp_hidden": -1}"#).unwrap_err();
        assert_eq!(
            message,
            "config field mlp_hidden must be a non-negative integer, got -1"
        );
        let message = ModelConfig::from_json(
            r#"{"mlp": "kan", "kan_grid": 8, "d_model": 192, "headdim": 48}"#,
        )
        .unwrap_err();
        assert_eq!(
            message,
            "the KAN MLP needs kan_grid >= 2 and d_model * kan_grid <= 1024 (exact int8 matmuls), \
             got kan_grid=8, d_model=192"
        );
    }

    #[test]
    fn kan_mlp_refused_with_a_pointer_to_python() {
        let message = ModelConfig::from_json(
            r#"{"mlp": "kan", "kan_grid": 4, "d_model": 128, "headdim": 32}"#,
        )
        .unwrap_err();
        assert!(
            message.starts_with("mlp 'kan' is not supported by nnzip-core"),
            "{message}"
        );
    }

    #[test]
    fn non_object_rejected() {
        let message = ModelConfig::from_json("[1, 2]").unwrap_err();
        assert_eq!(message, "config is [1, 2], expected a JSON object");
    }

    const INDEXED: &str = r#"{"arch": "ssm", "chunk_size": 16, "d_conv": 4, "d_model": 32, "d_state": 8, "expand": 2, "headdim": 16, "index": "tiny_index.nzi", "index_id": "9a7a149441de1f117c1426330c9dc467", "mlp": "none", "n_layer": 2, "retrieval": "history+index"}"#;

    #[test]
    fn index_fields_in_canonical_json() {
        let config = ModelConfig::from_json(INDEXED).unwrap();
        assert_eq!(config.retrieval, Retrieval::HistoryIndex);
        assert_eq!(config.index, "tiny_index.nzi");
        assert_eq!(config.index_id, "9a7a149441de1f117c1426330c9dc467");
        assert_eq!(config.to_canonical_json(), INDEXED);
    }

    #[test]
    fn index_name_escaped_like_python() {
        let text = INDEXED.replace("tiny_index.nzi", r#"r\u00e9f \"1\".nzi"#);
        let config = ModelConfig::from_json(&text).unwrap();
        assert_eq!(config.index, "réf \"1\".nzi");
        assert_eq!(config.to_canonical_json(), text);
    }

    /// Returns the validation message of the indexed config with `key` set to `value` (JSON),
    /// or removed when `value` is None.
    fn indexed_error(key: &str, value: Option<&str>) -> String {
        let mut data: Map<String, Value> = serde_json::from_str(INDEXED).unwrap();
        match value {
            Some(value) => data.insert(key.to_owned(), serde_json::from_str(value).unwrap()),
            None => data.remove(key),
        };
        ModelConfig::from_map(&data).unwrap_err()
    }

    #[test]
    fn index_fields_rejected() {
        let cases = [
            (
                "retrieval",
                Some(r#""history""#),
                "index 'tiny_index.nzi' and index_id '9a7a149441de1f117c1426330c9dc467' are set, \
                 but retrieval 'history' reads no index",
            ),
            (
                "index",
                None,
                "retrieval 'history+index' needs index, a file name next to the model, got ''",
            ),
            (
                "index",
                Some(r#""models/tiny.nzi""#),
                "retrieval 'history+index' needs index, a file name next to the model, \
                 got 'models/tiny.nzi'",
            ),
            (
                "index",
                Some(r#""..""#),
                "retrieval 'history+index' needs index, a file name next to the model, got '..'",
            ),
            (
                "index",
                Some("3"),
                "config fields index and index_id must be strings, got 3 and \
                 '9a7a149441de1f117c1426330c9dc467'",
            ),
            (
                "index_id",
                None,
                "index_id must be 32 lower-case hex digits, got ''",
            ),
            (
                "index_id",
                Some(r#""9A7A149441DE1F117C1426330C9DC467""#),
                "index_id must be 32 lower-case hex digits, got '9A7A149441DE1F117C1426330C9DC467'",
            ),
            (
                "index_id",
                Some(r#""9a7a149441de1f117c1426330c9dc4""#),
                "index_id must be 32 lower-case hex digits, got '9a7a149441de1f117c1426330c9dc4'",
            ),
        ];
        for (key, value, message) in cases {
            assert_eq!(indexed_error(key, value), message, "{key} = {value:?}");
        }
    }

    #[test]
    fn index_without_index_retrieval_rejected() {
        let message = ModelConfig::from_json(r#"{"index_id": "00"}"#).unwrap_err();
        assert_eq!(
            message,
            "index '' and index_id '00' are set, but retrieval 'none' reads no index"
        );
        let message = ModelConfig::from_json(r#"{"retrieval": "index"}"#).unwrap_err();
        assert_eq!(
            message,
            "unknown retrieval 'index'; expected 'none', 'history' or 'history+index'"
        );
    }
}
