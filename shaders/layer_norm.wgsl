//! include common.wgsl
//! include forward_walks.wgsl
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
//   The peak element: the two terms of dx_m cancel where xh_m^2 nears n - 1, its largest
//   (one element far from all the others; at n = 2, both): they are 1 / (1 - xh_m^2 / (n - 1))
//   times dx_m. With S'' and U'' the sums of (c_i - mean_o)^2 and u_i (c_i - mean_o) over the
//   other elements, centred on their own mean mean_o, the same dx_m is
//             dx_m = rstd * (v_m * (S'' rstd^2 / n + eps rstd^2) - xh_m * U'' rstd / n),
//   v = u - mean(u), with nothing left to cancel. The element of largest |c| (c = h - m1)
//   takes that form where xh_m^2 > PEAK_SHARE * (n - 1); no two elements can.
//   dx is dh: x and the residual receive the same gradient. Backward reads h as its x.
//   Rows whose squares leave f32's range (common.wgsl): the forward sums them again scaled
//   by 2^GUARD_HI, in the idle lanes of its reductions (tile_sums, guarded_moments; a short
//   tile's after the slot's other rows, forward_walks.wgsl), and normalizes h * 2^e with the
//   Stats of the scaled row; the backward works on h * 2^e, 2^e the power of two of the
//   saved rstd where that is far from 1 (backward_scale). With eps below TINY both scale
//   every row by its largest |h| (magnitude_scale) where no rstd is given, so that tiny
//   rows keep their variance.
//
// Rows that fit in registers (CACHED: MAX_CACHE quads per thread) are read once. Longer rows
// are streamed from device memory once per pass, two passes each way. A streamed forward
// takes its statistics from one read: each thread keeps the moments (count, mean, M2) of its
// elements' d = h - pivot, the pivot one of the row's first values, built from short blocks
// of shifted sums and merged with Chan, Golub and LeVeque's formula, then merged across the
// row's threads. The mean is carried as pivot + mean(d), like m1 + m2 above. Streamed rows
// go four per trip, then one, as in rms_norm.wgsl: a gamma and beta quad serves them all, and
// the moments of each row are a lane of one vector, so four rows reduce in six row_sums.
// Backward partial sums are deterministic, as in rms_norm.wgsl.

// Below it the usual dx_m's terms are at most 4 times dx_m (1 / (1 - PEAK_SHARE)): under one
// digit of f32's seven lost, and the rest walk stays off most rows.
const PEAK_SHARE: f32 = 0.75;

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
    if (params_cached()) {
        for (var k = 0u; k < MAX_CACHE; k = k + 1u) {
            let j = quad_at(lane, k);
            tile_beta[k] = beta_quad(j, quad_len(j, p.cols));
        }
    }
}

fn tile_or_beta(k: u32, j: u32, len: u32) -> vec4<f32> {
    if (params_cached()) {
        return tile_beta[k];
    }
    return beta_quad(j, len);
}

// A row's statistics: xh = (h * 2^e - m1 - m2) * r, with e = 0 for every row in range
// (common.wgsl: rows whose squares leave f32's range). m1 + m2 is the mean and r the rstd of
// the row scaled by 2^e.
struct Stats {
    e: i32,
    m1: f32,
    m2: f32,
    r: f32,
}

// The Stats of a row scaled by 2^e, centred on m1, from sum(d) and sum(d^2), d = h * 2^e - m1.
fn centred_stats(e: i32, m1: f32, sum_d: f32, sum_d2: f32) -> Stats {
    let m2 = sum_d / row_len();
    return Stats(e, m1, m2, rstd_of(sum_d2 / row_len() - m2 * m2, sum_d2, e));
}

// The rstd of a row scaled by 2^e from its variance, and the sum of squares that came from
// (to show an overflow). eps scales with the row (eps * 2^(2e)); where that underflows it is
// negligible next to any variance but 0, which leaves the rstd of eps alone, scaled.
fn rstd_of(var_: f32, sum_sq: f32, e: i32) -> f32 {
    let v = max(var_, 0.0);
    let f = pow2(e);
    let flat = v == 0.0;
    return overflow_shows(select(1.0, pow2(-e), flat) / sqrt(select(v + p.eps * f * f, p.eps, flat)), sum_sq);
}

// The Stats of a row scaled by 2^e from its sums, as they are (lanes x, y) and scaled by
// 2^GUARD_HI (z, w): the first unless the sum of squares overflowed, which a row scaled by
// magnitude_scale does not (so e is 0 there).
fn guarded_stats(t: vec4<f32>, m1: f32, m1_hi: f32, e: i32) -> Stats {
    let over = !(t.y <= MAX_F32);
    return centred_stats(select(e, GUARD_HI, over), select(m1, m1_hi, over), select(t.x, t.z, over), select(t.y, t.w, over));
}

fn save_stats(row: u32, lane: u32, live: bool, st: Stats) {
    if (live && lane == 0u) {
        if (has(FLAG_MEAN)) {
            mean[p.mean_off + row] = (st.m1 + st.m2) * pow2(-st.e);
        }
        if (has(FLAG_RSTD)) {
            rstd[p.rstd_off + row] = st.r * pow2(st.e);
        }
    }
}

// (sum(d), sum(d^2)) of a quad, centred on m1, over its `len` elements inside the row.
fn centred_sums(h: vec4<f32>, m1: f32, len: u32) -> vec2<f32> {
    let d = (h - vec4<f32>(m1)) * len_mask(len);
    return vec2<f32>(dot(d, vec4<f32>(1.0)), dot(d, d));
}

// Writes y (and h when asked) for the quad at j; g and bb are its (offset + gamma) and beta.
fn store_forward(base: u32, j: u32, len: u32, h: vec4<f32>, st: Stats, g: vec4<f32>, bb: vec4<f32>) {
    // (h * 2^e - m1 - m2) * r as two fmas and a product of two scalars that the compiler hoists out
    // of the walk: the same three roundings, two fewer operations per element.
    let xh = fma(fma(h, vec4<f32>(pow2(st.e)), vec4<f32>(-st.m1)), vec4<f32>(st.r), vec4<f32>(-st.m2 * st.r));
    st_y(p.y_off + base + j, output_quad(base, j, len, fma(xh, g, bb)), len);
    if (has(FLAG_H)) {
        st_h(p.h_off + base + j, h, len);
    }
}

// Count, mean and sum of squared deviations (M2) of a thread's elements of up to four
// streamed rows, a lane per row: what their statistics are merged from, so that each row is
// read once for them.
struct Moments {
    n: vec4<f32>,
    mean: vec4<f32>,
    m2: vec4<f32>,
}

// Sums over one block of a thread's walk (32 quads, see flush_now) of e = d - shift, a lane
// per row, where shift is the thread's mean of d so far (0, that is the pivot, in the first
// block): near the block's values, so the sums carry no cancellation, and no single outlier
// becomes it.
struct BlockSums {
    shift: vec4<f32>,
    n: vec4<f32>,
    s1: vec4<f32>,
    s2: vec4<f32>,
}

// The pivot of a streamed row, from its first quad (cnt elements in the row, from base): a
// middle one of its four values, so that no single outlier there is taken. Near the row's
// values, d = h - pivot is exact, and the mean is pivot + mean(d) to f32 rounding of mean(d).
fn row_pivot(base: u32, cnt: u32) -> f32 {
    let j0 = quad_at(0u, 0u);
    let len = quad_len(j0, cnt);
    let q = input_quad(base, j0, len);
    if (len < 4u) {
        return q.x;
    }
    return max(min(q.x, q.y), min(q.z, q.w));
}

// A block's moments of d. A sum of squares that overflowed stays infinite, so that the
// overflow shows in rstd (overflow_shows) instead of vanishing as inf - inf.
fn block_moments(b: BlockSums) -> Moments {
    let n = max(b.n, vec4<f32>(1.0));
    let m2 = select(max(b.s2 - b.s1 * (b.s1 / n), vec4<f32>(0.0)), b.s2, b.s2 > vec4<f32>(MAX_F32));
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

// e = d - shift for the quad at j of the row from base (len elements in the row, zeros past
// them), d = h * f - pivot. Two subtractions: one of pivot + shift would round, and a shift
// rounded to make that sum exact, (pivot + mean) - pivot, is what a compiler may fold back to
// the mean (it cost the rows of mean 1e4 their digits on lavapipe).
fn shifted_quad(base: u32, j: u32, len: u32, f: f32, pivot: f32, shift: f32) -> vec4<f32> {
    return (input_quad(base, j, len) * f - vec4<f32>(pivot) - vec4<f32>(shift)) * len_mask(len);
}

// A streamed walk's moments of d = h * f - pivot (f a power of two, the pivots of the rows
// scaled by f) over its first `trips` quads of the first `n` rows from `base` (1, 2 or 4, a
// constant at each call; cnt elements in the first, lens of each quad in the others, 0 where
// they do not exist): block by block (flush_now's 32 quads), each block's shifted sums merged
// into the moments after its last quad, outside the loop over quads.
fn walk_moments(base: vec4<u32>, cnt: u32, lens: vec4<u32>, lane: u32, n: u32, pivot: vec4<f32>, f: f32, trips: u32) -> Moments {
    let one = vec4<f32>(1.0);
    var acc = Moments(vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
    for (var k0 = 0u; k0 < trips; k0 = k0 + 32u) {
        var b = BlockSums(acc.mean, vec4<f32>(0.0), vec4<f32>(0.0), vec4<f32>(0.0));
        for (var k = k0; k < min(k0 + 32u, trips); k = k + 1u) {
            let j = quad_at(lane, k);
            let len = walk_len(j, cnt);
            let ex = shifted_quad(base.x, j, len, f, pivot.x, b.shift.x);
            var ey = vec4<f32>(0.0);
            var ez = vec4<f32>(0.0);
            var ew = vec4<f32>(0.0);
            if (n > 1u) {
                ey = shifted_quad(base.y, j, min(len, lens.y), f, pivot.y, b.shift.y);
            }
            if (n > 2u) {
                ez = shifted_quad(base.z, j, min(len, lens.z), f, pivot.z, b.shift.z);
                ew = shifted_quad(base.w, j, min(len, lens.w), f, pivot.w, b.shift.w);
            }
            b.n = b.n + vec4<f32>(f32(len));
            b.s1 = b.s1 + vec4<f32>(dot(ex, one), dot(ey, one), dot(ez, one), dot(ew, one));
            b.s2 = b.s2 + vec4<f32>(dot(ex, ex), dot(ey, ey), dot(ez, ez), dot(ew, ew));
        }
        acc = merge_moments(acc, block_moments(b));
    }
    return acc;
}

// The threads' moments `acc` of the rows scaled by 2^GUARD_HI: acc scaled, exact where it is
// finite (or out of range only where the guard is not the one used). Where one row's are not,
// the thread walks its quads again, scaled (no reduction or barrier inside, and they are not
// written yet, so divergence and in-place rows are safe; the trip count is 0 elsewhere).
fn guarded_moments(acc: Moments, base: vec4<u32>, cnt: u32, lens: vec4<u32>, lane: u32, n: u32, pivot: vec4<f32>) -> Moments {
    let big = vec4<f32>(MAX_F32);
    let again = !((acc.m2 <= big) & (abs(acc.mean) <= big));
    let g = p.guard_hi;
    let trips = select(0u, walk_trips(lane, cnt), any(again));
    let walked = walk_moments(base, cnt, lens, lane, n, pivot * g, g, trips);
    return Moments(acc.n, select(acc.mean * g, walked.mean, again), select(acc.m2 * g * g, walked.m2, again));
}

// Sums over the row's threads of per-row values a and b (a lane per row, the first n rows):
// both rows' values of a pair in one row_sum, and one row's four in one (per_row_sums).
fn per_row_sums2(a: vec4<f32>, b: vec4<f32>, n: u32) -> array<vec4<f32>, 2> {
    if (n == 1u) {
        let t = row_sum(vec4<f32>(a.x, b.x, 0.0, 0.0));
        return array<vec4<f32>, 2>(vec4<f32>(t.x, 0.0, 0.0, 0.0), vec4<f32>(t.y, 0.0, 0.0, 0.0));
    }
    if (n == 2u) {
        let t = row_sum(vec4<f32>(a.xy, b.xy));
        return array<vec4<f32>, 2>(vec4<f32>(t.xy, 0.0, 0.0), vec4<f32>(t.zw, 0.0, 0.0));
    }
    return array<vec4<f32>, 2>(row_sum(a), row_sum(b));
}

fn per_row_sums(a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32>, n: u32) -> array<vec4<f32>, 4> {
    if (n == 1u) {
        let t = row_sum(vec4<f32>(a.x, b.x, c.x, d.x));
        return array<vec4<f32>, 4>(vec4<f32>(t.x), vec4<f32>(t.y), vec4<f32>(t.z), vec4<f32>(t.w));
    }
    let ab = per_row_sums2(a, b, n);
    let cd = per_row_sums2(c, d, n);
    return array<vec4<f32>, 4>(ab[0], ab[1], cd[0], cd[1]);
}

// The RowSums of the first n streamed rows from their threads' moments of d = h - pivot,
// unscaled (acc) and guarded (hi): Chan's merge over each row's threads, as sums: the row's
// mean md of d; what its rounding lost, sum(n * (mean - md)); and sum(M2 + n * (mean - md)^2).
fn moment_sums(acc: Moments, hi: Moments, pivot: vec4<f32>, n: u32) -> array<RowSums, 4> {
    let m = per_row_sums2(acc.n * acc.mean, hi.n * hi.mean, n);
    let md = m[0] / row_len();
    let mh = m[1] / row_len();
    let dm = acc.mean - md;
    let dh = hi.mean - mh;
    let t = per_row_sums(acc.m2 + acc.n * dm * dm, acc.n * dm, hi.m2 + hi.n * dh * dh, hi.n * dh, n);
    var out: array<RowSums, 4>;
    for (var i = 0u; i < n; i = i + 1u) {
        out[i] = RowSums(vec2<f32>(pivot[i], pivot[i] * p.guard_hi), vec2<f32>(md[i], mh[i]), vec4<f32>(t[0][i], t[1][i], t[2][i], t[3][i]));
    }
    return out;
}

// The Stats of a row scaled by 2^e from the mean md of d = h * 2^e - pivot and the row's
// sums (of M2 + n * (mean - md)^2, of n * (mean - md)), as moments_stats forms them.
fn spread_stats(e: i32, pivot: f32, md: f32, t: vec2<f32>) -> Stats {
    let n = row_len();
    let c = t.y / n;
    let m2 = t.x - n * c * c;
    return Stats(e, pivot, md + c, rstd_of(m2 / n, m2, e));
}

// The sums the Stats of a row scaled by f come from by the corrected two-pass (two_pass),
// from this thread's share s of sum(h * f): its second pass over the tile's registers (or a
// streamed row read again), with the sums of the row scaled by 2^GUARD_HI in the idle lanes
// of both reductions: this thread's sums scaled, exact where they are finite; where they are
// not, its quads again from memory, scaled (as in guarded_moments), if `guarded`: a constant
// at each call, false where such a row is done again later (tile_rows), which leaves no walk
// and guard sums of 0.
fn tile_sums(row: Row, lane: u32, s: f32, f: f32, guarded: bool) -> RowSums {
    let g = f * p.guard_hi;
    let again_s = guarded && !(abs(s) <= MAX_F32);
    var s_hi = 0.0;
    let trips = walk_trips(lane, row.cnt);
    for (var k = 0u; k < select(0u, trips, again_s); k = k + 1u) {
        let j = quad_at(lane, k);
        s_hi = s_hi + dot(input_quad(row.base, j, quad_len(j, row.cnt)) * g, vec4<f32>(1.0));
    }
    // Unguarded, the guard lanes are a constant 0, which the reductions drop.
    let s_g = select(0.0, select(s * p.guard_hi, s_hi, again_s), guarded);
    let m = row_sum(vec4<f32>(s, s_g, 0.0, 0.0)).xy / row_len();
    var c = vec2<f32>(0.0);
    var lost = 0.0;
    for (var k = 0u; k < trips; k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, row.cnt);
        let q = centred_sums(tile_or_input(k, row.base, j, len) * f, m.x, len);
        if (CACHED) {
            c = c + q;
        } else {
            // A streamed row gives a thread many quads: where one element dominates the row,
            // the squares summed after it fall below half its square's ulp and would be lost
            // one by one (a relative error of 2e-6 in rstd on SwiftShader, 5000 elements).
            // Neumaier's sum keeps what each addition rounds off; every term is >= 0.
            let t = c.y + q.y;
            lost = lost + select((q.y - t) + c.y, (c.y - t) + q.y, c.y >= q.y);
            c = vec2<f32>(c.x + q.x, t);
        }
    }
    c.y = c.y + lost;
    let again_c = guarded && !(c.y <= MAX_F32);
    var c_hi = vec2<f32>(0.0);
    for (var k = 0u; k < select(0u, trips, again_c); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = quad_len(j, row.cnt);
        c_hi = c_hi + centred_sums(input_quad(row.base, j, len) * g, m.y, len);
    }
    c_hi = select(vec2<f32>(c.x * p.guard_hi, c.y * p.guard_hi * p.guard_hi), c_hi, again_c);
    c_hi = select(vec2<f32>(0.0), c_hi, guarded);
    return RowSums(m, vec2<f32>(0.0), row_sum(vec4<f32>(c, c_hi)));
}

// What a row's Stats come from, reduced over its threads, unscaled and for the row scaled by
// 2^GUARD_HI: the tile's first means m1 and t = (sum(d), sum(d^2)) about them (tile_sums),
// or a streamed row's pivots m1, its means md of d = h - pivot and the sums of moment_sums.
struct RowSums {
    m1: vec2<f32>,
    md: vec2<f32>,
    t: vec4<f32>,
}

// The RowSums of the row (or the segment of a split row) at hand. Statistics from one read:
// the tile keeps the row for a second pass in registers (`guarded` as tile_sums takes it); a
// streamed row builds its moments as it goes, about a pivot.
fn forward_sums(row: Row, lane: u32, f: f32, guarded: bool) -> RowSums {
    if (two_pass()) {
        var s = 0.0;
        for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
            let j = quad_at(lane, k);
            let h = input_quad(row.base, j, trip_len(j, row.cnt));
            keep_h(k, h);
            s = s + dot(h * f, vec4<f32>(1.0));
        }
        return tile_sums(row, lane, s, f, guarded);
    }
    return streamed_sums(vec4<u32>(row.base), row.cnt, vec4<bool>(row.live), lane, 1u)[0];
}

// Whether a row's statistics come from the corrected two-pass (tile_sums): in the tile, and
// with eps below TINY, where a streamed row is scaled by 2^e (magnitude_scale) and read
// twice. Not the streamed moments there: given h * 2^e, a compiler may form
// fma(h, 2^e, -(pivot + shift)) in shifted_quad, and pivot + shift rounds (a relative
// error of 1e-5 in rstd on lavapipe, rows of mean 1e4 times their spread).
fn two_pass() -> bool {
    return CACHED || has(FLAG_TINY_EPS);
}

// The RowSums of the first `n` streamed rows from `base` (1, 2 or 4, a constant at each call;
// the first has cnt elements, the others as many where live), from one walk over them all.
fn streamed_sums(base: vec4<u32>, cnt: u32, live: vec4<bool>, lane: u32, n: u32) -> array<RowSums, 4> {
    let cnts = select(vec4<u32>(0u), vec4<u32>(cnt), live);
    let lens = select(vec4<u32>(0u), vec4<u32>(4u), live);
    var pivot = vec4<f32>(row_pivot(base.x, cnt), 0.0, 0.0, 0.0);
    if (n > 1u) {
        pivot.y = row_pivot(base.y, cnts.y);
    }
    if (n > 2u) {
        pivot.z = row_pivot(base.z, cnts.z);
        pivot.w = row_pivot(base.w, cnts.w);
    }
    let acc = walk_moments(base, cnt, lens, lane, n, pivot, 1.0, walk_trips(lane, cnt));
    return moment_sums(acc, guarded_moments(acc, base, cnt, lens, lane, n, pivot), pivot, n);
}

// The Stats of a row scaled by 2^e from its RowSums: those of the row as scaled unless its
// sum of squares overflowed (guarded_stats).
fn row_stats(r: RowSums, e: i32) -> Stats {
    if (two_pass()) {
        return guarded_stats(r.t, r.m1.x, r.m1.y, e);
    }
    let over = !(r.t.x <= MAX_F32);
    return spread_stats(select(e, GUARD_HI, over), select(r.m1.x, r.m1.y, over), select(r.md.x, r.md.y, over), select(r.t.xy, r.t.zw, over));
}

// A split row's segment, for merged_stats: its mean as m1 + m2 and M2, the sum of squared
// deviations from that mean, from its RowSums (the lanes of one view: unscaled or scaled),
// and in w whether any of them left f32's range.
fn segment_spread(m1: f32, md: f32, t: vec2<f32>) -> vec4<f32> {
    let n = row_len();
    var m2 = md + t.y / n;
    var sq = t.x - n * (t.y / n) * (t.y / n);
    if (two_pass()) {
        m2 = t.x / n;
        sq = t.y - t.x * m2;
    }
    let v = vec3<f32>(m1, m2, sq);
    return vec4<f32>(v, select(1.0, 0.0, all(abs(v) <= vec3<f32>(MAX_F32))));
}

// The Stats of split row s from its segments' spreads, merged with Chan's formula about
// segment 0's m1, the same way in every segment (a fixed set of segments per thread, then
// row_sum): the unscaled ones unless one of them, or their merge, left f32's range. From
// uniform control flow only.
fn merged_stats(s: Segment, lane: u32) -> Stats {
    let at = p.workspace_off + select(0u, 8u * s.row * p.chunks, s.live);
    let pivot = vec2<f32>(ld_workspace(at, 4u).x, ld_workspace(at + 4u, 4u).x);
    let trips = select(0u, p.chunks, s.live);
    var a = vec4<f32>(0.0);
    for (var c = lane; c < trips; c = c + ROW_THREADS) {
        let u = ld_workspace(at + 8u * c, 4u);
        let h = ld_workspace(at + 8u * c + 4u, 4u);
        let d = vec2<f32>((u.x - pivot.x) + u.y, (h.x - pivot.y) + h.y);
        a = a + vec4<f32>(f32(segment_len(c)) * d, u.w, 0.0);
    }
    let sa = row_sum(a);
    let md = sa.xy / f32(p.cols);
    var b = vec4<f32>(0.0);
    for (var c = lane; c < trips; c = c + ROW_THREADS) {
        let u = ld_workspace(at + 8u * c, 4u);
        let h = ld_workspace(at + 8u * c + 4u, 4u);
        let d = vec2<f32>((u.x - pivot.x) + u.y, (h.x - pivot.y) + h.y) - md;
        b = b + vec4<f32>(vec2<f32>(u.z, h.z) + f32(segment_len(c)) * d * d, 0.0, 0.0);
    }
    let t = row_sum(b);
    let over = sa.z > 0.0 || !(t.x <= MAX_F32);
    let e = select(0, GUARD_HI, over);
    let sq = select(t.x, t.y, over);
    return Stats(e, select(pivot.x, pivot.y, over), select(md.x, md.y, over), rstd_of(sq / f32(p.cols), sq, e));
}

// The forward's entry points, one per walk (forward_walks.wgsl). Any launch's, a row per trip:
@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    let s = enter_forward(wid, nwg, inv);
    forward_each(s.first, 0u, slot_trips(wid.x, nwg.x), s.lane);
}

// Streamed rows, four per trip while four are left, as in rms_norm_forward_streamed, but then
// one: a third inlined copy of the walks added a second to each compile on SwiftShader. Not
// with eps below TINY, where each row is scaled first.
@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_forward_streamed(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    let s = enter_forward(wid, nwg, inv);
    let trips = slot_trips(wid.x, nwg.x);
    var i = 0u;
    for (; i + 3u < trips; i = i + 4u) {
        forward_rows(vec4<u32>(s.first + i) + vec4<u32>(0u, 1u, 2u, 3u), s.lane, 4u, false);
    }
    forward_each(s.first, i, trips, s.lane);
}

// Tile rows, those out of f32's range done last. Not with eps below TINY, where each row is
// scaled first and so never out of range.
@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_forward_tile(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    let s = enter_forward(wid, nwg, inv);
    tile_rows(s.first, slot_trips(wid.x, nwg.x), s.lane);
}

fn load_tile_params(lane: u32) {
    load_tile_gamma(lane);
    load_tile_beta(lane);
}

// The forward of tile row `index` with its sums guarded (guarded_stats), from memory, as
// rms_norm.wgsl's guarded_tile_row: forward_rows stored nothing of it.
fn guarded_tile_row(index: u32, lane: u32) {
    let row = row_at(index);
    let trips = select(0u, MAX_CACHE, row.live);
    var s = vec2<f32>(0.0);
    for (var k = 0u; k < trips; k = k + 1u) {
        let j = quad_at(lane, k);
        let h = input_quad(row.base, j, quad_len(j, row.cnt));
        s = s + vec2<f32>(dot(h, vec4<f32>(1.0)), dot(h * p.guard_hi, vec4<f32>(1.0)));
    }
    let m = row_butterfly(vec4<f32>(s, 0.0, 0.0), SUM).xy / row_len();
    var t = vec4<f32>(0.0);
    for (var k = 0u; k < trips; k = k + 1u) {
        let j = quad_at(lane, k);
        let len = quad_len(j, row.cnt);
        let h = input_quad(row.base, j, len);
        t = t + vec4<f32>(centred_sums(h, m.x, len), centred_sums(h * p.guard_hi, m.y, len));
    }
    let st = guarded_stats(row_butterfly(t, SUM), m.x, m.y, 0);
    for (var k = 0u; k < trips; k = k + 1u) {
        let j = quad_at(lane, k);
        let len = quad_len(j, row.cnt);
        store_forward(row.base, j, len, input_quad(row.base, j, len), st, gamma_quad(j, len), beta_quad(j, len));
    }
    save_stats(row.index, lane, row.live, st);
}

// The forward of the first `n` rows of `row` (1, 2 or 4: a constant at each call; only
// streamed rows go more than one at a time). A slot past the last row sees an empty row but
// still joins every reduction: call from uniform control flow only. With `defer` (a constant
// at each call), a row out of f32's range is left to guarded_tile_row: nothing of it is
// stored, and the result is false.
fn forward_rows(row: vec4<u32>, lane: u32, n: u32, defer: bool) -> bool {
    let live = (row < vec4<u32>(p.rows)) & (vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(n));
    let cnt = select(0u, p.cols, live.x);
    let base = vec4<u32>(row_base(row.x), row_base(row.y), row_base(row.z), row_base(row.w));
    var sums: array<RowSums, 4>;
    var e = 0;
    if (n == 1u) {
        let first = Row(row.x, live.x, cnt, base.x);
        if (has(FLAG_TINY_EPS)) {
            e = magnitude_scale(row_magnitude(first, lane));
        }
        sums[0] = forward_sums(first, lane, pow2(e), !defer);
    } else {
        sums = streamed_sums(base, cnt, live, lane, n);
    }
    let sx = row_stats(sums[0], e);
    if (defer && live.x && sx.e != 0) {
        return false;
    }
    let sy = row_stats(sums[1], 0);
    let sz = row_stats(sums[2], 0);
    let sw = row_stats(sums[3], 0);
    store_rows(base, cnt, live, lane, n, sx, sy, sz, sw);
    save_stats(row.x, lane, live.x, sx);
    save_stats(row.y, lane, live.y, sy);
    save_stats(row.z, lane, live.z, sz);
    save_stats(row.w, lane, live.w, sw);
    return true;
}

// The largest |h| of a row (row_max), for the forward where eps is below TINY.
fn row_magnitude(row: Row, lane: u32) -> f32 {
    var m = 0.0;
    for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        m = max(m, max4(abs(input_quad(row.base, j, trip_len(j, row.cnt)))));
    }
    return row_max(m);
}

// Writes the walk's y (and h) of the first `n` rows from `base` (1, 2 or 4), each with its
// Stats.
fn store_rows(base: vec4<u32>, cnt: u32, live: vec4<bool>, lane: u32, n: u32, sx: Stats, sy: Stats, sz: Stats, sw: Stats) {
    for (var k = 0u; k < walk_trips(lane, cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, cnt);
        let g = tile_or_gamma(k, j, len);
        let bb = tile_or_beta(k, j, len);
        store_forward(base.x, j, len, tile_or_input(k, base.x, j, len), sx, g, bb);
        if (n > 1u && live.y) {
            store_forward(base.y, j, len, input_quad(base.y, j, len), sy, g, bb);
        }
        if (n > 2u && live.z) {
            store_forward(base.z, j, len, input_quad(base.z, j, len), sz, g, bb);
        }
        if (n > 2u && live.w) {
            store_forward(base.w, j, len, input_quad(base.w, j, len), sw, g, bb);
        }
    }
}

// The forward of rows split into segments (FLAG_SPLIT), one per row slot, as
// rms_norm_forward_split: each segment first leaves its spreads (segment_spread, unscaled and
// scaled, two quads) in the workspace; then (FLAG_SPLIT_FINISH) every segment of a row merges
// them (merged_stats) and writes its own elements.
@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_forward_split(
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
        let row = Row(s.row, s.live, s.end, row_base(s.row));
        if (has(FLAG_SPLIT_FINISH)) {
            fill_tile(row.base, lane, row.cnt);
            let st = merged_stats(s, lane);
            store_rows(vec4<u32>(row.base), row.cnt, vec4<bool>(true), lane, 1u, st, st, st, st);
            save_stats(row.index, lane, s.live && s.index == 0u, st);
        } else {
            let r = forward_sums(row, lane, 1.0, true);
            if (s.live && lane == 0u) {
                let at = p.workspace_off + 8u * v;
                st_workspace(at, segment_spread(r.m1.x, r.md.x, r.t.xy), 4u);
                st_workspace(at + 4u, segment_spread(r.m1.y, r.md.y, r.t.zw), 4u);
            }
        }
    }
}

// The row's saved rstd, read once; 0 without one.
fn saved_rstd(row: Row) -> f32 {
    if (has(FLAG_RSTD) && row.live) {
        return rstd[p.rstd_off + row.index];
    }
    return 0.0;
}

// What the backward takes from its first walk: the row's power of two 2^e, the first mean m1
// and the peak_key of the element farthest from it, both of the row scaled by 2^e.
struct First {
    e: i32,
    m1: f32,
    peak: f32,
}

// The First of a row whose saved rstd (if any) gave it the scale 2^e: the mean saved, or
// reduced from this thread's share `t` of (sum(h * 2^e), sum(h * 2^e) * 2^GUARD_HI,
// max(h * 2^e), max(-h * 2^e)) (backward_first_walk), which a saved mean with a saved rstd
// does not reduce at all. Without a saved rstd, the scale comes from the row's largest |h|
// here (magnitude_scale), and the mean from the guarded sum where the plain one overflowed.
// Called from uniform control flow only (row_reduce holds barriers); no `return` under
// `row.live`, which would leave the reduction in non-uniform control flow.
fn first_mean(t: vec4<f32>, row: Row, e: i32) -> First {
    if (!has(FLAG_MEAN) || !has(FLAG_RSTD)) {
        return first_of(row_reduce(t, PEAK_ZW), row, e);
    }
    return first_of(t, row, e);
}

// first_mean's First from `all`: reduced where the mean or rstd is not saved; else this
// thread's own, which nothing reduces (and tile_head calls this without first_mean).
fn first_of(all: vec4<f32>, row: Row, e: i32) -> First {
    var es = e;
    var m = 0.0;
    if (!has(FLAG_MEAN) || !has(FLAG_RSTD)) {
        if (!has(FLAG_RSTD)) {
            es = magnitude_scale(max(all.z, all.w));
        }
        let over = !(abs(all.x) <= MAX_F32);
        m = select(all.x / f32(p.cols) * pow2(es - e), all.y / f32(p.cols) * pow2(es - e - GUARD_HI), over);
    }
    let g = pow2(es - e);
    if (has(FLAG_MEAN)) {
        if (row.live) {
            m = mean[p.mean_off + row.index] * pow2(es);
        }
    }
    let hi = all.z * g - m;
    let lo = -all.w * g - m;
    return First(es, m, peak_key(select(lo, hi, abs(hi) >= abs(lo))));
}

// The first walk of the backward over the row scaled by f = 2^e: this thread's share of
// (sum(h * f), 0, max(h * f), max(-h * f)), and the tile filled.
fn backward_first_walk(row: Row, lane: u32, f: f32) -> vec4<f32> {
    let none = vec4<f32>(0.0, 0.0, -MAX_F32, -MAX_F32);
    var t = none;
    var part = none;
    for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, row.cnt);
        let h = x_quad(row.base, j, len) * f;
        keep_h(k, h);
        if (CACHED) {
            keep_dy(k, dy_quad(row.base, j, len));
        }
        let out = vec4<f32>(-MAX_F32);
        let hi = max4(select(out, h, lanes_in(len)));
        let lo = max4(select(out, -h, lanes_in(len)));
        let sum = dot(h, vec4<f32>(1.0));
        part = combine(part, vec4<f32>(sum, dot(h * p.guard_hi, vec4<f32>(1.0)), hi, lo), PEAK_ZW);
        if (flush_now(k)) {
            t = combine(t, part, PEAK_ZW);
            part = none;
        }
    }
    return combine(t, part, PEAK_ZW);
}

// How backward_sums_walk's sums are reduced: with a saved rstd, sum(c^2) is not needed and
// lane y carries the largest peak_key(c) instead.
fn sums_op() -> u32 {
    return select(SUM, PEAK_Y, has(FLAG_RSTD));
}

// The second walk: this thread's share of (sum(c), sum(c^2) or the peak (sums_op), sum(u),
// sum(u * c)), c = h * f - m1, u = g * dy.
fn backward_sums_walk(row: Row, lane: u32, m1: f32, f: f32) -> vec4<f32> {
    var t = vec4<f32>(0.0);
    var part = vec4<f32>(0.0);
    for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, row.cnt);
        let c = (tile_or_x(k, row.base, j, len, f) - vec4<f32>(m1)) * len_mask(len);
        add_sums(&t, &part, k, c, tile_or_dy(k, row.base, j, len) * tile_or_gamma(k, j, len));
    }
    return combine(t, part, sums_op());
}

// Adds the quad's terms of backward_sums_walk to part, and part to t on a flush_now trip.
fn add_sums(t: ptr<function, vec4<f32>>, part: ptr<function, vec4<f32>>, k: u32, c: vec4<f32>, u: vec4<f32>) {
    let one = vec4<f32>(1.0);
    let y = select(dot(c, c), max4(quad_keys(c)), has(FLAG_RSTD));
    *part = combine(*part, vec4<f32>(dot(c, one), y, dot(u, one), dot(u, c)), sums_op());
    if (flush_now(k)) {
        *t = combine(*t, *part, sums_op());
        *part = vec4<f32>(0.0);
    }
}

// What dx of the row scaled by 2^e is formed from: xh = (c - m2) * r, v = u - mean(u),
//   dx = r * (v - xh * w),   w = mean(u * xh),
// except for the row's peak element, where that cancels: see `The peak element` above.
struct Coefficients {
    m2: f32,
    r: f32,
    mean_u: f32,
    w: f32,
    // The peak_key of the element that takes dx = r * (v * a - xh * b); -1, which no key
    // equals, where no element needs to. At n = 2 every element takes it.
    peak: f32,
    a: f32,
    b: f32,
}

// The Coefficients but (a, b), from the reduced sums `t` (sums_op), the saved rstd (saved_rstd)
// when there is one, and the peak from first_mean when there is none.
fn backward_stats(t: vec4<f32>, saved: f32, live: bool, e: i32, first_peak: f32) -> Coefficients {
    let n = f32(p.cols);
    var st = centred_stats(e, 0.0, t.x, t.y);
    var peak = first_peak;
    if (has(FLAG_RSTD)) {
        peak = t.y;
        if (live) {
            st.r = saved * pow2(-e);
        }
    }
    st.r = live_rstd(st.r, live);
    let xh = (peak_value(peak) - st.m2) * st.r;
    let needs = p.cols > 2u && xh * xh > PEAK_SHARE * (n - 1.0);
    // sum(u * xh) = rstd * (sum(u * c) - m2 * sum(u)): m2 is tiny next to c, no cancellation.
    return Coefficients(st.m2, st.r, t.z / n, st.r * (t.w - st.m2 * t.z) / n, select(-1.0, peak, needs), 1.0, 0.0);
}

// The rest walk, on rows whose peak takes (a, b) only (zeros on the others): this thread's
// share of (sum(q), sum(q^2), sum(u), sum(u * q)) over the row's other elements, q = h * f -
// pivot, the pivot their mean as m1, m2 and the peak give it. Centred on their own mean,
// their sums do not cancel as the whole row's would; q is taken from h, not c = h * f - m1,
// which rounds to the peak's scale, far coarser than the others' spread.
fn backward_rest_walk(row: Row, lane: u32, m1: f32, f: f32, co: Coefficients, trips: u32) -> vec4<f32> {
    let pivot = m1 + (co.m2 - (peak_value(co.peak) - co.m2) / f32(p.cols - 1u));
    var t = vec4<f32>(0.0);
    var part = vec4<f32>(0.0);
    for (var k = 0u; k < trips; k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, row.cnt);
        let h = tile_or_x(k, row.base, j, len, f);
        let others = lanes_in(len) & (quad_keys(h - vec4<f32>(m1)) != vec4<f32>(co.peak)) & vec4<bool>(co.peak >= 0.0);
        let q = select(vec4<f32>(0.0), h - vec4<f32>(pivot), others);
        let u = select(vec4<f32>(0.0), tile_or_dy(k, row.base, j, len) * tile_or_gamma(k, j, len), others);
        let one = vec4<f32>(1.0);
        part = part + vec4<f32>(dot(q, one), dot(q, q), dot(u, one), dot(u, q));
        if (flush_now(k)) {
            t = t + part;
            part = vec4<f32>(0.0);
        }
    }
    return t + part;
}

// (a, b) from the other elements' sums (backward_rest_walk; zeros where it did not walk):
// S'' and U'' their centred sum of squares and of u times c, a = S'' r^2 / n + eps r^2 and
// b = U'' r / n. eps r^2 is the same for the row scaled by f = 2^e and for the row.
fn peak_coefficients(co: Coefficients, rest: vec4<f32>, f: f32) -> Coefficients {
    let n = f32(p.cols);
    let k = f32(max(p.cols, 2u) - 1u);
    let s2 = rest.y - rest.x * (rest.x / k);
    let u2 = rest.w - rest.z * (rest.x / k);
    var out = co;
    out.a = s2 * co.r * co.r / n + p.eps * (co.r * f) * (co.r * f);
    out.b = u2 * co.r / n;
    return out;
}

// The last walk: dx of row rx scaled by cx.f = 2^e (dx scales back by f, which the rstd
// takes) and the dgamma and dbeta partial sums (at pb and pbb).
fn backward_stores(rx: Row, lane: u32, cx: RowBackward, pb: u32, pbb: u32, want_dgamma: bool, want_dbeta: bool, fresh: bool) {
    for (var k = 0u; k < walk_trips(lane, rx.cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, rx.cnt);
        let g = tile_or_gamma(k, j, len);
        let dy = tile_or_dy(k, rx.base, j, len);
        let xh = store_dx(rx, j, len, dy, tile_or_x(k, rx.base, j, len, cx.f), g, cx);
        add_partial(&tile_dgamma, k, pb, j, len, want_dgamma, fresh, dy, xh);
        add_partial(&tile_dbeta, k, pbb, j, len, want_dbeta, fresh, dy, vec4<f32>(1.0));
    }
}

// The backward of the slot's streamed rows first, first + 1, ..., `n` of them (2 or 4;
// uniform): their earlier walks (trip_backward), then one last walk over all, where each
// gamma quad serves them all and their sums are added before each partial sum is written
// once (and read once, but on the slot's first trip: `fresh`). From uniform control flow
// only.
fn backward_rows(first: u32, n: u32, lane: u32, pb: u32, pbb: u32, want_dgamma: bool, want_dbeta: bool, fresh: bool) {
    var rows: array<Row, 4>;
    var rbs: array<RowBackward, 4>;
    for (var i = 0u; i < n; i = i + 1u) {
        rows[i] = trip_row(first + i, row_at(first));
    }
    trip_backward(&rows, &rbs, n, lane);
    var plain = true;
    for (var i = 0u; i < n; i = i + 1u) {
        plain = plain && plain_row(rows[i], rbs[i]);
    }
    // The last walk in two copies, as in RMSNorm's backward_rows.
    if (plain) {
        last_walk(&rows, &rbs, n, lane, pb, pbb, want_dgamma, want_dbeta, fresh, true);
    } else {
        last_walk(&rows, &rbs, n, lane, pb, pbb, want_dgamma, want_dbeta, fresh, false);
    }
}

// Whether a row takes row_stores' plain form: it exists, it is not scaled (f = 1, so that
// its dx_factors are (r, 1)) and no element is its peak.
fn plain_row(row: Row, rb: RowBackward) -> bool {
    return row.live && rb.f == 1.0 && rb.co.peak < 0.0 && p.cols != 2u;
}

// The last walk of backward_rows over its n rows (the first, rows[0], is the trip's).
fn last_walk(rows: ptr<function, array<Row, 4>>, rbs: ptr<function, array<RowBackward, 4>>, n: u32, lane: u32, pb: u32, pbb: u32, want_dgamma: bool, want_dbeta: bool, fresh: bool, plain: bool) {
    let rx = (*rows)[0];
    for (var k = 0u; k < walk_trips(lane, rx.cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, rx.cnt);
        let g = tile_or_gamma(k, j, len);
        var dg = vec4<f32>(0.0);
        var db = vec4<f32>(0.0);
        row_stores(rx, (*rbs)[0], j, len, g, plain, &dg, &db);
        row_stores((*rows)[1], (*rbs)[1], j, len, g, plain, &dg, &db);
        if (n > 2u) {
            row_stores((*rows)[2], (*rbs)[2], j, len, g, plain, &dg, &db);
            row_stores((*rows)[3], (*rbs)[3], j, len, g, plain, &dg, &db);
        }
        add_partial(&tile_dgamma, k, pb, j, len, want_dgamma, fresh, dg, vec4<f32>(1.0));
        add_partial(&tile_dbeta, k, pbb, j, len, want_dbeta, fresh, db, vec4<f32>(1.0));
    }
}

// dx of a streamed row of a trip (trip_row) for the quad at j, its dgamma and dbeta terms
// added to dg and db; nothing where the row does not exist. `plain` (a constant at each
// call) where the row is a plain_row: dx = r * (v - w * xh), the dgamma term an fma, and no
// tests, as in RMSNorm's row_stores.
fn row_stores(row: Row, rb: RowBackward, j: u32, len: u32, g: vec4<f32>, plain: bool, dg: ptr<function, vec4<f32>>, db: ptr<function, vec4<f32>>) {
    let dy = dy_quad(row.base, j, len);
    if (plain) {
        let co = rb.co;
        let xh = ((x_quad(row.base, j, len) - vec4<f32>(rb.m1)) - vec4<f32>(co.m2)) * co.r;
        let v = dy * g - vec4<f32>(co.mean_u);
        st_dx(p.dx_off + row.base + j, co.r * fma(vec4<f32>(-co.w), xh, v) + dh_quad(row.base, j, len), len);
        *dg = fma(dy, xh, *dg);
        *db = *db + dy;
        return;
    }
    let xh = store_dx(row, j, len, dy, x_quad(row.base, j, len) * rb.f, g, rb);
    let zero = vec4<f32>(0.0);
    *dg = *dg + select(zero, dy * xh, row.live);
    *db = *db + select(zero, dy, row.live);
}

// Writes dx for the quad at j (len elements in the row) from its dy, its h * f (f the row's
// scale) and gamma, where the row exists; returns its xh.
fn store_dx(row: Row, j: u32, len: u32, dy: vec4<f32>, h: vec4<f32>, g: vec4<f32>, rb: RowBackward) -> vec4<f32> {
    let co = rb.co;
    let back = dx_factors(co.r, rb.f);
    let c = h - vec4<f32>(rb.m1);
    let xh = (c - vec4<f32>(co.m2)) * co.r;
    let v = dy * g - vec4<f32>(co.mean_u);
    let peak = select(quad_keys(c) == vec4<f32>(co.peak), vec4<bool>(true), p.cols == 2u);
    let a = select(vec4<f32>(1.0), vec4<f32>(co.a), peak);
    let b = select(vec4<f32>(co.w), vec4<f32>(co.b), peak);
    st_dx(p.dx_off + row.base + j, back.x * ((v * a - xh * b) * back.y) + dh_quad(row.base, j, len), select(0u, len, row.live));
    return xh;
}

// The backward's entry points, one per walk (Walk in src/shader.rs): a pipeline compiles only
// the walk it runs. Any launch's, a row per trip:
@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    let s = enter_backward(wid, nwg, inv);
    backward_each(s, 0u, slot_trips(wid.x, nwg.x));
    end_backward(s);
}

// Streamed rows, four per trip while four are left, then two, as in RMSNorm's backward: each
// gamma quad, and each partial sum read and written back, serves them all. One call site,
// its row count uniform, so the pipeline holds the earlier walks twice (here and in
// backward_each; pairs held them three times): SwiftShader's compile time grows with each
// inlined copy.
@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_backward_streamed(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    let s = enter_backward(wid, nwg, inv);
    let trips = slot_trips(wid.x, nwg.x);
    var i = 0u;
    while (i + 1u < trips) {
        let per_trip = select(2u, 4u, i + 3u < trips);
        backward_rows(s.first + i, per_trip, s.lane, s.pb, s.pbb, s.want_dgamma, s.want_dbeta, i == 0u);
        i = i + per_trip;
    }
    backward_each(s, i, trips);
    end_backward(s);
}

// Tile rows, those with a peak done last (tile_backward_rows).
@compute @workgroup_size(WORKGROUP_SIZE)
fn layer_norm_backward_tile(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    inv: Invocation,
) {
    let s = enter_backward(wid, nwg, inv);
    tile_backward_rows(s.first, slot_trips(wid.x, nwg.x), s.lane, s.pb, s.pbb, s.want_dgamma, s.want_dbeta);
    end_backward(s);
}

// A backward slot: the thread's lane, the slot's first row, and its rows of partial sums,
// dgamma in the first half of the workspace, dbeta in the second, there for each slot below
// the row count (as in rms_norm_backward). The slot's trip count stays out of it: it is
// uniform, the rest is not.
struct BackwardSlot {
    lane: u32,
    first: u32,
    pb: u32,
    pbb: u32,
    want_dgamma: bool,
    want_dbeta: bool,
}

fn enter_backward(wid: vec3<u32>, nwg: vec3<u32>, inv: Invocation) -> BackwardSlot {
    enter(inv);
    let lane = inv.index % ROW_THREADS;
    let slot = inv.index / ROW_THREADS;
    let first_row = wid.x * rows_per_group() + slot;
    let want_dgamma = has(FLAG_DGAMMA) && first_row < p.rows;
    let want_dbeta = has(FLAG_DBETA) && first_row < p.rows;
    let pb = p.workspace_off + partial_row(wid.x, slot) * p.cols;
    let pbb = pb + p.partial_rows * p.cols;
    load_tile_gamma(lane);
    let first = slot_start(wid.x, nwg.x, slot);
    begin_partial(lane, pb, want_dgamma, first);
    begin_partial(lane, pbb, want_dbeta, first);
    return BackwardSlot(lane, first, pb, pbb, want_dgamma, want_dbeta);
}

// The slot's rows `start` to `trips`, one at a time, and the register tile, without the arrays
// of the streamed trips.
fn backward_each(s: BackwardSlot, start: u32, trips: u32) {
    for (var i = start; i < trips; i = i + 1u) {
        let row = row_at(s.first + i);
        backward_stores(row, s.lane, row_backward(row, s.lane), s.pb, s.pbb, s.want_dgamma, s.want_dbeta, i == 0u);
    }
}

fn end_backward(s: BackwardSlot) {
    end_partial(&tile_dgamma, s.lane, s.pb, s.want_dgamma);
    end_partial(&tile_dbeta, s.lane, s.pbb, s.want_dbeta);
}

// What the last walk over a row needs: its first mean m1 and Coefficients, for the row
// scaled by f = 2^e.
struct RowBackward {
    m1: f32,
    co: Coefficients,
    f: f32,
}

// The walks over a row before its last, and their reductions. From uniform control flow only.
fn row_backward(row: Row, lane: u32) -> RowBackward {
    // The row's scale 2^e from its saved rstd (common.wgsl: rows whose squares leave
    // f32's range).
    let saved = saved_rstd(row);
    let e = backward_scale(saved);
    // The tile reads the row here whether or not the statistics are saved; a streamed
    // row reads x here only for a mean or a peak they do not give. x_quad, not
    // input_quad: a kernel that names `residual` at all binds it, and the backward must
    // stay within 8 storage buffers.
    var t0 = vec4<f32>(0.0);
    if (CACHED || !has(FLAG_MEAN) || !has(FLAG_RSTD)) {
        t0 = backward_first_walk(row, lane, pow2(e));
    }
    let first = first_mean(t0, row, e);
    // A row scaled again from its largest |h| (no saved rstd): its tile too, times 1 on
    // rows in range (see tile_rescale).
    let fs = pow2(first.e);
    tile_rescale(pow2(first.e - e));
    return row_coefficients(row, lane, first, saved, backward_sums_walk(row, lane, first.m1, fs));
}

// A row's RowBackward from this thread's share of its backward_sums_walk, `t`: reduced, and
// the rest walk where the row has a peak. From uniform control flow only.
fn row_coefficients(row: Row, lane: u32, first: First, saved: f32, t: vec4<f32>) -> RowBackward {
    let fs = pow2(first.e);
    let co = backward_stats(row_reduce(t, sums_op()), saved, row.live, first.e, first.peak);
    // The tile walks it on every row, a constant trip count (zeros but on a peak's row), as
    // tile_rescale; a streamed row only where it has a peak.
    let trips = select(select(0u, walk_trips(lane, row.cnt), co.peak >= 0.0), MAX_CACHE, CACHED);
    let rest = row_sum(backward_rest_walk(row, lane, first.m1, fs, co, trips));
    return RowBackward(first.m1, peak_coefficients(co, rest, fs), fs);
}

// The backward of a slot's `trips` tile rows from `first` (Walk::Tile): a row
// tile_row_backward leaves is marked and done after up to 32 rows by peak_tile_row. Nothing
// of it was stored, so dy is still there where dx is dy; its dgamma and dbeta terms are
// added after the others', in an order fixed by the data.
fn tile_backward_rows(first: u32, trips: u32, lane: u32, pb: u32, pbb: u32, want_dgamma: bool, want_dbeta: bool) {
    for (var c = 0u; c < trips; c = c + 32u) {
        var marks = 0u;
        for (var i = c; i < min(trips, c + 32u); i = i + 1u) {
            let done = tile_row_backward(first + i, lane, pb, pbb, want_dgamma, want_dbeta);
            marks = marks | (u32(!done) << (i - c));
        }
        for (; marks != 0u; marks = marks & (marks - 1u)) {
            peak_tile_row(first + c + firstTrailingBit(marks), lane, pb, pbb, want_dgamma, want_dbeta);
        }
    }
}

// What a tile row's backward with a saved mean and rstd has before its sums are reduced: the
// saved rstd, the First, and this thread's share of the sums (backward_sums_walk); the tile
// filled.
struct TileHead {
    saved: f32,
    first: First,
    t: vec4<f32>,
}

fn tile_head(row: Row, lane: u32) -> TileHead {
    let saved = saved_rstd(row);
    let e = backward_scale(saved);
    let first = first_of(backward_first_walk(row, lane, pow2(e)), row, e);
    return TileHead(saved, first, backward_sums_walk(row, lane, first.m1, pow2(first.e)));
}

// The backward of tile row `index` where it has no peak: its last walk, and true. Where it
// has one, it stores nothing and returns false.
fn tile_row_backward(index: u32, lane: u32, pb: u32, pbb: u32, want_dgamma: bool, want_dbeta: bool) -> bool {
    let row = row_at(index);
    let h = tile_head(row, lane);
    let co = backward_stats(row_reduce(h.t, sums_op()), h.saved, row.live, h.first.e, h.first.peak);
    if (row.live && co.peak >= 0.0) {
        return false;
    }
    // No other element's sums: those of the rest walk where it finds no peak (at n = 2,
    // where both elements take (a, b), a = eps r^2 and b = 0 from them).
    let fs = pow2(h.first.e);
    let rb = RowBackward(h.first.m1, peak_coefficients(co, vec4<f32>(0.0), fs), fs);
    backward_stores(row, lane, rb, pb, pbb, want_dgamma, want_dbeta, false);
    return true;
}

// The backward of tile row `index`, which has a peak, as row_coefficients forms it, with
// reductions inside the row's subgroup (row_butterfly): only the row's threads agree to be
// here. tile_row_backward stored nothing of it; the tile is filled again.
fn peak_tile_row(index: u32, lane: u32, pb: u32, pbb: u32, want_dgamma: bool, want_dbeta: bool) {
    let row = row_at(index);
    let h = tile_head(row, lane);
    let fs = pow2(h.first.e);
    let co = backward_stats(row_butterfly(h.t, sums_op()), h.saved, row.live, h.first.e, h.first.peak);
    let rest = row_butterfly(backward_rest_walk(row, lane, h.first.m1, fs, co, MAX_CACHE), SUM);
    backward_stores(row, lane, RowBackward(h.first.m1, peak_coefficients(co, rest, fs), fs), pb, pbb, want_dgamma, want_dbeta, false);
}

// The walks before the last of a trip's n rows (2 or 4; uniform), one row after another;
// but with a saved mean and rstd, where they are the sums walk alone, FLAG_JOINT_WALKS walks
// it for all n rows at once, a gamma quad read serving them all. A row that does not exist
// reads the trip's first row (trip_row), and its coefficients are never used. From uniform
// control flow only.
fn trip_backward(rows: ptr<function, array<Row, 4>>, rbs: ptr<function, array<RowBackward, 4>>, n: u32, lane: u32) {
    if (!has(FLAG_JOINT_WALKS) || !has(FLAG_MEAN) || !has(FLAG_RSTD)) {
        for (var i = 0u; i < n; i = i + 1u) {
            (*rbs)[i] = row_backward((*rows)[i], lane);
        }
        return;
    }
    var saved = vec4<f32>(0.0);
    var firsts: array<First, 4>;
    for (var i = 0u; i < n; i = i + 1u) {
        saved[i] = saved_rstd((*rows)[i]);
        firsts[i] = first_mean(vec4<f32>(0.0), (*rows)[i], backward_scale(saved[i]));
    }
    let fx = firsts[0];
    let fy = firsts[1];
    let fz = firsts[2];
    let fw = firsts[3];
    let f = vec4<f32>(pow2(fx.e), pow2(fy.e), pow2(fz.e), pow2(fw.e));
    let m1 = vec4<f32>(fx.m1, fy.m1, fz.m1, fw.m1);
    let base = vec4<u32>((*rows)[0].base, (*rows)[1].base, (*rows)[2].base, (*rows)[3].base);
    let cnt = (*rows)[0].cnt;
    var tx = vec4<f32>(0.0);
    var ty = tx;
    var tz = tx;
    var tw = tx;
    var px = tx;
    var py = tx;
    var pz = tx;
    var pw = tx;
    for (var k = 0u; k < walk_trips(lane, cnt); k = k + 1u) {
        let j = quad_at(lane, k);
        let len = trip_len(j, cnt);
        let g = tile_or_gamma(k, j, len);
        let mask = len_mask(len);
        add_sums(&tx, &px, k, (x_quad(base.x, j, len) * f.x - vec4<f32>(m1.x)) * mask, dy_quad(base.x, j, len) * g);
        add_sums(&ty, &py, k, (x_quad(base.y, j, len) * f.y - vec4<f32>(m1.y)) * mask, dy_quad(base.y, j, len) * g);
        if (n > 2u) {
            add_sums(&tz, &pz, k, (x_quad(base.z, j, len) * f.z - vec4<f32>(m1.z)) * mask, dy_quad(base.z, j, len) * g);
            add_sums(&tw, &pw, k, (x_quad(base.w, j, len) * f.w - vec4<f32>(m1.w)) * mask, dy_quad(base.w, j, len) * g);
        }
    }
    (*rbs)[0] = row_coefficients((*rows)[0], lane, fx, saved.x, combine(tx, px, sums_op()));
    (*rbs)[1] = row_coefficients((*rows)[1], lane, fy, saved.y, combine(ty, py, sums_op()));
    if (n > 2u) {
        (*rbs)[2] = row_coefficients((*rows)[2], lane, fz, saved.z, combine(tz, pz, sums_op()));
        (*rbs)[3] = row_coefficients((*rows)[3], lane, fw, saved.w, combine(tw, pw, sums_op()));
    }
}
