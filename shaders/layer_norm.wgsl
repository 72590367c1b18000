//! include common.wgsl
// LayerNorm, forward and backward, one row per ROW_THREADS threads. Biased variance (1/n).
//
//   h = x (+ residual when fused; h may be written out as the new residual stream;
//   FLAG_ADD_AFTER: h = x, and the residual is added to y, as in rms_norm.wgsl)
//   forward:  mean first, then the variance of the centred values (never E[h^2] - mean^2):
//             m1  = fl(sum(h) / n)                 a first, rounded mean
//             d   = h - m1                         exact when h is near m1 (Sterbenz)
//             m2  = sum(d) / n                     what the rounding of m1 lost
//             var = sum(d^2) / n - m2^2            Chan-Golub-LeVeque corrected two-pass
//             xh  = (d - m2) * rstd,   rstd = 1 / sqrt(var + eps)
//             y   = xh * (gamma_offset + gamma) + beta
//   Carrying m1 + m2 instead of one f32 mean keeps rows like 1e4 + randn exact to f32
//   rounding of the centred values, where fl(mean) alone would be off by half an ulp of
//   1e4 (5e-4) in every output.
//   backward: with u = g * dy,
//             dh = rstd * (u - mean(u) - xh * mean(u * xh))  (+ the gradient arriving on h)
//             dgamma = sum over rows of dy * xh,   dbeta = sum over rows of dy
//   A saved mean is used as m1 and corrected the same way; a saved rstd is used as is.
//   dx is dh: x and the residual receive the same gradient. Backward reads h as its x.
//
// Rows that fit in registers (CACHED: MAX_CACHE quads per thread) are read once. Longer rows
// are streamed from device memory once per pass, two passes each way. A streamed forward
// takes its statistics from one read: each thread keeps per-lane moments (count, mean, M2)
// of d = h - pivot, the pivot one of the row's first values, built from short blocks of
// shifted sums and merged with Chan, Golub and LeVeque's formula, then merged across the
// row's threads. The mean is carried as pivot + mean(d), like m1 + m2 above.
// Backward partial sums are deterministic, as in rms_norm.wgsl.

@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;

fn beta_quad(j: u32, len: u32) -> vec4<f32> {
    if (has(FLAG_BETA)) {
        return ld_beta(p.beta_off + j, len);
    }
    return vec4<f32>(0.0);
}

// Beta's part of the register tile (common.wgsl).
var<private> tile_beta: array<vec4<f32>, MAX_CACHE>;

fn load_tile_beta(lane: u32) {
    if (CACHED) {
        for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
            let j = quad_at(lane, k);
            tile_beta[k] = beta_quad(j, quad_len(j, p.cols));
        }
    }
}

fn tile_or_beta(k: u32, j: u32, len: u32) -> vec4<f32> {
    if (CACHED) {
        return tile_beta[k];
    }
    return beta_quad(j, len);
}

// (m2, rstd) from sum(d) and sum(d^2) of the values centred on m1.
fn centred_stats(sum_d: f32, sum_d2: f32) -> vec2<f32> {
    let n = f32(p.cols);
    let m2 = sum_d / n;
    return vec2<f32>(m2, rstd_of(sum_d2 / n - m2 * m2, sum_d2));
}

// rstd from the variance, and the sum of squares it came from (to show an overflow).
fn rstd_of(var_: f32, sum_sq: f32) -> f32 {
    return overflow_shows(1.0 / sqrt(max(var_, 0.0) + p.eps), sum_sq);
}

fn save_stats(row: u32, lane: u32, live: bool, m: f32, r: f32) {
    if (live && lane == 0u) {
        if (has(FLAG_MEAN)) {
            mean[p.mean_off + row] = m;
        }
        if (has(FLAG_RSTD)) {
            rstd[p.rstd_off + row] = r;
        }
    }
}

// (sum(d), sum(d^2)) of a quad, centred on m1, over its `len` elements inside the row.
fn centred_sums(h: vec4<f32>, m1: f32, len: u32) -> vec2<f32> {
    let d = (h - vec4<f32>(m1)) * len_mask(len);
    return vec2<f32>(dot(d, vec4<f32>(1.0)), dot(d, d));
}

// Writes y (and h when asked) for the quad at j; st = (m2, rstd); g and bb are its
// (offset + gamma) and beta.
fn store_forward(base: u32, j: u32, len: u32, h: vec4<f32>, m1: f32, st: vec2<f32>, g: vec4<f32>, bb: vec4<f32>) {
    let xh = (h - vec4<f32>(m1) - vec4<f32>(st.x)) * st.y;
    st_y(p.y_off + base + j, output_quad(base, j, len, fma(xh, g, bb)), len);
    if (has(FLAG_H)) {
        st_h(p.h_off + base + j, h, len);
    }
}

// Count, mean and sum of squared deviations (M2) of each lane of a thread's quads: what a
// streamed row's statistics are merged from, so that it is read once for them.
struct Moments {
    n: vec4<f32>,
    mean: vec4<f32>,
    m2: vec4<f32>,
}

// Sums over one block of a thread's walk (32 quads, see flush_now) of e = d - shift, where
// shift is the thread's mean of d so far (0, that is the pivot, in the first block): near the
// block's values, so the sums carry no cancellation, and no single outlier becomes it.
struct BlockSums {
    shift: vec4<f32>,
    n: vec4<f32>,
    s1: vec4<f32>,
    s2: vec4<f32>,
}

// The pivot of a streamed row's statistics, from its first quad q (cnt elements in the
// row): a middle one of its four values, so that no single outlier there is taken. Near the
// row's values, d = h - pivot is exact, and the mean is pivot + mean(d) to f32 rounding of
// mean(d).
fn pivot_of(q: vec4<f32>, cnt: u32) -> f32 {
    if (cnt < 4u) {
        return q.x;
    }
    return max(min(q.x, q.y), min(q.z, q.w));
}

// A block's moments of d. A sum of squares that overflowed stays infinite, so that the
// overflow shows in rstd (overflow_shows) instead of vanishing as inf - inf.
fn block_moments(b: BlockSums) -> Moments {
    let n = max(b.n, vec4<f32>(1.0));
    let m2 = select(max(b.s2 - b.s1 * (b.s1 / n), vec4<f32>(0.0)), b.s2, b.s2 > vec4<f32>(0x1.fffffep+127f));
    return Moments(b.n, b.shift + b.s1 / n, m2);
}

// Chan, Golub and LeVeque's merge of two sets' moments; an empty set changes nothing.
fn merge_moments(a: Moments, b: Moments) -> Moments {
    let n = a.n + b.n;
    let w = b.n / max(n, vec4<f32>(1.0));
    let delta = b.mean - a.mean;
    // With either set empty the spread is nothing, even where delta^2 overflows (inf * 0).
    let both = (a.n > vec4<f32>(0.0)) & (b.n > vec4<f32>(0.0));
    let spread = select(vec4<f32>(0.0), delta * delta * a.n * w, both);
    return Moments(n, a.mean + delta * w, a.m2 + b.m2 + spread);
}

// Adds the quad h (k-th of the walk, len elements in the row) to a streamed walk's moments:
// to the block's shifted sums, and the block to the moments on its last quad.
fn add_moments(acc: ptr<function, Moments>, blk: ptr<function, BlockSums>, k: u32, h: vec4<f32>, pivot: f32, len: u32) {
    if ((k & 31u) == 0u) {
        (*blk).shift = (*acc).mean;
    }
    let e = ((h - vec4<f32>(pivot)) - (*blk).shift) * len_mask(len);
    (*blk).n = (*blk).n + len_mask(len);
    (*blk).s1 = (*blk).s1 + e;
    (*blk).s2 = (*blk).s2 + e * e;
    if (flush_now(k)) {
        *acc = merge_moments(*acc, block_moments(*blk));
        (*blk).n = vec4<f32>(0.0);
        (*blk).s1 = vec4<f32>(0.0);
        (*blk).s2 = vec4<f32>(0.0);
    }
}

// (m1, m2, rstd) of a streamed row from its threads' moments of d = h - pivot: Chan's
// merge over the row's threads and the four lanes of their quads, as sums: the row's mean
// of d; what its rounding lost, sum(n * (mean - md)); and sum(M2 + n * (mean - md)^2).
fn moments_stats(acc: Moments, pivot: f32) -> vec3<f32> {
    let n = f32(p.cols);
    let md = row_sum(vec4<f32>(dot(acc.n, acc.mean), 0.0, 0.0, 0.0)).x / n;
    let dm = acc.mean - vec4<f32>(md);
    let t = row_sum(vec4<f32>(dot(acc.m2, vec4<f32>(1.0)) + dot(acc.n, dm * dm), dot(acc.n, dm), 0.0, 0.0));
    let c = t.y / n;
    let m2 = t.x - n * c * c;
    return vec3<f32>(pivot, md + c, rstd_of(m2 / n, m2));
}

// (m1, m2, rstd) of a row in the register tile, from this thread's share s of sum(h): the
// corrected two-pass, its second pass over registers.
fn tile_stats(lane: u32, cnt: u32, s: f32) -> vec3<f32> {
    let m1 = row_sum(vec4<f32>(s, 0.0, 0.0, 0.0)).x / f32(p.cols);
    var c = vec2<f32>(0.0);
    for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
        c = c + centred_sums(tile_h[k], m1, quad_len(quad_at(lane, k), cnt));
    }
    let t = row_sum(vec4<f32>(c, 0.0, 0.0));
    return vec3<f32>(m1, centred_stats(t.x, t.y));
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    enter(inv);
    let lane = inv.index % ROW_THREADS;
    let slot = inv.index / ROW_THREADS;
    let blocks = row_blocks();
    load_tile_gamma(lane);
    load_tile_beta(lane);
    for (var b = wid.x; b < blocks; b = b + nwg.x) {
        let row = row_of(b, slot);
        // Statistics from one read: the tile keeps the row for a second pass in registers;
        // a streamed row builds its moments as it goes.
        var pivot = 0.0;
        if (!CACHED) {
            pivot = pivot_of(input_quad(row.base, 0u, min(row.cnt, 4u)), row.cnt);
        }
        var s = 0.0;
        var acc = Moments(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
        var blk = BlockSums(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
        for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
            let j = quad_at(lane, k);
            let len = trip_len(j, row.cnt);
            let h = input_quad(row.base, j, len);
            keep_h(k, h);
            if (CACHED) {
                s = s + dot(h, vec4<f32>(1.0));
            } else {
                add_moments(&acc, &blk, k, h, pivot, len);
            }
        }
        var st: vec3<f32>;
        if (CACHED) {
            st = tile_stats(lane, row.cnt, s);
        } else {
            st = moments_stats(merge_moments(acc, block_moments(blk)), pivot);
        }
        for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
            let j = quad_at(lane, k);
            let len = trip_len(j, row.cnt);
            store_forward(row.base, j, len, tile_or_input(k, row.base, j, len), st.x, st.yz, tile_or_gamma(k, j, len), tile_or_beta(k, j, len));
        }
        save_stats(row.index, lane, row.live, st.x + st.y, st.z);
    }
}

// The first mean: saved, or reduced from this thread's share `s` of sum(h).
// Called from uniform control flow only (row_sum holds barriers).
fn first_mean(s: f32, row: u32, live: bool) -> f32 {
    if (has(FLAG_MEAN)) {
        return select(0.0, mean[p.mean_off + row], live);
    }
    return row_sum(vec4<f32>(s, 0.0, 0.0, 0.0)).x / f32(p.cols);
}

// The quad's share of (sum(d), sum(d^2), sum(u), sum(u * d)), d = h - m1, u = g * dy,
// over its `len` elements inside the row.
fn backward_sums(h: vec4<f32>, dy: vec4<f32>, g: vec4<f32>, m1: f32, len: u32) -> vec4<f32> {
    let d = (h - vec4<f32>(m1)) * len_mask(len);
    let u = dy * g;
    let one = vec4<f32>(1.0);
    return vec4<f32>(dot(d, one), dot(d, d), dot(u, one), dot(u, d));
}

// (m2, rstd, mean(u), mean(u * xh)) from the sums of d, d^2, u and u * d, d = h - m1.
fn backward_stats(t: vec4<f32>, row: u32, live: bool) -> vec4<f32> {
    let n = f32(p.cols);
    var st = centred_stats(t.x, t.y);
    if (has(FLAG_RSTD) && live) {
        st.y = rstd[p.rstd_off + row];
    }
    // sum(u * xh) = rstd * (sum(u * d) - m2 * sum(u)): m2 is tiny next to d, no cancellation.
    return vec4<f32>(st.x, st.y, t.z / n, st.y * (t.w - st.x * t.z) / n);
}

// Writes dx for the quad at j and returns xh (for dgamma); st as from backward_stats.
fn store_backward(
    base: u32,
    j: u32,
    len: u32,
    h: vec4<f32>,
    dy: vec4<f32>,
    g: vec4<f32>,
    m1: f32,
    st: vec4<f32>,
) -> vec4<f32> {
    let xh = (h - vec4<f32>(m1) - vec4<f32>(st.x)) * st.y;
    let u = dy * g;
    let dx = st.y * (u - vec4<f32>(st.z) - xh * st.w) + dh_quad(base, j, len);
    st_dx(p.dx_off + base + j, dx, len);
    return xh;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    enter(inv);
    let n = p.cols;
    let lane = inv.index % ROW_THREADS;
    let slot = inv.index / ROW_THREADS;
    let blocks = row_blocks();
    // This slot's rows of partial sums: dgamma in the first half, dbeta in the second; a
    // slot that visits no row has none.
    let first_row = wid.x * rows_per_group() + slot;
    let want_dgamma = has(FLAG_DGAMMA) && first_row < p.rows;
    let want_dbeta = has(FLAG_DBETA) && first_row < p.rows;
    let pb = p.workspace_off + first_row * n;
    let pbb = pb + p.partial_rows * n;
    load_tile_gamma(lane);
    begin_partial(lane, pb, want_dgamma);
    begin_partial(lane, pbb, want_dbeta);
    for (var b = wid.x; b < blocks; b = b + nwg.x) {
        let row = row_of(b, slot);
        // The tile reads the row here whether or not the mean is saved; a streamed row
        // reads x here only for a mean that is not. x_quad, not input_quad: a kernel that
        // names `residual` at all binds it, and the backward must stay within 8 storage
        // buffers.
        var s = 0.0;
        if (CACHED || !has(FLAG_MEAN)) {
            var part = 0.0;
            for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
                let j = quad_at(lane, k);
                let len = trip_len(j, row.cnt);
                let h = x_quad(row.base, j, len);
                keep_h(k, h);
                if (CACHED) {
                    keep_dy(k, dy_quad(row.base, j, len));
                }
                part = part + dot(h, vec4<f32>(1.0));
                if (flush_now(k)) {
                    s = s + part;
                    part = 0.0;
                }
            }
            s = s + part;
        }
        let m1 = first_mean(s, row.index, row.live);
        var c = vec4<f32>(0.0);
        var part = vec4<f32>(0.0);
        for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
            let j = quad_at(lane, k);
            let len = trip_len(j, row.cnt);
            let sums = backward_sums(tile_or_x(k, row.base, j, len), tile_or_dy(k, row.base, j, len), tile_or_gamma(k, j, len), m1, len);
            part = part + sums;
            if (flush_now(k)) {
                c = c + part;
                part = vec4<f32>(0.0);
            }
        }
        c = c + part;
        let st = backward_stats(row_sum(c), row.index, row.live);
        for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
            let j = quad_at(lane, k);
            let len = trip_len(j, row.cnt);
            let d = tile_or_dy(k, row.base, j, len);
            let xh = store_backward(row.base, j, len, tile_or_x(k, row.base, j, len), d, tile_or_gamma(k, j, len), m1, st);
            // d is zero past the row, so neither sum picks up xh there.
            add_partial(&tile_dgamma, k, pb, j, len, want_dgamma, d, xh);
            add_partial(&tile_dbeta, k, pbb, j, len, want_dbeta, d, vec4<f32>(1.0));
        }
    }
    end_partial(&tile_dgamma, lane, pb, want_dgamma);
    end_partial(&tile_dbeta, lane, pbb, want_dbeta);
}
