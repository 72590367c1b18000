//! include cvt_f16.wgsl
// Loads of one 16-bit tensor packed two to a u32 word (bf16, which WGSL cannot type, and
// f16 on adapters without SHADER_F16), one scalar access per element. The conversions
// come from cvt_bf16.wgsl or cvt_f16.wgsl. A template, as io_native_scalar.wgsl.

@group(0) @binding(0) var<storage, read_write> tensor: array<u32>;

fn ld1_tensor(i: u32) -> f32 {
    let w = tensor[i >> 1u];
    return unpack_f16(select(w & 0xffffu, w >> 16u, (i & 1u) == 1u));
}

fn ld_tensor(i: u32, len: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (len > 0u) {
        v.x = ld1_tensor(i);
    }
    if (len > 1u) {
        v.y = ld1_tensor(i + 1u);
    }
    if (len > 2u) {
        v.z = ld1_tensor(i + 2u);
    }
    if (len > 3u) {
        v.w = ld1_tensor(i + 3u);
    }
    return v;
}
