//! The CPU side: a fast f32 baseline a fair user would compare against (all cores, one
//! contiguous block of rows per thread, loops over eight independent lanes that the
//! compiler turns into SIMD), and the f64 reference.

use wgpu_norm::{Direction, Norm, Shape};

use crate::gpu::{LN, RMS, Workload};

const LANES: usize = 8;

/// Sum of f(x[i], y[i]) over eight independent accumulators, so the loop vectorises.
fn sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [0.0_f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (xa, xb) in ca.zip(cb) {
        for l in 0..LANES {
            acc[l] += f(xa[l], xb[l]);
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(&p, &q)| f(p, q)).sum();
    acc.iter().sum::<f32>() + tail
}

fn sum1(a: &[f32], f: impl Fn(f32) -> f32) -> f32 {
    sum2(a, a, |v, _| f(v))
}

/// Outputs of one CPU run: y, or dx, dgamma and dbeta (dbeta empty for RMSNorm).
pub struct CpuOut {
    pub main: Vec<f32>,
    pub dgamma: Vec<f32>,
    pub dbeta: Vec<f32>,
}

/// One run of `w`'s case on all cores: the fused residual add is one more pass over the
/// rows (h = x + residual, which is also an output), the gradient arriving on h one more
/// add. 16-bit cases run on f32 copies of the same values.
pub fn fast_case(w: &Workload) -> Vec<Vec<f32>> {
    let c = &w.case;
    let add = |a: &[f32], b: &[f32]| -> Vec<f32> { a.iter().zip(b).map(|(p, q)| p + q).collect() };
    match c.direction {
        Direction::Forward if c.fused_residual => {
            let h = add(&w.x, &w.residual);
            let out = fast(c.op, c.direction, c.shape, &h, &w.dy, &w.gamma, &w.beta);
            vec![out.main, h]
        }
        Direction::Forward => vec![fast(c.op, c.direction, c.shape, &w.x, &w.dy, &w.gamma, &w.beta).main],
        Direction::Backward => {
            let mut out = fast(c.op, c.direction, c.shape, &w.x, &w.dy, &w.gamma, &w.beta);
            if c.fused_residual {
                out.main = add(&out.main, &w.dh);
            }
            vec![out.main, out.dgamma, out.dbeta]
        }
    }
}

/// One op in one direction on all cores.
pub fn fast(
    op: Norm,
    dir: Direction,
    shape: Shape,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
) -> CpuOut {
    let cols = shape.cols;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(shape.rows);
    let rows_per = shape.rows.div_ceil(threads);
    let mut main = vec![0.0_f32; shape.elements()];
    let partials: Vec<(Vec<f32>, Vec<f32>)> = std::thread::scope(|s| {
        let handles: Vec<_> = main
            .chunks_mut(rows_per * cols)
            .enumerate()
            .map(|(t, out)| {
                let start = t * rows_per * cols;
                let xs = &x[start..start + out.len()];
                let dys = if dir == Direction::Backward { &dy[start..start + out.len()] } else { &[][..] };
                s.spawn(move || rows(op, dir, cols, xs, dys, gamma, beta, out))
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("CPU worker")).collect()
    });
    let mut dgamma = vec![0.0_f32; if dir == Direction::Backward { cols } else { 0 }];
    let mut dbeta = vec![0.0_f32; if dir == Direction::Backward && op == Norm::LayerNorm { cols } else { 0 }];
    for (g, b) in &partials {
        dgamma.iter_mut().zip(g).for_each(|(a, v)| *a += v);
        dbeta.iter_mut().zip(b).for_each(|(a, v)| *a += v);
    }
    CpuOut { main, dgamma, dbeta }
}

/// A block of rows on one thread; returns its dgamma and dbeta partial sums.
#[expect(clippy::too_many_arguments, reason = "the tensors of one norm")]
fn rows(
    op: Norm,
    dir: Direction,
    cols: usize,
    x: &[f32],
    dy: &[f32],
    gamma: &[f32],
    beta: &[f32],
    out: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    let n = cols as f32;
    let backward = dir == Direction::Backward;
    let mut dg = vec![0.0_f32; if backward { cols } else { 0 }];
    let mut db = vec![0.0_f32; if backward && op == Norm::LayerNorm { cols } else { 0 }];
    for (i, (xr, o)) in x.chunks(cols).zip(out.chunks_mut(cols)).enumerate() {
        match (op, dir) {
            (Norm::RmsNorm, Direction::Forward) => {
                let r = 1.0 / (sum1(xr, |v| v * v) / n + RMS.eps).sqrt();
                for j in 0..cols {
                    o[j] = xr[j] * r * gamma[j];
                }
            }
            (Norm::LayerNorm, Direction::Forward) => {
                let mean = sum1(xr, |v| v) / n;
                let var = sum1(xr, |v| (v - mean) * (v - mean)) / n;
                let r = 1.0 / (var + LN.eps).sqrt();
                for j in 0..cols {
                    o[j] = (xr[j] - mean) * r * gamma[j] + beta[j];
                }
            }
            (Norm::RmsNorm, Direction::Backward) => {
                let dr = &dy[i * cols..(i + 1) * cols];
                let r = 1.0 / (sum1(xr, |v| v * v) / n + RMS.eps).sqrt();
                let mut ux = [0.0_f32; LANES];
                for (k, ((&v, &d), &g)) in xr.iter().zip(dr).zip(gamma).enumerate() {
                    ux[k % LANES] += d * g * v;
                }
                let c = ux.iter().sum::<f32>() * r * r * r / n;
                for j in 0..cols {
                    o[j] = r * dr[j] * gamma[j] - c * xr[j];
                    dg[j] += dr[j] * xr[j] * r;
                }
            }
            (Norm::LayerNorm, Direction::Backward) => {
                let dr = &dy[i * cols..(i + 1) * cols];
                let mean = sum1(xr, |v| v) / n;
                let r = 1.0 / (sum1(xr, |v| (v - mean) * (v - mean)) / n + LN.eps).sqrt();
                let (mut su, mut sux) = ([0.0_f32; LANES], [0.0_f32; LANES]);
                for (k, ((&v, &d), &g)) in xr.iter().zip(dr).zip(gamma).enumerate() {
                    su[k % LANES] += d * g;
                    sux[k % LANES] += d * g * (v - mean) * r;
                }
                let (mu, mux) = (su.iter().sum::<f32>() / n, sux.iter().sum::<f32>() / n);
                for j in 0..cols {
                    let xh = (xr[j] - mean) * r;
                    o[j] = r * (dr[j] * gamma[j] - mu - xh * mux);
                    dg[j] += dr[j] * xh;
                    db[j] += dr[j];
                }
            }
        }
    }
    (dg, db)
}

/// The f64 reference's outputs for `w`'s case, in the same order as the GPU's.
pub fn reference_case(w: &Workload) -> wgpu_norm::Result<Vec<Vec<f64>>> {
    use wgpu_norm::reference as r;
    let c = &w.case;
    let wide = |v: &[f32]| -> Vec<f64> { v.iter().map(|&e| f64::from(e)).collect() };
    let (g, b, dy) = (wide(&w.gamma), wide(&w.beta), wide(&w.dy));
    // Forward with a fused residual normalizes h = x + residual (exact in f64).
    let h: Vec<f64> = if c.fused_residual && c.direction == Direction::Forward {
        w.x.iter().zip(&w.residual).map(|(p, q)| f64::from(*p) + f64::from(*q)).collect()
    } else {
        wide(&w.x)
    };
    let (rms, ln) = (c.rms(), c.ln());
    Ok(match (c.op, c.direction) {
        (Norm::RmsNorm, Direction::Forward) => vec![r::rms_norm_forward(&h, Some(&g), c.shape, &rms)?.y, h],
        (Norm::LayerNorm, Direction::Forward) => {
            vec![r::layer_norm_forward(&h, Some(&g), Some(&b), c.shape, &ln)?.y, h]
        }
        (Norm::RmsNorm, Direction::Backward) => {
            let grads = r::rms_norm_backward(&h, Some(&g), &dy, c.shape, &rms)?;
            vec![with_dh(grads.dx, w), grads.dgamma]
        }
        (Norm::LayerNorm, Direction::Backward) => {
            let grads = r::layer_norm_backward(&h, Some(&g), &dy, c.shape, &ln)?;
            vec![with_dh(grads.dx, w), grads.dgamma, grads.dbeta]
        }
    })
}

fn with_dh(dx: Vec<f64>, w: &Workload) -> Vec<f64> {
    if !w.case.fused_residual {
        return dx;
    }
    dx.iter().zip(&w.dh).map(|(a, b)| a + f64::from(*b)).collect()
}

/// ||a - b|| / ||b||: the error metric of the table.
pub fn rel_err(a: &[f32], b: &[f64]) -> f64 {
    let (mut num, mut den) = (0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        num += (f64::from(*x) - y).powi(2);
        den += y * y;
    }
    if den == 0.0 { num.sqrt() } else { (num / den).sqrt() }
}

/// The largest `rel_err` of each output against its reference; NaN if any is (`f64::max`
/// would drop it).
pub fn max_rel_err(got: &[Vec<f32>], want: &[Vec<f64>]) -> f64 {
    got.iter().zip(want).map(|(g, r)| rel_err(g, r)).fold(0.0, |a, e| if e.is_nan() || e > a { e } else { a })
}
