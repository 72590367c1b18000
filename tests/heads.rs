//! Heads in one dispatch (QK-norm, issue 13 item 2): rows laid out tokens x heads x
//! head_dim with a token stride and a head stride, gamma and beta of head_dim shared by
//! every head; forward and backward, each one dispatch (plus the column pass of the
//! deterministic dgamma/dbeta). The q or k heads of a fused QKV buffer are normalized
//! into another QKV-shaped buffer: every element outside the view must stay as it was, in
//! the output and in the input.

mod common;

use common::{
    FORWARD, Norm, Reference, Step, check_stored, ctx, decode, encode, randn, record_step, rng, stored,
    workspace_for,
};
use wgpu::util::DeviceExt as _;
use wgpu_norm::{
    DType, LayerNormConfig, NormContext, NormError, RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape,
    Storage, Tensor,
};

/// A fused QKV tensor of `tokens` tokens, `heads` heads of `head_dim` per projection,
/// `gap` elements after each head; the view of projection `which` (0 = q, 1 = k).
#[derive(Clone, Copy, Debug)]
struct Qkv {
    tokens: usize,
    heads: usize,
    head_dim: usize,
    gap: usize,
    /// All tokens of a head together (head-major), else all heads of a token.
    head_major: bool,
    which: usize,
}

impl Qkv {
    fn elements(&self) -> usize {
        3 * self.tokens * self.heads * (self.head_dim + self.gap)
    }

    /// The view's shape, and its first element.
    fn view(&self) -> (Shape, usize) {
        let (t, h, d, slot) = (self.tokens, self.heads, self.head_dim, self.head_dim + self.gap);
        let shape = Shape::heads(t, h, d);
        if self.head_major {
            // [projection][head][token][slot]
            let shape = shape.with_row_stride(slot).with_head_stride(t * slot);
            (shape, self.which * h * t * slot)
        } else {
            // [token][projection][head][slot]
            let shape = shape.with_row_stride(3 * h * slot).with_head_stride(slot);
            (shape, self.which * h * slot)
        }
    }

    /// Element index of each row's first element, in row order (token-major over heads).
    fn row_starts(&self) -> Vec<usize> {
        let (shape, first) = self.view();
        (0..shape.rows)
            .map(|r| first + (r / shape.heads) * shape.row_stride + (r % shape.heads) * shape.head_stride)
            .collect()
    }
}

fn upload(c: &NormContext, v: &[f64], dtype: DType) -> wgpu::Buffer {
    let mut bytes = encode(v, dtype);
    bytes.resize(bytes.len().next_multiple_of(4), 0);
    c.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: None,
        contents: &bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    })
}

fn read(c: &NormContext, b: &wgpu::Buffer, len: usize, dtype: DType) -> Vec<f64> {
    decode(&common::read_bytes(c.device(), c.queue(), b), dtype)[..len].to_vec()
}

/// The view's rows of `all`, one after the other.
fn gather(all: &[f64], starts: &[usize], cols: usize) -> Vec<f64> {
    starts.iter().flat_map(|&s| all[s..s + cols].to_vec()).collect()
}

/// Asserts `after` equals `before` bit for bit outside the rows at `starts`, and returns
/// those rows.
#[track_caller]
fn outside_untouched(
    what: &str,
    before: &[f64],
    after: &[f64],
    starts: &[usize],
    cols: usize,
    context: &str,
) -> Vec<f64> {
    let mut inside = vec![false; before.len()];
    for &s in starts {
        inside[s..s + cols].iter_mut().for_each(|v| *v = true);
    }
    for (i, (b, a)) in before.iter().zip(after).enumerate() {
        if !inside[i] {
            assert_eq!(b.to_bits(), a.to_bits(), "{what}[{i}] outside the view changed ({context})");
        }
    }
    gather(after, starts, cols)
}

/// Forward then backward of `norm` over the view `qkv`, every tensor in `dtype`: y and dx
/// into QKV-shaped buffers of random values, checked against the reference over the
/// gathered rows.
fn check_heads(c: &NormContext, norm: Norm, qkv: Qkv, dtype: DType, seed: u64) {
    let context = format!("{norm:?}, {qkv:?}, {dtype:?}, seed {seed}");
    let (shape, first) = qkv.view();
    let (n, cols) = (qkv.elements(), shape.cols);
    let starts = qkv.row_starts();
    let mut r = rng(seed);
    let x_all = stored(&randn(&mut r, n).iter().map(|v| v + 0.3).collect::<Vec<_>>(), dtype);
    let dy_all = stored(&randn(&mut r, n), dtype);
    let y_before = stored(&randn(&mut r, n), dtype);
    let dx_before = stored(&randn(&mut r, n), dtype);
    let g = stored(&randn(&mut r, cols).iter().map(|v| 1.0 + 0.25 * v).collect::<Vec<_>>(), dtype);
    let b = stored(&randn(&mut r, cols).iter().map(|v| 0.5 * v).collect::<Vec<_>>(), dtype);
    let (xb, dyb, yb, dxb) = (
        upload(c, &x_all, dtype),
        upload(c, &dy_all, dtype),
        upload(c, &y_before, dtype),
        upload(c, &dx_before, dtype),
    );
    let (gb, bb) = (upload(c, &g, dtype), upload(c, &b, dtype));
    let dgb = common::storage(c, 4 * cols as u64);
    let dbb = common::storage(c, 4 * cols as u64);
    let storage = Storage::uniform(dtype);
    let rms = RmsNormConfig { eps: 1e-5, storage, ..Default::default() };
    let ln = LayerNormConfig { storage, ..Default::default() };
    let view = |buffer| Tensor::new(buffer, first as u64 * dtype.size());
    let workspace = workspace_for(c, norm, rms, ln, shape);
    let step = Step {
        x: view(&xb),
        y: view(&yb),
        dy: view(&dyb),
        dx: view(&dxb),
        residual: None,
        h: None,
        dh: None,
        gamma: Some((&gb).into()),
        beta: Some((&bb).into()),
        dgamma: Some((&dgb).into()),
        dbeta: Some((&dbb).into()),
        workspace: Some((&workspace).into()),
    };
    record_step(c, norm, rms, ln, shape, &step, &context);
    assert_eq!(read(c, &xb, n, dtype), x_all, "x changed ({context})");
    let y = outside_untouched("y", &y_before, &read(c, &yb, n, dtype), &starts, cols, &context);
    let dx = outside_untouched("dx", &dx_before, &read(c, &dxb, n, dtype), &starts, cols, &context);

    let rows = Shape::new(shape.rows, cols);
    let (x, dy) = (gather(&x_all, &starts, cols), gather(&dy_all, &starts, cols));
    let want = Reference::of(norm, &x, &x, &g, &b, &dy, rows, &rms, &ln);
    check_stored("y", &y, &want.y, dtype, FORWARD, 0.0, &context);
    let (dgamma, dbeta) = (read(c, &dgb, cols, DType::F32), read(c, &dbb, cols, DType::F32));
    want.check_backward(&dx, dtype, None, Some(&dgamma), Some(&dbeta), &dy, &g, rows, &context);
}

fn qkv(tokens: usize, heads: usize, head_dim: usize, gap: usize, head_major: bool, which: usize) -> Qkv {
    Qkv { tokens, heads, head_dim, gap, head_major, which }
}

/// The q and the k heads of fused QKV tensors: dense heads and heads with gaps between
/// them, token-major and head-major, head sizes that break quads (1, 3, 7, 127) and ones
/// that do not, both reduction paths and the GPU launch.
#[test]
fn heads_of_a_fused_qkv_in_one_dispatch() {
    let cases = [
        qkv(7, 4, 64, 0, false, 0),
        qkv(5, 8, 128, 8, false, 1),
        qkv(9, 3, 7, 1, false, 1),
        qkv(4, 2, 1, 3, false, 0),
        qkv(3, 5, 127, 0, true, 1),
        qkv(6, 4, 3, 2, true, 0),
        qkv(2, 16, 256, 4, false, 1),
    ];
    for (label, c) in common::contexts() {
        for (i, &q) in cases.iter().enumerate() {
            for norm in [Norm::Rms, Norm::Layer] {
                let seed = 10 * i as u64 + u64::from(norm == Norm::Layer);
                check_heads(c, norm, q, DType::F32, seed);
                let _ = label;
            }
        }
    }
}

/// 16-bit heads: f16 and bf16 (packed words shared across a head's edge when head sizes
/// and gaps are odd).
#[test]
fn heads_in_16_bit() {
    for (i, dtype) in [DType::F16, DType::BF16].into_iter().enumerate() {
        for (j, q) in [qkv(5, 4, 64, 0, false, 1), qkv(4, 3, 7, 1, false, 0), qkv(3, 4, 33, 1, true, 1)]
            .into_iter()
            .enumerate()
        {
            for norm in [Norm::Rms, Norm::Layer] {
                check_heads(ctx(), norm, q, dtype, 100 + 10 * i as u64 + j as u64);
            }
        }
    }
}

/// More rows (tokens x heads) than one dispatch dimension has workgroups.
#[test]
fn more_heads_than_a_dispatch_dimension_holds() {
    let q = qkv(2100, 32, 8, 0, false, 1);
    assert!(q.view().0.rows > 65_535);
    for norm in [Norm::Rms, Norm::Layer] {
        check_heads(ctx(), norm, q, DType::F32, 200);
    }
}

/// A token count that is not whole, heads laid over each other, and a written view over
/// another view of the call are typed errors.
#[test]
fn bad_head_layouts_are_refused() {
    let c = ctx();
    let buffer = common::storage(c, 4 * 4096);
    let op = RmsNormForwardOp::new(c, RmsNormConfig::default()).unwrap();
    let bind = |shape: Shape, y_at: u64| {
        let f = RmsNormForward {
            x: (&buffer).into(),
            residual: None,
            gamma: None,
            y: Tensor::new(&buffer, y_at),
            h: None,
            rstd: None,
        };
        op.bind(shape, &f).err()
    };
    let shape = Shape::heads(4, 3, 16);
    let e = bind(Shape { rows: 10, ..shape }, 2048);
    assert_eq!(e, Some(NormError::InvalidHeads { rows: 10, heads: 3 }));
    let e = bind(shape.with_head_stride(8), 2048);
    assert!(matches!(e, Some(NormError::OverlappingHeads { heads: 3, head_stride: 8, .. })), "{e:?}");
    // q heads of a QKV row written to the k heads: interleaved, no overlap.
    let q = Shape::heads(4, 3, 16).with_row_stride(3 * 3 * 16);
    assert_eq!(bind(q, 4 * 3 * 16), None);
    // Shifted by half a head onto the q heads.
    assert_eq!(bind(q, 4 * 8), Some(NormError::Aliasing { written: "y", other: "x" }));
}
