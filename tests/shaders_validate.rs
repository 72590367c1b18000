//! Every shader variant parsed and validated with naga, no GPU needed: a WGSL mistake fails
//! here with the file's name and a readable message.

use naga::valid::{Capabilities, ValidationFlags, Validator};
use wgpu_norm::shader::{self, Family, Layout, Variant, wgsl_source, wgsl_variant};
use wgpu_norm::table::Pass;
use wgpu_norm::{DType, Storage};

/// Each dtype for every tensor, f32 tensors next to 16-bit ones and f16 next to bf16 (both
/// packed in one module), with f16 native and packed.
fn storages() -> Vec<(Storage, bool)> {
    let mut v = Vec::new();
    for dtype in [DType::F32, DType::F16, DType::BF16] {
        for mix in [
            Storage::uniform(dtype),
            Storage::uniform(dtype).with_params(DType::F32),
            Storage { x: dtype, dy: dtype, y: DType::BF16, dx: DType::F16, ..Storage::default() },
            Storage { residual: dtype, h: DType::F16, gamma: DType::BF16, ..Storage::uniform(DType::F16) },
        ] {
            for native in [false, true] {
                v.push((mix, native));
            }
        }
    }
    v
}

#[test]
fn every_variant_parses_and_validates() {
    for family in Family::ALL {
        for (subgroups, layout, register_quads, params_copied) in [
            (false, Layout::Scalar, 1, false),
            (true, Layout::Scalar, 24, false),
            (false, Layout::Vector, 8, false),
            (true, Layout::Vector, 0, true),
            (false, Layout::Vector, 0, false),
            (true, Layout::Vector, 3, false),
        ] {
            for (storage, native_f16) in storages() {
                let what = format!(
                    "{} (subgroups {subgroups}, {layout:?} layout, tile {register_quads}, params copied {params_copied}, {storage:?}, native f16 \
                     {native_f16})",
                    family.file_name()
                );
                let variant =
                    Variant { subgroups, storage, native_f16, layout, register_quads, params_copied };
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
                let entry_points: Vec<String> = family
                    .kernels()
                    .iter()
                    .flat_map(|k| k.walks().iter().map(|w| k.entry_point(*w)))
                    .collect();
                for name in &entry_points {
                    assert!(
                        module.entry_points.iter().any(|e| &e.name == name),
                        "{what} lacks entry point {name}"
                    );
                }
                for entry in &module.entry_points {
                    assert!(entry_points.contains(&entry.name), "{what}: no kernel runs {}", entry.name);
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

/// No kernel names more storage buffers than `Kernel::storage_buffers` says: 8, WebGPU's
/// default max_storage_buffers_per_shader_stage, but for LayerNorm's split forward, which runs
/// only where the device allows its 9. A binding counts as soon as the entry point's code
/// refers to it, even under a flag that is off: pipelines derive their layout from the text.
#[test]
fn every_kernel_binds_the_storage_buffers_it_says() {
    for family in Family::ALL {
        let variant = Variant {
            subgroups: true,
            storage: Storage::default(),
            native_f16: false,
            layout: Layout::Vector,
            register_quads: 4,
            params_copied: false,
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
            let kernel = family
                .kernels()
                .iter()
                .find(|k| k.walks().iter().any(|w| k.entry_point(*w) == entry.name))
                .unwrap();
            assert!(
                storage.len() as u32 <= kernel.storage_buffers(),
                "{} binds {} storage buffers: {storage:?}",
                entry.name,
                storage.len()
            );
        }
    }
}

/// The WGSL follows the op tables: each tensor's offset field sits at its binding's slot of
/// `Params`, each optional tensor's `FLAG_` constant is `1 << binding`, and each module
/// declares each tensor its kernels use at the table's binding.
#[test]
fn wgsl_follows_the_op_tables() {
    let source = wgsl_source(Family::LayerNorm, false, Storage::default(), false);
    let module = naga::front::wgsl::parse_str(&source).unwrap();
    let (_, ty) = module.types.iter().find(|(_, t)| t.name.as_deref() == Some("Params")).unwrap();
    let naga::TypeInner::Struct { ref members, .. } = ty.inner else { panic!("Params is a struct") };
    let field = |i: usize| members[i].name.clone().unwrap_or_default();
    let constant = |name: &str| {
        let (_, c) = module.constants.iter().find(|(_, c)| c.name.as_deref() == Some(name))?;
        match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => Some(v),
            _ => None,
        }
    };
    for (kernel, table) in wgpu_norm::table::all() {
        for spec in table {
            let what = format!("{kernel}: {}", spec.name);
            assert_eq!(
                field(4 + spec.binding as usize),
                format!("{}_off", spec.name),
                "{what}: Params offset slot"
            );
            if spec.optional && spec.name != "workspace" {
                let flag = format!("FLAG_{}", spec.name.to_uppercase());
                assert_eq!(constant(&flag), Some(spec.flag()), "{what}: {flag}");
            }
        }
        let rows = Family::ALL.into_iter().find(|f| f.kernels().iter().any(|k| k.name() == kernel)).unwrap();
        for (family, in_pass) in [(rows, Pass::Rows), (Family::ReduceColumns, Pass::Columns)] {
            let source = wgsl_source(family, false, Storage::default(), false);
            let module = naga::front::wgsl::parse_str(&source).unwrap();
            for spec in table.iter().filter(|s| s.pass == in_pass || s.pass == Pass::Both) {
                let declared = module
                    .global_variables
                    .iter()
                    .find(|(_, g)| g.name.as_deref() == Some(spec.name))
                    .and_then(|(_, g)| g.binding.as_ref().map(|b| b.binding));
                let what = format!("{kernel}: {} in {}", spec.name, family.file_name());
                assert_eq!(declared, Some(spec.binding), "{what}: declared at its binding");
            }
        }
    }
}

/// Every `//! include` names a file under `shaders/` or one of the generated parts, and every
/// file is in the crate's list (a new file must be added there to be found).
#[test]
fn every_include_resolves() {
    let listed: Vec<&str> = shader::file_names().collect();
    for entry in std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        assert!(listed.contains(&name.as_str()), "shaders/{name} is not in shader.rs's FILES");
    }
    for file in shader::file_names() {
        for name in shader::includes(shader::file_text(file).unwrap()) {
            assert!(
                shader::file_text(name).is_some() || shader::GENERATED.contains(&name),
                "{file} includes {name}, which is neither a file nor generated"
            );
        }
    }
}

/// The load/store templates and the conversions are modules of their own: each validates
/// with only the files it includes.
#[test]
fn templates_are_valid_modules_on_their_own() {
    for file in shader::file_names().filter(|f| f.starts_with("io_") || f.starts_with("cvt_")) {
        let mut source = String::new();
        for name in shader::includes(shader::file_text(file).unwrap()) {
            let text =
                shader::file_text(name).unwrap_or_else(|| panic!("{file} includes {name}, not a file"));
            source.push_str(text);
        }
        source.push_str(shader::file_text(file).unwrap());
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{file}:\n{}", e.emit_to_string(&source)));
        // naga asks this of pack2x16float and unpack2x16float; the packed kernels need it anyway.
        Validator::new(ValidationFlags::all(), Capabilities::SHADER_FLOAT16_IN_FLOAT32)
            .validate(&module)
            .unwrap_or_else(|e| panic!("{file}:\n{}", e.emit_to_string(&source)));
    }
}
