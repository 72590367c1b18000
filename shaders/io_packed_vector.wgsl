//! include cvt_f16.wgsl
// Loads and stores of one 16-bit tensor packed two to a u32 word, one vector access per
// quad (two whole words): the layout of io_native_vector.wgsl. A template, as
// io_native_scalar.wgsl.

@group(0) @binding(0) var<storage, read_write> tensor: array<vec2<u32>>;

fn ld_tensor(i: u32, len: u32) -> vec4<f32> {
    if (len == 0u) {
        return vec4<f32>(0.0);
    }
    let w = tensor[i >> 2u];
    return vec4<f32>(unpack_f16(w.x & 0xffffu), unpack_f16(w.x >> 16u), unpack_f16(w.y & 0xffffu), unpack_f16(w.y >> 16u));
}

fn st_tensor(i: u32, v: vec4<f32>, len: u32) {
    if (len > 0u) {
        tensor[i >> 2u] = vec2<u32>(pack_f16(v.x) | (pack_f16(v.y) << 16u), pack_f16(v.z) | (pack_f16(v.w) << 16u));
    }
}
