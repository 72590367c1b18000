// Load/store helpers for 16-bit tensors packed two to a u32 word: bf16 (no WGSL type), and
// f16 on adapters without SHADER_F16. The element conversions come from cvt_bf16.wgsl or
// cvt_f16.wgsl. A template, as io_native.wgsl; the host declares `NAME` as `array<u32>`
// (scalar loads), `array<atomic<u32>>` (scalar stores) or `array<vec2<u32>>` (vector
// layout: a quad is two whole words).
//
// Scalar stores: a pair whose two elements share a word is stored with one atomicStore. An
// element whose word it shares with another row (rows of odd length) or with a neighbour
// (a row starting on an odd element) is stored through atomicAnd + atomicOr on its own
// half, so two threads writing the two halves of one word never lose each other's bits.
//! load scalar
fn ld1_NAME(i: u32) -> f32 {
    let w = NAME[i >> 1u];
    return unpack_half(select(w & 0xffffu, w >> 16u, (i & 1u) == 1u));
}
fn ld_NAME(i: u32, len: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (len > 0u) {
        v.x = ld1_NAME(i);
    }
    if (len > 1u) {
        v.y = ld1_NAME(i + 1u);
    }
    if (len > 2u) {
        v.z = ld1_NAME(i + 2u);
    }
    if (len > 3u) {
        v.w = ld1_NAME(i + 3u);
    }
    return v;
}
//! store scalar
fn st_half_NAME(i: u32, v: f32) {
    let shift = (i & 1u) * 16u;
    atomicAnd(&NAME[i >> 1u], ~(0xffffu << shift));
    atomicOr(&NAME[i >> 1u], pack_half(v) << shift);
}
fn st2_NAME(i: u32, v: vec2<f32>, len: u32) {
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
fn st_NAME(i: u32, v: vec4<f32>, len: u32) {
    st2_NAME(i, v.xy, min(len, 2u));
    if (len > 2u) {
        st2_NAME(i + 2u, v.zw, len - 2u);
    }
}
//! load vector
fn ld_NAME(i: u32, len: u32) -> vec4<f32> {
    if (len == 0u) {
        return vec4<f32>(0.0);
    }
    let w = NAME[i >> 2u];
    return vec4<f32>(unpack_half(w.x & 0xffffu), unpack_half(w.x >> 16u), unpack_half(w.y & 0xffffu), unpack_half(w.y >> 16u));
}
//! store vector
fn st_NAME(i: u32, v: vec4<f32>, len: u32) {
    if (len > 0u) {
        NAME[i >> 2u] = vec2<u32>(pack_half(v.x) | (pack_half(v.y) << 16u), pack_half(v.z) | (pack_half(v.w) << 16u));
    }
}
