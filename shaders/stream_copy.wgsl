//! include common.wgsl
// Stream copy, y = x: the bandwidth roofline the benchmark measures the norms against.
// Launched with the forward kernels' row mapping and quad walk (same workgroup size,
// threads per row, load and store helpers of the same dtype and layout), so a norm's share
// of it is what its reductions and arithmetic cost on top of moving the same bytes the
// same way.

@compute @workgroup_size(WORKGROUP_SIZE)
fn stream_copy(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    load_params();
    let lane = lid % ROW_THREADS;
    let slot = lid / ROW_THREADS;
    let trips = slot_trips(wid.x, nwg.x);
    let first = slot_start(wid.x, nwg.x, slot);
    for (var i = 0u; i < trips; i = i + 1u) {
        let row = row_at(first + i);
        for (var k = 0u; k < walk_trips(lane, row.cnt); k = k + 1u) {
            let j = quad_at(lane, k);
            let len = trip_len(j, row.cnt);
            st_y(p.y_off + row.base + j, ld_x(p.x_off + row.base + j, len), len);
        }
    }
}
