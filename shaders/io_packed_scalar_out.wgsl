//! include cvt_f16.wgsl
// Stores of one 16-bit tensor packed two to a u32 word, one scalar access per element (see
// io_packed_scalar_in.wgsl). The words are atomic: a pair whose two elements share a word
// is stored with one atomicStore. An element whose word it shares with another row (rows
// of odd length) or with a neighbour (a row starting on an odd element) is stored through
// atomicAnd + atomicOr on its own half, so two threads writing the two halves of one word
// never lose each other's bits. A template, as io_native_scalar.wgsl.

@group(0) @binding(0) var<storage, read_write> tensor: array<atomic<u32>>;

fn st_half_tensor(i: u32, v: f32) {
    let shift = (i & 1u) * 16u;
    atomicAnd(&tensor[i >> 1u], ~(0xffffu << shift));
    atomicOr(&tensor[i >> 1u], pack_f16(v) << shift);
}

fn st2_tensor(i: u32, v: vec2<f32>, len: u32) {
    if (len == 2u && (i & 1u) == 0u) {
        atomicStore(&tensor[i >> 1u], pack_f16(v.x) | (pack_f16(v.y) << 16u));
        return;
    }
    if (len > 0u) {
        st_half_tensor(i, v.x);
    }
    if (len > 1u) {
        st_half_tensor(i + 1u, v.y);
    }
}

fn st_tensor(i: u32, v: vec4<f32>, len: u32) {
    st2_tensor(i, v.xy, min(len, 2u));
    if (len > 2u) {
        st2_tensor(i + 2u, v.zw, len - 2u);
    }
}
