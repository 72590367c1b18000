//! include common.wgsl
// Row reduction with subgroup operations: a butterfly when a row fits in one subgroup,
// else subgroupAdd and a single exchange of one value per subgroup through workgroup
// memory (two barriers instead of log2(ROW_THREADS) + 2).
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
    local_index = inv.index;
    sg_size = inv.sg_size;
    sg_lane = inv.sg_lane;
}

fn row_sum(v: vec4<f32>) -> vec4<f32> {
    var t = v;
    if (SUBGROUP_MODE == 1u) {
        for (var o = ROW_THREADS / 2u; o > 0u; o = o / 2u) {
            t = t + subgroupShuffleXor(t, o);
        }
    } else if (SUBGROUP_MODE == 2u) {
        let s = subgroupAdd(v);
        workgroupBarrier();
        if (sg_lane == 0u) {
            red[local_index / sg_size] = s;
        }
        workgroupBarrier();
        let per_row = ROW_THREADS / sg_size;
        let first = (local_index / ROW_THREADS) * per_row;
        t = vec4<f32>(0.0);
        for (var i = 0u; i < per_row; i = i + 1u) {
            t = t + red[first + i];
        }
    } else {
        t = tree_row_sum(v);
    }
    return t;
}
