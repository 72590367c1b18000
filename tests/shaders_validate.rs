//! Every shader variant parsed and validated with naga, no GPU needed: a WGSL mistake fails
//! here with the file's name and a readable message.

use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgpu_norm::shader::{Family, wgsl_source};

#[test]
fn every_variant_parses_and_validates() {
    for family in Family::ALL {
        for subgroups in [false, true] {
            let source = wgsl_source(family, subgroups);
            let module = naga::front::wgsl::parse_str(&source).unwrap_or_else(|e| {
                panic!(
                    "{} (subgroups {subgroups}):\n{}",
                    family.file_name(),
                    e.emit_to_string(&source)
                )
            });
            let caps = if subgroups {
                Capabilities::all()
            } else {
                Capabilities::empty()
            };
            Validator::new(ValidationFlags::all(), caps)
                .validate(&module)
                .unwrap_or_else(|e| {
                    panic!(
                        "{} (subgroups {subgroups}):\n{}",
                        family.file_name(),
                        e.emit_to_string(&source)
                    )
                });
            for kernel in family.kernels() {
                assert!(
                    module.entry_points.iter().any(|e| e.name == kernel.name()),
                    "{} lacks entry point {}",
                    family.file_name(),
                    kernel.name()
                );
            }
        }
    }
}

/// The uniform block is 16 u32s on both sides.
#[test]
fn params_struct_matches_wgsl() {
    let source = wgsl_source(Family::RmsNorm, false);
    let module = naga::front::wgsl::parse_str(&source).unwrap();
    let (_, ty) = module
        .types
        .iter()
        .find(|(_, t)| t.name.as_deref() == Some("Params"))
        .expect("struct Params");
    let naga::TypeInner::Struct { span, ref members } = ty.inner else {
        panic!("Params is a struct")
    };
    assert_eq!(span as usize, wgpu_norm::params_size());
    assert_eq!(members.len() * 4, wgpu_norm::params_size());
}
