// Loads and stores of one tensor WGSL can type directly (f32, or f16 on adapters with
// SHADER_F16), one vector access per quad. The host picks this layout only when every quad
// a kernel touches is aligned and whole (offsets, row stride and row length multiples of
// 4): len is 0 or 4. A template, as io_native_scalar.wgsl.

alias tensor_elem = f32;

@group(0) @binding(0) var<storage, read_write> tensor: array<vec4<tensor_elem>>;

fn ld_tensor(i: u32, len: u32) -> vec4<f32> {
    if (len == 0u) {
        return vec4<f32>(0.0);
    }
    return vec4<f32>(tensor[i >> 2u]);
}

fn st_tensor(i: u32, v: vec4<f32>, len: u32) {
    if (len > 0u) {
        tensor[i >> 2u] = vec4<tensor_elem>(v);
    }
}
