use std::time::Instant;
use wgpu_norm::{NormContext, RmsNormConfig, RmsNormForward, Shape};

fn main() {
    let ctx = NormContext::new().unwrap();
    let d = ctx.device();
    let q = ctx.queue();
    let mk = |n: u64| {
        d.create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size: n * 4,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    };
    let (x, y, g) = (mk(4096), mk(4096), mk(4096));
    let shape = Shape::new(1, 4096);
    let args = RmsNormForward {
        x: (&x).into(),
        residual: None,
        gamma: Some((&g).into()),
        y: (&y).into(),
        h: None,
        rstd: None,
    };
    let med = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for what in ["empty encoder", "empty pass", "rms fwd", "rms fwd x8 in one encoder"] {
        let (mut enc_t, mut sub_t) = (vec![], vec![]);
        for i in 0..300 {
            let t = Instant::now();
            let mut e = d.create_command_encoder(&Default::default());
            match what {
                "empty encoder" => {}
                "empty pass" => {
                    let _p = e.begin_compute_pass(&Default::default());
                }
                "rms fwd" => {
                    ctx.encode_rms_norm_forward(&mut e, shape, &RmsNormConfig::default(), &args).unwrap()
                }
                _ => {
                    for _ in 0..8 {
                        ctx.encode_rms_norm_forward(&mut e, shape, &RmsNormConfig::default(), &args).unwrap()
                    }
                }
            }
            let c = e.finish();
            let t1 = t.elapsed().as_secs_f64() * 1e6;
            q.submit([c]);
            let t2 = t.elapsed().as_secs_f64() * 1e6;
            enc_t.push(t1);
            sub_t.push(t2 - t1);
            if i % 32 == 31 {
                d.poll(wgpu::PollType::wait_indefinitely()).unwrap();
            }
        }
        println!("{what:28}: encode {:7.1} us, submit {:7.1} us", med(enc_t), med(sub_t));
    }
}
