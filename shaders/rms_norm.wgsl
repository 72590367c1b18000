//! include common.wgsl
//! include reduce
// RMSNorm, forward and backward, one row per ROW_THREADS threads.
//
//   h  = x (+ residual when fused; h may be written out as the new residual stream)
//   forward:  r = 1 / sqrt(mean_k(h^2) + eps)      (eps inside the root, the default)
//             r = 1 / (sqrt(mean_k(h^2)) + eps)    (FLAG_EPS_OUTSIDE)
//             y = h * r * (gamma_offset + gamma)
//   mean_k is over the first k = norm_cols elements (partial RMSNorm; k = cols otherwise).
//   backward: with u = g * dy,
//             dh = r * u - [j < k] * c * h * sum(u * h)  (+ the gradient arriving on h)
//             c  = r^3 / k                       (eps inside)
//             c  = r^2 / (k * rms), 0 at rms = 0 (eps outside)
//             dgamma = sum over rows of dy * h * r
//   dx is dh: x and the residual receive the same gradient. Backward reads h as its x.
//
// Fused single pass: while a row fits in registers (CACHED: MAX_CACHE quads per thread)
// each element is read once and written once. A longer row is streamed twice from device
// memory (sum of squares, then scale); the second read usually hits L2 on a GPU, and
// correctness does not depend on it. Streamed rows go two per trip while a workgroup has two
// row blocks left, so a gamma quad read serves two rows and one reduction both.
//
// Backward is deterministic: each (workgroup, row slot) accumulates dgamma for the rows it
// visits in a fixed order into its own row of the workspace; reduce_columns.wgsl sums
// those rows in a fixed order. No atomics.

@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;

fn scale_from_sum_sq(sum_sq: f32) -> f32 {
    let ms = sum_sq / f32(p.norm_cols);
    if (has(FLAG_EPS_OUTSIDE)) {
        return overflow_shows(1.0 / (sqrt(ms) + p.eps), sum_sq);
    }
    return overflow_shows(1.0 / sqrt(ms + p.eps), sum_sq);
}

fn save_rstd(row: u32, lane: u32, live: bool, r: f32) {
    if (live && lane == 0u && has(FLAG_RSTD)) {
        rstd[p.rstd_off + row] = r;
    }
}

// The elements of the quad at j that the RMS is estimated from: all but past norm_cols.
fn norm_mask(j: u32) -> vec4<f32> {
    if (has(FLAG_PARTIAL)) {
        return len_mask(quad_len(j, p.norm_cols));
    }
    return vec4<f32>(1.0);
}

// h^2 summed over the elements of the quad at j that the RMS is estimated from (h is zero
// past the row).
fn norm_sq(v: vec4<f32>, j: u32) -> f32 {
    return dot(v * v, norm_mask(j));
}

// Writes y (and h when asked) for the quad at j; g is its (offset + gamma).
fn store_forward(base: u32, j: u32, len: u32, h: vec4<f32>, r: f32, g: vec4<f32>) {
    st_y(p.y_off + base + j, h * r * g, len);
    if (has(FLAG_H)) {
        st_h(p.h_off + base + j, h, len);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    enter(inv);
    let lane = inv.index % ROW_THREADS;
    let slot = inv.index / ROW_THREADS;
    let blocks = row_blocks();
    load_tile_gamma(lane);
    var b = wid.x;
    if (!CACHED) {
        // Streamed rows go two per trip while two row blocks are left, from blocks b and
        // b + nwg.x: each gamma quad is read once for both, and one reduction serves both.
        for (; b + nwg.x < blocks; b = b + 2u * nwg.x) {
            forward_rows(vec2<u32>(b, b + nwg.x) * rows_per_group() + slot, lane, true);
        }
    }
    for (; b < blocks; b = b + nwg.x) {
        forward_rows(vec2<u32>(b) * rows_per_group() + slot, lane, false);
    }
}

// The forward of row.x, and of row.y when `both` (a constant at each call, so each call
// compiles to loops of its own; only streamed rows pair up). A slot past the last row sees
// an empty row but still joins every reduction: call from uniform control flow only.
fn forward_rows(row: vec2<u32>, lane: u32, both: bool) {
    let live = (row < vec2<u32>(p.rows)) & vec2<bool>(true, both);
    let cnt = select(0u, p.cols, live.x);
    let base = row * p.stride;
    // Blocked sums: a thread may walk thousands of quads when few threads share a row;
    // flushing every 32 keeps the error near 32 + trips / 32 roundings.
    var ss = vec2<f32>(0.0);
    var part = vec2<f32>(0.0);
    for (var k = 0u; k < walk_trips(lane, cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, cnt);
        let h = input_quad(base.x, j, len);
        keep_h(k, h);
        part.x = part.x + norm_sq(h, j);
        if (both) {
            part.y = part.y + norm_sq(input_quad(base.y, j, select(0u, len, live.y)), j);
        }
        if (flush_now(k)) {
            ss = ss + part;
            part = vec2<f32>(0.0);
        }
    }
    ss = ss + part;
    let t = row_sum(vec4<f32>(ss, 0.0, 0.0));
    let r = vec2<f32>(scale_from_sum_sq(t.x), scale_from_sum_sq(t.y));
    for (var k = 0u; k < walk_trips(lane, cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, cnt);
        let g = tile_or_gamma(k, j, len);
        store_forward(base.x, j, len, tile_or_input(k, base.x, j, len), r.x, g);
        if (both && live.y) {
            store_forward(base.y, j, len, input_quad(base.y, j, len), r.y, g);
        }
    }
    save_rstd(row.x, lane, live.x, r.x);
    save_rstd(row.y, lane, live.y, r.y);
}

// (r, c * sum(u * h)) of the header, from sums = (sum_k(h^2), sum(u * h), ..) and the saved rstd when
// there is one. The product is formed as ((S * r) / k) * r * r so that neither r^3 (which
// underflows f32 for |h| near 1e15) nor S * r^3 leaves the f32 range while dx is in it.
fn backward_coefficients(sums: vec4<f32>, row: u32, live: bool) -> vec2<f32> {
    let sum_sq = sums.x;
    let sum_uh = sums.y;
    let k = f32(p.norm_cols);
    var r = scale_from_sum_sq(sum_sq);
    if (has(FLAG_RSTD) && live) {
        r = rstd[p.rstd_off + row];
    }
    if (has(FLAG_EPS_OUTSIDE)) {
        var rms = sqrt(sum_sq / k);
        if (has(FLAG_RSTD)) {
            // The saved statistic is 1 / (rms + eps); where rms << eps the recovered rms
            // is inexact, but then its term is as small as that error relative to r * u.
            rms = max(1.0 / r - p.eps, 0.0);
        }
        return vec2<f32>(r, select(0.0, (sum_uh * r) / (k * rms) * r, rms > 0.0));
    }
    return vec2<f32>(r, (sum_uh * r) / k * r * r);
}

// dx for the quad at j: r * u - c * h on the elements the RMS came from, plus dh.
fn dx_quad(base: u32, j: u32, len: u32, h: vec4<f32>, w: vec4<f32>, g: vec4<f32>, rc: vec2<f32>) -> vec4<f32> {
    return rc.x * w * g - rc.y * h * norm_mask(j) + dh_quad(base, j, len);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    enter(inv);
    let n = p.cols;
    let lane = inv.index % ROW_THREADS;
    let slot = inv.index / ROW_THREADS;
    let blocks = row_blocks();
    // This slot's own row of dgamma partial sums in the workspace; a slot that visits no
    // row has none.
    let first_row = wid.x * rows_per_group() + slot;
    let want_dgamma = has(FLAG_DGAMMA) && first_row < p.rows;
    let pb = p.workspace_off + first_row * n;
    load_tile_gamma(lane);
    begin_partial(lane, pb, want_dgamma);
    for (var b = wid.x; b < blocks; b = b + nwg.x) {
        let row = b * rows_per_group() + slot;
        let live = row < p.rows;
        let cnt = select(0u, n, live);
        let base = row * p.stride;
        var s = vec4<f32>(0.0);
        var part = vec4<f32>(0.0);
        for (var k = 0u; k < walk_trips(lane, cnt); k = k + 1u) {
            let j = quad_at(lane, k);
            let len = trip_len(j, cnt);
            let h = x_quad(base, j, len);
            let d = dy_quad(base, j, len);
            keep_h(k, h);
            keep_dy(k, d);
            part.x = part.x + norm_sq(h, j);
            part.y = part.y + dot(d * tile_or_gamma(k, j, len), h);
            if (flush_now(k)) {
                s = s + part;
                part = vec4<f32>(0.0);
            }
        }
        s = s + part;
        let rc = backward_coefficients(row_sum(s), row, live);
        for (var k = 0u; k < walk_trips(lane, cnt); k = k + 1u) {
            let j = quad_at(lane, k);
            let len = trip_len(j, cnt);
            let h = tile_or_x(k, base, j, len);
            let d = tile_or_dy(k, base, j, len);
            st_dx(p.dx_off + base + j, dx_quad(base, j, len, h, d, tile_or_gamma(k, j, len), rc), len);
            // Zero past the row: h and d are.
            add_partial(&tile_dgamma, k, pb, j, len, want_dgamma, d * h, vec4<f32>(rc.x));
        }
    }
    end_partial(&tile_dgamma, lane, pb, want_dgamma);
}
