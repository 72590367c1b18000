// Loads and stores of one tensor WGSL can type directly (f32, or f16 on adapters with
// SHADER_F16), one scalar access per element: any element alignment. Arithmetic is f32.
//
// A template that is a module of its own: src/shader.rs instantiates it once per tensor,
// renaming `tensor` to the tensor's name (ld_x, st_y, ...), `tensor_elem` to its element
// type and binding 0 to its binding. ld_* and st_* take the element index i of a quad and
// how many of its elements (0 to 4) belong to the row; loads return zeros past them.

alias tensor_elem = f32;

@group(0) @binding(0) var<storage, read_write> tensor: array<tensor_elem>;

fn ld_tensor(i: u32, len: u32) -> vec4<f32> {
    var v = vec4<f32>(0.0);
    if (len > 0u) {
        v.x = f32(tensor[i]);
    }
    if (len > 1u) {
        v.y = f32(tensor[i + 1u]);
    }
    if (len > 2u) {
        v.z = f32(tensor[i + 2u]);
    }
    if (len > 3u) {
        v.w = f32(tensor[i + 3u]);
    }
    return v;
}

fn st_tensor(i: u32, v: vec4<f32>, len: u32) {
    if (len > 0u) {
        tensor[i] = tensor_elem(v.x);
    }
    if (len > 1u) {
        tensor[i + 1u] = tensor_elem(v.y);
    }
    if (len > 2u) {
        tensor[i + 2u] = tensor_elem(v.z);
    }
    if (len > 3u) {
        tensor[i + 3u] = tensor_elem(v.w);
    }
}
