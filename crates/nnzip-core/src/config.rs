//! The model configuration stored in an export: parsing, validation and the canonical JSON
//! that the model id covers.
//!
//! This follows `ModelConfig` in `nnzip/config.py`: missing keys take the Python defaults,
//! unknown keys are rejected, and the checks run in the same order with the same messages.

use serde_json::{Map, Value};

use crate::pyrepr::{json_repr, str_list_repr, str_repr};

/// Every config key, in the sorted order of the canonical JSON.
const KNOWN_KEYS: [&str; 12] = [
    "arch",
    "chunk_size",
    "d_conv",
    "d_model",
    "d_state",
    "expand",
    "headdim",
    "kan_grid",
    "mlp",
    "mlp_hidden",
    "n_layer",
    "retrieval",
];

/// Fields added after the first shipped models, with their defaults. The canonical JSON
/// leaves them out at these values, so the ids of older exports do not change.
const LATER_KEYS: [&str; 2] = ["mlp_hidden", "kan_grid"];

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
}

impl Retrieval {
    fn name(self) -> &'static str {
        match self {
            Retrieval::None => "none",
            Retrieval::History => "history",
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
        let retrieval = match data.get("retrieval") {
            None => Retrieval::None,
            Some(Value::String(text)) if text == "none" => Retrieval::None,
            Some(Value::String(text)) if text == "history" => Retrieval::History,
            Some(value) => {
                return Err(format!(
                    "unknown retrieval {}; expected 'none' or 'history'",
                    json_repr(value)
                ))
            }
        };
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
        })
    }

    /// Returns the config as `json.dumps(dataclasses.asdict(config), sort_keys=True)` writes
    /// it, which is the text that the model id covers.
    ///
    /// `mlp_hidden` and `kan_grid` are left out at 0, as Python's `to_json` does.
    pub fn to_canonical_json(&self) -> String {
        let later = |key: &str, value: usize| {
            if value == 0 {
                String::new()
            } else {
                format!("\"{key}\": {value}, ")
            }
        };
        format!(
            "{{\"arch\": \"ssm\", \"chunk_size\": {}, \"d_conv\": {}, \"d_model\": {}, \
             \"d_state\": {}, \"expand\": {}, \"headdim\": {}, {}\"mlp\": \"{}\", {}\
             \"n_layer\": {}, \"retrieval\": \"{}\"}}",
            self.chunk_size,
            self.d_conv,
            self.d_model,
            self.d_state,
            self.expand,
            self.headdim,
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
             'd_model', 'd_state', 'expand', 'headdim', 'kan_grid', 'mlp', 'mlp_hidden', 'n_layer', \
             'retrieval']"
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
}
