// The naive baseline: the simplest correct kernels a person writes in ten minutes, against
// which normbench measures the crate's (`vs_naive`). One subgroup per row, vec4 loads, no
// workgroup memory, no barrier: RMSNorm's forward reads the row twice (sum of squares, then
// scale), LayerNorm's three times (mean, variance about it, then normalize). The backwards
// read the forward's saved statistics and the row twice (its sums, then dx), and leave
// dgamma (and dbeta) to a column pass over row chunks and a pass summing the chunks, as
// PyTorch's LayerNorm backward does. f32 rows whose length is a multiple of 4.

struct Params {
    rows: u32,
    quads: u32,
    eps: f32,
    // Rows per chunk of the column pass.
    chunk_rows: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> gamma: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> beta: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<storage, read> dy: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> mean: array<f32>;
@group(0) @binding(7) var<storage, read> rstd: array<f32>;
@group(0) @binding(8) var<storage, read_write> dx: array<vec4<f32>>;
// Per chunk of rows, each quad's dgamma sum (chunk c at c * quads), then dbeta's.
@group(0) @binding(9) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> dgamma: array<vec4<f32>>;
@group(0) @binding(11) var<storage, read_write> dbeta: array<vec4<f32>>;

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
    rms_norm_rows(l, true);
}

// The forwards' floor: x read twice and y written, RMSNorm's forward without gamma. Every
// forward that reads a row twice does at least this (normbench's `floor` column).
@compute @workgroup_size(WORKGROUP_SIZE)
fn naive_forward_floor(l: Lane) {
    rms_norm_rows(l, false);
}

// `with_gamma` is a constant at each call: the floor reads no gamma at all.
fn rms_norm_rows(l: Lane, with_gamma: bool) {
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
            var v = x[base + i] * r;
            if (with_gamma) {
                v *= gamma[i];
            }
            y[base + i] = v;
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

@compute @workgroup_size(WORKGROUP_SIZE)
fn naive_rms_norm_backward(l: Lane) {
    let n = f32(4u * p.quads);
    for (var row = l.group.x * l.subgroups + l.subgroup; row < p.rows; row += l.groups.x * l.subgroups) {
        let base = row * p.quads;
        let r = rstd[row];
        var s = 0.0;
        for (var i = l.lane; i < p.quads; i += l.width) {
            s += dot(dy[base + i] * gamma[i], x[base + i]);
        }
        let c = subgroupAdd(s) * r * r / n;
        for (var i = l.lane; i < p.quads; i += l.width) {
            dx[base + i] = r * (dy[base + i] * gamma[i] - c * x[base + i]);
        }
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn naive_layer_norm_backward(l: Lane) {
    let n = f32(4u * p.quads);
    for (var row = l.group.x * l.subgroups + l.subgroup; row < p.rows; row += l.groups.x * l.subgroups) {
        let base = row * p.quads;
        let m = mean[row];
        let r = rstd[row];
        var s = 0.0;
        var t = 0.0;
        for (var i = l.lane; i < p.quads; i += l.width) {
            let u = dy[base + i] * gamma[i];
            s += dot(u, vec4<f32>(1.0));
            t += dot(u, (x[base + i] - m) * r);
        }
        let a = subgroupAdd(s) / n;
        let b = subgroupAdd(t) / n;
        for (var i = l.lane; i < p.quads; i += l.width) {
            dx[base + i] = r * (dy[base + i] * gamma[i] - a - (x[base + i] - m) * r * b);
        }
    }
}

// The column pass: one thread per quad of a chunk of rows (workgroup_id.y).
struct Column {
    @builtin(global_invocation_id) at: vec3<u32>,
}

fn chunks() -> u32 {
    return (p.rows + p.chunk_rows - 1u) / p.chunk_rows;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn naive_rms_norm_dgamma(c: Column) {
    let q = c.at.x;
    if (q >= p.quads) {
        return;
    }
    var g = vec4<f32>(0.0);
    for (var row = c.at.y * p.chunk_rows; row < min(p.rows, (c.at.y + 1u) * p.chunk_rows); row++) {
        g += dy[row * p.quads + q] * x[row * p.quads + q] * rstd[row];
    }
    partials[c.at.y * p.quads + q] = g;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn naive_layer_norm_dgamma(c: Column) {
    let q = c.at.x;
    if (q >= p.quads) {
        return;
    }
    var g = vec4<f32>(0.0);
    var b = vec4<f32>(0.0);
    for (var row = c.at.y * p.chunk_rows; row < min(p.rows, (c.at.y + 1u) * p.chunk_rows); row++) {
        let d = dy[row * p.quads + q];
        g += d * (x[row * p.quads + q] - mean[row]) * rstd[row];
        b += d;
    }
    partials[c.at.y * p.quads + q] = g;
    partials[(chunks() + c.at.y) * p.quads + q] = b;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn naive_rms_norm_dgamma_sum(c: Column) {
    if (c.at.x < p.quads) {
        dgamma[c.at.x] = chunk_sum(c.at.x, 0u);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn naive_layer_norm_dgamma_sum(c: Column) {
    if (c.at.x < p.quads) {
        dgamma[c.at.x] = chunk_sum(c.at.x, 0u);
        dbeta[c.at.x] = chunk_sum(c.at.x, 1u);
    }
}

// The column pass's chunks of quad q summed, of dgamma (which 0) or dbeta (1).
fn chunk_sum(q: u32, which: u32) -> vec4<f32> {
    var s = vec4<f32>(0.0);
    for (var k = 0u; k < chunks(); k++) {
        s += partials[(which * chunks() + k) * p.quads + q];
    }
    return s;
}
