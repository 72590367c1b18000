// f16 bits <-> f32 through the core packing builtins (no SHADER_F16 needed).
fn unpack_f16(bits: u32) -> f32 {
    return unpack2x16float(bits).x;
}

fn pack_f16(v: f32) -> u32 {
    return pack2x16float(vec2<f32>(v, 0.0)) & 0xffffu;
}
