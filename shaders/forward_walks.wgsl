//! include common.wgsl
// The walks of a forward's slot over its rows that both norms share; each is an entry
// point's own (Walk in src/shader.rs), so that a pipeline compiles only the walk it runs.
// The norm that includes this defines, for its forward:
//   load_tile_params(lane): its parameters' quads into the register tile (params_cached);
//   forward_rows(row, lane, 1u, defer) -> bool: row.x's forward; with `defer` (a constant at
//     each call), where its sums are out of f32's range, it stores nothing and returns false;
//   guarded_tile_row(index, lane): the row's forward with its sums guarded, from memory.

// A forward slot: the thread's lane and the slot's first row. Its trip count (slot_trips)
// stays out of it: it is uniform, the rest is not.
struct ForwardSlot {
    lane: u32,
    first: u32,
}

fn enter_forward(wid: vec3<u32>, nwg: vec3<u32>, inv: Invocation) -> ForwardSlot {
    enter(inv);
    let lane = inv.index % ROW_THREADS;
    load_tile_params(lane);
    return ForwardSlot(lane, slot_start(wid.x, nwg.x, inv.index / ROW_THREADS));
}

// The forward of a slot's rows `start` to `trips` from `first`, one per trip, each guarded as
// it goes: any launch's (Walk::Rows), and the last rows of a streamed walk.
fn forward_each(first: u32, start: u32, trips: u32, lane: u32) {
    for (var i = start; i < trips; i = i + 1u) {
        forward_rows(vec4<u32>(first + i), lane, 1u, false);
    }
}

// The forward of a slot's `trips` tile rows from `first`, those out of f32's range done last
// (Walk::Tile): a row forward_rows leaves is marked and done after up to 32 rows by
// guarded_tile_row. Nothing of it was stored, so x is still there where y is x, and the
// marks (not a second test, which a stored y might fail) say which rows those are.
fn tile_rows(first: u32, trips: u32, lane: u32) {
    for (var c = 0u; c < trips; c = c + 32u) {
        var marks = 0u;
        for (var i = c; i < min(trips, c + 32u); i = i + 1u) {
            marks = marks | (u32(!forward_rows(vec4<u32>(first + i), lane, 1u, true)) << (i - c));
        }
        for (; marks != 0u; marks = marks & (marks - 1u)) {
            guarded_tile_row(first + c + firstTrailingBit(marks), lane);
        }
    }
}
