// Load/store helpers for f32 tensors. A template: the host emits one copy per tensor of a
// kernel, with NAME and BINDING replaced, the load part for inputs and the store part for
// outputs. Loads take an element index; stores take the pair at index i and how many of
// it (0, 1 or 2) belong to the row.
//! load
@group(0) @binding(BINDING) var<storage, read_write> NAME: array<f32>;
fn ld_NAME(i: u32) -> f32 {
    return NAME[i];
}
//! store
@group(0) @binding(BINDING) var<storage, read_write> NAME: array<f32>;
fn st_NAME(i: u32, v: vec2<f32>, len: u32) {
    if (len > 0u) {
        NAME[i] = v.x;
    }
    if (len > 1u) {
        NAME[i + 1u] = v.y;
    }
}
