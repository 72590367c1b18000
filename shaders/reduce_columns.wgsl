//! include common.wgsl
// Column sums of the backward partials: dgamma[j] = sum over r of partial[r][j] (and dbeta
// from the second half). A workgroup takes a block of column quads, WORKGROUP_SIZE /
// ROW_THREADS of them: consecutive threads take consecutive quads, so every load is
// coalesced, and each quad has ROW_THREADS lanes, lane l summing the partial rows l,
// l + ROW_THREADS, ... in order. The lanes' sums then meet in a fixed tree. The order of
// every addition is the launch's, so two runs agree bit for bit.

// The sum over the partial rows of the quad at j (live: inside the row) from `first`, in
// lane 0 of the quad's lanes; `slot` is this thread's place in `red`, the quad's lanes
// `quads` apart. From uniform control flow only.
fn column_sum(first: u32, j: u32, len: u32, live: bool, lane: u32, slot: u32, quads: u32) -> vec4<f32> {
    var s = vec4<f32>(0.0);
    for (var r = lane; r < select(0u, p.partial_rows, live); r = r + ROW_THREADS) {
        s = s + ld_workspace(first + r * p.cols + j, len);
    }
    if (ROW_THREADS == 1u) {
        return s;
    }
    // The leading barrier lets a second call reuse `red`.
    workgroupBarrier();
    red[slot] = s;
    workgroupBarrier();
    for (var o = ROW_THREADS / 2u; o > 0u; o = o / 2u) {
        if (lane < o) {
            red[slot] = red[slot] + red[slot + o * quads];
        }
        workgroupBarrier();
    }
    return red[slot];
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_columns(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let quads = WORKGROUP_SIZE / ROW_THREADS;
    let lane = lid / quads;
    let blocks = (p.cols + 4u * quads - 1u) / (4u * quads);
    for (var b = wid.x; b < blocks; b = b + nwg.x) {
        let j = 4u * (b * quads + lid % quads);
        let live = j < p.cols;
        let len = walk_len(j, p.cols);
        let store = live && lane == 0u;
        if (has(FLAG_DGAMMA)) {
            let s = column_sum(p.workspace_off, j, len, live, lane, lid, quads);
            if (store) {
                st_dgamma(p.dgamma_off + j, s, len);
            }
        }
        if (has(FLAG_DBETA)) {
            let s = column_sum(p.workspace_off + p.partial_rows * p.cols, j, len, live, lane, lid, quads);
            if (store) {
                st_dbeta(p.dbeta_off + j, s, len);
            }
        }
    }
}
