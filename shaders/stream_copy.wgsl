// Stream copy, y = x: the bandwidth roofline the benchmark measures the norms against.
// Launched with the forward kernels' row mapping (same workgroup size, threads per row,
// coalesced f32 accesses), so a norm's share of it is what its reductions and arithmetic
// cost on top of moving the same bytes the same way.

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn stream_copy(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let n = p.cols;
    let lane = lid % ROW_THREADS;
    let slot = lid / ROW_THREADS;
    let blocks = row_blocks();
    for (var b = wid.x; b < blocks; b = b + nwg.x) {
        let row = b * rows_per_group() + slot;
        let cnt = select(0u, n, row < p.rows);
        for (var j = lane; j < cnt; j = j + ROW_THREADS) {
            y[p.y_off + row * n + j] = x[p.x_off + row * n + j];
        }
    }
}
