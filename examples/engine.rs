//! A small engine embedding wgpu-norm: its own device, one big activation buffer holding an
//! f32 residual stream and the bf16 input of each matmul, and N pre-norm blocks — fused
//! residual add + RMSNorm from this crate (x, residual and h in f32, y in bf16), a matmul
//! kernel of the engine's own, then a per-head RMSNorm of its output (QK-norm: 4 heads per
//! token, one dispatch, in place) — all recorded into one command encoder and submitted
//! once per step, for several steps. The result is checked against the same model computed
//! on the CPU (f64, rounding where the GPU stores f32 or bf16); the example exits non-zero
//! if they disagree.
//!
//! `cargo run --release --example engine`

use wgpu::util::DeviceExt as _;
use wgpu_norm::half::bf16;
use wgpu_norm::{
    ContextOptions, DType, ExpectedCall, NormContext, RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape,
    Storage, Tensor,
};

const TOKENS: usize = 8;
const HIDDEN: usize = 256;
const HEADS: usize = 4;
const HEAD_DIM: usize = HIDDEN / HEADS;
const BLOCKS: usize = 4;
const STEPS: usize = 3;

/// The engine's own kernel: out = normed @ w, with normed in bf16 (two to a u32 word; WGSL
/// has no bf16 type) and w and out in f32; one thread writes two outputs. `normed` and
/// `out` are two ranges of the one activation buffer, so both are bound read_write: wgpu
/// refuses a buffer bound read-only and read-write in one dispatch.
const MATMUL: &str = r#"
@group(0) @binding(0) var<storage, read_write> normed: array<u32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<uniform> dims: vec4<u32>; // tokens, hidden, normed word offset, out offset

// A bf16 is the high half of an f32.
fn bf16_pair(word: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(word << 16u), bitcast<f32>(word & 0xffff0000u));
}

@compute @workgroup_size(64)
fn matmul(@builtin(global_invocation_id) gid: vec3<u32>) {
    let d = dims.y;
    let pair = gid.x;
    if (pair >= dims.x * d / 2u) {
        return;
    }
    let t = (pair * 2u) / d;
    let o = (pair * 2u) % d;
    var acc = vec2<f32>(0.0);
    for (var i = 0u; i < d; i = i + 2u) {
        let a = bf16_pair(normed[dims.z + (t * d + i) / 2u]);
        acc = acc + a.x * vec2<f32>(w[i * d + o], w[i * d + o + 1u]);
        acc = acc + a.y * vec2<f32>(w[(i + 1u) * d + o], w[(i + 1u) * d + o + 1u]);
    }
    out[dims.w + 2u * pair] = acc.x;
    out[dims.w + 2u * pair + 1u] = acc.y;
}
"#;

fn noise(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 23) as f32 - 1.0) * scale
        })
        .collect()
}

fn round_bf16(v: f64) -> f64 {
    bf16::from_f64(v).to_f64()
}

fn round_f32(v: f64) -> f64 {
    f64::from(v as f32)
}

/// The model on the CPU: f64 arithmetic, rounded to f32 or bf16 where the GPU stores them.
fn cpu_model(embed: &[f32], gammas: &[Vec<f32>], ws: &[Vec<f32>], qk_gamma: &[f32], eps: f32) -> Vec<f64> {
    let mut stream: Vec<f64> = embed.iter().map(|&v| f64::from(v)).collect();
    let mut block_out = vec![0.0; TOKENS * HIDDEN];
    let mut normed = vec![0.0; TOKENS * HIDDEN];
    let norm = |h: &[f64], g: &[f32], out: &mut [f64]| {
        for t in 0..TOKENS {
            let row = &h[t * HIDDEN..(t + 1) * HIDDEN];
            let ms = row.iter().map(|v| v * v).sum::<f64>() / HIDDEN as f64;
            let r = 1.0 / (ms + f64::from(eps)).sqrt();
            for j in 0..HIDDEN {
                out[t * HIDDEN + j] = round_bf16(row[j] * r * f64::from(g[j]));
            }
        }
    };
    for _ in 0..STEPS {
        for b in 0..BLOCKS {
            for (s, o) in stream.iter_mut().zip(&block_out) {
                *s = round_f32(*s + o);
            }
            norm(&stream, &gammas[b], &mut normed);
            for t in 0..TOKENS {
                for o in 0..HIDDEN {
                    let acc: f64 =
                        (0..HIDDEN).map(|i| normed[t * HIDDEN + i] * f64::from(ws[b][i * HIDDEN + o])).sum();
                    block_out[t * HIDDEN + o] = round_f32(acc);
                }
            }
            for head in block_out.chunks_mut(HEAD_DIM) {
                let r =
                    1.0 / (head.iter().map(|v| v * v).sum::<f64>() / HEAD_DIM as f64 + f64::from(eps)).sqrt();
                for (v, g) in head.iter_mut().zip(qk_gamma) {
                    *v = round_f32(*v * r * f64::from(*g));
                }
            }
        }
    }
    for (s, o) in stream.iter_mut().zip(&block_out) {
        *s = round_f32(*s + o);
    }
    norm(&stream, &gammas[BLOCKS], &mut normed);
    normed
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The engine's device: whatever adapter it likes, with the features it wants.
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default()))?;
    let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: Some("engine"),
        required_features: adapter.features() & wgpu::Features::SUBGROUP,
        ..Default::default()
    }))?;
    let norms = NormContext::from_device(device.clone(), queue.clone(), ContextOptions::default());
    println!("engine on {} ({:?})", adapter.get_info().name, adapter.get_info().backend);

    let n = TOKENS * HIDDEN;
    let embed = noise(n, 1, 1.0);
    let gammas: Vec<Vec<f32>> =
        (0..=BLOCKS).map(|b| noise(HIDDEN, 10 + b as u64, 0.2).iter().map(|v| 1.0 + v).collect()).collect();
    let ws: Vec<Vec<f32>> =
        (0..BLOCKS).map(|b| noise(HIDDEN * HIDDEN, 20 + b as u64, 1.0 / (HIDDEN as f32).sqrt())).collect();

    // One activation buffer: [stream | block_out | normed], each TOKENS x HIDDEN, the first
    // two f32 and the last bf16.
    let (stream_at, block_out_at, normed_at) = (0, (n * 4) as u64, (n * 8) as u64);
    let normed_bytes = (n * 2) as u64;
    let mut acts = vec![0u8; (normed_at + normed_bytes) as usize];
    acts[..n * 4].copy_from_slice(bytemuck::cast_slice(&embed));
    let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let acts_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("activations"),
        contents: &acts,
        usage,
    });
    // One weights buffer: every gamma, then every matrix (f32).
    let qk_gamma: Vec<f32> = noise(HEAD_DIM, 30, 0.2).iter().map(|v| 1.0 + v).collect();
    let mut weights: Vec<f32> = gammas.concat();
    let w_base = weights.len();
    weights.extend(ws.concat());
    let qk_at = (weights.len() * 4) as u64;
    weights.extend(&qk_gamma);
    let weights_buf = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("weights"),
        contents: bytemuck::cast_slice(&weights),
        usage,
    });

    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("engine.matmul"),
        source: wgpu::ShaderSource::Wgsl(MATMUL.into()),
    });
    let matmul = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("engine.matmul"),
        layout: None,
        module: &module,
        entry_point: Some("matmul"),
        compilation_options: Default::default(),
        cache: None,
    });
    let dims = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("engine.dims"),
        contents: bytemuck::cast_slice(&[
            TOKENS as u32,
            HIDDEN as u32,
            (normed_at / 4) as u32,
            (block_out_at / 4) as u32,
        ]),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let matmul_groups: Vec<wgpu::BindGroup> = (0..BLOCKS)
        .map(|b| {
            let w_bytes = (HIDDEN * HIDDEN * 4) as u64;
            device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: Some("engine.matmul"),
                layout: &matmul.get_bind_group_layout(0),
                entries: &[
                    wgpu::BindGroupEntry { binding: 0, resource: acts_buf.as_entire_binding() },
                    wgpu::BindGroupEntry {
                        binding: 1,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer: &weights_buf,
                            offset: (w_base * 4) as u64 + b as u64 * w_bytes,
                            size: wgpu::BufferSize::new(w_bytes),
                        }),
                    },
                    wgpu::BindGroupEntry { binding: 2, resource: acts_buf.as_entire_binding() },
                    wgpu::BindGroupEntry { binding: 3, resource: dims.as_entire_binding() },
                ],
            })
        })
        .collect();

    let shape = Shape::new(TOKENS, HIDDEN);
    // The residual stream stays f32; only the matmul's input is bf16.
    let cfg = RmsNormConfig {
        eps: 1e-5,
        storage: Storage { y: DType::BF16, ..Storage::default() },
        ..Default::default()
    };
    let stream = Tensor::new(&acts_buf, stream_at);
    let normed = Tensor::new(&acts_buf, normed_at);
    let block_out = Tensor::new(&acts_buf, block_out_at);
    let gamma = |b: usize| Tensor::new(&weights_buf, (b * HIDDEN * 4) as u64);
    // h = stream + block_out, written back over the stream; normed = RMSNorm(h). Bound once
    // per block at load; each step only records them. The op compiles its pipelines when
    // made, for the call it is told of.
    let call = ExpectedCall::new(shape).with(&["residual", "gamma", "h"]);
    let op = RmsNormForwardOp::with_calls(&norms, cfg, &[call])?;
    let add_norms = (0..=BLOCKS)
        .map(|b| {
            let args = RmsNormForward {
                x: stream,
                residual: Some(block_out),
                gamma: Some(gamma(b)),
                y: normed,
                h: Some(stream),
                rstd: None,
            };
            op.bind(shape, &args)
        })
        .collect::<Result<Vec<_>, _>>()?;
    // QK-norm of the matmul's output: every head of every token, in place, one dispatch.
    let qk_norm = RmsNormForwardOp::new(&norms, RmsNormConfig { eps: cfg.eps, ..Default::default() })?.bind(
        Shape::heads(TOKENS, HEADS, HEAD_DIM),
        &RmsNormForward {
            x: block_out,
            residual: None,
            gamma: Some(Tensor::new(&weights_buf, qk_at)),
            y: block_out,
            h: None,
            rstd: None,
        },
    )?;
    for _ in 0..STEPS {
        // One pass per step: each dispatch sees the writes of the ones before it.
        let mut enc = device.create_command_encoder(&Default::default());
        {
            let mut pass = enc.begin_compute_pass(&Default::default());
            for (add_norm, group) in add_norms.iter().zip(&matmul_groups) {
                add_norm.encode(&mut pass);
                pass.set_pipeline(&matmul);
                pass.set_bind_group(0, group, &[]);
                pass.dispatch_workgroups((n / 2).div_ceil(64) as u32, 1, 1);
                qk_norm.encode(&mut pass);
            }
        }
        queue.submit([enc.finish()]);
    }
    let mut enc = device.create_command_encoder(&Default::default());
    add_norms[BLOCKS].encode(&mut enc);
    let staging = device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: normed_bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    enc.copy_buffer_to_buffer(&acts_buf, normed_at, &staging, 0, normed_bytes);
    queue.submit([enc.finish()]);
    staging.slice(..).map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    device.poll(wgpu::PollType::wait_indefinitely())?;
    let gpu: Vec<bf16> = bytemuck::cast_slice(&staging.slice(..).get_mapped_range()?).to_vec();

    let cpu = cpu_model(&embed, &gammas, &ws, &qk_gamma, cfg.eps);
    let (mut num, mut den, mut worst) = (0.0, 0.0, 0.0_f64);
    for (g, c) in gpu.iter().zip(&cpu) {
        let d = g.to_f64() - c;
        num += d * d;
        den += c * c;
        worst = worst.max(d.abs());
    }
    let rel = (num / den).sqrt();
    println!(
        "{STEPS} steps x {BLOCKS} blocks (fused add + RMSNorm, matmul, QK-norm of {HEADS} heads), {TOKENS} tokens x {HIDDEN} (f32 stream, bf16 \
         matmul input): relative error {rel:.2e}, largest difference {worst:.2e} against the CPU model"
    );
    // bf16 rounds at every block; the two sides may round a tie differently and carry it.
    if rel > 1e-2 {
        return Err(format!("GPU and CPU models disagree: relative error {rel:e}").into());
    }
    Ok(())
}
