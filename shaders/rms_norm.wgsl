// RMSNorm, forward and backward, one row per ROW_THREADS threads.
//
//   forward:  r = 1 / sqrt(mean(x^2) + eps)      (eps inside the root, the default)
//             r = 1 / (sqrt(mean(x^2)) + eps)    (FLAG_EPS_OUTSIDE)
//             y = x * r * g
//   backward: with u = g * dy and n = cols,
//             dx = r * u - c * x * sum(u * x)
//             c  = r^3 / n                       (eps inside)
//             c  = r^2 / (n * rms), 0 at rms = 0 (eps outside)
//             dgamma = sum over rows of dy * x * r
//
// Fused single pass: while a row fits in registers (cols <= ROW_THREADS * MAX_CACHE) each
// element is read once and written once. A longer row is streamed twice from device
// memory (sum of squares, then scale); the second read usually hits L2 on a GPU, and
// correctness does not depend on it.
//
// Backward is deterministic: each (workgroup, row slot) accumulates dgamma for the rows it
// visits in a fixed order into its own row of the workspace; reduce_columns.wgsl sums
// those rows in a fixed order. No atomics.

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> gamma: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;
@group(0) @binding(6) var<storage, read_write> dy: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<f32>;
@group(0) @binding(8) var<storage, read_write> partial: array<f32>;

fn gamma_at(j: u32) -> f32 {
    if (has(FLAG_GAMMA)) {
        return gamma[p.gamma_off + j];
    }
    return 1.0;
}

fn scale_from_sum_sq(sum_sq: f32) -> f32 {
    let ms = sum_sq / f32(p.cols);
    if (has(FLAG_EPS_OUTSIDE)) {
        return 1.0 / (sqrt(ms) + p.eps);
    }
    return 1.0 / sqrt(ms + p.eps);
}

fn save_rstd(row: u32, lane: u32, live: bool, r: f32) {
    if (live && lane == 0u && has(FLAG_RSTD)) {
        rstd[p.rstd_off + row] = r;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    enter(inv);
    let n = p.cols;
    let lane = inv.index % ROW_THREADS;
    let slot = inv.index / ROW_THREADS;
    let blocks = row_blocks();
    for (var b = wid.x; b < blocks; b = b + nwg.x) {
        let row = b * rows_per_group() + slot;
        let live = row < p.rows;
        // A slot past the last row sees an empty row but still joins every barrier.
        let cnt = select(0u, n, live);
        let xb = p.x_off + row * n;
        let yb = p.y_off + row * n;
        if (row_is_cached()) {
            var v: array<f32, MAX_CACHE>;
            var ss = 0.0;
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                if (k * ROW_THREADS >= n) {
                    break;
                }
                let j = lane + k * ROW_THREADS;
                var xv = 0.0;
                if (j < cnt) {
                    xv = x[xb + j];
                }
                v[k] = xv;
                ss = fma(xv, xv, ss);
            }
            let r = scale_from_sum_sq(row_sum(vec4<f32>(ss, 0.0, 0.0, 0.0)).x);
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                if (k * ROW_THREADS >= n) {
                    break;
                }
                let j = lane + k * ROW_THREADS;
                if (j < cnt) {
                    y[yb + j] = v[k] * r * gamma_at(j);
                }
            }
            save_rstd(row, lane, live, r);
        } else {
            var ss = 0.0;
            for (var j = lane; j < cnt; j = j + ROW_THREADS) {
                let xv = x[xb + j];
                ss = fma(xv, xv, ss);
            }
            let r = scale_from_sum_sq(row_sum(vec4<f32>(ss, 0.0, 0.0, 0.0)).x);
            for (var j = lane; j < cnt; j = j + ROW_THREADS) {
                y[yb + j] = x[xb + j] * r * gamma_at(j);
            }
            save_rstd(row, lane, live, r);
        }
    }
}

// (r, c * sum(u * x)) of the header, from sum(x^2), sum(u * x) and the saved rstd when
// there is one. The product is formed as ((S * r) / n) * r * r so that neither r^3 (which
// underflows f32 for |x| near 1e15) nor S * r^3 leaves the f32 range while dx is in it.
fn backward_coefficients(sum_sq: f32, sum_ux: f32, row: u32, live: bool) -> vec2<f32> {
    let n = f32(p.cols);
    var r = scale_from_sum_sq(sum_sq);
    if (has(FLAG_RSTD) && live) {
        r = rstd[p.rstd_off + row];
    }
    if (has(FLAG_EPS_OUTSIDE)) {
        var rms = sqrt(sum_sq / n);
        if (has(FLAG_RSTD)) {
            // The saved statistic is 1 / (rms + eps); where rms << eps the recovered rms
            // is inexact, but then its term is as small as that error relative to r * u.
            rms = max(1.0 / r - p.eps, 0.0);
        }
        return vec2<f32>(r, select(0.0, (sum_ux * r) / (n * rms) * r, rms > 0.0));
    }
    return vec2<f32>(r, (sum_ux * r) / n * r * r);
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
    let want_dgamma = has(FLAG_DGAMMA);
    // This slot's own row of dgamma partial sums in the workspace.
    let pb = p.part_off + (wid.x * rows_per_group() + slot) * n;
    if (row_is_cached()) {
        var acc: array<f32, MAX_CACHE>;
        for (var b = wid.x; b < blocks; b = b + nwg.x) {
            let row = b * rows_per_group() + slot;
            let live = row < p.rows;
            let cnt = select(0u, n, live);
            var v: array<f32, MAX_CACHE>;
            var w: array<f32, MAX_CACHE>;
            var s = vec4<f32>(0.0);
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                if (k * ROW_THREADS >= n) {
                    break;
                }
                let j = lane + k * ROW_THREADS;
                var xv = 0.0;
                var dv = 0.0;
                if (j < cnt) {
                    xv = x[p.x_off + row * n + j];
                    dv = dy[p.dy_off + row * n + j];
                }
                v[k] = xv;
                w[k] = dv;
                s.x = fma(xv, xv, s.x);
                s.y = fma(dv * gamma_at(j), xv, s.y);
            }
            let t = row_sum(s);
            let rc = backward_coefficients(t.x, t.y, row, live);
            let cu = rc.y;
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                if (k * ROW_THREADS >= n) {
                    break;
                }
                let j = lane + k * ROW_THREADS;
                if (j < cnt) {
                    dx[p.dx_off + row * n + j] = rc.x * w[k] * gamma_at(j) - cu * v[k];
                    acc[k] = fma(w[k] * v[k], rc.x, acc[k]);
                }
            }
        }
        if (want_dgamma) {
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                let j = lane + k * ROW_THREADS;
                if (j >= n) {
                    break;
                }
                partial[pb + j] = acc[k];
            }
        }
    } else {
        if (want_dgamma) {
            for (var j = lane; j < n; j = j + ROW_THREADS) {
                partial[pb + j] = 0.0;
            }
        }
        for (var b = wid.x; b < blocks; b = b + nwg.x) {
            let row = b * rows_per_group() + slot;
            let live = row < p.rows;
            let cnt = select(0u, n, live);
            let xb = p.x_off + row * n;
            let db = p.dy_off + row * n;
            var s = vec4<f32>(0.0);
            for (var j = lane; j < cnt; j = j + ROW_THREADS) {
                let xv = x[xb + j];
                s.x = fma(xv, xv, s.x);
                s.y = fma(dy[db + j] * gamma_at(j), xv, s.y);
            }
            let t = row_sum(s);
            let rc = backward_coefficients(t.x, t.y, row, live);
            let cu = rc.y;
            for (var j = lane; j < cnt; j = j + ROW_THREADS) {
                let xv = x[xb + j];
                let dv = dy[db + j];
                dx[p.dx_off + row * n + j] = rc.x * dv * gamma_at(j) - cu * xv;
                if (want_dgamma) {
                    partial[pb + j] = fma(dv * xv, rc.x, partial[pb + j]);
                }
            }
        }
    }
}
