// The naive baseline: the simplest correct kernels a person writes in ten minutes, against
// which normbench measures the crate's (`vs_naive`). One subgroup per row, vec4 loads, no
// workgroup memory, no barrier: RMSNorm reads the row twice (sum of squares, then scale),
// LayerNorm three times (mean, variance about it, then normalize). f32 rows whose length is
// a multiple of 4.

struct Params {
    rows: u32,
    quads: u32,
    eps: f32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> beta: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

override WORKGROUP_SIZE: u32 = 128u;

struct Lane {
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(subgroup_id) subgroup: u32,
    @builtin(num_subgroups) subgroups: u32,
    @builtin(subgroup_invocation_id) lane: u32,
    @builtin(subgroup_size) width: u32,
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn naive_rms_norm_forward(l: Lane) {
    let n = f32(4u * p.quads);
    for (var row = l.group.x * l.subgroups + l.subgroup; row < p.rows; row += l.groups.x * l.subgroups) {
        let base = row * p.quads;
        var ss = 0.0;
        for (var i = l.lane; i < p.quads; i += l.width) {
            let v = x[base + i];
            ss += dot(v, v);
        }
        let r = inverseSqrt(subgroupAdd(ss) / n + p.eps);
        for (var i = l.lane; i < p.quads; i += l.width) {
            y[base + i] = x[base + i] * r * gamma[i];
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn naive_layer_norm_forward(l: Lane) {
    let n = f32(4u * p.quads);
    for (var row = l.group.x * l.subgroups + l.subgroup; row < p.rows; row += l.groups.x * l.subgroups) {
        let base = row * p.quads;
        var s = 0.0;
        for (var i = l.lane; i < p.quads; i += l.width) {
            s += dot(x[base + i], vec4<f32>(1.0));
        }
        let mean = subgroupAdd(s) / n;
        var ss = 0.0;
        for (var i = l.lane; i < p.quads; i += l.width) {
            let d = x[base + i] - mean;
            ss += dot(d, d);
        }
        let r = inverseSqrt(subgroupAdd(ss) / n + p.eps);
        for (var i = l.lane; i < p.quads; i += l.width) {
            y[base + i] = (x[base + i] - mean) * r * gamma[i] + beta[i];
        }
    }
}
