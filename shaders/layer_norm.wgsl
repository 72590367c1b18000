// LayerNorm, forward and backward, one row per ROW_THREADS threads. Biased variance (1/n).
//
//   forward:  mean first, then the variance of the centred values (never E[x^2] - mean^2):
//             m1  = fl(sum(x) / n)                 a first, rounded mean
//             d   = x - m1                         exact when x is near m1 (Sterbenz)
//             m2  = sum(d) / n                     what the rounding of m1 lost
//             var = sum(d^2) / n - m2^2            Chan-Golub-LeVeque corrected two-pass
//             xh  = (d - m2) * rstd,   rstd = 1 / sqrt(var + eps)
//             y   = xh * g + b
//   Carrying m1 + m2 instead of one f32 mean keeps rows like 1e4 + randn exact to f32
//   rounding of the centred values, where fl(mean) alone would be off by half an ulp of
//   1e4 (5e-4) in every output.
//   backward: with u = g * dy,
//             dx = rstd * (u - mean(u) - xh * mean(u * xh))
//             dgamma = sum over rows of dy * xh,   dbeta = sum over rows of dy
//   A saved mean is used as m1 and corrected the same way; a saved rstd is used as is.
//
// Rows that fit in registers (cols <= ROW_THREADS * MAX_CACHE) are read once; longer rows
// are streamed from device memory once per pass (three passes forward, two backward).
// Backward partial sums are deterministic, as in rms_norm.wgsl.

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> gamma: array<f32>;
@group(0) @binding(2) var<storage, read_write> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<storage, read_write> mean: array<f32>;
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

fn beta_at(j: u32) -> f32 {
    if (has(FLAG_BETA)) {
        return beta[p.beta_off + j];
    }
    return 0.0;
}

// (m2, rstd) from sum(d) and sum(d^2) of the values centred on m1.
fn centred_stats(sum_d: f32, sum_d2: f32) -> vec2<f32> {
    let n = f32(p.cols);
    let m2 = sum_d / n;
    let var_ = max(sum_d2 / n - m2 * m2, 0.0);
    return vec2<f32>(m2, 1.0 / sqrt(var_ + p.eps));
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_forward(
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
        let cnt = select(0u, n, live);
        let xb = p.x_off + row * n;
        let yb = p.y_off + row * n;
        if (row_is_cached()) {
            var v: array<f32, MAX_CACHE>;
            var s = 0.0;
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
                s = s + xv;
            }
            let m1 = row_sum(vec4<f32>(s, 0.0, 0.0, 0.0)).x / f32(n);
            var c = vec4<f32>(0.0);
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                if (k * ROW_THREADS >= n) {
                    break;
                }
                let j = lane + k * ROW_THREADS;
                if (j < cnt) {
                    let d = v[k] - m1;
                    v[k] = d;
                    c.x = c.x + d;
                    c.y = fma(d, d, c.y);
                }
            }
            let t = row_sum(c);
            let st = centred_stats(t.x, t.y);
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                if (k * ROW_THREADS >= n) {
                    break;
                }
                let j = lane + k * ROW_THREADS;
                if (j < cnt) {
                    y[yb + j] = fma((v[k] - st.x) * st.y, gamma_at(j), beta_at(j));
                }
            }
            save_stats(row, lane, live, m1 + st.x, st.y);
        } else {
            var s = 0.0;
            for (var j = lane; j < cnt; j = j + ROW_THREADS) {
                s = s + x[xb + j];
            }
            let m1 = row_sum(vec4<f32>(s, 0.0, 0.0, 0.0)).x / f32(n);
            var c = vec4<f32>(0.0);
            for (var j = lane; j < cnt; j = j + ROW_THREADS) {
                let d = x[xb + j] - m1;
                c.x = c.x + d;
                c.y = fma(d, d, c.y);
            }
            let t = row_sum(c);
            let st = centred_stats(t.x, t.y);
            for (var j = lane; j < cnt; j = j + ROW_THREADS) {
                y[yb + j] = fma((x[xb + j] - m1 - st.x) * st.y, gamma_at(j), beta_at(j));
            }
            save_stats(row, lane, live, m1 + st.x, st.y);
        }
    }
}

// The first mean: saved, or reduced from this thread's share `s` of sum(x).
// Called from uniform control flow only (row_sum holds barriers).
fn first_mean(s: f32, row: u32, live: bool) -> f32 {
    if (has(FLAG_MEAN)) {
        return select(0.0, mean[p.mean_off + row], live);
    }
    return row_sum(vec4<f32>(s, 0.0, 0.0, 0.0)).x / f32(p.cols);
}

// (m2, rstd, mean(u), mean(u * xh)) from the sums of d, d^2, u and u * d, d = x - m1.
fn backward_stats(t: vec4<f32>, row: u32, live: bool) -> vec4<f32> {
    let n = f32(p.cols);
    var st = centred_stats(t.x, t.y);
    if (has(FLAG_RSTD) && live) {
        st.y = rstd[p.rstd_off + row];
    }
    // sum(u * xh) = rstd * (sum(u * d) - m2 * sum(u)): m2 is tiny next to d, no cancellation.
    return vec4<f32>(st.x, st.y, t.z / n, st.y * (t.w - st.x * t.z) / n);
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
    let want_dgamma = has(FLAG_DGAMMA);
    let want_dbeta = has(FLAG_DBETA);
    // This slot's rows of partial sums: dgamma in the first half, dbeta in the second.
    let pb = p.part_off + (wid.x * rows_per_group() + slot) * n;
    let pbb = pb + p.part_rows * n;
    if (row_is_cached()) {
        var acc_g: array<f32, MAX_CACHE>;
        var acc_b: array<f32, MAX_CACHE>;
        for (var b = wid.x; b < blocks; b = b + nwg.x) {
            let row = b * rows_per_group() + slot;
            let live = row < p.rows;
            let cnt = select(0u, n, live);
            var v: array<f32, MAX_CACHE>;
            var w: array<f32, MAX_CACHE>;
            var s = 0.0;
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
                s = s + xv;
            }
            let m1 = first_mean(s, row, live);
            var c = vec4<f32>(0.0);
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                if (k * ROW_THREADS >= n) {
                    break;
                }
                let j = lane + k * ROW_THREADS;
                if (j < cnt) {
                    let d = v[k] - m1;
                    let u = w[k] * gamma_at(j);
                    v[k] = d;
                    c = c + vec4<f32>(d, d * d, u, u * d);
                }
            }
            let st = backward_stats(row_sum(c), row, live);
            for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
                if (k * ROW_THREADS >= n) {
                    break;
                }
                let j = lane + k * ROW_THREADS;
                if (j < cnt) {
                    let xh = (v[k] - st.x) * st.y;
                    let u = w[k] * gamma_at(j);
                    dx[p.dx_off + row * n + j] = st.y * (u - st.z - xh * st.w);
                    acc_g[k] = fma(w[k], xh, acc_g[k]);
                    acc_b[k] = acc_b[k] + w[k];
                }
            }
        }
        for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
            let j = lane + k * ROW_THREADS;
            if (j >= n) {
                break;
            }
            if (want_dgamma) {
                partial[pb + j] = acc_g[k];
            }
            if (want_dbeta) {
                partial[pbb + j] = acc_b[k];
            }
        }
    } else {
        for (var j = lane; j < n; j = j + ROW_THREADS) {
            if (want_dgamma) {
                partial[pb + j] = 0.0;
            }
            if (want_dbeta) {
                partial[pbb + j] = 0.0;
            }
        }
        for (var b = wid.x; b < blocks; b = b + nwg.x) {
            let row = b * rows_per_group() + slot;
            let live = row < p.rows;
            let cnt = select(0u, n, live);
            let xb = p.x_off + row * n;
            let db = p.dy_off + row * n;
            var s = 0.0;
            if (!has(FLAG_MEAN)) {
                for (var j = lane; j < cnt; j = j + ROW_THREADS) {
                    s = s + x[xb + j];
                }
            }
            let m1 = first_mean(s, row, live);
            var c = vec4<f32>(0.0);
            for (var j = lane; j < cnt; j = j + ROW_THREADS) {
                let d = x[xb + j] - m1;
                let u = dy[db + j] * gamma_at(j);
                c = c + vec4<f32>(d, d * d, u, u * d);
            }
            let st = backward_stats(row_sum(c), row, live);
            for (var j = lane; j < cnt; j = j + ROW_THREADS) {
                let xh = (x[xb + j] - m1 - st.x) * st.y;
                let dv = dy[db + j];
                dx[p.dx_off + row * n + j] = st.y * (dv * gamma_at(j) - st.z - xh * st.w);
                if (want_dgamma) {
                    partial[pb + j] = fma(dv, xh, partial[pb + j]);
                }
                if (want_dbeta) {
                    partial[pbb + j] = partial[pbb + j] + dv;
                }
            }
        }
    }
}
