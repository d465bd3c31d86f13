//! Exact integer inference of an exported model over many streams, as docs/inference-spec.md
//! defines it and `nnzip/intmodel.py` implements it.
//!
//! The matmuls run through Candle on float32 tensors that hold int8 values. With at most 1024
//! inputs every partial sum stays below 2**24, so any kernel, summation order and thread count
//! gives the exact integers. Everything else is i64 arithmetic in plain Rust.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use crate::coder::ALPHABET_SIZE;
use crate::fixedpoint::{
    clamp_int8, frequencies, rms_normalize, table_lookup, DECAY_BITS, INT8_MAX, RESIDUAL_LIMIT,
    STATE_LIMIT,
};
use crate::model::{
    GatedMlp, Layer, Linear, Model, GATE_HIGH, GATE_LOW, INPUT_VOCAB, INT8_TABLE_LEN,
};

/// Rows per rayon task in the row-wise steps, so that small batches run without the cost of
/// splitting them.
const MIN_ROWS_PER_TASK: usize = 16;

/// The network's output for a block, before the retrieval boost.
#[derive(Debug, Clone)]
pub struct BlockLogits {
    /// (rows, 256) logits in units of 1/64 nat.
    pub logits: Vec<i64>,
    /// The retrieval gate per row, for a model with retrieval.
    pub gates: Option<Vec<i64>>,
}

/// Recurrent state of a batch of streams: per layer the conv window and the SSM state.
#[derive(Debug, Clone)]
pub struct State {
    batch: usize,
    /// Per layer, (batch, d_conv - 1, conv_dim) int8 conv inputs, oldest first. Each stream
    /// owns at least one entry, so that chunking by stream works for d_conv = 1 too.
    conv: Vec<Vec<i64>>,
    /// Per layer, (batch, n_heads, headdim, d_state). Entries stay within ±STATE_LIMIT < 2**24.
    ssm: Vec<Vec<i32>>,
}

impl State {
    pub fn batch(&self) -> usize {
        self.batch
    }
}

impl Model {
    /// Returns the all-zero state of `batch` streams.
    pub fn initial_state(&self, batch: usize) -> State {
        let c = &self.config;
        let conv_len = self.conv_state_len();
        let ssm_len = c.n_heads() * c.headdim * c.d_state;
        State {
            batch,
            conv: vec![vec![0; batch * conv_len]; c.n_layer],
            ssm: vec![vec![0; batch * ssm_len]; c.n_layer],
        }
    }

    /// Entries of one stream's conv state, at least 1 (see [`State`]).
    fn conv_state_len(&self) -> usize {
        (self.config.conv_dim() * (self.config.d_conv - 1)).max(1)
    }

    /// Feeds one input id per stream and returns the next-byte frequencies, (batch, 256).
    ///
    /// # Panics
    ///
    /// Panics if `ids.len()` differs from the state's batch or an id is above 256.
    pub fn step(&self, ids: &[u32], state: &mut State) -> Vec<u32> {
        self.block(ids, 1, state, None)
    }

    /// Feeds `positions` input ids per stream, `ids` being (batch, positions) row-major, and
    /// returns the frequencies after each, (batch, positions, 256).
    ///
    /// Every operation but the state recurrence is row-wise, so a block gives exactly the
    /// frequencies of `positions` single steps. A model with retrieval takes the retriever's
    /// code of each predicted byte in `codes` (batch * positions). Without codes, or with
    /// code 0, a position gets no boost.
    ///
    /// # Panics
    ///
    /// Panics if `ids.len()` is not `batch * positions`, an id is above 256, or `codes` has
    /// another length than `ids`.
    pub fn block(
        &self,
        ids: &[u32],
        positions: usize,
        state: &mut State,
        codes: Option<&[u32]>,
    ) -> Vec<u32> {
        let output = self.block_logits(ids, positions, state);
        let rows = ids.len();
        if let Some(codes) = codes {
            assert_eq!(
                codes.len(),
                rows,
                "expected one retrieval code per input id"
            );
        }
        let mut freqs = vec![0u32; rows * ALPHABET_SIZE];
        freqs
            .par_chunks_mut(ALPHABET_SIZE)
            .zip(output.logits.par_chunks(ALPHABET_SIZE))
            .enumerate()
            .with_min_len(MIN_ROWS_PER_TASK)
            .for_each(|(row, (out, logits))| {
                let gate = output.gates.as_ref().map(|gates| gates[row]);
                let code = codes.map_or(0, |codes| codes[row]);
                self.row_frequencies(logits, gate, code, out);
            });
        freqs
    }

    /// Runs the network on a block as [`Model::block`] does and returns the logits before
    /// the retrieval boost, so that a decoder can add the boost row by row.
    pub fn block_logits(&self, ids: &[u32], positions: usize, state: &mut State) -> BlockLogits {
        let d = self.config.d_model;
        let rows = state.batch * positions;
        assert_eq!(
            ids.len(),
            rows,
            "expected {} streams x {positions} positions of input ids",
            state.batch
        );
        if rows == 0 {
            return BlockLogits {
                logits: Vec::new(),
                gates: self.retrieval.as_ref().map(|_| Vec::new()),
            };
        }

        let mut x = vec![0i64; rows * d];
        for (row, &id) in x.chunks_exact_mut(d).zip(ids) {
            let id = id as usize;
            assert!(id < INPUT_VOCAB, "input id {id}, expected < {INPUT_VOCAB}");
            row.copy_from_slice(&self.embedding[id * d..(id + 1) * d]);
        }

        for (index, layer) in self.layers.iter().enumerate() {
            self.mixer_block(layer, index, &mut x, positions, state);
            if let Some(mlp) = &layer.mlp {
                mlp_block(mlp, &mut x, rows, d);
            }
        }

        let u = normalize_rows(&x, &self.norm_f_gain, d);
        let gates = self
            .retrieval
            .as_ref()
            .map(|head| linear(&head.gate, u.clone(), rows, d));
        let logits = linear(&self.head, u, rows, d);
        BlockLogits { logits, gates }
    }

    /// Writes the frequencies of one position to `out`: its logits (256) with the retrieval
    /// boost of `code` added (see `docs/retrieval.md`), through the frequency rule.
    pub fn row_frequencies(&self, logits: &[i64], gate: Option<i64>, code: u32, out: &mut [u32]) {
        let bucket = (code >> 8) as usize;
        match (&self.retrieval, gate) {
            (Some(head), Some(gate)) if bucket > 0 => {
                let predicted = (code & 255) as usize;
                let z = (gate + head.bias[bucket]).clamp(GATE_LOW, GATE_HIGH);
                let mut boosted = [0i64; ALPHABET_SIZE];
                boosted.copy_from_slice(logits);
                boosted[predicted] += head.softplus_table[(z - GATE_LOW) as usize];
                frequencies(&boosted, &self.exp_table, out);
            }
            _ => frequencies(logits, &self.exp_table, out),
        }
    }

    /// Advances layer `index` by `positions` positions; `x` is the (batch * positions, d_model)
    /// residual stream, updated in place.
    fn mixer_block(
        &self,
        layer: &Layer,
        index: usize,
        x: &mut [i64],
        positions: usize,
        state: &mut State,
    ) {
        let c = &self.config;
        let (d, e) = (c.d_model, c.d_inner());
        let rows = state.batch * positions;
        let projected = layer.in_proj.outputs;

        // Norm and input projection into the gate z, the conv input xBC and dt.
        let u = normalize_rows(x, &layer.norm_gain, d);
        let mut v = linear(&layer.in_proj, u, rows, d);
        v.par_iter_mut()
            .with_min_len(MIN_ROWS_PER_TASK * projected)
            .for_each(|value| *value = clamp_int8(*value));

        // Convolution, selective scan and gate, one stream per task because of the state.
        let mut gated = vec![0f32; rows * e];
        let conv_len = self.conv_state_len();
        let ssm_len = c.n_heads() * c.headdim * c.d_state;
        state.conv[index]
            .par_chunks_mut(conv_len)
            .zip(state.ssm[index].par_chunks_mut(ssm_len))
            .zip(v.par_chunks(positions * projected))
            .zip(gated.par_chunks_mut(positions * e))
            .for_each(|(((conv, ssm), v), gated)| self.mix_positions(layer, conv, ssm, v, gated));

        // Output projection straight into the residual scale, then saturation.
        let out = linear(&layer.out_proj, gated, rows, e);
        x.par_iter_mut()
            .zip(out.par_iter())
            .with_min_len(MIN_ROWS_PER_TASK * d)
            .for_each(|(residual, &delta)| {
                *residual = (*residual + delta).clamp(-RESIDUAL_LIMIT, RESIDUAL_LIMIT);
            });
    }

    /// Runs the convolution, the state update and the gate of one stream at each of its
    /// positions in `v` (positions, in_proj outputs), writing `gated` (positions, d_inner).
    ///
    /// Most of the coding time is spent here. The code is compiled three times, for AVX-512,
    /// AVX2 and the baseline instruction set, and the CPU picks one at run time. It is integer
    /// arithmetic, which gives the same values on every path, so the choice never changes a
    /// frequency.
    fn mix_positions(
        &self,
        layer: &Layer,
        conv: &mut [i64],
        ssm: &mut [i32],
        v: &[i64],
        gated: &mut [f32],
    ) {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512dq")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                // SAFETY: the CPU has the features this clone was compiled for.
                return unsafe { self.mix_positions_avx512(layer, conv, ssm, v, gated) };
            }
            if std::arch::is_x86_feature_detected!("avx2") {
                // SAFETY: as above.
                return unsafe { self.mix_positions_avx2(layer, conv, ssm, v, gated) };
            }
        }
        self.mix_positions_portable(layer, conv, ssm, v, gated)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512dq,avx512vl,avx2,fma")]
    unsafe fn mix_positions_avx512(
        &self,
        layer: &Layer,
        conv: &mut [i64],
        ssm: &mut [i32],
        v: &[i64],
        gated: &mut [f32],
    ) {
        self.mix_positions_portable(layer, conv, ssm, v, gated)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn mix_positions_avx2(
        &self,
        layer: &Layer,
        conv: &mut [i64],
        ssm: &mut [i32],
        v: &[i64],
        gated: &mut [f32],
    ) {
        self.mix_positions_portable(layer, conv, ssm, v, gated)
    }

    #[inline(always)]
    fn mix_positions_portable(
        &self,
        layer: &Layer,
        conv: &mut [i64],
        ssm: &mut [i32],
        v: &[i64],
        gated: &mut [f32],
    ) {
        let projected = layer.in_proj.outputs;
        let e = self.config.d_inner();
        let mut scratch = StreamScratch::new(self);
        for (v_row, gated_row) in v.chunks_exact(projected).zip(gated.chunks_exact_mut(e)) {
            self.mix_position(layer, conv, ssm, v_row, gated_row, &mut scratch);
        }
    }

    /// Runs the convolution, the state update and the gate of one stream at one position.
    ///
    /// `v_row` is the clamped input projection (z, xBC, dt), and `gated_row` receives the
    /// int8 input of the output projection.
    #[inline(always)]
    fn mix_position(
        &self,
        layer: &Layer,
        conv: &mut [i64],
        ssm: &mut [i32],
        v_row: &[i64],
        gated_row: &mut [f32],
        scratch: &mut StreamScratch,
    ) {
        let c = &self.config;
        let (e, n, k, p) = (c.d_inner(), c.d_state, c.d_conv, c.headdim);
        let cd = c.conv_dim();
        let (z, rest) = v_row.split_at(e);
        let (xbc, dt) = rest.split_at(cd);

        // Causal depthwise convolution. The window contains the last k - 1 xBC rows, oldest
        // first, and the new row is the last tap.
        let history = k - 1;
        let acc = &mut scratch.conv_acc;
        let newest = &layer.conv_taps[history * cd..];
        for (((slot, &bias), &value), &tap) in
            acc.iter_mut().zip(&layer.conv_bias).zip(xbc).zip(newest)
        {
            *slot = bias + value * tap;
        }
        if history > 0 {
            let window = &mut conv[..history * cd];
            for (row, taps) in window
                .chunks_exact(cd)
                .zip(layer.conv_taps.chunks_exact(cd))
            {
                for ((slot, &value), &tap) in acc.iter_mut().zip(row).zip(taps) {
                    *slot += value * tap;
                }
            }
            window.copy_within(cd.., 0);
            window[(history - 1) * cd..].copy_from_slice(xbc);
        }
        let silu = &mut scratch.silu;
        for (((out, &sum), &multiplier), &shift) in silu
            .iter_mut()
            .zip(acc.iter())
            .zip(&layer.conv_multiplier)
            .zip(&layer.conv_shift)
        {
            // Requant::apply with the shift as i64, which keeps the loop vectorizable.
            let activation = clamp_int8((sum * multiplier + (1i64 << (shift - 1))) >> shift);
            *out = table_lookup(&layer.silu_table, activation);
        }
        let (xs, bc) = silu.split_at(e);
        let (b, c_out) = bc.split_at(n);

        // State update per head, channel and state index, and the output C h plus the D skip.
        let y = &mut scratch.y;
        let input_round = 1i64 << (layer.ssm_input.shift - 1);
        for (head, &dt_value) in dt.iter().enumerate() {
            let table_index = head * INT8_TABLE_LEN + (dt_value + INT8_MAX) as usize;
            let delta = layer.delta_table[table_index];
            let decay = layer.decay_table[table_index];
            for channel in head * p..(head + 1) * p {
                // Δ x m < 2**19 * 2**7 * 2**24 = 2**50, so its product with B stays below 2**57.
                let scaled = delta * xs[channel] * layer.ssm_input.multiplier;
                let state_row = &mut ssm[channel * n..(channel + 1) * n];
                let update = StateUpdate {
                    decay,
                    scaled,
                    input_round,
                    input_shift: layer.ssm_input.shift,
                };
                let ch = update_state_row(&update, state_row, b, c_out);
                let skip = layer.skip[head] * xs[channel];
                y[channel] = clamp_int8(layer.y_c.apply(ch) + layer.y_d.apply(skip));
            }
        }

        // Gate by SiLU(z), the input of the output projection.
        for ((slot, &y_value), &z_value) in gated_row.iter_mut().zip(y.iter()).zip(z) {
            let gate = table_lookup(&layer.gate_table, z_value);
            *slot = clamp_int8(layer.gate.apply(y_value * gate)) as f32;
        }
    }
}

/// The coefficients of one channel's state update; see [`update_state_row`].
struct StateUpdate {
    decay: i64,
    scaled: i64,
    input_round: i64,
    input_shift: u32,
}

/// Decays one channel's state row, adds the input `scaled * B` and returns `C h`, the row
/// being (d_state) and the update clamped to ±STATE_LIMIT.
#[inline(always)]
fn update_state_row(update: &StateUpdate, row: &mut [i32], b: &[i64], c: &[i64]) -> i64 {
    let decay_round = 1i64 << (DECAY_BITS - 1);
    let mut ch = 0i64;
    for ((h, &b_value), &c_value) in row.iter_mut().zip(b).zip(c) {
        let mut value = (update.decay * i64::from(*h) + decay_round) >> DECAY_BITS;
        value += (update.scaled * b_value + update.input_round) >> update.input_shift;
        let value = value.clamp(-STATE_LIMIT, STATE_LIMIT);
        *h = value as i32;
        ch += value * c_value;
    }
    ch
}

/// Per-task buffers of one stream's position, allocated once per layer and stream.
struct StreamScratch {
    /// The conv sums before requantization, (conv_dim).
    conv_acc: Vec<i64>,
    /// SiLU of the conv output: xs (d_inner), then B and C (d_state each).
    silu: Vec<i64>,
    /// The int8 SSM output y, (n_heads * headdim).
    y: Vec<i64>,
}

impl StreamScratch {
    fn new(model: &Model) -> Self {
        StreamScratch {
            conv_acc: vec![0; model.config.conv_dim()],
            silu: vec![0; model.config.conv_dim()],
            y: vec![0; model.config.d_inner()],
        }
    }
}

/// RMSNorm of each row of `x` (rows, width) to int8 values stored as f32.
/// Adds a gated MLP to the (rows, d_model) residual stream `x`, in place. It has no state,
/// so every row is independent.
fn mlp_block(mlp: &GatedMlp, x: &mut [i64], rows: usize, d: usize) {
    let hidden = mlp.up.outputs / 2;
    let u = normalize_rows(x, &mlp.norm_gain, d);
    let up = linear(&mlp.up, u, rows, d);

    // m = clamp8(requant(a * SiLU(g))), with a and g the clamped halves of each up row.
    let mut m = vec![0f32; rows * hidden];
    m.par_chunks_mut(hidden)
        .zip(up.par_chunks(2 * hidden))
        .with_min_len(MIN_ROWS_PER_TASK)
        .for_each(|(out, row)| {
            let (a, g) = row.split_at(hidden);
            for ((slot, &a), &g) in out.iter_mut().zip(a).zip(g) {
                let product = clamp_int8(a) * table_lookup(&mlp.gate_table, clamp_int8(g));
                *slot = clamp_int8(mlp.gate.apply(product)) as f32;
            }
        });

    let out = linear(&mlp.down, m, rows, hidden);
    x.par_iter_mut()
        .zip(out.par_iter())
        .with_min_len(MIN_ROWS_PER_TASK * d)
        .for_each(|(residual, &delta)| {
            *residual = (*residual + delta).clamp(-RESIDUAL_LIMIT, RESIDUAL_LIMIT);
        });
}

fn normalize_rows(x: &[i64], gain: &[i64], width: usize) -> Vec<f32> {
    let mut u = vec![0f32; x.len()];
    u.par_chunks_mut(width)
        .zip(x.par_chunks(width))
        .with_min_len(MIN_ROWS_PER_TASK)
        .for_each(|(out, row)| rms_normalize(row, gain, out));
    u
}

/// Requantized int8 matmul: `requant(input @ W^T)` per output row, for `input` (rows, inputs)
/// holding int8 values as f32.
///
/// NOTE: Candle 0.11 reads RAYON_NUM_THREADS on each matmul, and when it is unset it reads
/// /proc/cpuinfo instead, which makes the decoder several times slower. Set the variable
/// before the first call, as the `nnzip-core` binary does.
fn linear(layer: &Linear, input: Vec<f32>, rows: usize, inputs: usize) -> Vec<i64> {
    // Only a shape bug can make Candle fail here: the loader checked the weight shape, and
    // the caller builds `input` with rows * inputs values.
    let lhs = Tensor::from_vec(input, (rows, inputs), &Device::Cpu)
        .expect("input has rows * inputs values");
    let product = lhs
        .matmul(&layer.weight_t)
        .and_then(|product| product.flatten_all())
        .and_then(|product| product.to_vec1::<f32>())
        .expect("matmul of (rows, inputs) by (inputs, outputs)");

    let outputs = layer.outputs;
    let mut out = vec![0i64; rows * outputs];
    out.par_chunks_mut(outputs)
        .zip(product.par_chunks(outputs))
        .with_min_len(MIN_ROWS_PER_TASK)
        .for_each(|(out_row, sums)| {
            for ((slot, &sum), requant) in out_row.iter_mut().zip(sums).zip(&layer.requant) {
                // The sum is an integer below 2**24 in magnitude, so the cast is exact.
                *slot = requant.apply(sum as i64);
            }
        });
    out
}
