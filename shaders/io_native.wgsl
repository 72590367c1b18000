// Load/store helpers for tensors WGSL can type directly: f32, and f16 on adapters with
// SHADER_F16 (the module then starts with `enable f16;`). Arithmetic is f32 either way.
//
// A template: the host declares `NAME` (binding BINDING) as `array<ELEM>` for the scalar
// layout or `array<vec4<ELEM>>` for the vector layout, and emits the matching section below
// once per tensor, for a load (`ld_NAME`) or a store (`st_NAME`). Both take the element
// index i of a quad and how many of its elements (0 to 4) belong to the row; loads return
// zeros past them.
//! load scalar
fn ld_NAME(i: u32, len: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (len > 0u) {
        v.x = f32(NAME[i]);
    }
    if (len > 1u) {
        v.y = f32(NAME[i + 1u]);
    }
    if (len > 2u) {
        v.z = f32(NAME[i + 2u]);
    }
    if (len > 3u) {
        v.w = f32(NAME[i + 3u]);
    }
    return v;
}
//! store scalar
fn st_NAME(i: u32, v: vec4<f32>, len: u32) {
    if (len > 0u) {
        NAME[i] = ELEM(v.x);
    }
    if (len > 1u) {
        NAME[i + 1u] = ELEM(v.y);
    }
    if (len > 2u) {
        NAME[i + 2u] = ELEM(v.z);
    }
    if (len > 3u) {
        NAME[i + 3u] = ELEM(v.w);
    }
}
//! load vector
// The host picks this layout only when every quad a kernel touches is aligned and whole
// (offsets, row stride and row length multiples of 4): len is 0 or 4.
fn ld_NAME(i: u32, len: u32) -> vec4<f32> {
    if (len == 0u) {
        return vec4<f32>(0.0);
    }
    return vec4<f32>(NAME[i >> 2u]);
}
//! store vector
fn st_NAME(i: u32, v: vec4<f32>, len: u32) {
    if (len > 0u) {
        NAME[i >> 2u] = vec4<ELEM>(v);
    }
}
