//! The results: one row per op x direction x shape, printed as a table and written as JSON.

use serde::Serialize;
use wgpu_norm::{Direction, Norm};

/// One measured row.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub op: &'static str,
    pub direction: &'static str,
    pub dtype: String,
    /// Forward: x + residual normalized, h written out; backward: dh added to dx.
    pub fused_residual: bool,
    /// Backward: read the forward's saved statistics (else recomputed).
    pub saved_stats: bool,
    /// Rows per token, normalized on their own (QK-norm); rows counts every head.
    pub heads: usize,
    pub rows: usize,
    pub cols: usize,
    /// Bytes moved, by the byte model.
    pub bytes: u64,
    /// Median GPU time.
    pub gpu_ms: f64,
    pub gpu_min_ms: f64,
    pub gpu_gbps: f64,
    /// gpu_gbps / stream_gbps.
    pub roofline_fraction: f64,
    /// gpu_gbps / GB/s of the stream copy of the same shape and dtype.
    pub shape_copy_fraction: f64,
    pub cpu_ref_ms: f64,
    pub cpu_fast_ms: f64,
    /// Largest ||gpu - ref|| / ||ref|| over the outputs.
    pub max_rel_err: f64,
    /// Largest ||cpu fast - ref|| / ||ref|| over the outputs.
    pub cpu_fast_rel_err: f64,
    /// Median time of the naive baseline (f32, rows a multiple of 4 long, a backward from
    /// saved statistics, on adapters with subgroups), timed in the same turns; `None` where
    /// it has no kernel.
    pub naive_ms: Option<f64>,
    /// naive_ms / gpu_ms: above 1 where the crate is faster.
    pub vs_naive: Option<f64>,
    /// The naive baseline's GB/s over the same-shape copy's.
    pub naive_copy_fraction: Option<f64>,
    /// Rows the naive baseline covers: the GB/s of its floor (`Naive::record_floor`: the
    /// accesses of any kernel that reads a row twice; a backward's without dgamma, a
    /// forward's without gamma) over the same-shape copy's, by this row's byte model.
    pub floor_copy_fraction: Option<f64>,
    /// The GB/s of this kernel bare (`Workload::record_bare`: its launch without gamma, beta
    /// and their gradients), timed in the same turns, over the same-shape copy's, by this
    /// row's byte model: what the kernel's form reaches before the affine parameters.
    pub bare_copy_fraction: f64,
}

/// One launch of the stream-copy roofline sweep.
#[derive(Clone, Debug, Serialize)]
pub struct SweepPoint {
    pub workgroup_size: u32,
    pub max_row_threads: u32,
    pub gbps: f64,
}

#[derive(Debug, Serialize)]
pub struct AdapterJson {
    pub name: String,
    pub backend: String,
    pub driver: String,
    pub device_type: String,
    /// Whether the device has subgroup operations (the naive baseline needs them).
    pub subgroups: bool,
}

/// The JSON document `--json` writes.
#[derive(Debug, Serialize)]
pub struct Report {
    pub adapter: AdapterJson,
    pub timing: &'static str,
    /// The kernels kept wgpu's bounds checks (`--checked-shaders`).
    pub checked_shaders: bool,
    pub copy_gbps: f64,
    pub stream_gbps: f64,
    /// The host side of one 1x4096 RMSNorm forward.
    #[serde(flatten)]
    pub host: HostOverhead,
    /// The stream copy under each launch tried; stream_gbps is the best.
    pub stream_sweep: Vec<SweepPoint>,
    pub results: Vec<Row>,
}

/// Medians, in microseconds, of the host side of one 1x4096 RMSNorm forward.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct HostOverhead {
    /// Binding the op: checks, parameter block, bind group (its pipeline already compiled).
    /// This and the encode figures are timed warm, calls back to back.
    pub bind_us: f64,
    /// Encoding the bound op into an open compute pass.
    pub encode_us: f64,
    /// Encoding the bound op into an encoder, in a compute pass of its own.
    pub encode_pass_us: f64,
    /// Beginning and ending an empty compute pass the same way: the floor under
    /// encode_pass_us that wgpu charges for any pass.
    pub empty_pass_us: f64,
    /// encode_pass_us, each call timed right after the previous one's work ran: on a CPU adapter
    /// that work ran on the encoding cores, and the call starts with cold caches.
    pub cold_encode_pass_us: f64,
    /// Making an encoder, encoding the bound op, finishing and submitting, without waiting.
    pub encode_submit_us: f64,
    /// The one-shot call: binding and encoding in one.
    pub oneshot_encode_us: f64,
    /// Submitting a command buffer holding one empty compute pass: the adapter's own floor
    /// under encode_submit_us (on lavapipe submission runs the work in the caller's thread).
    pub empty_pass_submit_us: f64,
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

pub fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

const HEADER: [&str; 16] = [
    "op",
    "dir",
    "rows x cols",
    "GPU ms",
    "GPU min ms",
    "GPU GB/s",
    "% of stream roofline",
    "% of same-shape copy",
    "naive: % of copy",
    "vs naive",
    "floor: % of copy",
    "bare: % of copy",
    "CPU ref ms",
    "CPU fast ms",
    "GPU speedup vs CPU fast",
    "max rel err",
];

/// The table, as Markdown so it pastes into BENCHMARKS.md as it is.
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 16]> = rows
        .iter()
        .map(|r| {
            [
                r.op.to_string(),
                r.direction.to_string(),
                format!("{}x{}", r.rows, r.cols),
                format!("{:.3}", r.gpu_ms),
                format!("{:.3}", r.gpu_min_ms),
                format!("{:.2}", r.gpu_gbps),
                format!("{:.1}%", 100.0 * r.roofline_fraction),
                format!("{:.1}%", 100.0 * r.shape_copy_fraction),
                r.naive_copy_fraction.map_or("-".to_string(), |f| format!("{:.1}%", 100.0 * f)),
                r.vs_naive.map_or("-".to_string(), |v| format!("{v:.2}x")),
                r.floor_copy_fraction.map_or("-".to_string(), |f| format!("{:.1}%", 100.0 * f)),
                format!("{:.1}%", 100.0 * r.bare_copy_fraction),
                format!("{:.2}", r.cpu_ref_ms),
                format!("{:.3}", r.cpu_fast_ms),
                format!("{:.2}x", r.cpu_fast_ms / r.gpu_ms),
                format!("{:.1e}", r.max_rel_err),
            ]
        })
        .collect();
    let widths: Vec<usize> = (0..HEADER.len())
        .map(|i| cells.iter().map(|c| c[i].len()).chain([HEADER[i].len()]).max().unwrap_or(0))
        .collect();
    let line = |c: &[String]| {
        let padded: Vec<String> =
            c.iter()
                .enumerate()
                .map(|(i, s)| {
                    if i < 3 { format!("{s:<w$}", w = widths[i]) } else { format!("{s:>w$}", w = widths[i]) }
                })
                .collect();
        format!("| {} |\n", padded.join(" | "))
    };
    let mut out = line(&HEADER.map(String::from));
    let rule: String = widths
        .iter()
        .enumerate()
        .map(
            |(i, w)| {
                if i < 3 { format!("|{}", "-".repeat(w + 2)) } else { format!("|{}:", "-".repeat(w + 1)) }
            },
        )
        .collect();
    out.push_str(&rule);
    out.push_str("|\n");
    for c in &cells {
        out.push_str(&line(c));
    }
    out
}

/// Per direction: RMSNorm time over LayerNorm time for every shape that has both.
pub fn rms_over_layer(rows: &[Row]) -> Vec<String> {
    let mut lines = Vec::new();
    for dir in Direction::ALL {
        let mut ratios = Vec::new();
        for r in rows.iter().filter(|r| r.op == Norm::RmsNorm.name() && r.direction == dir.name()) {
            let twin = rows.iter().find(|l| {
                l.op == Norm::LayerNorm.name()
                    && l.direction == dir.name()
                    && (l.rows, l.cols) == (r.rows, r.cols)
            });
            if let Some(l) = twin {
                ratios.push((format!("{}x{}", r.rows, r.cols), r.gpu_ms / l.gpu_ms));
            }
        }
        if ratios.is_empty() {
            continue;
        }
        let geo = (ratios.iter().map(|(_, v)| v.ln()).sum::<f64>() / ratios.len() as f64).exp();
        let each: Vec<String> = ratios.iter().map(|(s, v)| format!("{s} {v:.2}")).collect();
        lines.push(format!(
            "{}: RMSNorm time / LayerNorm time = {geo:.2} (geometric mean; {}), i.e. {:.0}% {} time \
             than LayerNorm; the RMSNorm paper reports 7-64% less.",
            dir.name(),
            each.join(", "),
            (1.0 - geo).abs() * 100.0,
            if geo <= 1.0 { "less" } else { "more" }
        ));
    }
    lines
}

/// HBM3 bandwidth of an H100 SXM: the floor of a memory-bound kernel there is bytes / this.
pub const H100_BYTES_PER_S: f64 = 3.35e12;

/// Per shape and direction, the time the byte model's bytes take at H100 bandwidth.
pub fn h100_floor(rows: &[Row]) -> String {
    let mut out = String::from("H100-class floor (bytes by the byte model / 3.35 TB/s):");
    for r in rows {
        out.push_str(&format!(
            "\n  {} {} {}x{}: {:.1} MB -> {:.2} us",
            r.op,
            r.direction,
            r.rows,
            r.cols,
            r.bytes as f64 / 1e6,
            r.bytes as f64 / H100_BYTES_PER_S * 1e6
        ));
    }
    out
}
