// Column sums of the backward partials: dgamma[j] = sum over p of partial[p][j] (and dbeta
// from the second half), always in the order p = 0, 1, ..., so two runs agree bit for bit.
// Consecutive threads take consecutive columns, so every load is coalesced.

@group(0) @binding(8) var<storage, read_write> partial: array<f32>;
@group(0) @binding(9) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(10) var<storage, read_write> dbeta: array<f32>;

fn column_sum(first: u32, j: u32) -> f32 {
    var s = 0.0;
    for (var r = 0u; r < p.part_rows; r = r + 1u) {
        s = s + partial[first + r * p.cols + j];
    }
    return s;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn reduce_columns(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let stride = nwg.x * WORKGROUP_SIZE;
    for (var j = wid.x * WORKGROUP_SIZE + lid; j < p.cols; j = j + stride) {
        if (has(FLAG_DGAMMA)) {
            dgamma[p.dgamma_off + j] = column_sum(p.part_off, j);
        }
        if (has(FLAG_DBETA)) {
            dbeta[p.dbeta_off + j] = column_sum(p.part_off + p.part_rows * p.cols, j);
        }
    }
}
