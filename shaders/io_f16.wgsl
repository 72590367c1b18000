// Load/store helpers for f16 tensors on adapters with SHADER_F16 (the module starts with
// `enable f16;`): 16-bit storage, f32 arithmetic. A template, as io_f32.wgsl.
//! load
@group(0) @binding(BINDING) var<storage, read_write> NAME: array<f16>;
fn ld_NAME(i: u32) -> f32 {
    return f32(NAME[i]);
}
//! store
@group(0) @binding(BINDING) var<storage, read_write> NAME: array<f16>;
fn st_NAME(i: u32, v: vec2<f32>, len: u32) {
    if (len > 0u) {
        NAME[i] = f16(v.x);
    }
    if (len > 1u) {
        NAME[i + 1u] = f16(v.y);
    }
}
