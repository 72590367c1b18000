//! include common.wgsl
// Row reduction with subgroup operations: a butterfly when a row fits in one subgroup,
// else subgroupAdd (subgroupMax in a PEAK op's lanes, a butterfly for SPLIT) and a single
// exchange of one value per subgroup through workgroup memory (two barriers instead of
// log2(ROW_THREADS) + 2).
//
// Both assume, as the Vulkan, Metal and D3D12 drivers we know of do for 1-D workgroups,
// that a subgroup is a run of consecutive local_invocation_index values; the tests check
// every kernel against the reference on the adapter they run on.

struct Invocation {
    @builtin(local_invocation_index) index: u32,
    @builtin(subgroup_size) sg_size: u32,
    @builtin(subgroup_invocation_id) sg_lane: u32,
}

var<private> sg_size: u32;
var<private> sg_lane: u32;

fn enter(inv: Invocation) {
    load_params();
    local_index = inv.index;
    sg_size = inv.sg_size;
    sg_lane = inv.sg_lane;
}

// Whether a row's threads reduce inside one subgroup, with no barrier (SUBGROUP_MODE 1):
// then only the row's own threads need to agree on the control flow around a reduction,
// and a slot may go back to a row of its own (row_butterfly).
fn row_in_subgroup() -> bool {
    return SUBGROUP_MODE == 1u;
}

// op over the threads of this thread's row, where row_in_subgroup holds: a butterfly with
// no barrier, so control flow that only the row's threads agree on is enough.
fn row_butterfly(v: vec4<f32>, op: u32) -> vec4<f32> {
    var t = v;
    for (var o = ROW_THREADS / 2u; o > 0u; o = o / 2u) {
        t = combine(t, subgroupShuffleXor(t, o), op);
    }
    return t;
}

fn row_reduce(v: vec4<f32>, op: u32) -> vec4<f32> {
    var t = v;
    if (row_in_subgroup()) {
        t = row_butterfly(v, op);
    } else if (SUBGROUP_MODE == 2u) {
        var s = v;
        if (op == SUM) {
            s = subgroupAdd(v);
        } else if (op == SPLIT || op == SPLIT_GUARDED) {
            for (var o = sg_size / 2u; o > 0u; o = o / 2u) {
                s = combine(s, subgroupShuffleXor(s, o), op);
            }
        } else {
            s = select(subgroupAdd(v), subgroupMax(v), max_lanes(op));
        }
        workgroupBarrier();
        if (sg_lane == 0u) {
            red[local_index / sg_size] = s;
        }
        workgroupBarrier();
        let per_row = ROW_THREADS / sg_size;
        let first = (local_index / ROW_THREADS) * per_row;
        t = red[first];
        for (var i = 1u; i < per_row; i = i + 1u) {
            t = combine(t, red[first + i], op);
        }
    } else {
        t = tree_row_reduce(v, op);
    }
    return t;
}
