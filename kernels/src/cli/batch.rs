//! A ragged batch from command-line flags, a JSON file (the same fields) or a directory of `.npy`
//! files, with the options of the call.
//!
//! Sequences go to the three kernels by `distribution`: `q_len == 1` to decode, `q_len == chunk` to
//! chunked prefill (with `--chunk`), the rest to mixed — in that order, so sequences given in
//! another order are reordered (stably) and the batch says so.

use super::npy;
use super::CliError;
use crate::rpa::layout::{cache_index, merge_kv};
use crate::rpa::reference::RpaInputs;
use crate::rpa::testing::{make_batch, BatchSpec};
use crate::rpa::{BlockSizes, RpaOptions};
use clap::ValueEnum;
use rpa_dsl::DType;
use serde::{Deserialize, Deserializer, Serialize};
use std::path::{Path, PathBuf};

/// `q_len:kv_len` pairs, comma-separated: `1:230,32:96,5:18`.
pub fn parse_seqs(s: &str) -> Result<Vec<(usize, usize)>, String> {
    let mut seqs = Vec::new();
    for (i, item) in s.split(',').map(str::trim).enumerate() {
        let (q, kv) = item
            .split_once(':')
            .ok_or_else(|| format!("sequence {i}: `{item}` is not `q_len:kv_len` (e.g. `1:230,32:96`)"))?;
        let num = |v: &str, what: &str| {
            v.trim().parse::<usize>().map_err(|_| format!("sequence {i}: {what} `{v}` is not a non-negative integer"))
        };
        let (q, kv) = (num(q, "q_len")?, num(kv, "kv_len")?);
        seqs.push(check_seq(i, q, kv)?);
    }
    Ok(seqs)
}

fn check_seq(i: usize, q: usize, kv: usize) -> Result<(usize, usize), String> {
    if q == 0 {
        return Err(format!("sequence {i}: q_len must be at least 1"));
    }
    if kv < q {
        return Err(format!("sequence {i}: kv_len {kv} is smaller than q_len {q} (kv_len counts the new tokens)"));
    }
    Ok((q, kv))
}

/// `Hq:Hkv` (also `Hq/Hkv`): query heads and KV heads, `Hq` a multiple of `Hkv`.
pub fn parse_heads(s: &str) -> Result<(usize, usize), String> {
    let (q, kv) = s.split_once([':', '/']).ok_or_else(|| format!("`{s}` is not `q_heads:kv_heads` (e.g. `32:8`)"))?;
    let num = |v: &str| v.trim().parse::<usize>().map_err(|_| format!("`{v}` is not a positive integer"));
    check_heads((num(q)?, num(kv)?))
}

fn check_heads((q, kv): (usize, usize)) -> Result<(usize, usize), String> {
    if q == 0 || kv == 0 || q % kv != 0 {
        return Err(format!("{q} query heads are not a positive multiple of {kv} KV heads"));
    }
    Ok((q, kv))
}

/// The command-line name of a dtype (the names of the dtype flags for the dtypes they offer).
pub use rpa_dsl::tool::dtype_name;

/// The dtypes a flag (and its JSON field) offers, by their command-line names; the NumPy and
/// ml_dtypes names are aliases.
pub trait DtypeChoice: ValueEnum + Copy + 'static {
    /// The JSON field; the flag is `--` and the field with dashes.
    const FIELD: &'static str;

    fn dtype(self) -> DType;

    /// The dtypes of every choice.
    fn all() -> Vec<DType> {
        Self::value_variants().iter().map(|c| c.dtype()).collect()
    }

    /// The choice of `dtype`, if there is one.
    fn of(dtype: DType) -> Option<Self> {
        Self::value_variants().iter().copied().find(|c| c.dtype() == dtype)
    }

    fn flag() -> String {
        format!("--{}", Self::FIELD.replace('_', "-"))
    }
}

/// Query (and output) dtypes of `--dtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum QueryDtype {
    #[value(alias = "float32")]
    F32,
    #[value(alias = "bfloat16")]
    Bf16,
    #[value(alias = "float16")]
    F16,
}

/// Cache dtypes of `--kv-dtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum KvDtype {
    #[value(alias = "float32")]
    F32,
    #[value(alias = "bfloat16")]
    Bf16,
    #[value(alias = "float16")]
    F16,
    #[value(alias = "float8_e4m3fn")]
    Fp8e4m3,
    #[value(alias = "float8_e5m2")]
    Fp8e5m2,
    Int8,
}

/// Softmax statistics and accumulator dtypes of `--acc-dtype`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AccDtype {
    #[value(alias = "float32")]
    F32,
    #[value(alias = "bfloat16")]
    Bf16,
}

impl DtypeChoice for QueryDtype {
    const FIELD: &'static str = "dtype";

    fn dtype(self) -> DType {
        match self {
            QueryDtype::F32 => DType::F32,
            QueryDtype::Bf16 => DType::Bf16,
            QueryDtype::F16 => DType::F16,
        }
    }
}

impl DtypeChoice for KvDtype {
    const FIELD: &'static str = "kv_dtype";

    fn dtype(self) -> DType {
        match self {
            KvDtype::F32 => DType::F32,
            KvDtype::Bf16 => DType::Bf16,
            KvDtype::F16 => DType::F16,
            KvDtype::Fp8e4m3 => DType::F8E4M3,
            KvDtype::Fp8e5m2 => DType::F8E5M2,
            KvDtype::Int8 => DType::I8,
        }
    }
}

impl DtypeChoice for AccDtype {
    const FIELD: &'static str = "acc_dtype";

    fn dtype(self) -> DType {
        match self {
            AccDtype::F32 => DType::F32,
            AccDtype::Bf16 => DType::Bf16,
        }
    }
}

/// JSON of a [`DtypeChoice`]: its command-line name; an unknown one is refused naming the field,
/// the name and the choices.
mod choice {
    use super::{dtype_name, DtypeChoice};
    use crate::cli::npy::dtype_list;
    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: DtypeChoice>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        v.map(|c| dtype_name(c.dtype())).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: DtypeChoice>(d: D) -> Result<Option<T>, D::Error> {
        let Some(name) = Option::<String>::deserialize(d)? else { return Ok(None) };
        T::from_str(&name, true)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("`{}` is {name:?}, expected {}", T::FIELD, dtype_list(&T::all()))))
    }
}

/// JSON of an optional float that may be infinite or NaN (`--mask-value -inf`): a number, or the
/// text Rust writes for it (`"-inf"`, `"inf"`, `"NaN"`), which JSON numbers cannot hold.
mod float_text {
    use super::TextOr;
    use serde::{de::Error, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(x) if !x.is_finite() => s.serialize_str(&x.to_string()),
            v => v.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Option::<TextOr<f64>>::deserialize(d)? {
            None => Ok(None),
            Some(TextOr::Value(x)) => Ok(Some(x)),
            Some(TextOr::Text(t)) => {
                t.parse().map(Some).map_err(|_| D::Error::custom(format!("`{t}` is not a number")))
            }
        }
    }
}

/// The batch flags shared by `run`, `trace`, `ir`, `mosaic`, `stablehlo` and `compile`. Flags
/// given on the command line override the fields of an `--input` file.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct BatchArgs {
    /// Sequences as q_len:kv_len pairs (kv_len includes the q_len new tokens), e.g. 1:230,32:96,5:18
    #[arg(long, value_name = "Q:KV,...", value_parser = parse_seqs, help_heading = "Batch")]
    // A fully qualified `Vec`: one value parsed by `parse_seqs`, not a list of values to clap.
    pub seqs: Option<::std::vec::Vec<(usize, usize)>>,
    /// Read the batch from a JSON file (the fields of these flags) or a directory of .npy files
    /// (queries, keys, values, kv_cache, kv_lens, page_indices, cu_q_lens, distribution), read as
    /// saved: a dtype other than its flag's (int32 for the metadata) is refused, never converted
    #[arg(long, value_name = "FILE|DIR", help_heading = "Batch")]
    pub input: Option<PathBuf>,
    /// Query heads and KV heads [default: 32:8]
    #[arg(long, value_name = "HQ:HKV", value_parser = parse_heads, help_heading = "Batch")]
    pub heads: Option<(usize, usize)>,
    /// Head dimension [default: 128]
    #[arg(long, value_name = "D", help_heading = "Batch")]
    pub head_dim: Option<usize>,
    /// Tokens per KV-cache page [default: 16]
    #[arg(long, value_name = "N", help_heading = "Batch")]
    pub page_size: Option<usize>,
    /// Query (and output) dtype [default: bf16, or that of queries.npy]
    #[arg(long, value_enum, help_heading = "Batch")]
    pub dtype: Option<QueryDtype>,
    /// KV-cache dtype [default: the query dtype, or that of kv_cache.npy]; int8 caches get k/v
    /// scales of 1/127, fp8 of 1. Needed for an fp8 kv_cache.npy saved as raw bytes ('<V1', '|u1')
    #[arg(long, value_enum, help_heading = "Batch")]
    pub kv_dtype: Option<KvDtype>,
    /// Keep only the N most recent keys (including the token itself)
    #[arg(long, value_name = "N", help_heading = "Batch")]
    pub sliding_window: Option<usize>,
    /// Soft-cap the logits: cap · tanh(s / cap)
    #[arg(long, value_name = "X", help_heading = "Batch")]
    pub soft_cap: Option<f64>,
    /// No causal mask: every query sees all kv_len keys
    #[arg(long, help_heading = "Batch")]
    pub non_causal: bool,
    /// KV-share: the new tokens' K/V are already in the cache; the kernels only read it
    #[arg(long, help_heading = "Batch")]
    pub kv_share: bool,
    /// Also return the log-sum-exp of every (token, query head)
    #[arg(long, help_heading = "Batch")]
    pub lse: bool,
    /// Static q_len of the chunked-prefill bucket (sequences with q_len == N go to the prefill kernel)
    #[arg(long, value_name = "N", help_heading = "Batch")]
    pub chunk: Option<usize>,
    /// Softmax scale [default: 1/sqrt(head_dim)]
    #[arg(long, value_name = "X", help_heading = "Batch")]
    pub sm_scale: Option<f64>,
    /// Scale of the stored keys (quantized caches)
    #[arg(long, value_name = "X", help_heading = "Batch")]
    pub k_scale: Option<f64>,
    /// Scale of the stored values (quantized caches)
    #[arg(long, value_name = "X", help_heading = "Batch")]
    pub v_scale: Option<f64>,
    /// Quantize the queries to the cache dtype with this scale (q / X, clipped) [default: none]
    #[arg(long, value_name = "X", help_heading = "Batch")]
    pub q_scale: Option<f64>,
    /// Value of masked logits, e.g. -1e30 or -inf [default: the most negative finite value of the
    /// accumulator dtype]
    #[arg(long, value_name = "X", allow_hyphen_values = true, help_heading = "Batch")]
    pub mask_value: Option<f64>,
    /// Dtype of the softmax statistics and the accumulator [default: f32]
    #[arg(long, value_enum, help_heading = "Batch")]
    pub acc_dtype: Option<AccDtype>,
    /// Block sizes of every kernel instead of the backend's defaults, in tokens: BQ,BKV or
    /// BQ,BKV,BQ_COMPUTE,BKV_COMPUTE (the decode kernel keeps q blocks of 1)
    #[arg(long, value_name = "BQ,BKV[,..]", value_parser = parse_blocks, help_heading = "Batch")]
    pub blocks: Option<::std::vec::Vec<usize>>,
    /// Block sizes of the decode kernel, as given (overrides --blocks)
    #[arg(long, value_name = "BQ,BKV[,..]", value_parser = parse_blocks, help_heading = "Batch")]
    pub decode_blocks: Option<::std::vec::Vec<usize>>,
    /// Block sizes of the chunked-prefill kernel (overrides --blocks)
    #[arg(long, value_name = "BQ,BKV[,..]", value_parser = parse_blocks, help_heading = "Batch")]
    pub prefill_blocks: Option<::std::vec::Vec<usize>>,
    /// Block sizes of the mixed kernel (overrides --blocks)
    #[arg(long, value_name = "BQ,BKV[,..]", value_parser = parse_blocks, help_heading = "Batch")]
    pub mixed_blocks: Option<::std::vec::Vec<usize>>,
    /// Scoped VMEM limit of the kernels in MiB [default: the generation's default, raised when the
    /// blocks need it]
    #[arg(long, value_name = "MIB", help_heading = "Batch")]
    pub vmem_limit_mib: Option<usize>,
    /// The calls skip the library's metadata validation (`validate: false`); the batch is still
    /// validated once before the first call
    #[arg(long, help_heading = "Batch")]
    pub no_validate: bool,
    /// Attention sinks: one logit per query head, e.g. 0.5,-1,2,0 (gpt-oss)
    #[arg(long, value_name = "X,..", value_parser = parse_floats, allow_hyphen_values = true, help_heading = "Batch")]
    pub sinks: Option<::std::vec::Vec<f64>>,
    /// Seed of the random batch data [default: 1234]
    #[arg(long, help_heading = "Batch")]
    pub seed: Option<u64>,
}

/// `X,Y,...` (finite numbers).
pub fn parse_floats(s: &str) -> Result<Vec<f64>, String> {
    s.split(',')
        .map(|p| match p.trim().parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(x),
            _ => Err(format!("`{p}` is not a finite number")),
        })
        .collect()
}

/// `BQ,BKV` or `BQ,BKV,BQ_COMPUTE,BKV_COMPUTE` (positive).
pub fn parse_blocks(s: &str) -> Result<Vec<usize>, String> {
    let v = s
        .split(',')
        .map(|p| p.trim().parse::<usize>().map_err(|_| format!("`{p}` is not a positive integer")))
        .collect::<Result<Vec<_>, _>>()?;
    check_blocks(&v)?;
    Ok(v)
}

fn check_blocks(v: &[usize]) -> Result<(), String> {
    if !matches!(v.len(), 2 | 4) || v.contains(&0) {
        return Err(format!("block sizes must be BQ,BKV or BQ,BKV,BQ_COMPUTE,BKV_COMPUTE (positive), got {v:?}"));
    }
    Ok(())
}

/// The fields of a batch (the JSON form of the flags: `{"seqs": "1:230,32:96", "heads": "32:8",
/// "dtype": "bf16", "chunk": 32, ...}`; `seqs` and `heads` may also be arrays: `[[1, 230], [32, 96]]`,
/// `[32, 8]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchConfig {
    #[serde(deserialize_with = "de_seqs")]
    pub seqs: Vec<(usize, usize)>,
    #[serde(deserialize_with = "de_heads")]
    pub heads: (usize, usize),
    pub head_dim: usize,
    pub page_size: usize,
    #[serde(with = "choice")]
    pub dtype: Option<QueryDtype>,
    #[serde(with = "choice")]
    pub kv_dtype: Option<KvDtype>,
    pub sliding_window: Option<usize>,
    pub soft_cap: Option<f64>,
    pub non_causal: bool,
    pub kv_share: bool,
    pub lse: bool,
    pub chunk: Option<usize>,
    pub sm_scale: Option<f64>,
    pub k_scale: Option<f64>,
    pub v_scale: Option<f64>,
    pub q_scale: Option<f64>,
    #[serde(with = "float_text")]
    pub mask_value: Option<f64>,
    #[serde(with = "choice")]
    pub acc_dtype: Option<AccDtype>,
    /// `[bq, bkv]` or `[bq, bkv, bq_compute, bkv_compute]`, for every kernel.
    pub blocks: Option<Vec<usize>>,
    /// Per kernel, overriding `blocks`.
    pub decode_blocks: Option<Vec<usize>>,
    pub prefill_blocks: Option<Vec<usize>>,
    pub mixed_blocks: Option<Vec<usize>>,
    pub vmem_limit_mib: Option<usize>,
    pub no_validate: bool,
    /// Attention sinks, one per query head.
    pub sinks: Option<Vec<f64>>,
    pub seed: u64,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            seqs: Vec::new(),
            heads: (32, 8),
            head_dim: 128,
            page_size: 16,
            dtype: None,
            kv_dtype: None,
            sliding_window: None,
            soft_cap: None,
            non_causal: false,
            kv_share: false,
            lse: false,
            chunk: None,
            sm_scale: None,
            k_scale: None,
            v_scale: None,
            q_scale: None,
            mask_value: None,
            acc_dtype: None,
            blocks: None,
            decode_blocks: None,
            prefill_blocks: None,
            mixed_blocks: None,
            vmem_limit_mib: None,
            no_validate: false,
            sinks: None,
            seed: 1234,
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TextOr<T> {
    Text(String),
    Value(T),
}

fn de_seqs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(usize, usize)>, D::Error> {
    match TextOr::<Vec<(usize, usize)>>::deserialize(d)? {
        TextOr::Text(s) => parse_seqs(&s),
        TextOr::Value(v) => v.iter().enumerate().map(|(i, &(q, kv))| check_seq(i, q, kv)).collect(),
    }
    .map_err(serde::de::Error::custom)
}

fn de_heads<'de, D: Deserializer<'de>>(d: D) -> Result<(usize, usize), D::Error> {
    match TextOr::<(usize, usize)>::deserialize(d)? {
        TextOr::Text(s) => parse_heads(&s),
        TextOr::Value(h) => check_heads(h),
    }
    .map_err(serde::de::Error::custom)
}

/// Where a batch came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    Flags,
    Json(PathBuf),
    NpyDir(PathBuf),
}

impl BatchArgs {
    /// The batch's fields: the defaults, then the `--input` JSON file (or a directory's optional
    /// `batch.json`), then the flags. Without `--seqs` or `--input`, `default_seqs` (or a usage error).
    pub fn config(&self, default_seqs: Option<&str>) -> Result<(BatchConfig, Source), CliError> {
        let (mut c, source) = match &self.input {
            None => (BatchConfig::default(), Source::Flags),
            Some(p) if p.is_dir() => {
                let json = p.join("batch.json");
                let c = if json.exists() { read_config(&json)? } else { BatchConfig::default() };
                (c, Source::NpyDir(p.clone()))
            }
            Some(p) => (read_config(p)?, Source::Json(p.clone())),
        };
        if matches!(source, Source::NpyDir(_)) {
            let given = [
                ("--seqs", self.seqs.is_some()),
                ("--heads", self.heads.is_some()),
                ("--head-dim", self.head_dim.is_some()),
                ("--page-size", self.page_size.is_some()),
                ("--seed", self.seed.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|g| g.1) {
                return Err(CliError::Usage(format!(
                    "{flag} shapes a generated batch; the .npy files of --input {} have their own",
                    self.input.as_ref().map_or(String::new(), |p| p.display().to_string())
                )));
            }
        }
        if let Some(s) = &self.seqs {
            c.seqs = s.clone();
        }
        macro_rules! over {
            ($($f:ident),*) => { $(if let Some(v) = self.$f { c.$f = v; })* };
        }
        over!(heads, head_dim, page_size, seed);
        macro_rules! over_opt {
            ($($f:ident),*) => { $(if self.$f.is_some() { c.$f = self.$f; })* };
        }
        over_opt!(dtype, kv_dtype, acc_dtype, sliding_window, soft_cap, chunk, sm_scale, k_scale, v_scale);
        over_opt!(q_scale, mask_value, vmem_limit_mib);
        if self.sinks.is_some() {
            c.sinks.clone_from(&self.sinks);
        }
        for (to, from) in [
            (&mut c.blocks, &self.blocks),
            (&mut c.decode_blocks, &self.decode_blocks),
            (&mut c.prefill_blocks, &self.prefill_blocks),
            (&mut c.mixed_blocks, &self.mixed_blocks),
        ] {
            if from.is_some() {
                to.clone_from(from);
            }
        }
        c.non_causal |= self.non_causal;
        c.kv_share |= self.kv_share;
        c.lse |= self.lse;
        c.no_validate |= self.no_validate;
        if c.seqs.is_empty() && !matches!(source, Source::NpyDir(_)) {
            match default_seqs {
                Some(d) => c.seqs = parse_seqs(d).expect("default sequences parse"),
                None if matches!(source, Source::Json(_)) => {
                    return Err(CliError::Failed(format!("{}: no `seqs`", self.input.as_ref().unwrap().display())))
                }
                None => return Err(CliError::Usage("give the batch with --seqs Q:KV,... or --input FILE|DIR".into())),
            }
        }
        Ok((c, source))
    }

    /// The batch ([`BatchArgs::config`], then [`Batch::from_config`] or [`Batch::from_npy_dir`]).
    pub fn load(&self, default_seqs: Option<&str>) -> Result<Batch, CliError> {
        let (config, source) = self.config(default_seqs)?;
        match source {
            Source::NpyDir(dir) => Batch::from_npy_dir(&dir, config),
            s => Batch::from_config(config, s),
        }
    }
}

fn read_config(path: &Path) -> Result<BatchConfig, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))
}

/// Which kernel a sequence of `q_len` goes to: 0 decode, 1 prefill, 2 mixed.
pub fn bucket(q_len: usize, chunk: Option<usize>) -> usize {
    if q_len == 1 {
        0
    } else if Some(q_len) == chunk {
        1
    } else {
        2
    }
}

/// A batch ready to launch.
#[derive(Clone, Debug)]
pub struct Batch {
    pub inputs: RpaInputs,
    pub opts: RpaOptions,
    /// The fields (`seqs` in launch order, dtypes filled in).
    pub config: BatchConfig,
    /// Sequences per kernel: decode, prefill, mixed.
    pub buckets: [usize; 3],
    /// Set when the sequences were reordered for the kernels.
    pub reordered: Option<String>,
    pub source: Source,
}

fn fmt_seqs(seqs: &[(usize, usize)]) -> String {
    seqs.iter().map(|(q, kv)| format!("{q}:{kv}")).collect::<Vec<_>>().join(",")
}

fn usize_check(ok: bool, msg: &str) -> Result<(), CliError> {
    if ok {
        Ok(())
    } else {
        Err(CliError::Usage(msg.to_string()))
    }
}

/// Checks the fields that shape the options (whichever way the batch is given).
fn check_options(c: &BatchConfig) -> Result<(), CliError> {
    usize_check(c.chunk != Some(0), "--chunk must be positive")?;
    usize_check(c.sliding_window != Some(0), "--sliding-window must be positive")?;
    for (flag, blocks) in [
        ("--blocks", &c.blocks),
        ("--decode-blocks", &c.decode_blocks),
        ("--prefill-blocks", &c.prefill_blocks),
        ("--mixed-blocks", &c.mixed_blocks),
    ] {
        if let Some(b) = blocks {
            check_blocks(b).map_err(|e| CliError::Usage(format!("{flag}: {e}")))?;
        }
    }
    Ok(())
}

/// `[bq, bkv]` (computed whole) or `[bq, bkv, bq_compute, bkv_compute]`, checked by [`check_blocks`].
fn block_sizes(b: &[usize]) -> BlockSizes {
    match *b {
        [bq, bkv, bq_compute, bkv_compute] => BlockSizes { bq, bkv, bq_compute, bkv_compute },
        _ => BlockSizes { bq: b[0], bkv: b[1], bq_compute: b[0], bkv_compute: b[1] },
    }
}

/// Options of a call from the batch fields: every field of [`RpaOptions`] has its flag.
fn options(c: &BatchConfig, head_dim: usize, kv_dtype: DType) -> RpaOptions {
    let (k, v) = match kv_dtype {
        DType::I8 => (Some(1.0 / 127.0), Some(1.0 / 127.0)),
        DType::F8E4M3 | DType::F8E5M2 => (Some(1.0), Some(1.0)),
        _ => (None, None),
    };
    let blocks = |b: &Option<Vec<usize>>| b.as_deref().map(block_sizes);
    let every = blocks(&c.blocks);
    RpaOptions {
        causal: !c.non_causal,
        update_kv_cache: !c.kv_share,
        sm_scale: c.sm_scale.unwrap_or(1.0 / (head_dim as f64).sqrt()),
        sliding_window: c.sliding_window,
        soft_cap: c.soft_cap,
        mask_value: c.mask_value,
        acc_dtype: c.acc_dtype.map(AccDtype::dtype),
        q_scale: c.q_scale,
        k_scale: c.k_scale.or(k),
        v_scale: c.v_scale.or(v),
        chunk_prefill_size: c.chunk,
        decode_blocks: blocks(&c.decode_blocks).or(every.map(|b| BlockSizes { bq: 1, bq_compute: 1, ..b })),
        prefill_blocks: blocks(&c.prefill_blocks).or(every),
        mixed_blocks: blocks(&c.mixed_blocks).or(every),
        vmem_limit: c.vmem_limit_mib.map(|m| m << 20),
        validate: !c.no_validate,
        return_lse: c.lse,
        attention_sink: c.sinks.as_ref().map(|s| rpa_dsl::Array::from_f64(DType::F32, &[s.len()], s)),
    }
}

/// Reads `dir/name.npy` as one of `expected`, as saved: another dtype is refused, naming the file,
/// the dtype found and the one expected (and `hint`: where the expectation comes from).
fn read_input(dir: &Path, name: &str, expected: &[DType], hint: &str) -> Result<rpa_dsl::Array, CliError> {
    let path = dir.join(format!("{name}.npy"));
    let refused = |e: String| CliError::Failed(format!("{}: {e} ({hint})", path.display()));
    let npy = npy::read(&path).map_err(CliError::Failed)?;
    npy.dtype_among(expected).and_then(|d| npy.to_array(d)).map_err(refused)
}

/// Reads `dir/name.npy` as the dtype of the choice `given`, or of any choice of `T`.
fn read_choice<T: DtypeChoice>(dir: &Path, name: &str, given: Option<T>) -> Result<(T, rpa_dsl::Array), CliError> {
    let choices = given.map_or_else(|| T::value_variants().to_vec(), |c| vec![c]);
    let dtypes: Vec<DType> = choices.iter().map(|c| c.dtype()).collect();
    let a = read_input(dir, name, &dtypes, &T::flag())?;
    let i = dtypes.iter().position(|&d| d == a.dtype()).expect("read as one of the expected dtypes");
    Ok((choices[i], a))
}

impl Batch {
    /// Builds the random batch of `config` (as the upstream tests do: pages scattered over the
    /// cache, NaN in every slot that holds no token yet).
    pub fn from_config(mut config: BatchConfig, source: Source) -> Result<Batch, CliError> {
        let c = &config;
        usize_check(c.head_dim > 0, "--head-dim must be positive")?;
        usize_check(c.page_size > 0, "--page-size must be positive")?;
        usize_check(!c.seqs.is_empty(), "the batch has no sequences")?;
        check_heads(c.heads).map_err(CliError::Usage)?;
        check_options(c)?;
        let q_dtype = c.dtype.map_or(DType::Bf16, QueryDtype::dtype);
        let kv_dtype = c.kv_dtype.map_or(q_dtype, KvDtype::dtype);
        let mut seqs = c.seqs.clone();
        seqs.sort_by_key(|s| bucket(s.0, c.chunk));
        let reordered = (seqs != c.seqs).then(|| {
            format!(
                "sequences reordered decode → prefill → mixed for the kernels: {} (given: {})",
                fmt_seqs(&seqs),
                fmt_seqs(&c.seqs)
            )
        });
        let mut spec = BatchSpec::new(&seqs, c.heads, c.head_dim, c.page_size, q_dtype);
        spec.kv_dtype = kv_dtype;
        spec.seed = c.seed;
        let mut x = make_batch(&spec);
        let count = |b| seqs.iter().filter(|s| bucket(s.0, c.chunk) == b).count();
        let buckets = [count(0), count(1), count(2)];
        x.distribution = [buckets[0] as i32, (buckets[0] + buckets[1]) as i32, seqs.len() as i32];
        let opts = options(c, c.head_dim, kv_dtype);
        if !opts.update_kv_cache {
            write_new_kv(&mut x);
        }
        config.seqs = seqs;
        config.dtype = Some(config.dtype.unwrap_or(QueryDtype::Bf16));
        config.kv_dtype = KvDtype::of(kv_dtype);
        Ok(Batch { inputs: x, opts, config, buckets, reordered, source })
    }

    /// Reads a batch saved as `.npy` files (see [`Batch::save_inputs`]), each as saved (see
    /// [`npy`]); the options come from `config` (the flags and the directory's optional
    /// `batch.json`), whose dtypes, when given, the files must have.
    pub fn from_npy_dir(dir: &Path, mut config: BatchConfig) -> Result<Batch, CliError> {
        check_options(&config)?;
        let failed = |m: String| CliError::Failed(format!("{}: {m}", dir.display()));
        let (q_choice, queries) = read_choice(dir, "queries", config.dtype)?;
        let (kv_choice, kv_cache) = read_choice(dir, "kv_cache", config.kv_dtype)?;
        let kv_dtype = kv_cache.dtype();
        let keys = read_input(dir, "keys", &[kv_dtype], "the dtype of kv_cache.npy")?;
        let values = read_input(dir, "values", &[kv_dtype], "the dtype of kv_cache.npy")?;
        for (name, a, rank) in
            [("queries", &queries, 3), ("keys", &keys, 3), ("values", &values, 3), ("kv_cache", &kv_cache, 5)]
        {
            if a.shape().len() != rank {
                return Err(failed(format!("{name}.npy must be {rank}-D, got shape {:?}", a.shape())));
            }
        }
        let ints = |name: &str| {
            let a = read_input(dir, name, &[DType::I32], "the metadata are int32")?;
            Ok::<_, CliError>(a.bits().iter().map(|&b| b as i32).collect::<Vec<i32>>())
        };
        let (kv_lens, page_indices, cu_q_lens) = (ints("kv_lens")?, ints("page_indices")?, ints("cu_q_lens")?);
        let distribution: [i32; 3] = ints("distribution")?
            .try_into()
            .map_err(|v: Vec<i32>| failed(format!("distribution.npy must hold 3 values, got {}", v.len())))?;
        let n = distribution[2];
        if n < 0 || n as usize > kv_lens.len() || n as usize >= cu_q_lens.len() {
            return Err(failed(format!(
                "distribution[2] = {n} sequences, but kv_lens has {} and cu_q_lens {} entries",
                kv_lens.len(),
                cu_q_lens.len()
            )));
        }
        let n = n as usize;
        let seqs: Vec<(usize, usize)> =
            (0..n).map(|b| ((cu_q_lens[b + 1] - cu_q_lens[b]).max(0) as usize, kv_lens[b].max(0) as usize)).collect();
        let x = RpaInputs { queries, keys, values, kv_cache, kv_lens, page_indices, cu_q_lens, distribution };
        let (i, j) = (distribution[0].clamp(0, n as i32) as usize, distribution[1].clamp(0, n as i32) as usize);
        let buckets = [i, j.saturating_sub(i), n.saturating_sub(j.max(i))];
        config.seqs = seqs;
        config.heads = (x.queries.shape()[1], x.keys.shape()[1]);
        config.head_dim = x.head_dim();
        config.page_size = x.page_size();
        config.dtype = Some(q_choice);
        config.kv_dtype = Some(kv_choice);
        let opts = options(&config, x.head_dim(), kv_dtype);
        Ok(Batch { inputs: x, opts, config, buckets, reordered: None, source: Source::NpyDir(dir.to_path_buf()) })
    }

    /// Validates the batch and the options as every call does (also when the calls skip it:
    /// `--no-validate`), so that bad metadata is an error before anything runs.
    pub fn validate(&self) -> Result<(), crate::rpa::validate::RpaError> {
        crate::rpa::validate::validate_static(&self.inputs, &self.opts)?;
        crate::rpa::validate::validate_dynamic(&self.inputs, &self.opts)
    }

    /// Writes the inputs as `.npy` files and the options as `batch.json` into `dir`, so that
    /// `--input dir` reruns the same call.
    pub fn save_inputs(&self, dir: &Path) -> Result<Vec<PathBuf>, String> {
        let x = &self.inputs;
        let mut files = Vec::new();
        let mut put = |name: &str, f: &dyn Fn(&Path) -> Result<(), String>| {
            let p = dir.join(name);
            f(&p)?;
            files.push(p);
            Ok::<(), String>(())
        };
        put("queries.npy", &|p| npy::write_array(p, &x.queries))?;
        put("keys.npy", &|p| npy::write_array(p, &x.keys))?;
        put("values.npy", &|p| npy::write_array(p, &x.values))?;
        put("kv_cache.npy", &|p| npy::write_array(p, &x.kv_cache))?;
        put("kv_lens.npy", &|p| npy::write_i32(p, &[x.kv_lens.len()], &x.kv_lens))?;
        let (seqs, pps) = (x.max_num_seqs(), x.pages_per_seq());
        put("page_indices.npy", &|p| npy::write_i32(p, &[seqs, pps], &x.page_indices))?;
        put("cu_q_lens.npy", &|p| npy::write_i32(p, &[x.cu_q_lens.len()], &x.cu_q_lens))?;
        put("distribution.npy", &|p| npy::write_i32(p, &[3], &x.distribution))?;
        let json = serde_json::to_string_pretty(&self.config).expect("serializable");
        put("batch.json", &|p| std::fs::write(p, &json).map_err(|e| format!("{}: {e}", p.display())))?;
        Ok(files)
    }

    /// `(q_len, kv_len)` of the sequences, in launch order.
    pub fn seqs(&self) -> &[(usize, usize)] {
        &self.config.seqs
    }

    /// New tokens and context tokens of the batch.
    pub fn tokens(&self) -> (usize, usize) {
        (self.seqs().iter().map(|s| s.0).sum(), self.seqs().iter().map(|s| s.1).sum())
    }

    /// One line: sequences per kernel, tokens, heads, dtypes, page size.
    pub fn describe(&self) -> String {
        let x = &self.inputs;
        let (q, kv) = self.tokens();
        let [d, p, m] = self.buckets;
        let chunk = self.opts.chunk_prefill_size.map_or(String::new(), |c| format!(" of {c}"));
        format!(
            "{} sequences ({d} decode, {p} prefill chunk{}{chunk}, {m} mixed), {q} new tokens, {kv} context tokens; \
             heads {}/{}, head_dim {}, {} queries, {} cache, page {}",
            self.seqs().len(),
            if p == 1 { "" } else { "s" },
            x.num_q_heads(),
            x.num_kv_heads(),
            x.head_dim(),
            x.queries.dtype(),
            dtype_name(x.kv_cache.dtype()),
            x.page_size()
        )
    }

    /// The options that differ from a plain causal call, one line.
    pub fn describe_options(&self) -> String {
        let o = &self.opts;
        let mut parts =
            vec![if o.causal { "causal" } else { "non-causal" }.to_string(), format!("sm_scale {:.6}", o.sm_scale)];
        if !o.update_kv_cache {
            parts.push("KV-share (no cache update)".into());
        }
        if let Some(w) = o.sliding_window {
            parts.push(format!("sliding window {w}"));
        }
        if let Some(c) = o.soft_cap {
            parts.push(format!("soft cap {c}"));
        }
        if let Some(m) = o.mask_value {
            parts.push(format!("mask value {m:e}"));
        }
        if let Some(d) = o.acc_dtype {
            parts.push(format!("{d} accumulator"));
        }
        if let Some(q) = o.q_scale {
            parts.push(format!("q_scale {q:.6}"));
        }
        if let (Some(k), Some(v)) = (o.k_scale, o.v_scale) {
            parts.push(format!("k_scale {k:.6}, v_scale {v:.6}"));
        }
        for (case, b) in [("decode", o.decode_blocks), ("prefill", o.prefill_blocks), ("mixed", o.mixed_blocks)] {
            if let Some(b) = b {
                parts.push(format!(
                    "{case} blocks bq {}, bkv {} (computed {}×{})",
                    b.bq, b.bkv, b.bq_compute, b.bkv_compute
                ));
            }
        }
        if let Some(v) = o.vmem_limit {
            parts.push(format!("VMEM limit {} MiB", v >> 20));
        }
        if let Some(s) = &o.attention_sink {
            parts.push(format!("{} attention sinks", s.len()));
        }
        if !o.validate {
            parts.push("calls without validation".into());
        }
        if o.return_lse {
            parts.push("log-sum-exp returned".into());
        }
        parts.join(", ")
    }

    /// The minimum HBM traffic of the call (see [`minimum_bytes`]).
    pub fn minimum_bytes(&self) -> u64 {
        minimum_bytes(&self.inputs, &self.opts, self.seqs())
    }

    /// The output error bound (`|kernel - reference| <= tol · (1 + |reference|)`) for the dtypes
    /// of the queries, the cache and the accumulator.
    pub fn tolerance(&self) -> f64 {
        let acc = self.opts.acc_dtype();
        let tolerance = crate::rpa::fuzz::tolerance;
        tolerance(self.inputs.queries.dtype(), self.inputs.kv_cache.dtype()).max(tolerance(acc, acc))
    }
}

/// The minimum HBM traffic of a call: every K/V row the attention can see read once (with a
/// sliding window only the rows inside some query's window), the queries read and the outputs
/// written once, the new K/V written once (unless KV-share), and the log-sum-exp written when asked.
/// Equals `minimum_bytes` of `kernels/benches/rpa.rs` for causal calls without a window.
pub fn minimum_bytes(x: &RpaInputs, opts: &RpaOptions, seqs: &[(usize, usize)]) -> u64 {
    let (hq, hkv, d) = (x.num_q_heads(), x.num_kv_heads(), x.head_dim());
    let kv_row = 2 * hkv * d * x.kv_cache.dtype().bytes();
    let q_row = hq * d * x.queries.dtype().bytes();
    let visible = |&(q, kv): &(usize, usize)| opts.sliding_window.map_or(kv, |w| kv.min(q + w - 1));
    let kv: usize = seqs.iter().map(visible).sum();
    let q: usize = seqs.iter().map(|s| s.0).sum();
    let new_kv = if opts.update_kv_cache { q * kv_row } else { 0 };
    let lse = if opts.return_lse { q * hq * 4 } else { 0 };
    (kv * kv_row + 2 * q * q_row + new_kv + lse) as u64
}

/// Writes the new tokens' K/V into their cache slots (a KV-share batch reads them from there).
fn write_new_kv(x: &mut RpaInputs) {
    let shape = x.cache_shape();
    let rows = merge_kv(&x.keys, &x.values);
    let rows_shape = [1, rows.shape()[0], shape[2], shape[3], shape[4]];
    let (ps, pps) = (x.page_size(), x.pages_per_seq());
    for b in 0..x.distribution[2] as usize {
        let q0 = x.cu_q_lens[b] as usize;
        let q = x.cu_q_lens[b + 1] as usize - q0;
        let kv = x.kv_lens[b] as usize;
        for i in 0..q {
            let pos = kv - q + i;
            let page = x.page_indices[b * pps + pos / ps] as usize;
            for c in 0..shape[2] * shape[3] {
                for e in 0..shape[4] {
                    x.kv_cache.bits_mut()[cache_index(&shape, page, pos % ps, c, e)] =
                        rows.bits()[cache_index(&rows_shape, 0, q0 + i, c, e)];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seqs_and_heads() {
        assert_eq!(parse_seqs("1:230, 32:96,5:18").unwrap(), vec![(1, 230), (32, 96), (5, 18)]);
        assert!(parse_seqs("1:x").unwrap_err().contains("kv_len"));
        assert!(parse_seqs("5:3").unwrap_err().contains("smaller"));
        assert!(parse_seqs("0:3").is_err());
        assert!(parse_seqs("1:3,").is_err());
        assert!(parse_seqs("13").is_err());
        assert_eq!(parse_heads("32:8").unwrap(), (32, 8));
        assert_eq!(parse_heads("6/2").unwrap(), (6, 2));
        assert!(parse_heads("6:4").is_err());
        assert!(parse_heads("6:0").is_err());
    }

    #[test]
    fn json_config_accepts_text_or_arrays_and_rejects_unknown_fields() {
        let a: BatchConfig = serde_json::from_str(r#"{"seqs": "1:20,4:8", "heads": "4:2", "chunk": 4}"#).unwrap();
        let b: BatchConfig =
            serde_json::from_str(r#"{"seqs": [[1, 20], [4, 8]], "heads": [4, 2], "chunk": 4}"#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.head_dim, 128);
        assert!(serde_json::from_str::<BatchConfig>(r#"{"seqs": "1:20", "sequences": 3}"#).is_err());
        assert!(serde_json::from_str::<BatchConfig>(r#"{"seqs": [[4, 2]]}"#).is_err());
        let back: BatchConfig = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn dtype_fields_use_the_flag_names_and_refuse_others() {
        fn names<T: DtypeChoice>() {
            for c in T::value_variants() {
                assert_eq!(c.to_possible_value().unwrap().get_name(), dtype_name(c.dtype()), "{}", T::FIELD);
            }
        }
        names::<QueryDtype>();
        names::<KvDtype>();
        names::<AccDtype>();
        let c: BatchConfig =
            serde_json::from_str(r#"{"dtype": "bfloat16", "kv_dtype": "float8_e4m3fn", "acc_dtype": "bf16"}"#).unwrap();
        assert_eq!(
            (c.dtype, c.kv_dtype, c.acc_dtype),
            (Some(QueryDtype::Bf16), Some(KvDtype::Fp8e4m3), Some(AccDtype::Bf16))
        );
        let text = serde_json::to_string(&c).unwrap();
        assert!(text.contains(r#""dtype":"bf16","kv_dtype":"fp8e4m3""#), "{text}");
        for (json, message) in [
            (r#"{"dtype": "f64"}"#, "`dtype` is \"f64\", expected f32, bf16 or f16"),
            (r#"{"kv_dtype": "i32"}"#, "`kv_dtype` is \"i32\", expected f32, bf16, f16, fp8e4m3, fp8e5m2 or int8"),
            (r#"{"acc_dtype": "f16"}"#, "`acc_dtype` is \"f16\", expected f32 or bf16"),
        ] {
            let err = serde_json::from_str::<BatchConfig>(json).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn every_option_comes_from_a_field() {
        let config = BatchConfig {
            seqs: vec![(1, 20)],
            non_causal: true,
            kv_share: true,
            sm_scale: Some(0.5),
            sliding_window: Some(9),
            soft_cap: Some(30.0),
            mask_value: Some(f64::NEG_INFINITY),
            acc_dtype: Some(AccDtype::Bf16),
            q_scale: Some(0.25),
            k_scale: Some(2.0),
            v_scale: Some(3.0),
            chunk: Some(4),
            blocks: Some(vec![8, 32]),
            mixed_blocks: Some(vec![16, 64, 8, 32]),
            vmem_limit_mib: Some(64),
            no_validate: true,
            lse: true,
            sinks: Some(vec![0.5, -1.0]),
            ..Default::default()
        };
        // Every field of RpaOptions, none defaulted: a new option fails to compile here until it
        // has its flag.
        let want = RpaOptions {
            causal: false,
            update_kv_cache: false,
            sm_scale: 0.5,
            sliding_window: Some(9),
            soft_cap: Some(30.0),
            mask_value: Some(f64::NEG_INFINITY),
            acc_dtype: Some(DType::Bf16),
            q_scale: Some(0.25),
            k_scale: Some(2.0),
            v_scale: Some(3.0),
            chunk_prefill_size: Some(4),
            decode_blocks: Some(BlockSizes { bq: 1, bkv: 32, bq_compute: 1, bkv_compute: 32 }),
            prefill_blocks: Some(BlockSizes { bq: 8, bkv: 32, bq_compute: 8, bkv_compute: 32 }),
            mixed_blocks: Some(BlockSizes { bq: 16, bkv: 64, bq_compute: 8, bkv_compute: 32 }),
            vmem_limit: Some(64 << 20),
            validate: false,
            return_lse: true,
            attention_sink: Some(rpa_dsl::Array::from_f64(DType::F32, &[2], &[0.5, -1.0])),
        };
        assert_eq!(options(&config, 128, DType::F32), want);
        // The JSON form keeps them all, -inf included.
        let text = serde_json::to_string(&config).unwrap();
        assert!(text.contains(r#""mask_value":"-inf""#), "{text}");
        assert_eq!(serde_json::from_str::<BatchConfig>(&text).unwrap(), config);
        let bad = serde_json::from_str::<BatchConfig>(r#"{"mask_value": "lots"}"#).unwrap_err().to_string();
        assert!(bad.contains("`lots` is not a number"), "{bad}");
    }

    #[test]
    fn sequences_are_reordered_by_kernel() {
        let config = BatchConfig {
            seqs: vec![(7, 20), (1, 9), (4, 8), (1, 5)],
            heads: (4, 2),
            chunk: Some(4),
            dtype: Some(QueryDtype::F32),
            ..Default::default()
        };
        let b = Batch::from_config(config, Source::Flags).unwrap();
        assert_eq!(b.seqs(), &[(1, 9), (1, 5), (4, 8), (7, 20)]);
        assert_eq!(b.inputs.distribution, [2, 3, 4]);
        assert_eq!(b.buckets, [2, 1, 1]);
        assert!(b.reordered.as_deref().unwrap().contains("1:9,1:5,4:8,7:20"));
        assert_eq!(b.inputs.kv_lens[..4], [9, 5, 8, 20]);
        // Without a chunk every non-decode sequence is mixed; an ordered batch is not reordered.
        let config = BatchConfig { seqs: vec![(1, 9), (4, 8)], heads: (4, 2), ..Default::default() };
        let b = Batch::from_config(config, Source::Flags).unwrap();
        assert_eq!((b.inputs.distribution, b.reordered), ([1, 1, 2], None));
        assert_eq!(b.inputs.queries.dtype(), DType::Bf16);
    }

    #[test]
    fn minimum_bytes_counts_rows_once() {
        let config = BatchConfig {
            seqs: vec![(1, 64), (8, 40)],
            heads: (4, 2),
            dtype: Some(QueryDtype::F32),
            ..Default::default()
        };
        let b = Batch::from_config(config, Source::Flags).unwrap();
        let (kv_row, q_row) = (2 * 2 * 128 * 4, 4 * 128 * 4);
        assert_eq!(b.minimum_bytes(), (104 * kv_row + 2 * 9 * q_row + 9 * kv_row) as u64);
        let windowed = RpaOptions { sliding_window: Some(10), update_kv_cache: false, ..b.opts.clone() };
        assert_eq!(minimum_bytes(&b.inputs, &windowed, b.seqs()), ((10 + 17) * kv_row + 2 * 9 * q_row) as u64);
    }

    #[test]
    fn kv_share_puts_the_new_rows_in_the_cache() {
        let config = BatchConfig { seqs: vec![(3, 20)], heads: (2, 1), kv_share: true, ..Default::default() };
        let b = Batch::from_config(config.clone(), Source::Flags).unwrap();
        let plain = Batch::from_config(BatchConfig { kv_share: false, ..config }, Source::Flags).unwrap();
        let updated = crate::rpa::reference::ragged_paged_attention(&plain.inputs, &plain.opts).1;
        assert_eq!(b.inputs.kv_cache, updated);
        assert!(!b.opts.update_kv_cache);
    }
}
