//! The cache of shader modules and compute pipelines of one context. A pipeline is compiled
//! once per key, when an op is bound to a launch that needs it; encoding only reads bound
//! ops and never comes here.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::ops::params::flags;
use crate::ops::table;
use crate::runtime::verdict::Verdict;
use crate::shader::{self, Family, Kernel, Variant, Walk};

/// Everything that makes two pipelines differ: the module's text and the override constants.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PipelineKey {
    pub kernel: Kernel,
    pub variant: Variant,
    pub workgroup_size: u32,
    pub row_threads: u32,
    pub subgroup_mode: u32,
    /// Rows held in the register tile (the `CACHED` override), else streamed.
    pub cached: bool,
    /// The `TRIP_ROWS` override (`RowLaunch::trip_rows`).
    pub trip_rows: u32,
    /// The `FLAGS` override: which optional tensors the call has, and config options.
    pub flags: u32,
}

impl PipelineKey {
    /// The walk the key's pipeline runs (its entry point).
    fn walk(&self) -> Walk {
        let has = |flag: u32| self.flags & flag != 0;
        let tiny_eps = has(flags::TINY_EPS);
        // A slot goes back to a tile row of its own only where a row reduces inside one
        // subgroup (subgroup mode 1), with no barrier, and where the tile is short: a SIMD
        // compiler that runs a loop's body once even where no lane takes a trip (llvmpipe)
        // charges the walk left for later to every row, a large share of a short one; at 24
        // quads going back cost more than it saved (BENCHMARKS.md, "Tile rows out of range,
        // done last" and "Tile backward rows with a peak, done last"). LayerNorm's forward
        // scales each row first where eps is below TINY, and so none is out of range. Its
        // backward goes back to rows with a peak where the mean and rstd are saved, so that
        // the walks before the sums reduce nothing and the row gone back to reduces within
        // its subgroup alone.
        let tile = self.cached
            && self.subgroup_mode == 1
            && self.variant.register_quads <= 16
            && match self.kernel {
                Kernel::RmsNormForward => true,
                Kernel::LayerNormForward => !tiny_eps,
                Kernel::LayerNormBackward => has(table::MEAN_IN.flag()) && has(table::RSTD_IN.flag()),
                _ => false,
            };
        // LayerNorm's forward takes a streamed row with eps below TINY one at a time, scaled
        // first; RMSNorm's backward walks several together only with a saved rstd.
        let streamed = !self.cached
            && match self.kernel {
                Kernel::RmsNormForward | Kernel::LayerNormBackward => true,
                Kernel::LayerNormForward => !tiny_eps,
                Kernel::RmsNormBackward => has(table::RSTD_IN.flag()),
                _ => false,
            };
        if tile {
            Walk::Tile
        } else if streamed {
            Walk::Streamed
        } else {
            Walk::Rows
        }
    }
}

/// The modules and pipelines compiled on one device, shared by a context and its siblings
/// ([`NormContext::sibling`](crate::NormContext::sibling)): a key names everything that makes
/// two pipelines differ, so any of them may use a pipeline another compiled.
#[derive(Default)]
struct Compiled {
    /// Modules keep wgpu's bounds checks (`ContextOptions::checked_shaders`).
    checked: bool,
    modules: Mutex<HashMap<(Family, Variant), wgpu::ShaderModule>>,
    /// A slot per key, filled by the first thread that needs it while the others wait for
    /// that key alone: threads binding different kernels compile side by side.
    pipelines: Mutex<HashMap<PipelineKey, Arc<OnceLock<wgpu::ComputePipeline>>>>,
}

/// One context's view of the compiled pipelines: which launches its own rules have
/// enumerated, and how many pipelines it compiled itself.
pub(crate) struct Pipelines {
    shared: Arc<Compiled>,
    /// Per bound launch and row length: the most rows whose smaller-row launches are all
    /// compiled, so that binding again skips enumerating them.
    rows_covered: Mutex<HashMap<(PipelineKey, u32), u32>>,
    compiled: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The maps stay consistent even if a holder panicked: entries are inserted whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Pipelines {
    pub fn new(checked: bool) -> Self {
        Self::sharing(Arc::new(Compiled { checked, ..Default::default() }))
    }

    fn sharing(shared: Arc<Compiled>) -> Self {
        Pipelines { shared, rows_covered: Mutex::default(), compiled: AtomicU64::new(0) }
    }

    /// A sibling context's view: the same compiled pipelines, where its kernels keep the
    /// same checks; its own enumeration and count.
    pub fn sibling(&self, checked: bool) -> Self {
        if checked == self.shared.checked { Self::sharing(self.shared.clone()) } else { Self::new(checked) }
    }

    pub fn compiled(&self) -> u64 {
        self.compiled.load(Ordering::Relaxed)
    }

    /// The pipeline for `key`, compiled now if it is not cached; what wgpu says of a new
    /// module or pipeline is pushed onto `verdicts`.
    pub fn get(
        &self,
        device: &wgpu::Device,
        key: PipelineKey,
        verdicts: &mut Vec<Verdict>,
    ) -> wgpu::ComputePipeline {
        let slot = lock(&self.shared.pipelines).entry(key).or_default().clone();
        slot.get_or_init(|| self.compile(device, key, verdicts)).clone()
    }

    fn compile(
        &self,
        device: &wgpu::Device,
        key: PipelineKey,
        verdicts: &mut Vec<Verdict>,
    ) -> wgpu::ComputePipeline {
        let module = self.module(device, key.kernel.family(), key.variant, verdicts);
        let mut constants = vec![
            ("WORKGROUP_SIZE", f64::from(key.workgroup_size)),
            ("ROW_THREADS", f64::from(key.row_threads)),
            ("SUBGROUP_MODE", f64::from(key.subgroup_mode)),
            ("FLAGS", f64::from(key.flags)),
        ];
        if key.kernel.family() != Family::ReduceColumns {
            constants.push(("CACHED", if key.cached { 1.0 } else { 0.0 }));
            constants.push(("TRIP_ROWS", f64::from(key.trip_rows)));
        }
        let entry_point = key.kernel.entry_point(key.walk());
        let label = format!("wgpu_norm.{entry_point}");
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: None,
            module: &module,
            entry_point: Some(&entry_point),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                // Every workgroup variable is written before it is read.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        verdicts.push(Verdict::new("compute pipeline creation", scope).forgetting(key));
        self.compiled.fetch_add(1, Ordering::Relaxed);
        pipeline
    }

    /// Drops a pipeline wgpu rejected, so the next bind compiles it again.
    pub fn forget(&self, key: &PipelineKey) {
        lock(&self.shared.pipelines).remove(key);
        lock(&self.rows_covered).clear();
    }

    /// The most rows of `cols` for which every launch of fewer rows next to `key` is compiled.
    pub fn rows_covered(&self, key: PipelineKey, cols: u32) -> u32 {
        lock(&self.rows_covered).get(&(key, cols)).copied().unwrap_or(0)
    }

    /// Records that every launch of up to `rows` rows of `cols` next to `key` is compiled.
    pub fn cover_rows(&self, key: PipelineKey, cols: u32, rows: u32) {
        let mut covered = lock(&self.rows_covered);
        let entry = covered.entry((key, cols)).or_insert(0);
        *entry = (*entry).max(rows);
    }

    /// Forgets every coverage: launches changed (autotuning chose new ones).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn uncover_rows(&self) {
        lock(&self.rows_covered).clear();
    }

    fn module(
        &self,
        device: &wgpu::Device,
        family: Family,
        variant: Variant,
        verdicts: &mut Vec<Verdict>,
    ) -> wgpu::ShaderModule {
        let mut modules = lock(&self.shared.modules);
        if let Some(m) = modules.get(&(family, variant)) {
            return m.clone();
        }
        let source = shader::wgsl_variant(family, &variant);
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let desc = wgpu::ShaderModuleDescriptor {
            label: Some(family.file_name()),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        };
        let module = if self.shared.checked {
            device.create_shader_module(desc)
        } else {
            // SAFETY: wgpu's bounds checks are only dropped, its loop bounding and integer
            // division checks stay. Every array index in shaders/ is below its array's length
            // by construction (a tile index below MAX_CACHE, a lane or slot below the
            // workgroup size), and every buffer access is inside the binding that
            // `runtime::binding` checked against the bound shape; tests/determinism.rs
            // compares these kernels with checked ones bit for bit, and the sentinels
            // around every output view catch a stray store.
            unsafe {
                device.create_shader_module_trusted(
                    desc,
                    wgpu::ShaderRuntimeChecks {
                        bounds_checks: false,
                        ..wgpu::ShaderRuntimeChecks::checked()
                    },
                )
            }
        };
        verdicts.push(Verdict::new("shader module creation", scope));
        modules.insert((family, variant), module.clone());
        module
    }
}
