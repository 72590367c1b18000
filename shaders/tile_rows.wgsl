//! include common.wgsl
// A forward's tile rows, those whose squares leave f32's range done last. The norm that
// includes this defines, for its forward:
//   forward_rows(row, lane, 1u) -> bool: row.x's forward; where defers_guarded_rows holds
//     and its sums are out of f32's range, it stores nothing and returns false;
//   guarded_tile_row(index, lane): the row's forward with its sums guarded, from memory.

// Whether a slot's tile rows leave a walk that only a few rows need until after them (the
// forward's rows out of f32's range: tile_rows; LayerNorm's backward's rows with a peak):
// where a row reduces inside one subgroup, with no barrier, so that a slot may go back to a
// row of its own, and the tile is short. A SIMD compiler that runs a loop's body once even
// where no lane takes a trip (llvmpipe) charges such a walk to every row, a large share of a
// short one; at 24 quads going back cost more than it saved (BENCHMARKS.md, "Tile rows out
// of range, done last" and "Tile backward rows with a peak, done last").
fn defers_guarded_rows() -> bool {
    return CACHED && row_in_subgroup() && MAX_CACHE <= 16u;
}

// The forward of a slot's `trips` tile rows from `first`, where defers_guarded_rows: a row
// forward_rows leaves is marked and done after up to 32 rows by guarded_tile_row. Nothing
// of it was stored, so x is still there where y is x, and the marks (not a second test,
// which a stored y might fail) say which rows those are.
fn tile_rows(first: u32, trips: u32, lane: u32) {
    for (var c = 0u; c < trips; c = c + 32u) {
        var marks = 0u;
        for (var i = c; i < min(trips, c + 32u); i = i + 1u) {
            marks = marks | (u32(!forward_rows(vec4<u32>(first + i), lane, 1u)) << (i - c));
        }
        for (; marks != 0u; marks = marks & (marks - 1u)) {
            guarded_tile_row(first + c + firstTrailingBit(marks), lane);
        }
    }
}
