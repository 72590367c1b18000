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
// workgroup takes part in every reduction. A row of one thread (SUBGROUP_MODE 1 here; the
// host gives it that mode whatever the adapter has) reduces nothing, with no barrier, as a
// row inside one subgroup does.
fn row_in_subgroup() -> bool {
    return ROW_THREADS == 1u;
}

// The row's one thread holds the row's value: called only where row_in_subgroup holds (the
// kernels' text calls it where only a row's threads agree on the control flow).
fn row_butterfly(v: vec4<f32>, op: u32) -> vec4<f32> {
    return v;
}

fn row_reduce(v: vec4<f32>, op: u32) -> vec4<f32> {
    if (row_in_subgroup()) {
        return v;
    }
    return tree_row_reduce(v, op);
}
