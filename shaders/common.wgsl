//! include constants
//! include params
//! include tensors
//! include reduce
// Shared by every kernel family: the parameter block, flag bits, the row mapping
// and the workgroup-memory reduction that the subgroup path falls back to.
//
// `//! include` lines name what a file uses from elsewhere; src/shader.rs puts each in the
// module once. Besides files, it generates `constants` (MAX_CACHE, MAX_WORKGROUP and
// WHOLE_QUADS from the variant; GUARD_HI, GUARD_LO and TINY from src/ops/params.rs),
// `params` (`p`, the Params below: the uniform block or a copy that load_params makes, which
// every row kernel and the copy call first), `tensors` (each tensor's binding and its ld_/st_
// helpers, shaders/io_*.wgsl instantiated from the op tables, each in its own dtype) and
// `reduce` (reduce_subgroup.wgsl or reduce_workgroup.wgsl).
//
// Rows are walked in quads of four elements: thread `lane` of a row owns the quads
// starting at j = 4 * (lane + k * ROW_THREADS), so consecutive threads touch consecutive
// 16-byte vectors (coalesced on a GPU). Where every tensor of a call is quad-aligned the
// helpers move a quad with one vector load or store; elsewhere with four scalar ones.

// Mirrored field for field by `Params` in src/ops/params.rs. The offsets are in elements
// from the start of each binding, so callers can keep tensors at any element offset inside
// a larger buffer; there is one per binding number, in binding order, named after the
// tensor bound there in the op tables of src/ops (a test checks both).
struct Params {
    rows: u32,
    cols: u32,
    eps: f32,
    flags: u32,
    x_off: u32,
    gamma_off: u32,
    beta_off: u32,
    y_off: u32,
    mean_off: u32,
    rstd_off: u32,
    dy_off: u32,
    dx_off: u32,
    workspace_off: u32,
    dgamma_off: u32,
    dbeta_off: u32,
    residual_off: u32,
    h_off: u32,
    dh_off: u32,
    unused14_off: u32,
    unused15_off: u32,
    // Rows of partial sums the backward leaves per gradient in the workspace.
    partial_rows: u32,
    // Elements from one token's rows to the next: rows may be a view into a wider tensor.
    stride: u32,
    // RMSNorm: elements the RMS is estimated from (partial RMSNorm); cols otherwise.
    norm_cols: u32,
    // Added to gamma in f32: y = xh * (gamma_offset + gamma).
    gamma_offset: f32,
    // Rows per token (heads sharing gamma and beta), and elements from one head to the next.
    heads: u32,
    head_stride: u32,
    // 2^GUARD_HI and 2^GUARD_LO (rows whose squares leave f32's range, below), at run time.
    guard_hi: f32,
    guard_lo: f32,
    // Split rows (FLAG_SPLIT): segments per row, and elements per segment (a multiple of 4).
    chunks: u32,
    chunk_len: u32,
}

// A tensor that may be absent has the flag 1 << its binding number; the op tables of
// src/ops derive the same bits (a test checks them).
const FLAG_GAMMA: u32 = 2u;
const FLAG_BETA: u32 = 4u;
// Forward: write the per-row mean. Backward: read it instead of recomputing.
const FLAG_MEAN: u32 = 16u;
// Forward: write the per-row rstd. Backward: read it instead of recomputing.
const FLAG_RSTD: u32 = 32u;
const FLAG_DGAMMA: u32 = 512u;
const FLAG_DBETA: u32 = 1024u;
// Fused residual: the norm's input is x + residual.
const FLAG_RESIDUAL: u32 = 2048u;
// Forward: write the norm's input h = x + residual out.
const FLAG_H: u32 = 4096u;
// Backward: add the gradient arriving on h to dx.
const FLAG_DH: u32 = 8192u;
// Options of the config rather than tensors, above the binding bits.
// RMSNorm: y = g * x / (rms + eps) instead of g * x / sqrt(mean(x^2) + eps).
const FLAG_EPS_OUTSIDE: u32 = 65536u;
// RMSNorm: the RMS comes from the first norm_cols < cols elements (partial RMSNorm).
const FLAG_PARTIAL: u32 = 131072u;
// The residual is added to the norm's output (post-norm), not to its input.
const FLAG_ADD_AFTER: u32 = 262144u;
// Split rows: each row is walked as p.chunks segments of p.chunk_len elements, one per
// row slot (split_row). Without FLAG_SPLIT_FINISH a segment leaves its partial sums in the
// workspace; with it, it merges its row's partials and writes its part of the row.
const FLAG_SPLIT: u32 = 524288u;
const FLAG_SPLIT_FINISH: u32 = 1048576u;
// eps is below TINY: rows whose squares underflow would lose their variance, so the kernels
// that sum squares without a guard for it scale every row by magnitude_scale first.
const FLAG_TINY_EPS: u32 = 2097152u;
// A backward's streamed trip walks its rows' sums together, a gamma read serving them all;
// else one row after another (Tuning::joint_walks in src/tuning/rules.rs).
const FLAG_JOINT_WALKS: u32 = 4194304u;
// A tile backward's workgroup sums its slots' partial sums and stores one row of them
// (end_partial; Tuning::group_partials in src/tuning/rules.rs).
const FLAG_GROUP_PARTIALS: u32 = 8388608u;

// Threads of a workgroup.
override WORKGROUP_SIZE: u32 = 256u;
// Threads that share one row (a power of two dividing WORKGROUP_SIZE); the rest of the
// workgroup works on further rows, so short rows don't leave most threads idle.
override ROW_THREADS: u32 = 256u;
// 0: workgroup-memory tree. 1: subgroup butterfly (ROW_THREADS <= subgroup size).
// 2: subgroupAdd, then one exchange through workgroup memory (ROW_THREADS a multiple of
// the subgroup size). Chosen by the host from the adapter's subgroup size range. Mode 1
// leaves no barrier in the pipeline once the other branches fold away.
override SUBGROUP_MODE: u32 = 0u;
// The row is held in registers: MAX_CACHE quads per thread cover it (the host compiles the
// module with MAX_CACHE = the quads each thread needs, so the cached loops have a trip
// count known at compile time and unroll into registers). Otherwise rows are streamed.
override CACHED: bool = true;
// Most streamed rows a slot walks at once (where it has that many left): 4, or 2 where
// RMSNorm's forward walks short rows (Kernel::trip_rows in src/shader.rs); 1 for tile rows,
// which go one at a time.
override TRIP_ROWS: u32 = 4u;

var<workgroup> red: array<vec4<f32>, MAX_WORKGROUP>;
var<private> local_index: u32;

// The call's FLAG_* bits. An override rather than a uniform, so each pipeline is
// specialized for the tensors a call has: the tests of absent ones fold away, and no
// branch on them is left around a load or store.
override FLAGS: u32 = 0u;

fn has(flag: u32) -> bool {
    return (FLAGS & flag) != 0u;
}

fn rows_per_group() -> u32 {
    return WORKGROUP_SIZE / ROW_THREADS;
}

// The row of backward partial sums that slot `slot` of workgroup `w` adds to: its own, or its
// workgroup's (FLAG_GROUP_PARTIALS).
fn partial_row(w: u32, slot: u32) -> u32 {
    return select(w * rows_per_group() + slot, w, CACHED && has(FLAG_GROUP_PARTIALS));
}

// Blocks of rows_per_group() rows (of segments, with split rows); a workgroup may take many
// (slot_trips), so any row count fits in a 1-D dispatch of at most 65,535 workgroups.
fn row_blocks() -> u32 {
    let r = rows_per_group();
    return (select(p.rows, p.rows * p.chunks, has(FLAG_SPLIT)) + r - 1u) / r;
}

// The first column of the segment a split row's slot walks (split_row); 0 otherwise.
var<private> walk_start: u32;

// A row slot's segment of a split row: the row, the segment's index in it, whether the row
// exists, and the end of the segment (its start when the row does not exist: an empty
// walk). Sets walk_start and segment_cnt.
struct Segment {
    row: u32,
    index: u32,
    live: bool,
    end: u32,
}

fn split_row(v: u32) -> Segment {
    let row = v / p.chunks;
    let index = v % p.chunks;
    walk_start = index * p.chunk_len;
    let live = row < p.rows;
    segment_cnt = select(0u, segment_len(index), live);
    return Segment(row, index, live, walk_start + segment_cnt);
}

// The elements of segment c of a split row: chunk_len, or what is left for the last.
fn segment_len(c: u32) -> u32 {
    return min(p.chunk_len, p.cols - c * p.chunk_len);
}

// The elements of the segment a split row's slot walks (split_row).
var<private> segment_cnt: u32;

// The elements a row's statistics are over: the row's, or with split rows the segment's.
fn row_len() -> f32 {
    return f32(select(p.cols, segment_cnt, has(FLAG_SPLIT)));
}

// The sum of row `row`'s segments' partial sums, the same in every segment (each of the
// row's threads adds a fixed set of them, then one row_sum): from uniform control flow only.
fn merged_partials(s: Segment, lane: u32) -> vec4<f32> {
    var acc = vec4<f32>(0.0);
    for (var c = lane; c < select(0u, p.chunks, s.live); c = c + ROW_THREADS) {
        acc = acc + ld_workspace(p.workspace_off + 4u * (s.row * p.chunks + c), 4u);
    }
    return row_sum(acc);
}

// The rows one slot of workgroup w (of `groups`) visits: slot_trips adjacent rows from
// slot_start, one per trip, the same count for every slot of the workgroup (two functions,
// so that the count stays uniform for WGSL's uniformity analysis: Tint would take a struct
// holding the slot's start as non-uniform as a whole). Row blocks are
// dealt to workgroups in contiguous runs (the first blocks % groups take one more), and
// each slot takes its own run of the workgroup's rows: a CPU adapter runs a workgroup's
// subgroups one after another, each to its end, so a slot's rows are what one core
// streams; where they were groups x rows_per_group rows apart (128 KiB at 32768x128 on a
// 2-core lavapipe) its prefetcher started over every row: 1.5-2.4x there. Where a
// workgroup has one block (a GPU's forward) this is row block w's rows, slot by slot.
fn slot_trips(w: u32, groups: u32) -> u32 {
    return (row_blocks() + groups - 1u - w) / groups;
}

fn slot_start(w: u32, groups: u32, slot: u32) -> u32 {
    let blocks = row_blocks();
    let start = w * (blocks / groups) + min(w, blocks % groups);
    return start * rows_per_group() + slot * slot_trips(w, groups);
}

// Row `index`: whether it exists, its element count (0 when it does not: a slot past the
// last row sees an empty row but still joins every reduction) and its first element.
struct Row {
    index: u32,
    live: bool,
    cnt: u32,
    base: u32,
}

fn row_at(index: u32) -> Row {
    let live = index < p.rows;
    return Row(index, live, select(0u, p.cols, live), row_base(index));
}

// Row `index` of a streamed trip whose first row is `first`. Where it does not exist it reads
// that row's elements instead, so that every load of the trip's last walk has the constant
// length of a whole quad (WHOLE_QUADS) and no bounds test: 1.1x on SwiftShader. Such a row
// stores nothing and adds nothing to the partial sums: what it reads is not its own (and may
// be dx already, where dx is written in place of dy).
fn trip_row(index: u32, first: Row) -> Row {
    var row = row_at(index);
    row.base = select(first.base, row.base, row.live);
    return row;
}

// The first element of row `index`: head index % heads of token index / heads (as
// Shape::row_start). Past the last row it is past every row, never read.
fn row_base(index: u32) -> u32 {
    return (index / p.heads) * p.stride + (index % p.heads) * p.head_stride;
}

// A thread's walk over a row (or a split row's segment, from walk_start): its k-th quad
// starts at element quad_at(lane, k), for k below walk_trips. The register tile (CACHED)
// walks MAX_CACHE quads, a trip count known at compile time, so the loops unroll and the
// tile stays in registers; quads past the row have length 0 there. A streamed walk takes
// the quads that start inside the row. Each kernel writes its walks once, for both: the
// CACHED tests below fold away.
fn quad_at(lane: u32, k: u32) -> u32 {
    return select(0u, walk_start, has(FLAG_SPLIT)) + 4u * (lane + k * ROW_THREADS);
}

fn walk_trips(lane: u32, cnt: u32) -> u32 {
    if (CACHED) {
        return MAX_CACHE;
    }
    let first = quad_at(lane, 0u);
    return select(0u, (cnt - first + 4u * ROW_THREADS - 1u) / (4u * ROW_THREADS), cnt > first);
}

// How many of the quad at j are inside a row of cnt elements: 0 to 4.
fn quad_len(j: u32, cnt: u32) -> u32 {
    return min(cnt - min(j, cnt), 4u);
}

// quad_len for a streamed walk, where every quad starts inside the row. With whole quads
// (WHOLE_QUADS, the vector layout) it is the constant 4, which the compiler folds into the
// loads and stores: no bounds test per quad.
fn walk_len(j: u32, cnt: u32) -> u32 {
    if (WHOLE_QUADS) {
        return 4u;
    }
    return quad_len(j, cnt);
}

// quad_len of a trip of the walk: of the tile, or streamed.
fn trip_len(j: u32, cnt: u32) -> u32 {
    if (CACHED) {
        return quad_len(j, cnt);
    }
    return walk_len(j, cnt);
}

// True on every 32nd trip of a walk: its partial sum is then added to its total, so a long
// streamed walk rounds like a short one (a tile of up to 31 quads never flushes).
fn flush_now(k: u32) -> bool {
    return (k & 31u) == 31u;
}

// 1 for each of the first `len` elements of a quad, else 0: the quad's elements inside the
// row when len is its quad_len. (Cheap on purpose: it sits in the register tile's loops,
// which the compiler unrolls only while their bodies stay small.)
fn len_mask(len: u32) -> vec4<f32> {
    return select(vec4<f32>(0.0), vec4<f32>(1.0), lanes_in(len));
}

fn lanes_in(len: u32) -> vec4<bool> {
    return vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(len);
}

// The quad helpers below take `len`, how many elements of the quad at j lie inside the
// row (quad_len or walk_len), and return zeros past them.

// The norm's input quad at j of the row starting at base: x, plus the residual when it is
// added before the norm.
fn input_quad(base: u32, j: u32, len: u32) -> vec4<f32> {
    var v = ld_x(p.x_off + base + j, len);
    if (has(FLAG_RESIDUAL) && !has(FLAG_ADD_AFTER)) {
        v = v + ld_residual(p.residual_off + base + j, len);
    }
    return v;
}

// The quad y holds at j, from the norm's output v: v, plus the residual when it is added
// after the norm (read by the thread that then writes y, so y may be the residual itself).
fn output_quad(base: u32, j: u32, len: u32, v: vec4<f32>) -> vec4<f32> {
    if (has(FLAG_RESIDUAL) && has(FLAG_ADD_AFTER)) {
        return ld_residual(p.residual_off + base + j, len) + v;
    }
    return v;
}

// (gamma_offset + gamma) of the quad at j; ones without gamma. Past the row it holds
// anything finite: it only ever multiplies zeros there.
fn gamma_quad(j: u32, len: u32) -> vec4<f32> {
    if (has(FLAG_GAMMA)) {
        return vec4<f32>(p.gamma_offset) + ld_gamma(p.gamma_off + j, len);
    }
    return vec4<f32>(1.0);
}

// The backward's input quad: x is the forward's h (fused residual already added), so the
// backward binds one tensor fewer and stays within 8 storage buffers, WebGPU's default
// max_storage_buffers_per_shader_stage.
fn x_quad(base: u32, j: u32, len: u32) -> vec4<f32> {
    return ld_x(p.x_off + base + j, len);
}

fn dy_quad(base: u32, j: u32, len: u32) -> vec4<f32> {
    return ld_dy(p.dy_off + base + j, len);
}

// The gradient arriving on h (fused residual), zero when there is none.
fn dh_quad(base: u32, j: u32, len: u32) -> vec4<f32> {
    if (has(FLAG_DH)) {
        return ld_dh(p.dh_off + base + j, len);
    }
    return vec4<f32>(0.0);
}

// The register tile: a thread's quads of the row at hand (h, dy), of the parameters (its
// columns are the same in every row it visits, so they are read once) and of its dgamma
// and dbeta partial sums. Only CACHED pipelines touch it; keep_* put a quad into it (no-ops
// when streamed) and tile_or_* take it back, or read it again when streamed.
var<private> tile_h: array<vec4<f32>, MAX_CACHE>;
var<private> tile_dy: array<vec4<f32>, MAX_CACHE>;
var<private> tile_gamma: array<vec4<f32>, MAX_CACHE>;
var<private> tile_dgamma: array<vec4<f32>, MAX_CACHE>;
var<private> tile_dbeta: array<vec4<f32>, MAX_CACHE>;

// The tile's h times f (a power of two, 1 on rows in range). Every quad, a trip count known
// at compile time: a loop whose count is known only at run time indexes the tile at run
// time, and then llvmpipe keeps the tile in memory, not registers (where such a loop of no
// trips on rows in range took LayerNorm's tile backward 1.3x longer: BENCHMARKS.md, "Tile
// backwards: no tile index known only at run time").
fn tile_rescale(f: f32) {
    if (CACHED) {
        for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
            tile_h[k] = tile_h[k] * f;
        }
    }
}

fn keep_h(k: u32, v: vec4<f32>) {
    if (CACHED) {
        tile_h[k] = v;
    }
}

fn keep_dy(k: u32, v: vec4<f32>) {
    if (CACHED) {
        tile_dy[k] = v;
    }
}

// Reads the walk over the row starting at base into the tile (a no-op when streamed).
fn fill_tile(base: u32, lane: u32, cnt: u32) {
    for (var k = 0u; k < select(0u, MAX_CACHE, CACHED); k = k + 1u) {
        let j = quad_at(lane, k);
        keep_h(k, input_quad(base, j, quad_len(j, cnt)));
    }
}

fn tile_or_input(k: u32, base: u32, j: u32, len: u32) -> vec4<f32> {
    if (CACHED) {
        return tile_h[k];
    }
    return input_quad(base, j, len);
}

// The backward's quad k of x * f (f a power of two, backward_scale): from the tile, which
// holds it scaled already, or read again and scaled.
fn tile_or_x(k: u32, base: u32, j: u32, len: u32, f: f32) -> vec4<f32> {
    if (CACHED) {
        return tile_h[k];
    }
    return x_quad(base, j, len) * f;
}

fn tile_or_dy(k: u32, base: u32, j: u32, len: u32) -> vec4<f32> {
    if (CACHED) {
        return tile_dy[k];
    }
    return dy_quad(base, j, len);
}

// The parameters' tile holds the columns a thread visits in every row; a split row's
// segments each have columns of their own, and read them as they go.
fn params_cached() -> bool {
    return CACHED && !has(FLAG_SPLIT);
}

fn load_tile_gamma(lane: u32) {
    if (params_cached()) {
        for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
            let j = quad_at(lane, k);
            tile_gamma[k] = gamma_quad(j, quad_len(j, p.cols));
        }
    }
}

fn tile_or_gamma(k: u32, j: u32, len: u32) -> vec4<f32> {
    if (params_cached()) {
        return tile_gamma[k];
    }
    return gamma_quad(j, len);
}

// A backward's partial column sums (dgamma or dbeta) over the rows one slot visits, for
// the slot's own workspace row starting at `at` (`want`: the slot has one and the sum is
// asked for). In the tile they add up in `acc` and are stored once at the end. Streamed,
// they add up in the workspace: the slot's first trip writes its terms there (`fresh`), and
// later trips read and add, so that a slot walking one trip makes one access per partial
// element instead of three (zeros, then a read and a write). A slot whose first row does not
// exist walks no row, and writes zeros (begin_partial).
fn begin_partial(lane: u32, at: u32, want: bool, first: u32) {
    if (!CACHED && want && first >= p.rows) {
        for (var k = 0u; k < walk_trips(lane, p.cols); k = k + 1u) {
            let j = quad_at(lane, k);
            st_workspace(at + j, vec4<f32>(0.0), walk_len(j, p.cols));
        }
    }
}

// Adds a * b to the partial sum of quad k (at j, len elements in the row); a slot's first
// trip (`fresh`, uniform) writes it.
fn add_partial(acc: ptr<private, array<vec4<f32>, MAX_CACHE>>, k: u32, at: u32, j: u32, len: u32, want: bool, fresh: bool, a: vec4<f32>, b: vec4<f32>) {
    if (CACHED) {
        (*acc)[k] = fma(a, b, (*acc)[k]);
    } else if (want) {
        var sum = vec4<f32>(0.0);
        if (!fresh) {
            sum = ld_workspace(at + j, len);
        }
        st_workspace(at + j, fma(a, b, sum), len);
    }
}

// With FLAG_GROUP_PARTIALS a tile workgroup's slots add up their sums before they are stored,
// in a fixed tree through `red`, and the workgroup stores one row of them: a GPU's backward
// then leaves as many partial rows as workgroups, not rows_per_group times as many, and the
// column pass sums that many. From uniform control flow only.
fn end_partial(acc: ptr<private, array<vec4<f32>, MAX_CACHE>>, lane: u32, at: u32, want: bool) {
    if (CACHED && has(FLAG_GROUP_PARTIALS)) {
        let slot = local_index / ROW_THREADS;
        for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
            // Also waits for red's last reader: a row reduction, or quad k - 1's tree.
            workgroupBarrier();
            red[local_index] = select(vec4<f32>(0.0), (*acc)[k], want);
            for (var o = rows_per_group() / 2u; o > 0u; o = o / 2u) {
                workgroupBarrier();
                if (slot < o) {
                    red[local_index] = red[local_index] + red[local_index + o * ROW_THREADS];
                }
            }
            let j = quad_at(lane, k);
            if (slot == 0u && want) {
                st_workspace(at + j, red[local_index], quad_len(j, p.cols));
            }
        }
    } else if (CACHED && want) {
        for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
            let j = quad_at(lane, k);
            st_workspace(at + j, (*acc)[k], quad_len(j, p.cols));
        }
    }
}

// The rstd of a row from its candidate `r` and the sum of squares it came from: where that
// sum overflowed f32 (elements past about 1e19) it is +inf, the overflowed sum itself, so
// the overflow shows in rstd and in every output instead of a silent rstd = 0 and y = 0.
fn overflow_shows(r: f32, sum_sq: f32) -> f32 {
    return select(r, sum_sq, sum_sq > MAX_F32);
}

// Rows whose squares leave f32's range: above about 1e19 they overflow, below about 1e-19
// they underflow, which matters only where eps is below TINY as well. The forwards sum such
// a row again scaled by a power of two (p.guard_hi = 2^GUARD_HI, or for RMSNorm
// p.guard_lo = 2^GUARD_LO), in idle lanes of the same reductions, and normalize h * 2^e
// with the statistics of the scaled row: y is scale-free. The backwards take e from the
// saved rstd (backward_scale). With eps below TINY (FLAG_TINY_EPS), LayerNorm's forward and
// the backwards without a saved rstd scale every row by magnitude_scale first. Every scaling
// is a product with a power of two, exact but where it leaves f32's normal range: elements
// it takes below that count as 0, and they are under 2^-78 of the row's largest (or of eps).
// Rows in range have e = 0, and a product with 2^0 = 1 changes no bit. On SIMD drivers that
// run both sides of every branch under a mask (llvmpipe), a row in range still pays for a
// product per quad (the store's h * 2^e), a few per row, and one masked trip of each walk
// again.
// The largest scale magnitude_scale gives: eps * 2^(2 TINY_UP) < 2^126 for eps below TINY.
const TINY_UP: i32 = 113;
const MAX_F32: f32 = 0x1.fffffep+127f;
const MIN_NORMAL: f32 = 0x1p-126f;

// 2^e, for e in [-126, 127]. With e known at compile time (other than 0), a compiler may fold
// (h * 2^e) * (h * 2^e) into h * h * 2^(2e), which leaves f32's range; the guards' own
// factors come from Params for that reason.
fn pow2(e: i32) -> f32 {
    return bitcast<f32>(u32(e + 127) << 23u);
}

// A backward row's rstd `r`, or 1 for a row past the last (a slot's trip beyond the rows):
// that row has no elements, and with eps 0 its rstd is inf, so that 0 * inf in the zero terms
// it adds to the slot's dgamma and dbeta sums would be NaN.
fn live_rstd(r: f32, live: bool) -> f32 {
    return select(1.0, r, live);
}

// The power of two 2^e the backward scales a row's h by, from its saved rstd (0 where it
// has none): for a saved rstd in [2^e, 2^(e+1)) with |e| > 60 (rows beyond about 1e18 or
// below 1e-18), so that h * 2^e is near 1 and the row's squares and sums stay in f32's
// range up to its largest elements. Every value is then the unscaled one times a power of
// two, rounded the same. e = 0 for rows in range, and without a saved rstd (or with a zero,
// subnormal or non-finite one): rows whose squares overflow then show it as before.
fn backward_scale(saved: f32) -> i32 {
    let biased = i32((bitcast<u32>(saved) >> 23u) & 0xffu);
    let e = min(biased - 127, 126);
    return select(0, e, biased != 0 && biased != 255 && abs(e) > 60);
}

// A backward's dx of a row scaled by s = 2^e is r * s * inner (r the scaled row's rstd,
// inner formed from the scaled row), computed as a * (inner * b) with the factors (a, b)
// of the row: r * s alone, or inner * s alone, may be below f32's normal range where dx is
// not (rows near f32's largest, or whose saved rstd is near f32's smallest), and a GPU may
// flush it to 0. So (r * s, 1) where r * s is normal, else (r, s): r * s < 2^-126 <= s
// puts r below 1, and inner * s above |dx|.
fn dx_factors(r: f32, s: f32) -> vec2<f32> {
    let rs = r * s;
    return select(vec2<f32>(r, s), vec2<f32>(rs, 1.0), abs(rs) >= MIN_NORMAL);
}

// The power of two 2^e that brings a row whose largest |h| is `m` near 1, m in
// [2^-e, 2^(1-e)): where its squares would overflow (e < -60, m beyond about 1e18), but no
// smaller than 2^GUARD_HI, the forwards' factor, so that the rstd of a flat row (eps alone)
// stays in range scaled; and with eps below TINY (FLAG_TINY_EPS) every row, up to
// 2^TINY_UP, so that tiny rows (and rows whose spread is tiny next to their mean) keep their
// squares, and eps * 2^(2e) stays below 2^126. e = 0 for every other row: with eps of
// TINY or more, a row whose squares underflow is negligible next to eps, and scaling it
// up would scale eps up with it, past f32's range.
fn magnitude_scale(m: f32) -> i32 {
    let biased = i32((bitcast<u32>(m) >> 23u) & 0xffu);
    let e = clamp(127 - biased, GUARD_HI, TINY_UP);
    return select(0, e, biased != 255 && (e < -60 || has(FLAG_TINY_EPS)));
}

// The largest of the threads' `m` over the row: its largest |h|, for magnitude_scale where
// eps is below TINY, from a walk of its own (each family's row_magnitude: a backward must
// not name input_quad, whose residual it does not bind). From uniform control flow only.
fn row_max(m: f32) -> f32 {
    return row_reduce(vec4<f32>(0.0, 0.0, m, m), PEAK_ZW).z;
}

// How row_reduce combines two threads' values: SUM adds them; SPLIT and SPLIT_GUARDED merge
// two dominant splits (merge_split, merge_guarded_split); PEAK_Y and PEAK_ZW take the larger in those lanes (peak_key) and add
// the others.
const SUM: u32 = 0u;
const SPLIT: u32 = 1u;
const PEAK_Y: u32 = 2u;
const PEAK_ZW: u32 = 3u;
const SPLIT_GUARDED: u32 = 4u;

// The lanes an op takes the larger of.
fn max_lanes(op: u32) -> vec4<bool> {
    return vec4<bool>(false, op == PEAK_Y, op == PEAK_ZW, op == PEAK_ZW);
}

fn combine(a: vec4<f32>, b: vec4<f32>, op: u32) -> vec4<f32> {
    if (op == SPLIT) {
        return merge_split(a, b);
    }
    if (op == SPLIT_GUARDED) {
        return merge_guarded_split(a, b);
    }
    return select(a + b, max(a, b), max_lanes(op));
}

// A key to find the element of largest |c| with a max: |c| with its last bit replaced by
// c's sign, a non-negative float (0 is the smallest key) for any finite c. The element whose
// own key equals the largest is the one; peak_value gives its c to within that last bit.
fn peak_key(c: f32) -> f32 {
    let bits = bitcast<u32>(c);
    return bitcast<f32>((bits & 0x7ffffffeu) | (bits >> 31u));
}

fn quad_keys(c: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(peak_key(c.x), peak_key(c.y), peak_key(c.z), peak_key(c.w));
}

fn max4(v: vec4<f32>) -> f32 {
    return max(max(v.x, v.y), max(v.z, v.w));
}

fn peak_value(key: f32) -> f32 {
    let bits = bitcast<u32>(key);
    let mag = bitcast<f32>(bits & 0xfffffffeu);
    return select(mag, -mag, (bits & 1u) != 0u);
}

// A dominant split of some elements' (q, w) pairs: (m, mw, s, t) with m the largest q,
// mw its w, and s and t the sums of q and w over all the others. Where one element
// outweighs all others together (m > s), the sums without it come out exact to f32
// rounding of their own size, which S - m would not (RMSNorm's backward needs them when
// one element dominates its row). The larger m wins; on a tie the larger mw, so that
// merge_split(a, b) == merge_split(b, a) bit for bit (a butterfly merges both ways).
fn merge_split(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    let a_wins = a.x > b.x || (a.x == b.x && a.y >= b.y);
    let win = select(b, a, a_wins);
    let lose = select(a, b, a_wins);
    return vec4<f32>(win.x, win.y, (a.z + b.z) + lose.x, (a.w + b.w) + lose.y);
}

// merge_split of splits whose squares may overflow f32. q is a square (h^2) and w a product
// with h (u * h): a split whose squares would overflow is kept for h * 2^GUARD_HI instead
// (q times 2^(2 GUARD_HI), w times 2^GUARD_HI) and says so by m's sign bit (split_scaled).
// This merge scales both where either is scaled or their sum would overflow; a split in
// range scales exactly, but for values it takes below f32's normal range, which count as 0
// next to squares that summed past f32's largest. The winner and loser are picked here as in
// merge_split rather than by calling it on the scaled splits: that shorter form made
// SwiftShader spin for over 10 minutes on the no-saved-rstd GPU-launch pipeline (not
// explained; this form compiles in seconds).
fn merge_guarded_split(a: vec4<f32>, b: vec4<f32>) -> vec4<f32> {
    let over = !((abs(a.x) + a.z) + (abs(b.x) + b.z) <= MAX_F32);
    let scaled = over || split_scaled(a) || split_scaled(b);
    let sa = select(a, scale_split(a), scaled);
    let sb = select(b, scale_split(b), scaled);
    let a_wins = abs(sa.x) > abs(sb.x) || (abs(sa.x) == abs(sb.x) && sa.y >= sb.y);
    let win = select(sb, sa, a_wins);
    let lose = select(sa, sb, a_wins);
    return vec4<f32>(win.x, win.y, (sa.z + sb.z) + abs(lose.x), (sa.w + sb.w) + lose.y);
}

fn split_scaled(a: vec4<f32>) -> bool {
    return (bitcast<u32>(a.x) >> 31u) != 0u;
}

// A split marked scaled (merge_guarded_split), the values as they are.
fn mark_scaled(a: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(bitcast<f32>(bitcast<u32>(a.x) | 0x80000000u), a.yzw);
}

// The split of the same elements scaled by 2^GUARD_HI, marked; a scaled split as it is.
fn scale_split(a: vec4<f32>) -> vec4<f32> {
    let g = p.guard_hi;
    let s = mark_scaled(vec4<f32>(a.x * g * g, a.y * g, a.z * g * g, a.w * g));
    return select(s, a, split_scaled(a));
}

// Reduces v over the ROW_THREADS threads that share this thread's row. The leading
// barrier lets consecutive calls reuse `red` without a trailing one.
fn tree_row_reduce(v: vec4<f32>, op: u32) -> vec4<f32> {
    let lane = local_index % ROW_THREADS;
    workgroupBarrier();
    red[local_index] = v;
    workgroupBarrier();
    for (var o = ROW_THREADS / 2u; o > 0u; o = o / 2u) {
        if (lane < o) {
            red[local_index] = combine(red[local_index], red[local_index + o], op);
        }
        workgroupBarrier();
    }
    return red[local_index - lane];
}

// Sums v over the threads of this thread's row. From uniform control flow only.
fn row_sum(v: vec4<f32>) -> vec4<f32> {
    return row_reduce(v, SUM);
}
