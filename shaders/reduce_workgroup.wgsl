//! include common.wgsl
// Row reduction for adapters without subgroup operations: a tree in workgroup memory.

struct Invocation {
    @builtin(local_invocation_index) index: u32,
}

fn enter(inv: Invocation) {
    load_params();
    local_index = inv.index;
}

fn row_reduce(v: vec4<f32>, op: u32) -> vec4<f32> {
    return tree_row_reduce(v, op);
}
