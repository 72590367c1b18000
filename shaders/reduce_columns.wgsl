//! include common.wgsl
// Column sums of the backward partials: dgamma[j] = sum over r of partial[r][j] (and dbeta
// from the second half), always in the order r = 0, 1, ..., so two runs agree bit for bit.
// Consecutive threads take consecutive quads of columns, so every load is coalesced.

fn column_sum(first: u32, j: u32, len: u32) -> vec4<f32> {
    var s = vec4<f32>(0.0);
    for (var r = 0u; r < p.partial_rows; r = r + 1u) {
        s = s + ld_workspace(first + r * p.cols + j, len);
    }
    return s;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_columns(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let step = 4u * nwg.x * WORKGROUP_SIZE;
    for (var j = 4u * (wid.x * WORKGROUP_SIZE + lid); j < p.cols; j = j + step) {
        let len = walk_len(j, p.cols);
        if (has(FLAG_DGAMMA)) {
            st_dgamma(p.dgamma_off + j, column_sum(p.workspace_off, j, len), len);
        }
        if (has(FLAG_DBETA)) {
            st_dbeta(p.dbeta_off + j, column_sum(p.workspace_off + p.partial_rows * p.cols, j, len), len);
        }
    }
}
