//! include common.wgsl
//! include forward_walks.wgsl
// RMSNorm, forward and backward, one row per ROW_THREADS threads.
//
//   h  = x (+ residual when fused; h may be written out as the new residual stream)
//   forward:  r = 1 / sqrt(mean_k(h^2) + eps)      (eps inside the root, the default)
//             r = 1 / (sqrt(mean_k(h^2)) + eps)    (FLAG_EPS_OUTSIDE)
//             y = h * r * (gamma_offset + gamma)
//             (FLAG_ADD_AFTER: h = x, and y = residual + x * r * (gamma_offset + gamma);
//             the backward is the norm's, and the residual's gradient is dy itself)
//   mean_k is over the first k = norm_cols elements (partial RMSNorm; k = cols otherwise).
//   backward: with u = g * dy,
//             dh = r * u - [j < k] * c * h * sum(u * h)  (+ the gradient arriving on h;
//                  an element that dominates its row is formed without cancellation,
//                  see Coefficients)
//             c  = r^3 / k                       (eps inside)
//             c  = r^2 / (k * rms), 0 at rms = 0 (eps outside)
//             dgamma = sum over rows of dy * h * r
//   dx is dh: x and the residual receive the same gradient. Backward reads h as its x.
//   Rows whose squares leave f32's range: the forward sums them again scaled by a power of
//   two (guard_sums, row_scale; a short tile's after the slot's other rows, forward_walks.wgsl);
//   the backward works on h * 2^e, 2^e the power of two of the saved rstd where that is far
//   from 1 (backward_scale), or without one, 2^GUARD_HI where its squares overflow
//   (thread_split). See common.wgsl.
//
// Fused single pass: while a row fits in registers (CACHED: MAX_CACHE quads per thread)
// each element is read once and written once. A longer row is streamed twice from device
// memory (sum of squares, then scale); the second read usually hits L2 on a GPU, and
// correctness does not depend on it. Streamed rows go four per trip while a workgroup has four
// row blocks left, then two, so a gamma quad read serves them all and two reductions four
// rows; in the backward's walks (with a saved rstd) likewise, the first together or one row
// after another (FLAG_JOINT_WALKS), and in the second a dgamma partial sum's read and write
// serve them all too.
//
// Rows too few to fill the device may be split (rms_norm_forward_split): each segment of a
// row sums its squares into the workspace, then each merges its row's sums in a fixed order
// and scales its own elements. x is read twice, and the result does not depend on which
// workgroup finishes first.
//
// Backward is deterministic: each (workgroup, row slot) accumulates dgamma for the rows it
// visits in a fixed order into its own row of the workspace; reduce_columns.wgsl sums
// those rows in a fixed order. No atomics.

@group(0) @binding(5) var<storage, read_write> rstd: array<f32>;

// 1 / (rms + eps) or 1 / sqrt(ms + eps) of a row whose squares were summed scaled by f^2
// (f a power of two): the rstd of the row scaled by f, exactly as far as f32 goes. eps
// scales with the row; where that underflows, eps is negligible next to the row.
fn rstd_scaled(sum_sq: f32, f: f32) -> f32 {
    let ms = sum_sq / f32(p.norm_cols);
    if (has(FLAG_EPS_OUTSIDE)) {
        return 1.0 / (sqrt(ms) + p.eps * f);
    }
    return 1.0 / sqrt(ms + p.eps * f * f);
}

// A thread's guard sums (hi, lo) of one row, from its own sum of squares `ss`: ss scaled,
// exact where ss is in range (or out of range only where that guard is not the one used).
// Where ss overflowed, or underflowed and eps may not hide it, the thread walks its quads
// again from memory, scaled (no reduction or barrier inside, and they are not written yet,
// so divergence and in-place rows are safe; the trip count is 0 elsewhere), if `guarded`:
// a constant at each call, false where such a row is done again later (tile_rows), which
// leaves no walk and guard sums of 0.
fn guard_sums(ss: f32, base: u32, lane: u32, cnt: u32, guarded: bool) -> vec2<f32> {
    let again = guarded && (!(ss <= MAX_F32) || (ss < TINY && p.eps < TINY));
    var g = vec2<f32>(0.0);
    for (var k = 0u; k < select(0u, walk_trips(lane, cnt), again); k = k + 1u) {
        let j = quad_at(lane, k);
        let h = input_quad(base, j, trip_len(j, cnt));
        g = g + vec2<f32>(norm_sq(h * p.guard_hi, j), norm_sq(h * p.guard_lo, j));
    }
    let scaled = select(vec2<f32>(ss * p.guard_hi * p.guard_hi, ss * p.guard_lo * p.guard_lo), g, again);
    // Unguarded, a constant: the reduction drops the lanes (on llvmpipe a shuffle each).
    return select(vec2<f32>(0.0), scaled, guarded);
}

// A row's rstd as 2^e * r: y = h * 2^e * r * g, with e = 0 for every row in range.
struct RowScale {
    e: i32,
    r: f32,
}

// The RowScale of a row from its sums of squares, unscaled and guarded.
fn row_scale(ss: f32, hi: f32, lo: f32) -> RowScale {
    let over = !(ss <= MAX_F32);
    let under = ss < TINY && p.eps < TINY;
    let e = select(select(0, GUARD_LO, under), GUARD_HI, over);
    return RowScale(e, rstd_scaled(select(select(ss, lo, under), hi, over), pow2(e)));
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
fn store_forward(base: u32, j: u32, len: u32, h: vec4<f32>, r: RowScale, g: vec4<f32>) {
    st_y(p.y_off + base + j, output_quad(base, j, len, h * pow2(r.e) * r.r * g), len);
    if (has(FLAG_H)) {
        st_h(p.h_off + base + j, h, len);
    }
}

// The forward's entry points, one per walk (forward_walks.wgsl). Any launch's, a row per trip:
@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    let s = enter_forward(wid, nwg, inv);
    forward_each(s.first, 0u, slot_trips(wid.x, nwg.x), s.lane);
}

// Streamed rows, four per trip (TRIP_ROWS) while four are left, then two: each gamma quad is
// read once for all of them, and two reductions serve four rows. Their lanes then hold no
// underflow guard, which only an eps below TINY needs.
@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm_forward_streamed(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    let s = enter_forward(wid, nwg, inv);
    let trips = slot_trips(wid.x, nwg.x);
    var i = 0u;
    for (; TRIP_ROWS == 4u && p.eps >= TINY && i + 3u < trips; i = i + 4u) {
        forward_rows(vec4<u32>(s.first + i) + vec4<u32>(0u, 1u, 2u, 3u), s.lane, 4u, false);
    }
    for (; p.eps >= TINY && i + 1u < trips; i = i + 2u) {
        forward_rows(vec4<u32>(s.first + i) + vec4<u32>(0u, 1u, 0u, 0u), s.lane, 2u, false);
    }
    forward_each(s.first, i, trips, s.lane);
}

// Tile rows, those out of f32's range done last.
@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm_forward_tile(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    let s = enter_forward(wid, nwg, inv);
    tile_rows(s.first, slot_trips(wid.x, nwg.x), s.lane);
}

fn load_tile_params(lane: u32) {
    load_tile_gamma(lane);
}

// The forward of tile row `index`, its sums of squares guarded (row_scale), from memory:
// forward_rows stored nothing of it. Its walks' trip count is not the tile's constant, and they
// read the row and gamma from memory, not the tile: where no row was marked, a SIMD
// compiler runs this once with every lane off, and then each walk costs one trip, not
// MAX_CACHE unrolled ones (the tile, indexed only at compile time, stays in registers).
fn guarded_tile_row(index: u32, lane: u32) {
    let row = row_at(index);
    let trips = select(0u, MAX_CACHE, row.live);
    var t = vec4<f32>(0.0);
    for (var k = 0u; k < trips; k = k + 1u) {
        let j = quad_at(lane, k);
        let h = input_quad(row.base, j, quad_len(j, row.cnt));
        t = t + vec4<f32>(norm_sq(h, j), 0.0, norm_sq(h * p.guard_hi, j), norm_sq(h * p.guard_lo, j));
    }
    t = row_butterfly(t, SUM);
    let r = row_scale(t.x, t.z, t.w);
    for (var k = 0u; k < trips; k = k + 1u) {
        let j = quad_at(lane, k);
        let len = quad_len(j, row.cnt);
        store_forward(row.base, j, len, input_quad(row.base, j, len), r, gamma_quad(j, len));
    }
    save_rstd(row.index, lane, row.live, r.r * pow2(r.e));
}

// The forward of the first `n` rows of `row` (1, 2 or 4: a constant at each call, so each
// call compiles to loops of its own; only streamed rows go more than one at a time). A slot
// past the last row sees an empty row but still joins every reduction: call from uniform
// control flow only. With `defer` (a constant at each call), a row out of f32's range is left
// to guarded_tile_row: nothing of it is stored, and the result is false.
fn forward_rows(row: vec4<u32>, lane: u32, n: u32, defer: bool) -> bool {
    let live = (row < vec4<u32>(p.rows)) & (vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n));
    let cnt = select(0u, p.cols, live.x);
    let base = vec4<u32>(row_base(row.x), row_base(row.y), row_base(row.z), row_base(row.w));
    let t = row_sums(base, cnt, live, lane, n, !defer);
    let rx = row_scale(t.ss.x, t.hi.x, t.lo);
    if (defer && live.x && rx.e != 0) {
        return false;
    }
    let ry = row_scale(t.ss.y, t.hi.y, 0.0);
    let rz = row_scale(t.ss.z, t.hi.z, 0.0);
    let rw = row_scale(t.ss.w, t.hi.w, 0.0);
    store_rows(base, cnt, live, lane, n, rx, ry, rz, rw);
    save_rstd(row.x, lane, live.x, rx.r * pow2(rx.e));
    save_rstd(row.y, lane, live.y, ry.r * pow2(ry.e));
    save_rstd(row.z, lane, live.z, rz.r * pow2(rz.e));
    save_rstd(row.w, lane, live.w, rw.r * pow2(rw.e));
    return true;
}

// Sums of squares of up to four rows, reduced over each row's threads: each row's sum and
// its guard scaled by 2^GUARD_HI, and for a row alone its guard scaled by 2^GUARD_LO.
struct RowSums {
    ss: vec4<f32>,
    hi: vec4<f32>,
    lo: f32,
}

// The RowSums of the walk over the first cnt elements of the first `n` rows starting at
// `base` (a constant at each call: 1, 2 or 4): one reduction for one or two rows, two for
// four. Row x's guards come from guard_sums (`guarded` as there); the rows after it have cnt
// elements where live.
fn row_sums(base: vec4<u32>, cnt: u32, live: vec4<bool>, lane: u32, n: u32, guarded: bool) -> RowSums {
    // Blocked sums: a thread may walk thousands of quads when few threads share a row;
    // flushing every 32 keeps the error near 32 + trips / 32 roundings.
    let lens = select(vec4<u32>(0u), vec4<u32>(4u), live);
    var ss = vec4<f32>(0.0);
    var part = vec4<f32>(0.0);
    for (var k = 0u; k < walk_trips(lane, cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, cnt);
        let h = input_quad(base.x, j, len);
        keep_h(k, h);
        part.x = part.x + norm_sq(h, j);
        if (n > 1u) {
            part.y = part.y + norm_sq(input_quad(base.y, j, min(len, lens.y)), j);
        }
        if (n > 2u) {
            part.z = part.z + norm_sq(input_quad(base.z, j, min(len, lens.z)), j);
            part.w = part.w + norm_sq(input_quad(base.w, j, min(len, lens.w)), j);
        }
        if (flush_now(k)) {
            ss = ss + part;
            part = vec4<f32>(0.0);
        }
    }
    ss = ss + part;
    let cnts = select(vec4<u32>(0u), vec4<u32>(cnt), live);
    let gx = guard_sums(ss.x, base.x, lane, cnt, guarded);
    if (n == 1u) {
        let t = row_sum(vec4<f32>(ss.x, 0.0, gx));
        return RowSums(vec4<f32>(t.x, 0.0, 0.0, 0.0), vec4<f32>(t.z, 0.0, 0.0, 0.0), t.w);
    }
    let gy = guard_sums(ss.y, base.y, lane, cnts.y, guarded);
    if (n == 2u) {
        let t = row_sum(vec4<f32>(ss.xy, gx.x, gy.x));
        return RowSums(vec4<f32>(t.xy, 0.0, 0.0), vec4<f32>(t.zw, 0.0, 0.0), 0.0);
    }
    let gz = guard_sums(ss.z, base.z, lane, cnts.z, guarded);
    let gw = guard_sums(ss.w, base.w, lane, cnts.w, guarded);
    return RowSums(row_sum(ss), row_sum(vec4<f32>(gx.x, gy.x, gz.x, gw.x)), 0.0);
}

// Writes the walk's y (and h) of the first `n` rows starting at `base` (1, 2 or 4), each
// scaled by its RowScale.
fn store_rows(base: vec4<u32>, cnt: u32, live: vec4<bool>, lane: u32, n: u32, rx: RowScale, ry: RowScale, rz: RowScale, rw: RowScale) {
    for (var k = 0u; k < walk_trips(lane, cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, cnt);
        let g = tile_or_gamma(k, j, len);
        store_forward(base.x, j, len, tile_or_input(k, base.x, j, len), rx, g);
        if (n > 1u && live.y) {
            store_forward(base.y, j, len, input_quad(base.y, j, len), ry, g);
        }
        if (n > 2u && live.z) {
            store_forward(base.z, j, len, input_quad(base.z, j, len), rz, g);
        }
        if (n > 2u && live.w) {
            store_forward(base.w, j, len, input_quad(base.w, j, len), rw, g);
        }
    }
}

// The forward of rows split into segments (FLAG_SPLIT), one per row slot: rows too few to
// fill the device are spread over more workgroups. Run twice: a segment first leaves the
// sums of row_sums in its quad of the workspace; then (FLAG_SPLIT_FINISH) every segment of
// a row merges them the same way and writes its own elements.
@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm_forward_split(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    enter(inv);
    let lane = inv.index % ROW_THREADS;
    let slot = inv.index / ROW_THREADS;
    for (var b = wid.x; b < row_blocks(); b = b + nwg.x) {
        let v = b * rows_per_group() + slot;
        let s = split_row(v);
        let base = vec4<u32>(row_base(s.row));
        if (has(FLAG_SPLIT_FINISH)) {
            fill_tile(base.x, lane, s.end);
            let t = merged_partials(s, lane);
            let r = row_scale(t.x, t.y, t.z);
            store_rows(base, s.end, vec4<bool>(true), lane, 1u, r, r, r, r);
            save_rstd(s.row, lane, s.live && s.index == 0u, r.r * pow2(r.e));
        } else {
            let t = row_sums(base, s.end, vec4<bool>(true), lane, 1u, true);
            if (s.live && lane == 0u) {
                st_workspace(p.workspace_off + 4u * v, vec4<f32>(t.ss.x, t.hi.x, t.lo, 0.0), 4u);
            }
        }
    }
}

// h^2 of the quad at j on the elements the RMS is estimated from, else 0.
fn norm_sq4(h: vec4<f32>, j: u32) -> vec4<f32> {
    return h * h * norm_mask(j);
}

// Per-lane dominant splits (merge_split in common.wgsl) of a thread's walk over the pairs
// (h^2 as norm_sq4 gives it, u * h): the largest h^2 of each lane, its u * h, and blocked
// sums of the others (the block's in s and t, earlier blocks' in s_done and t_done).
struct Lanes {
    m: vec4<f32>,
    mu: vec4<f32>,
    s: vec4<f32>,
    t: vec4<f32>,
    s_done: vec4<f32>,
    t_done: vec4<f32>,
}

fn add_lanes(a: ptr<function, Lanes>, k: u32, q: vec4<f32>, w: vec4<f32>) {
    let win = q > (*a).m;
    (*a).s = (*a).s + select(q, (*a).m, win);
    (*a).t = (*a).t + select(w, (*a).mu, win);
    (*a).m = select((*a).m, q, win);
    (*a).mu = select((*a).mu, w, win);
    if (flush_now(k)) {
        (*a).s_done = (*a).s_done + (*a).s;
        (*a).t_done = (*a).t_done + (*a).t;
        (*a).s = vec4<f32>(0.0);
        (*a).t = vec4<f32>(0.0);
    }
}

// The thread's four lanes merged into one split (m, mu, s, t) by `op` (SPLIT or
// SPLIT_GUARDED).
fn lanes_split(a: Lanes, op: u32) -> vec4<f32> {
    let s = a.s_done + a.s;
    let t = a.t_done + a.t;
    let xy = combine(vec4<f32>(a.m.x, a.mu.x, s.x, t.x), vec4<f32>(a.m.y, a.mu.y, s.y, t.y), op);
    let zw = combine(vec4<f32>(a.m.z, a.mu.z, s.z, t.z), vec4<f32>(a.m.w, a.mu.w, s.w, t.w), op);
    return combine(xy, zw, op);
}

// What dx is formed from, as r * (a * u - b * h). Every element but a dominant one: a = 1,
// b = w = c * sum(u * h) / r. An element whose h^2 outweighs all others' together (h^2 = m >
// their sum) would lose digits there, as the two terms cancel (at d = 1, 1 - r^2 h^2 =
// eps r^2); its a and b are formed from the sums S' and T' of h^2 and u * h over the other
// elements (the row's dominant split) instead:
//   a = dom_u = c * (S' + k * e) / r,   b = dom_h = c * T' / r,
//   e = eps (inside), rms * eps (outside)
// the same value, since 1 / r^2 = S / k + eps (inside) and 1 / r = rms + eps (outside).
struct Coefficients {
    r: f32,
    w: f32,
    dom_u: f32,
    dom_h: f32,
    // The dominant element's h^2 (norm_sq4), or -1 when no element dominates.
    dominant: f32,
}

// The row's saved rstd, read once; 0 without one.
fn saved_rstd(row: Row) -> f32 {
    if (has(FLAG_RSTD) && row.live) {
        return rstd[p.rstd_off + row.index];
    }
    return 0.0;
}

// The coefficients from the dominant split of the row scaled by s = 2^e (backward_scale, or
// 2^GUARD_HI where the row's squares overflowed) and its saved rstd (saved_rstd) where
// there is one, for that scaled row. Products are formed as ((S * r) / k) * r so that neither
// r^2 (which underflows f32 for |h| near 1e20) nor S * r^2 leaves the f32 range while dx is
// in it. eps scales with the row (eps * s^2 inside the root): s is at most 1 / sqrt(eps), so
// it stays in range, or it is 2^GUARD_HI, where eps * s^2 counts as 0 next to the row.
fn backward_coefficients(split: vec4<f32>, saved: f32, live: bool, e: i32) -> Coefficients {
    let s = pow2(e);
    let sum_sq = split.x + split.z;
    let sum_uh = split.y + split.w;
    let dominant = select(-1.0, split.x, split.x > split.z);
    let k = f32(p.norm_cols);
    var r = overflow_shows(rstd_scaled(sum_sq, s), sum_sq);
    if (has(FLAG_RSTD) && live) {
        r = saved * pow2(-e);
    }
    r = live_rstd(r, live);
    if (has(FLAG_EPS_OUTSIDE)) {
        let eps = p.eps * s;
        var rms = sqrt(sum_sq / k);
        if (has(FLAG_RSTD)) {
            // The saved statistic is 1 / (rms + eps); where rms << eps the recovered rms
            // is inexact, but then its term is as small as that error relative to r * u.
            rms = max(1.0 / r - eps, 0.0);
        }
        let kr = k * rms;
        let on = rms > 0.0;
        return Coefficients(
            r,
            select(0.0, (sum_uh * r) / kr, on),
            select(0.0, ((split.z + kr * eps) * r) / kr, on),
            select(0.0, (split.w * r) / kr, on),
            select(-1.0, dominant, on),
        );
    }
    return Coefficients(
        r,
        (sum_uh * r) / k * r,
        ((split.z + k * (p.eps * s * s)) * r) / k * r,
        (split.w * r) / k * r,
        dominant,
    );
}

// dx for the quad at j of the row scaled by 2^e (h is scaled, co for the scaled row), plus
// dh; `back` scales it back by 2^e (dx_factors).
fn dx_quad(base: u32, j: u32, len: u32, h: vec4<f32>, d: vec4<f32>, g: vec4<f32>, co: Coefficients, back: vec2<f32>) -> vec4<f32> {
    let u = d * g;
    let usual = u - co.w * h * norm_mask(j);
    let alone = co.dom_u * u - co.dom_h * h;
    let dx = back.x * (select(usual, alone, norm_sq4(h, j) == vec4<f32>(co.dominant)) * back.y);
    return dx + dh_quad(base, j, len);
}

// Whether a row takes row_stores' plain form: it exists, it is not scaled (s = 1, so that
// its dx_factors are (r, 1)) and no element dominates it.
fn plain_row(row: Row, c: RowBackward) -> bool {
    return row.live && c.s == 1.0 && c.co.dominant < 0.0;
}

// The backward's entry points, one per walk (Walk in src/shader.rs). Any launch's, a row per
// trip:
@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    let s = enter_backward(wid, nwg, inv);
    backward_each(s, 0u, slot_trips(wid.x, nwg.x));
    end_partial(&tile_dgamma, s.lane, s.pb, s.want_dgamma);
}

// Streamed rows with a saved rstd, four per trip while four are left, then two, as in the
// forward: each gamma quad, and each dgamma partial sum read and written back, serves them
// all. One call site, its row count uniform, so the pipeline holds the first walk twice
// (here and in backward_each). Only with a saved rstd: two copies of the guarded reduction a
// row without one needs made SwiftShader's shader compiler run for over 5 minutes (7 s for
// one).
@compute @workgroup_size(WORKGROUP_SIZE)
fn rms_norm_backward_streamed(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    let s = enter_backward(wid, nwg, inv);
    let trips = slot_trips(wid.x, nwg.x);
    var i = 0u;
    while (i + 1u < trips) {
        let per_trip = select(2u, 4u, i + 3u < trips);
        backward_rows(s.first + i, per_trip, s.lane, s.pb, s.want_dgamma, i == 0u);
        i = i + per_trip;
    }
    backward_each(s, i, trips);
    end_partial(&tile_dgamma, s.lane, s.pb, s.want_dgamma);
}

// A backward slot: the thread's lane, the slot's first row, and its own row of dgamma partial
// sums in the workspace, there for each slot below the row count (a slot at or past it visits
// only rows past the last, which have no elements, and writes nothing; one below it may visit
// none, and leaves zeros). The slot's trip count stays out of it: it is uniform, the rest is
// not.
struct BackwardSlot {
    lane: u32,
    first: u32,
    pb: u32,
    want_dgamma: bool,
}

fn enter_backward(wid: vec3<u32>, nwg: vec3<u32>, inv: Invocation) -> BackwardSlot {
    enter(inv);
    let lane = inv.index % ROW_THREADS;
    let slot = inv.index / ROW_THREADS;
    let first_row = wid.x * rows_per_group() + slot;
    let want_dgamma = has(FLAG_DGAMMA) && first_row < p.rows;
    let pb = p.workspace_off + partial_row(wid.x, slot) * p.cols;
    load_tile_gamma(lane);
    let first = slot_start(wid.x, nwg.x, slot);
    begin_partial(lane, pb, want_dgamma, first);
    return BackwardSlot(lane, first, pb, want_dgamma);
}

// The slot's rows `start` to `trips`, one at a time, and the register tile, without the arrays
// of the streamed trips: through them the tile rows ran 1.3-1.6x slower on lavapipe.
fn backward_each(s: BackwardSlot, start: u32, trips: u32) {
    for (var i = start; i < trips; i = i + 1u) {
        let row = row_at(s.first + i);
        backward_stores(row, row_backward(row, s.lane), s.lane, s.pb, s.want_dgamma, i == 0u);
    }
}

// What the second walk over a row needs: its Coefficients, for the row scaled by s = 2^e.
struct RowBackward {
    co: Coefficients,
    s: f32,
}

// The first walk over a row and its reduction. From uniform control flow only.
fn row_backward(row: Row, lane: u32) -> RowBackward {
    let saved = saved_rstd(row);
    var e = backward_scale(saved);
    // With a saved rstd the row is scaled by it (or its rstd saved as 0 where it was
    // beyond f32's range, and the overflow shows). Without one, a row whose squares
    // overflow is scaled by 2^GUARD_HI (thread_split), its tile too (tile_rescale); with
    // eps below TINY every row is scaled by its largest |h| first (magnitude_scale), and
    // none overflows. FLAGS is a pipeline constant: a backward with a saved rstd has
    // neither walk nor the guarded merges (llvmpipe runs a loop's body once even with no
    // trips).
    if (has(FLAG_TINY_EPS) && !has(FLAG_RSTD)) {
        e = magnitude_scale(row_magnitude(row, lane));
    }
    let op = select(SPLIT_GUARDED, SPLIT, has(FLAG_RSTD));
    var split = lanes_split(backward_sums(row, lane, pow2(e)), op);
    if (!has(FLAG_RSTD)) {
        split = thread_split(row, lane, split);
    }
    split = row_reduce(split, op);
    var es = e;
    if (!has(FLAG_RSTD)) {
        let over = split_scaled(split);
        es = select(e, GUARD_HI, over);
        tile_rescale(select(1.0, p.guard_hi, over));
        split.x = abs(split.x);
    }
    return RowBackward(backward_coefficients(split, saved, row.live, es), pow2(es));
}

// The largest |h| of a row (row_max), for a backward without a saved rstd where eps is below
// TINY.
fn row_magnitude(row: Row, lane: u32) -> f32 {
    var m = 0.0;
    for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        m = max(m, max4(abs(x_quad(row.base, j, trip_len(j, row.cnt)))));
    }
    return row_max(m);
}

// The first walk of the backward over a row scaled by s = 2^e: its lanes' dominant splits.
fn backward_sums(row: Row, lane: u32, s: f32) -> Lanes {
    let zero = vec4<f32>(0.0);
    var lanes = Lanes(zero, zero, zero, zero, zero, zero);
    for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, row.cnt);
        let h = x_quad(row.base, j, len) * s;
        let d = dy_quad(row.base, j, len);
        keep_h(k, h);
        keep_dy(k, d);
        add_lanes(&lanes, k, norm_sq4(h, j), d * tile_or_gamma(k, j, len) * h);
    }
    return lanes;
}

// This thread's dominant split of a row without a saved rstd, from its lanes' (`split`).
// Where its own squares overflowed, it walks its quads again scaled by 2^GUARD_HI and marks
// the split scaled (merge_guarded_split): a streamed row there only, the tile on every row,
// with the tile's constant trip count (see tile_rescale). No reduction or barrier inside.
fn thread_split(row: Row, lane: u32, split: vec4<f32>) -> vec4<f32> {
    let again = !(abs(split.x) + split.z <= MAX_F32);
    let zero = vec4<f32>(0.0);
    var scaled = Lanes(zero, zero, zero, zero, zero, zero);
    let trips = select(select(0u, walk_trips(lane, row.cnt), again), MAX_CACHE, CACHED);
    for (var k = 0u; k < trips; k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, row.cnt);
        let h = tile_or_x(k, row.base, j, len, 1.0) * p.guard_hi;
        let u = tile_or_dy(k, row.base, j, len) * tile_or_gamma(k, j, len);
        add_lanes(&scaled, k, norm_sq4(h, j), u * h);
    }
    return select(split, mark_scaled(lanes_split(scaled, SPLIT_GUARDED)), again);
}

// The backward of the slot's streamed rows first, first + 1, ..., `n` of them (2 or 4;
// uniform): their first walks (trip_sums, or one row after another), then one second walk
// over all, where each gamma quad serves them all and their dgamma terms are added before
// the partial sum (at pb) is written once (and read once, but on the slot's first trip:
// `fresh`). From uniform control flow only.
fn backward_rows(first: u32, n: u32, lane: u32, pb: u32, want_dgamma: bool, fresh: bool) {
    var rows: array<Row, 4>;
    var cos: array<RowBackward, 4>;
    for (var i = 0u; i < n; i = i + 1u) {
        rows[i] = trip_row(first + i, row_at(first));
        if (!has(FLAG_JOINT_WALKS)) {
            cos[i] = row_backward(rows[i], lane);
        }
    }
    if (has(FLAG_JOINT_WALKS)) {
        trip_sums(&rows, &cos, n, lane);
    }
    var plain = true;
    for (var i = 0u; i < n; i = i + 1u) {
        plain = plain && plain_row(rows[i], cos[i]);
    }
    // The last walk in two copies: the plain one, for trips whose rows all take row_stores'
    // plain form (every trip of ordinary data but a last one with rows past the end), and the
    // general one.
    if (plain) {
        last_walk(&rows, &cos, n, lane, pb, want_dgamma, fresh, true);
    } else {
        last_walk(&rows, &cos, n, lane, pb, want_dgamma, fresh, false);
    }
}

// The first walks of a trip's n rows (2 or 4; uniform), each with its saved rstd, as one walk
// (FLAG_JOINT_WALKS): a gamma quad read serves them all. A row that does not exist reads the
// trip's first row (trip_row), and its coefficients are never used. From uniform control
// flow only.
fn trip_sums(rows: ptr<function, array<Row, 4>>, cos: ptr<function, array<RowBackward, 4>>, n: u32, lane: u32) {
    var saved = vec4<f32>(0.0);
    var e = vec4<i32>(0);
    for (var i = 0u; i < n; i = i + 1u) {
        saved[i] = saved_rstd((*rows)[i]);
        e[i] = backward_scale(saved[i]);
    }
    let s = vec4<f32>(pow2(e.x), pow2(e.y), pow2(e.z), pow2(e.w));
    let zero = vec4<f32>(0.0);
    var lx = Lanes(zero, zero, zero, zero, zero, zero);
    var ly = lx;
    var lz = lx;
    var lw = lx;
    let bx = (*rows)[0].base;
    let by = (*rows)[1].base;
    let bz = (*rows)[2].base;
    let bw = (*rows)[3].base;
    let cnt = (*rows)[0].cnt;
    for (var k = 0u; k < walk_trips(lane, cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, cnt);
        let g = tile_or_gamma(k, j, len);
        add_row_lanes(&lx, k, bx, j, len, g, s.x);
        add_row_lanes(&ly, k, by, j, len, g, s.y);
        if (n > 2u) {
            add_row_lanes(&lz, k, bz, j, len, g, s.z);
            add_row_lanes(&lw, k, bw, j, len, g, s.w);
        }
    }
    (*cos)[0] = trip_coefficients(lx, saved.x, (*rows)[0].live, e.x);
    (*cos)[1] = trip_coefficients(ly, saved.y, (*rows)[1].live, e.y);
    if (n > 2u) {
        (*cos)[2] = trip_coefficients(lz, saved.z, (*rows)[2].live, e.z);
        (*cos)[3] = trip_coefficients(lw, saved.w, (*rows)[3].live, e.w);
    }
}

// One row's terms of the quad at j in trip_sums (backward_sums' for a row scaled by s).
fn add_row_lanes(a: ptr<function, Lanes>, k: u32, base: u32, j: u32, len: u32, g: vec4<f32>, s: f32) {
    let h = x_quad(base, j, len) * s;
    add_lanes(a, k, norm_sq4(h, j), dy_quad(base, j, len) * g * h);
}

// A row's RowBackward from this thread's Lanes of it, as row_backward forms it with a saved
// rstd. From uniform control flow only.
fn trip_coefficients(a: Lanes, saved: f32, live: bool, e: i32) -> RowBackward {
    let split = row_reduce(lanes_split(a, SPLIT), SPLIT);
    return RowBackward(backward_coefficients(split, saved, live, e), pow2(e));
}

// The last walk of backward_rows over its n rows (the first, rows[0], is the trip's).
fn last_walk(rows: ptr<function, array<Row, 4>>, cos: ptr<function, array<RowBackward, 4>>, n: u32, lane: u32, pb: u32, want_dgamma: bool, fresh: bool, plain: bool) {
    let rx = (*rows)[0];
    for (var k = 0u; k < walk_trips(lane, rx.cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, rx.cnt);
        let g = tile_or_gamma(k, j, len);
        var dg = row_stores(rx, (*cos)[0], j, len, g, plain, vec4<f32>(0.0));
        dg = row_stores((*rows)[1], (*cos)[1], j, len, g, plain, dg);
        if (n > 2u) {
            dg = row_stores((*rows)[2], (*cos)[2], j, len, g, plain, dg);
            dg = row_stores((*rows)[3], (*cos)[3], j, len, g, plain, dg);
        }
        add_partial(&tile_dgamma, k, pb, j, len, want_dgamma, fresh, dg, vec4<f32>(1.0));
    }
}

// The second walk over one row rx: dx scaled by cx.s, and its dgamma terms added to the
// partial sum at pb; h * r is the scaled h times the scaled rstd.
fn backward_stores(rx: Row, cx: RowBackward, lane: u32, pb: u32, want_dgamma: bool, fresh: bool) {
    let bx = dx_factors(cx.co.r, cx.s);
    for (var k = 0u; k < walk_trips(lane, rx.cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, rx.cnt);
        let h = tile_or_x(k, rx.base, j, len, cx.s);
        let d = tile_or_dy(k, rx.base, j, len);
        let g = tile_or_gamma(k, j, len);
        st_dx(p.dx_off + rx.base + j, dx_quad(rx.base, j, len, h, d, g, cx.co, bx), len);
        add_partial(&tile_dgamma, k, pb, j, len, want_dgamma, fresh, d * h, vec4<f32>(cx.co.r));
    }
}

// dx of a streamed row of a trip (trip_row) for the quad at j, and dg plus its dgamma term;
// nothing where the row does not exist. `plain` (a constant at each call) where the row is a
// plain_row: dx = r * u - w * xh, the dgamma term an fma, and no tests; the general form ran
// the last walk at 0.92-0.96x of this on SwiftShader (BENCHMARKS.md).
fn row_stores(row: Row, c: RowBackward, j: u32, len: u32, g: vec4<f32>, plain: bool, dg: vec4<f32>) -> vec4<f32> {
    let d = dy_quad(row.base, j, len);
    if (plain) {
        let xh = x_quad(row.base, j, len) * c.co.r;
        let dx = fma(vec4<f32>(-c.co.w), xh * norm_mask(j), d * g * c.co.r);
        st_dx(p.dx_off + row.base + j, dx + dh_quad(row.base, j, len), len);
        return fma(d, xh, dg);
    }
    let h = x_quad(row.base, j, len) * c.s;
    st_dx(p.dx_off + row.base + j, dx_quad(row.base, j, len, h, d, g, c.co, dx_factors(c.co.r, c.s)), select(0u, len, row.live));
    return dg + select(vec4<f32>(0.0), d * h * c.co.r, row.live);
}
