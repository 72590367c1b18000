//! include common.wgsl
// Row reduction for adapters without subgroup operations: a tree in workgroup memory.

struct Invocation {
    @builtin(local_invocation_index) index: u32,
}

fn enter(inv: Invocation) {
    load_params();
    local_index = inv.index;
}

// A row's threads reduce through workgroup memory, with barriers: every thread of the
// workgroup takes part in every reduction.
fn row_in_subgroup() -> bool {
    return false;
}

// Never called (row_in_subgroup is false); the kernels' text calls it where only a row's
// threads agree on the control flow, so it holds no barrier.
fn row_butterfly(v: vec4<f32>, op: u32) -> vec4<f32> {
    return v;
}

fn row_reduce(v: vec4<f32>, op: u32) -> vec4<f32> {
    return tree_row_reduce(v, op);
}
