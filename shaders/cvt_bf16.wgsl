// bf16 bits <-> f32: a bf16 is the high half of an f32. Stores round to nearest even and
// keep NaN a NaN (a NaN whose payload sits in the low half would otherwise truncate to inf).
fn unpack_bf16(bits: u32) -> f32 {
    return bitcast<f32>(bits << 16u);
}

fn pack_bf16(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    if ((b & 0x7fffffffu) > 0x7f800000u) {
        return (b >> 16u) | 0x40u;
    }
    return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}
