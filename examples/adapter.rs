//! Prints the adapter `NormContext::new` picks and what the kernels use on it; fails where
//! there is none. The test script runs it before the suite on each driver.

fn main() -> Result<(), wgpu_norm::NormError> {
    let ctx = wgpu_norm::NormContext::new()?;
    let i = ctx.adapter_info();
    println!(
        "adapter: {} ({:?}, {:?}, driver {}): subgroups {}..{} ({}), f16 {}",
        i.name,
        i.backend,
        i.device_type,
        i.driver,
        i.subgroup_min_size,
        i.subgroup_max_size,
        if ctx.uses_subgroups() { "subgroup reductions" } else { "workgroup-memory reductions" },
        if ctx.uses_native_f16() { "native" } else { "packed in u32 words" },
    );
    Ok(())
}
