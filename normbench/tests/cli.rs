//! normbench end to end, on the real adapter, with no assertion on any time: a tiny run
//! completes and writes JSON of the documented schema and an SVG; bad arguments exit
//! non-zero with a message.

use std::process::Command;

fn normbench() -> Command {
    Command::new(env!("CARGO_BIN_EXE_normbench"))
}

#[test]
fn tiny_run_writes_json_and_svg() {
    let dir = std::env::temp_dir().join(format!("normbench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (json, svg) = (dir.join("out.json"), dir.join("out.svg"));
    let out = normbench()
        .args(["--shapes", "4x64,3x100", "--iters", "2", "--warmup", "1", "--json"])
        .arg(&json)
        .arg("--plot")
        .arg(&svg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("adapter: "), "{stdout}");
    assert!(stdout.contains("% of stream roofline"), "{stdout}");
    assert!(stdout.contains("byte model"), "{stdout}");
    assert!(stdout.contains("RMSNorm time / LayerNorm time"), "{stdout}");

    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in ["name", "backend", "driver", "device_type"] {
        assert!(doc["adapter"][key].is_string(), "adapter.{key}");
    }
    assert!(["timestamp", "wall"].contains(&doc["timing"].as_str().unwrap()));
    for key in [
        "copy_gbps",
        "stream_gbps",
        "bind_us",
        "encode_us",
        "encode_pass_us",
        "encode_submit_us",
        "oneshot_encode_us",
    ] {
        assert!(doc[key].as_f64().unwrap() > 0.0, "{key}");
    }
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 2 * 2 * 2);
    for r in results {
        assert!(["rms_norm", "layer_norm"].contains(&r["op"].as_str().unwrap()));
        assert!(["forward", "backward"].contains(&r["direction"].as_str().unwrap()));
        assert_eq!(r["dtype"], "f32");
        assert!(r["rows"].as_u64().unwrap() > 0 && r["cols"].as_u64().unwrap() > 0);
        for key in ["gpu_ms", "gpu_gbps", "roofline_fraction", "cpu_ref_ms", "cpu_fast_ms", "max_rel_err"] {
            assert!(r[key].as_f64().unwrap() >= 0.0, "{key} in {r}");
        }
        let fraction = r["gpu_gbps"].as_f64().unwrap() / doc["stream_gbps"].as_f64().unwrap();
        assert!((r["roofline_fraction"].as_f64().unwrap() - fraction).abs() <= 1e-9 * fraction.max(1.0));
        assert!(r["max_rel_err"].as_f64().unwrap() < 1e-5, "{r}");
        // The naive baseline covers f32 rows a multiple of 4 long (backwards from saved
        // statistics, as here), where the adapter has subgroups; it was checked against the
        // reference, its outputs poisoned first, before it was timed.
        let covered = doc["adapter"]["subgroups"].as_bool().unwrap();
        assert_eq!(r["vs_naive"].as_f64().is_some_and(|v| v > 0.0), covered, "{r}");
        // The floor (the least a kernel reading a row twice does) is timed wherever it is.
        assert_eq!(r["floor_copy_fraction"].as_f64().is_some_and(|v| v > 0.0), covered, "{r}");
        // The kernel bare (no gamma, beta or gradients) is timed everywhere.
        assert!(r["bare_copy_fraction"].as_f64().is_some_and(|v| v > 0.0), "{r}");
    }
    for column in ["vs naive", "floor: % of copy", "bare: % of copy"] {
        assert!(stdout.contains(column), "{column} in {stdout}");
    }
    let svg_text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        svg_text.starts_with("<svg") && svg_text.contains(">forward<") && svg_text.contains(">rms_norm<")
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Each tensor in its own dtype (an f32 residual stream with bf16 y and dx), over the q
/// heads of a fused QKV projection.
#[test]
fn mixed_storage_and_heads_run() {
    let json = std::env::temp_dir().join(format!("normbench-mixed-{}.json", std::process::id()));
    let out = normbench()
        .args(["--shapes", "4x64", "--iters", "1", "--warmup", "0", "--fused-residual"])
        .args(["--dtype", "y=bf16,dx=bf16", "--heads", "4", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("storage: f32,y=bf16,dx=bf16"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for r in doc["results"].as_array().unwrap() {
        assert_eq!(r["dtype"], "f32,y=bf16,dx=bf16");
        assert_eq!(
            (r["heads"].as_u64(), r["rows"].as_u64(), r["cols"].as_u64()),
            (Some(4), Some(16), Some(64))
        );
        // One bf16 rounding of the outputs.
        assert!(r["max_rel_err"].as_f64().unwrap() < 4e-3, "{r}");
    }
    std::fs::remove_file(&json).ok();
}

/// Backwards that recompute their statistics, checked against the reference like the rest.
#[test]
fn backward_without_saved_statistics_runs() {
    let json = std::env::temp_dir().join(format!("normbench-unsaved-{}.json", std::process::id()));
    let out = normbench()
        .args(["--shapes", "4x64,3x4097", "--dirs", "backward", "--iters", "1", "--warmup", "0"])
        .args(["--no-saved-stats", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("recomputes the statistics"), "{stdout}");
    let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for r in doc["results"].as_array().unwrap() {
        assert_eq!((r["direction"].as_str(), r["saved_stats"].as_bool()), (Some("backward"), Some(false)));
        assert!(r["max_rel_err"].as_f64().unwrap() < 1e-5, "{r}");
    }
    std::fs::remove_file(&json).ok();
}

#[test]
fn bad_arguments_exit_non_zero_with_a_message() {
    for (args, needle) in [
        (vec!["--shapes", "0x5"], "zero rows"),
        (vec!["--shapes", "abc"], "ROWSxCOLS"),
        (vec!["--shapes", "4xq"], "not a whole number"),
        (vec!["--ops", "batch_norm"], "unknown op"),
        (vec!["--dirs", "sideways"], "unknown direction"),
        (vec!["--iters", "0"], "iters"),
        (vec!["--dtype", "f64"], "is not a dtype"),
        (vec!["--dtype", "f32,z=f16"], "no tensor is named"),
    ] {
        let out = normbench().args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// A shape over the adapter's limits is refused before anything runs.
#[test]
fn shape_over_the_adapter_limits_is_an_error() {
    let out = normbench().args(["--shapes", "100000x100000"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("normbench: error:"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let out = normbench().args(["--shapes", "65535x65535"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("limit"), "{stderr}");
}

/// 16-bit storage and the fused residual add run end to end and report their dtype.
#[test]
fn bf16_and_f16_with_fused_residual() {
    let dir = std::env::temp_dir().join(format!("normbench-dtype-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for dtype in ["bf16", "f16"] {
        let json = dir.join(format!("{dtype}.json"));
        let out = normbench()
            .args([
                "--shapes",
                "3x7,4x130",
                "--iters",
                "1",
                "--warmup",
                "0",
                "--dtype",
                dtype,
                "--fused-residual",
            ])
            .arg("--json")
            .arg(&json)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains(&format!("storage: {dtype}")), "{stdout}");
        let doc: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
        for r in doc["results"].as_array().unwrap() {
            assert_eq!(r["dtype"], dtype);
            assert_eq!(r["fused_residual"], true);
            let bar = if dtype == "bf16" { 1e-2 } else { 1e-3 };
            assert!(r["max_rel_err"].as_f64().unwrap() < bar, "{r}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// `normbench geometry` on a real BERT's hidden states (the library's tests/data): the
/// distribution and the verdict; a file that is no `.npy` is an error, not a panic.
#[test]
fn geometry_of_a_real_berts_hidden_states() {
    let npy = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/data/minilm_layer5_output.x.f32.npy");
    let svg = std::env::temp_dir().join(format!("normbench-geometry-{}.svg", std::process::id()));
    // The same site twice: each is reported on its own, the histogram pools them.
    let out = normbench()
        .args(["geometry", "--input", npy, "--input", npy, "--plot", svg.to_str().unwrap()])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.matches("393 rows x 384").count(), 2, "{stdout}");
    assert_eq!(stdout.matches("worst rows: row ").count(), 2, "{stdout}");
    assert!(stdout.contains("median") && stdout.contains("p99") && stdout.contains("verdict:"), "{stdout}");
    let text = std::fs::read_to_string(&svg).unwrap();
    std::fs::remove_file(&svg).ok();
    assert!(text.starts_with("<svg") && text.contains("786 rows of 2 site(s)"), "{text}");
    let out = normbench()
        .args(["geometry", "--input", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("not a .npy file"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
