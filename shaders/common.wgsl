// Shared by every kernel family: the parameter block, flag bits, the row mapping
// and the workgroup-memory reduction that the subgroup path falls back to.
//
// The host prepends `const MAX_CACHE` and `const MAX_WORKGROUP` (one source of truth in
// src/shader.rs) and, for the subgroup variant, `enable subgroups;`.

// Mirrored field for field by `Params` in src/params.rs (a test compares the sizes).
// Offsets are in elements from the start of each binding, so callers can keep tensors
// at any 4-byte offset inside a larger buffer.
struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    flags: u32,
    x_off: u32,
    y_off: u32,
    gamma_off: u32,
    beta_off: u32,
    mean_off: u32,
    rstd_off: u32,
    dy_off: u32,
    dx_off: u32,
    part_off: u32,
    part_rows: u32,
    dgamma_off: u32,
    dbeta_off: u32,
}

const FLAG_GAMMA: u32 = 1u;
const FLAG_BETA: u32 = 2u;
// Forward: write the per-row mean. Backward: read it instead of recomputing.
const FLAG_MEAN: u32 = 4u;
// Forward: write the per-row rstd. Backward: read it instead of recomputing.
const FLAG_RSTD: u32 = 8u;
// RMSNorm: y = g * x / (rms + eps) instead of g * x / sqrt(mean(x^2) + eps).
const FLAG_EPS_OUTSIDE: u32 = 16u;
const FLAG_DGAMMA: u32 = 32u;
const FLAG_DBETA: u32 = 64u;

// Threads of a workgroup.
override WORKGROUP_SIZE: u32 = 256u;
// Threads that share one row (a power of two dividing WORKGROUP_SIZE); the rest of the
// workgroup works on further rows, so short rows don't leave most threads idle.
override ROW_THREADS: u32 = 256u;
// 0: workgroup-memory tree. 1: subgroup butterfly (ROW_THREADS <= subgroup size).
// 2: subgroupAdd, then one exchange through workgroup memory (ROW_THREADS a multiple of
// the subgroup size). Chosen by the host from the adapter's subgroup size range.
override SUBGROUP_MODE: u32 = 0u;

@group(0) @binding(15) var<uniform> p: Params;

var<workgroup> red: array<vec4<f32>, MAX_WORKGROUP>;
var<private> local_index: u32;

fn has(flag: u32) -> bool {
    return (p.flags & flag) != 0u;
}

fn rows_per_group() -> u32 {
    return WORKGROUP_SIZE / ROW_THREADS;
}

// Blocks of rows_per_group() rows; workgroups stride over them, so any row count fits in
// a 1-D dispatch of at most 65,535 workgroups.
fn row_blocks() -> u32 {
    let r = rows_per_group();
    return (p.rows + r - 1u) / r;
}

// A row fits in registers when every thread holds at most MAX_CACHE of its elements.
fn row_is_cached() -> bool {
    return p.cols <= ROW_THREADS * MAX_CACHE;
}

// Sums v over the ROW_THREADS threads that share this thread's row. The leading barrier
// lets consecutive calls reuse `red` without a trailing one.
fn tree_row_sum(v: vec4<f32>) -> vec4<f32> {
    let lane = local_index % ROW_THREADS;
    workgroupBarrier();
    red[local_index] = v;
    workgroupBarrier();
    for (var o = ROW_THREADS / 2u; o > 0u; o = o / 2u) {
        if (lane < o) {
            red[local_index] = red[local_index] + red[local_index + o];
        }
        workgroupBarrier();
    }
    return red[local_index - lane];
}
