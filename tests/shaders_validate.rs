//! Every shader variant parsed and validated with naga, no GPU needed: a WGSL mistake fails
//! here with the file's name and a readable message.

use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgpu_norm::shader::{Family, Layout, Variant, wgsl_source, wgsl_variant};
use wgpu_norm::{DType, Storage};

/// Every storage the kernels are built for, with f16 native and packed.
fn storages() -> Vec<(Storage, bool)> {
    let mut v = Vec::new();
    for act in [DType::F32, DType::F16, DType::BF16] {
        for params in [DType::F32, act] {
            for native in [false, true] {
                v.push((Storage { activations: act, params }, native));
            }
        }
    }
    v
}

#[test]
fn every_variant_parses_and_validates() {
    for family in Family::ALL {
        for (subgroups, layout, register_quads) in [
            (false, Layout::Scalar, 1),
            (true, Layout::Scalar, 24),
            (false, Layout::Vector, 8),
            (true, Layout::Vector, 3),
        ] {
            for (storage, native_f16) in storages() {
                let what = format!(
                    "{} (subgroups {subgroups}, {layout:?} layout, tile {register_quads}, {storage:?}, native f16 \
                     {native_f16})",
                    family.file_name()
                );
                let variant = Variant { subgroups, storage, native_f16, layout, register_quads };
                let source = wgsl_variant(family, &variant);
                let module = naga::front::wgsl::parse_str(&source)
                    .unwrap_or_else(|e| panic!("{what}:\n{}", e.emit_to_string(&source)));
                let mut caps = Capabilities::SHADER_FLOAT16 | Capabilities::SHADER_FLOAT16_IN_FLOAT32;
                if subgroups {
                    caps |= Capabilities::SUBGROUP | Capabilities::SUBGROUP_BARRIER;
                }
                Validator::new(ValidationFlags::all(), caps)
                    .validate(&module)
                    .unwrap_or_else(|e| panic!("{what}:\n{}", e.emit_to_string(&source)));
                for kernel in family.kernels() {
                    assert!(
                        module.entry_points.iter().any(|e| e.name == kernel.name()),
                        "{what} lacks entry point {}",
                        kernel.name()
                    );
                }
            }
        }
    }
}

/// The uniform block has the same size on both sides.
#[test]
fn params_struct_matches_wgsl() {
    let source = wgsl_source(Family::RmsNorm, false, Storage::default(), false);
    let module = naga::front::wgsl::parse_str(&source).unwrap();
    let (_, ty) =
        module.types.iter().find(|(_, t)| t.name.as_deref() == Some("Params")).expect("struct Params");
    let naga::TypeInner::Struct { span, ref members } = ty.inner else { panic!("Params is a struct") };
    assert_eq!(span as usize, wgpu_norm::params_size());
    assert_eq!(members.len() * 4, wgpu_norm::params_size());
}

/// No kernel names more than 8 storage buffers, WebGPU's default
/// max_storage_buffers_per_shader_stage. A binding counts as soon as the entry point's code
/// refers to it, even under a flag that is off: pipelines derive their layout from the text.
#[test]
fn every_kernel_binds_at_most_8_storage_buffers() {
    for family in Family::ALL {
        let variant = Variant {
            subgroups: true,
            storage: Storage::default(),
            native_f16: false,
            layout: Layout::Vector,
            register_quads: 4,
        };
        let source = wgsl_variant(family, &variant);
        let module = naga::front::wgsl::parse_str(&source).unwrap();
        let caps = Capabilities::SUBGROUP | Capabilities::SUBGROUP_BARRIER;
        let info = Validator::new(ValidationFlags::all(), caps).validate(&module).unwrap();
        for (i, entry) in module.entry_points.iter().enumerate() {
            let uses = info.get_entry_point(i);
            let storage: Vec<&str> = module
                .global_variables
                .iter()
                .filter(|(h, g)| {
                    matches!(g.space, naga::AddressSpace::Storage { .. }) && !uses[*h].is_empty()
                })
                .map(|(_, g)| g.name.as_deref().unwrap_or("?"))
                .collect();
            assert!(
                storage.len() <= 8,
                "{} binds {} storage buffers: {storage:?}",
                entry.name,
                storage.len()
            );
        }
    }
}
