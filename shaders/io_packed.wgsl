// Load/store helpers for 16-bit tensors packed two to a u32 word: bf16 (no WGSL type), and
// f16 on adapters without SHADER_F16. The element conversions come from cvt_bf16.wgsl or
// cvt_f16.wgsl. A template, as io_f32.wgsl.
//
// A pair whose two elements share a word is stored with one atomicStore. An element whose
// word it shares with another row (rows of odd length) or with a neighbour pair (a row
// starting on an odd element) is stored through atomicAnd + atomicOr on its own half, so
// two threads writing the two halves of one word never lose each other's bits.
//! load
@group(0) @binding(BINDING) var<storage, read_write> NAME: array<u32>;
fn ld_NAME(i: u32) -> f32 {
    let w = NAME[i >> 1u];
    return unpack_half(select(w & 0xffffu, w >> 16u, (i & 1u) == 1u));
}
//! store
@group(0) @binding(BINDING) var<storage, read_write> NAME: array<atomic<u32>>;
fn st_half_NAME(i: u32, v: f32) {
    let shift = (i & 1u) * 16u;
    atomicAnd(&NAME[i >> 1u], ~(0xffffu << shift));
    atomicOr(&NAME[i >> 1u], pack_half(v) << shift);
}
fn st_NAME(i: u32, v: vec2<f32>, len: u32) {
    if (len == 2u && (i & 1u) == 0u) {
        atomicStore(&NAME[i >> 1u], pack_half(v.x) | (pack_half(v.y) << 16u));
        return;
    }
    if (len > 0u) {
        st_half_NAME(i, v.x);
    }
    if (len > 1u) {
        st_half_NAME(i + 1u, v.y);
    }
}
