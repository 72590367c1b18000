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
    if (CACHED) {
        // A thread's columns are the same in every row it visits: gamma is read once.
        var gc: array<vec4<f32>, MAX_CACHE>;
        for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
            let j = quad_at(lane, k);
            gc[k] = gamma_quad(j, quad_len(j, p.cols));
        }
        for (var b = wid.x; b < blocks; b = b + nwg.x) {
            let row = b * rows_per_group() + slot;
            let live = row < p.rows;
            // A slot past the last row sees an empty row but still joins every reduction.
            let cnt = select(0u, p.cols, live);
            let base = row * p.stride;
            var v: array<vec4<f32>, MAX_CACHE>;
            var ss = 0.0;
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                let j = quad_at(lane, k);
                let h = input_quad(base, j, quad_len(j, cnt));
                v[k] = h;
                ss = ss + norm_sq(h, j);
            }
            let r = scale_from_sum_sq(row_sum(vec4<f32>(ss, 0.0, 0.0, 0.0)).x);
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                let j = quad_at(lane, k);
                store_forward(base, j, quad_len(j, cnt), v[k], r, gc[k]);
            }
            save_rstd(row, lane, live, r);
        }
    } else {
        // Two rows per trip while two row blocks are left, from blocks b and b + nwg.x: each
        // gamma quad is read once for both, and one reduction serves both. Then one row.
        var b = wid.x;
        for (; b + nwg.x < blocks; b = b + 2u * nwg.x) {
            stream_forward(vec2<u32>(b, b + nwg.x) * rows_per_group() + slot, lane, true);
        }
        if (b < blocks) {
            stream_forward(vec2<u32>(b) * rows_per_group() + slot, lane, false);
        }
    }
}

// The streamed forward of row.x, and of row.y when `both` (a constant at each call, so each
// call compiles to a loop of its own). From uniform control flow only: it reduces.
fn stream_forward(row: vec2<u32>, lane: u32, both: bool) {
    let live = (row < vec2<u32>(p.rows)) & vec2<bool>(true, both);
    let base = row * p.stride;
    // Blocked sums: a thread may walk thousands of quads when few threads share a row;
    // flushing every 32 keeps the error near 32 + trips / 32 roundings.
    var ss = vec2<f32>(0.0);
    var part = vec2<f32>(0.0);
    for (var j = 4u * lane; j < p.cols && live.x; j = j + 4u * ROW_THREADS) {
        let len = walk_len(j, p.cols);
        part.x = part.x + norm_sq(input_quad(base.x, j, len), j);
        if (both) {
            part.y = part.y + norm_sq(input_quad(base.y, j, select(0u, len, live.y)), j);
        }
        if (flush_now(j)) {
            ss = ss + part;
            part = vec2<f32>(0.0);
        }
    }
    ss = ss + part;
    let t = row_sum(vec4<f32>(ss, 0.0, 0.0));
    let r = vec2<f32>(scale_from_sum_sq(t.x), scale_from_sum_sq(t.y));
    for (var j = 4u * lane; j < p.cols && live.x; j = j + 4u * ROW_THREADS) {
        let len = walk_len(j, p.cols);
        let g = gamma_quad(j, len);
        store_forward(base.x, j, len, input_quad(base.x, j, len), r.x, g);
        if (live.y) {
            store_forward(base.y, j, len, input_quad(base.y, j, len), r.y, g);
        }
    }
    save_rstd(row.x, lane, live.x, r.x);
    save_rstd(row.y, lane, live.y, r.y);
}

// (r, c * sum(u * h)) of the header, from sum_k(h^2), sum(u * h) and the saved rstd when
// there is one. The product is formed as ((S * r) / k) * r * r so that neither r^3 (which
// underflows f32 for |h| near 1e15) nor S * r^3 leaves the f32 range while dx is in it.
fn backward_coefficients(sum_sq: f32, sum_uh: f32, row: u32, live: bool) -> vec2<f32> {
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
    if (CACHED) {
        var acc: array<vec4<f32>, MAX_CACHE>;
        var gc: array<vec4<f32>, MAX_CACHE>;
        for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
            let j = quad_at(lane, k);
            gc[k] = gamma_quad(j, quad_len(j, p.cols));
            acc[k] = vec4<f32>(0.0);
        }
        for (var b = wid.x; b < blocks; b = b + nwg.x) {
            let row = b * rows_per_group() + slot;
            let live = row < p.rows;
            let cnt = select(0u, n, live);
            let base = row * p.stride;
            var v: array<vec4<f32>, MAX_CACHE>;
            var w: array<vec4<f32>, MAX_CACHE>;
            var s = vec4<f32>(0.0);
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                let j = quad_at(lane, k);
                let len = quad_len(j, cnt);
                let h = x_quad(base, j, len);
                let d = dy_quad(base, j, len);
                v[k] = h;
                w[k] = d;
                s.x = s.x + norm_sq(h, j);
                s.y = s.y + dot(d * gc[k], h);
            }
            let t = row_sum(s);
            let rc = backward_coefficients(t.x, t.y, row, live);
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                let j = quad_at(lane, k);
                let len = quad_len(j, cnt);
                st_dx(p.dx_off + base + j, dx_quad(base, j, len, v[k], w[k], gc[k], rc), len);
                // Zero past the row: v and w are.
                acc[k] = fma(w[k] * v[k], vec4<f32>(rc.x), acc[k]);
            }
        }
        if (want_dgamma) {
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                let j = quad_at(lane, k);
                st_workspace(pb + j, acc[k], quad_len(j, n));
            }
        }
    } else {
        if (want_dgamma) {
            // Zeroed by the thread that accumulates into it: the quad mapping.
            for (var j = 4u * lane; j < n; j = j + 4u * ROW_THREADS) {
                st_workspace(pb + j, vec4<f32>(0.0), walk_len(j, n));
            }
        }
        for (var b = wid.x; b < blocks; b = b + nwg.x) {
            let row = b * rows_per_group() + slot;
            let live = row < p.rows;
            let cnt = select(0u, n, live);
            let base = row * p.stride;
            var s = vec4<f32>(0.0);
            var part = vec4<f32>(0.0);
            for (var j = 4u * lane; j < cnt; j = j + 4u * ROW_THREADS) {
                let len = walk_len(j, cnt);
                let h = x_quad(base, j, len);
                part.x = part.x + norm_sq(h, j);
                part.y = part.y + dot(dy_quad(base, j, len) * gamma_quad(j, len), h);
                if (flush_now(j)) {
                    s = s + part;
                    part = vec4<f32>(0.0);
                }
            }
            s = s + part;
            let t = row_sum(s);
            let rc = backward_coefficients(t.x, t.y, row, live);
            for (var j = 4u * lane; j < cnt; j = j + 4u * ROW_THREADS) {
                let len = walk_len(j, cnt);
                let h = x_quad(base, j, len);
                let d = dy_quad(base, j, len);
                st_dx(p.dx_off + base + j, dx_quad(base, j, len, h, d, gamma_quad(j, len), rc), len);
                if (want_dgamma) {
                    st_workspace(pb + j, fma(d * h, vec4<f32>(rc.x), ld_workspace(pb + j, len)), len);
                }
            }
        }
    }
}
