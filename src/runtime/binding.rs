//! Checking a caller's tensor against its table entry, the device's limits and the other
//! tensors of the call, before anything is created.

use crate::error::{NormError, Result};
use crate::ops::table::{IN_PLACE, Role, TensorSpec};

/// A tensor in a caller's buffer, starting at byte `offset`; its dtype comes from the
/// call's [`Storage`](crate::Storage).
///
/// The offset needs only element alignment (4 bytes for f32, 2 for f16 and bf16): the crate
/// binds from the nearest offset the device allows below it and passes the rest to the
/// kernel, so activations can sit anywhere in one large buffer. The buffer needs
/// `BufferUsages::STORAGE`.
#[derive(Clone, Copy, Debug)]
pub struct Tensor<'a> {
    /// The buffer holding the elements.
    pub buffer: &'a wgpu::Buffer,
    /// Byte offset of the first element.
    pub offset: u64,
}

impl<'a> Tensor<'a> {
    /// The tensor at byte `offset` of `buffer`.
    pub fn new(buffer: &'a wgpu::Buffer, offset: u64) -> Self {
        Tensor { buffer, offset }
    }
}

impl<'a> From<&'a wgpu::Buffer> for Tensor<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Self {
        Tensor { buffer, offset: 0 }
    }
}

/// Where a tensor's elements lie in its buffer: runs of `run` bytes, one per row, the
/// `heads` rows of each of `rows` tokens, from byte `start + t * stride + h * head_stride`
/// (one run for a tensor that is not a view of rows).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Footprint {
    pub start: u64,
    pub run: u64,
    pub stride: u64,
    pub rows: u64,
    pub head_stride: u64,
    pub heads: u64,
}

impl Footprint {
    /// One run of `run` bytes from `start`.
    pub fn run(start: u64, run: u64) -> Footprint {
        Footprint { start, run, stride: 0, rows: 1, head_stride: 0, heads: 1 }
    }

    pub fn end(&self) -> u64 {
        self.start + (self.rows - 1) * self.stride + (self.heads - 1) * self.head_stride + self.run
    }

    /// Head `h`'s runs: one run per token.
    fn head(&self, h: u64) -> Footprint {
        Footprint { start: self.start + h * self.head_stride, head_stride: 0, heads: 1, ..*self }
    }
}

/// A checked tensor: the range to bind, and the element offset the kernel adds.
pub(crate) struct Checked<'a> {
    pub spec: TensorSpec,
    pub buffer: &'a wgpu::Buffer,
    pub footprint: Footprint,
    pub bind_offset: u64,
    pub bind_size: u64,
    pub element_offset: u32,
}

/// Checks `t`, holding `footprint`'s elements of `elem` bytes each, against its buffer and
/// the device's limits.
pub(crate) fn check<'a>(
    limits: &wgpu::Limits,
    spec: TensorSpec,
    t: Tensor<'a>,
    footprint: Footprint,
    elem: u64,
) -> Result<Checked<'a>> {
    let what = spec.name;
    if !t.buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
        return Err(NormError::MissingUsage { what, usage: "STORAGE" });
    }
    if !t.offset.is_multiple_of(elem) {
        return Err(NormError::UnalignedOffset { what, offset: t.offset, align: elem });
    }
    let end = footprint.end();
    let buffer_size = t.buffer.size();
    if end > buffer_size {
        return Err(NormError::BufferTooSmall { what, offset: t.offset, end, size: buffer_size });
    }
    // At least 16 bytes, so a tensor on a 16-byte boundary gets an element offset that is a
    // multiple of 4 and can take the vector layout.
    let align = u64::from(limits.min_storage_buffer_offset_alignment.max(16));
    let base = t.offset - t.offset % align;
    // Bindings are whole 4-byte words: a 16-bit tensor ending mid-word takes the word.
    let size = end.next_multiple_of(4).min(buffer_size) - base;
    // Element indices are u32 in the kernels.
    let limit = limits.max_storage_buffer_binding_size.min(u64::from(u32::MAX) * elem);
    if size > limit {
        return Err(NormError::BindingTooLarge { what, bytes: size, limit });
    }
    Ok(Checked {
        spec,
        buffer: t.buffer,
        footprint,
        bind_offset: base,
        bind_size: size,
        element_offset: ((t.offset - base) / elem) as u32,
    })
}

/// Refuses any overlap between a tensor the call writes and another tensor of the call,
/// except the exact in-place pairs of [`IN_PLACE`], which are refused too where `webgpu`
/// (the browser's WebGPU forbids a writable binding to alias another).
pub(crate) fn check_aliasing(tensors: &[Checked<'_>], webgpu: bool) -> Result<()> {
    for (i, a) in tensors.iter().enumerate() {
        for b in &tensors[i + 1..] {
            let written = a.spec.role == Role::Out || b.spec.role == Role::Out;
            if !written || a.buffer != b.buffer || !overlap(a.footprint, b.footprint) {
                continue;
            }
            let pair = (a.spec.name, b.spec.name);
            let in_place = IN_PLACE.iter().any(|&(w, r)| pair == (w, r) || pair == (r, w));
            let (written, other) = if a.spec.role == Role::Out { pair } else { (pair.1, pair.0) };
            if in_place && a.footprint == b.footprint {
                if webgpu {
                    return Err(NormError::InPlaceOnWebGpu { written, other });
                }
                continue;
            }
            return Err(NormError::Aliasing { written, other });
        }
    }
    Ok(())
}

/// Whether two footprints share a byte: head by head, each a view of runs at one stride.
fn overlap(a: Footprint, b: Footprint) -> bool {
    if a.end() <= b.start || b.end() <= a.start {
        return false;
    }
    (0..a.heads).any(|ha| (0..b.heads).any(|hb| runs_overlap(a.head(ha), b.head(hb))))
}

/// Whether two views of one head each share a byte.
fn runs_overlap(a: Footprint, b: Footprint) -> bool {
    if a.end() <= b.start || b.end() <= a.start {
        return false;
    }
    if a.rows > 1 && b.rows > 1 && a.stride != b.stride {
        // Strides differ (tensors of different dtypes): each row of the view of fewer rows
        // against the other view.
        let (few, many) = if a.rows <= b.rows { (a, b) } else { (b, a) };
        return (0..few.rows)
            .any(|i| runs_overlap(Footprint::run(few.start + i * few.stride, few.run), many));
    }
    let stride = if a.rows > 1 { a.stride } else { b.stride };
    if a.rows == 1 && b.rows == 1 || stride == 0 {
        return true;
    }
    // Row i of a and row j of b overlap iff -b.run < d + (j - i) * stride < a.run, with
    // d = b.start - a.start: an interval of t = j - i, to meet with the t that exist.
    let (d, s) = (i128::from(b.start) - i128::from(a.start), i128::from(stride));
    let lo = (-i128::from(b.run) - d).div_euclid(s) + 1;
    let hi = (i128::from(a.run) - d - 1).div_euclid(s);
    let (t_min, t_max) = (1 - i128::from(a.rows), i128::from(b.rows) - 1);
    lo.max(t_min) <= hi.min(t_max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::table::{X, Y};

    /// y = x in place: allowed on native, a typed error on the browser's WebGPU.
    #[test]
    fn in_place_is_refused_on_webgpu_only() {
        let ctx = crate::NormContext::new().expect("an adapter");
        let buffer = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: 64,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let limits = wgpu::Limits::default();
        let footprint = Footprint::run(0, 64);
        let checked = |spec| check(&limits, spec, Tensor::new(&buffer, 0), footprint, 4).unwrap();
        let pair = [checked(X), checked(Y)];
        assert_eq!(check_aliasing(&pair, false), Ok(()));
        assert_eq!(check_aliasing(&pair, true), Err(NormError::InPlaceOnWebGpu { written: "y", other: "x" }));
    }

    fn rows(start: u64, run: u64, stride: u64, rows: u64) -> Footprint {
        Footprint { start, run, stride, rows, head_stride: 0, heads: 1 }
    }

    #[test]
    fn interleaved_views_do_not_overlap() {
        // Two heads of 16 bytes in rows of 48: q at 0, k at 16.
        assert!(!overlap(rows(0, 16, 48, 100), rows(16, 16, 48, 100)));
        assert!(overlap(rows(0, 16, 48, 100), rows(8, 16, 48, 100)));
        // k shifted by one row onto q's next row.
        assert!(overlap(rows(0, 16, 48, 100), rows(48, 16, 48, 100)));
        // A single run in the gap between rows, and across one.
        assert!(!overlap(rows(0, 16, 48, 100), rows(20, 20, 48, 1)));
        assert!(overlap(rows(0, 16, 48, 100), rows(40, 20, 48, 1)));
        // Past the last row.
        assert!(!overlap(rows(0, 16, 48, 2), rows(96, 16, 48, 1)));
        assert!(overlap(rows(0, 16, 48, 3), rows(96, 16, 48, 1)));
    }
}
