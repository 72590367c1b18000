// Shared by every kernel family: the parameter block, flag bits, the row mapping
// and the workgroup-memory reduction that the subgroup path falls back to.
//
// The host prepends `const MAX_CACHE` and `const MAX_WORKGROUP` (one source of truth in
// src/shader.rs) and appends the load/store helpers of the storage dtype (src/shader.rs,
// shaders/io_*.wgsl).
//
// Rows are walked in pairs of elements: thread `lane` of a row owns the pairs
// (2q, 2q + 1), q = lane + k * ROW_THREADS. A pair is one u32 word of a 16-bit dtype when
// the row starts on an even element, so packed stores need no read-modify-write there.

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
    res_off: u32,
    h_off: u32,
    dh_off: u32,
    // Elements from one row to the next (>= cols): rows may be a view into a wider tensor.
    stride: u32,
    // RMSNorm: elements the RMS is estimated from (partial RMSNorm); cols otherwise.
    norm_cols: u32,
    // Added to gamma in f32: y = xh * (gamma_shift + gamma).
    gamma_shift: f32,
    pad0: u32,
    pad1: u32,
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
// Fused residual: the norm's input is x + residual.
const FLAG_RESIDUAL: u32 = 128u;
// Forward: write the norm's input h = x + residual out.
const FLAG_H_OUT: u32 = 256u;
// Backward: add the gradient arriving on h to dx.
const FLAG_DH: u32 = 512u;

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

// A row fits in registers when every thread holds at most MAX_CACHE pairs of it.
fn row_is_cached() -> bool {
    return pairs_in_row() <= ROW_THREADS * MAX_CACHE;
}

fn pairs_in_row() -> u32 {
    return (p.cols + 1u) / 2u;
}

// In a streamed walk (j = 2 * lane, stepping 2 * ROW_THREADS), true every 32nd pair: the
// walk's partial sum is then added to its total, so a long walk rounds like a short one.
fn flush_now(j: u32) -> bool {
    return ((j / (2u * ROW_THREADS)) & 31u) == 31u;
}

// How many of the pair at j are inside a row of cnt elements: 0, 1 or 2.
fn pair_len(j: u32, cnt: u32) -> u32 {
    return min(cnt - min(j, cnt), 2u);
}

// 1 for each element of the pair at j that lies before `limit`, else 0.
fn pair_mask(j: u32, limit: u32) -> vec2<f32> {
    return vec2<f32>(select(0.0, 1.0, j < limit), select(0.0, 1.0, j + 1u < limit));
}

// Element i of a row (i = row * stride + j) of the norm's input: x, plus the residual
// when it is fused.
fn input(i: u32) -> f32 {
    var v = ld_x(p.x_off + i);
    if (has(FLAG_RESIDUAL)) {
        v = v + ld_res(p.res_off + i);
    }
    return v;
}

// The input pair at j of the row starting at base, zero past cnt elements; written out
// as h when the forward asks for it.
fn input_pair(base: u32, j: u32, cnt: u32) -> vec2<f32> {
    var v = vec2<f32>(0.0);
    let len = pair_len(j, cnt);
    if (len > 0u) {
        v.x = input(base + j);
    }
    if (len > 1u) {
        v.y = input(base + j + 1u);
    }
    return v;
}

fn gamma_at(j: u32) -> f32 {
    if (has(FLAG_GAMMA) && j < p.cols) {
        return p.gamma_shift + ld_gamma(p.gamma_off + j);
    }
    return 1.0;
}

fn gamma_pair(j: u32) -> vec2<f32> {
    return vec2<f32>(gamma_at(j), gamma_at(j + 1u));
}

// The backward's input pair: x is the forward's h (fused residual already added), so the
// backward binds one tensor fewer and stays within 8 storage buffers, WebGPU's default
// max_storage_buffers_per_shader_stage.
fn x_pair(base: u32, j: u32, cnt: u32) -> vec2<f32> {
    var v = vec2<f32>(0.0);
    let len = pair_len(j, cnt);
    if (len > 0u) {
        v.x = ld_x(p.x_off + base + j);
    }
    if (len > 1u) {
        v.y = ld_x(p.x_off + base + j + 1u);
    }
    return v;
}

fn dy_pair(base: u32, j: u32, cnt: u32) -> vec2<f32> {
    var v = vec2<f32>(0.0);
    let len = pair_len(j, cnt);
    if (len > 0u) {
        v.x = ld_dy(p.dy_off + base + j);
    }
    if (len > 1u) {
        v.y = ld_dy(p.dy_off + base + j + 1u);
    }
    return v;
}

// The gradient arriving on h (fused residual), zero when there is none.
fn dh_pair(base: u32, j: u32, cnt: u32) -> vec2<f32> {
    var v = vec2<f32>(0.0);
    let len = pair_len(j, cnt);
    if (has(FLAG_DH) && len > 0u) {
        v.x = ld_dh(p.dh_off + base + j);
        if (len > 1u) {
            v.y = ld_dh(p.dh_off + base + j + 1u);
        }
    }
    return v;
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
