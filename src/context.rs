//! The context: a device and queue (the caller's or our own), what the adapter can do, and
//! the caches of compiled pipelines and parameter blocks. No global state: everything a
//! kernel needs hangs off a `NormContext`, and several may share one device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::dtype::Storage;
use crate::error::{NormError, Result};
use crate::params::Params;
use crate::shader::{self, Family, Kernel, Layout, MAX_WORKGROUP, Variant};

/// Which adapter [`NormContext::new`] picks. The environment variable `WGPU_NORM_ADAPTER`
/// (`hardware`, `software` or `auto`) overrides [`AdapterChoice::Auto`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdapterChoice {
    /// A hardware GPU if there is one (discrete first), else a software adapter.
    #[default]
    Auto,
    /// Only a hardware GPU.
    Hardware,
    /// Only a software adapter such as Mesa's lavapipe.
    Software,
}

/// How kernels sum along a row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Reduction {
    /// Subgroup operations where the device has `Features::SUBGROUP`, else workgroup memory.
    #[default]
    Auto,
    /// Workgroup memory only, even where subgroups exist (the portable fallback).
    Workgroup,
}

/// How f16 tensors are read and written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum F16Path {
    /// `array<f16>` (`enable f16;`) where the device has `Features::SHADER_F16`, else packed.
    #[default]
    Auto,
    /// Pairs of halves in u32 words through `unpack2x16float` / `pack2x16float`, which every
    /// adapter has.
    Packed,
}

/// Launch-shape knobs, chosen per adapter by [`Tuning::for_device`] and open to override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Threads per workgroup: a power of two, at most 256 and at most the device allows.
    /// Launches of few rows use smaller workgroups (down to one subgroup) so that their
    /// row blocks still spread over `backward_groups` workgroups, the count that fills the
    /// device.
    pub workgroup_size: u32,
    /// Elements each thread should own when picking the threads per row: short rows get
    /// fewer threads and share a workgroup with other rows.
    pub elements_per_thread: u32,
    /// Most threads that share one row (a power of two, at most `workgroup_size`).
    pub max_row_threads: u32,
    /// Most iterations any one loop of a kernel may run per thread. Mesa's llvmpipe (the
    /// engine under lavapipe) stops every shader loop after 65,535 iterations, counted
    /// across the loops of an invocation, so a CPU adapter keeps each thread's trips over
    /// a row and over row blocks well under that by widening rows and grids.
    pub max_loop_trips: u32,
    /// Most quads (4 elements) of a row each thread holds in registers: rows up to
    /// `4 * threads per row * register_quads` are read from memory once, longer rows twice.
    /// A row that fits gets a tile of exactly the quads it needs, fixed in the shader text,
    /// so the compiler can unroll the tile's loops and keep it in registers.
    pub register_quads: u32,
    /// Move a quad with one 16-byte (f32) or 8-byte (16-bit) vector access wherever every
    /// tensor of a call allows it (element offsets, row stride and row length multiples of
    /// 4); four scalar accesses otherwise, or everywhere when false.
    pub vector_access: bool,
    /// Most workgroups a forward dispatch launches; more rows are looped over.
    pub max_forward_groups: u32,
    /// Workgroups of the persistent backward grid; each leaves one row of dgamma/dbeta
    /// partial sums per row slot.
    pub backward_groups: u32,
    /// Most f32 partial sums per gradient (dgamma or dbeta) in the backward workspace.
    pub max_partials: u64,
}

impl Tuning {
    /// Defaults for this adapter and these limits.
    ///
    /// 256 threads per workgroup is the size every vendor's occupancy guide lands near for
    /// a memory-bound kernel; 8 elements per thread keeps a row in registers without
    /// starving occupancy. On a GPU a long row gets the whole workgroup, so each row's bytes
    /// are in flight at once; the backward grid is 512 workgroups (about four per compute
    /// unit on the largest parts) and the forward grid one workgroup per row block.
    ///
    /// A CPU adapter (lavapipe) runs an invocation as one SIMD lane and a workgroup as a
    /// loop on one core, where every barrier is a switch between the workgroup's subgroups:
    /// there a row gets one subgroup (no barrier in any reduction), and both grids are a
    /// few workgroups per core that loop over the rows, so per-workgroup costs and the
    /// gamma loads are paid once per workgroup, not once per row. Neither rule would help a
    /// GPU: one subgroup per long row leaves too few loads in flight per row, and a few
    /// workgroups per core would idle most of a GPU's compute units.
    pub fn for_device(info: &wgpu::AdapterInfo, limits: &wgpu::Limits) -> Tuning {
        let wg_cap = limits
            .max_compute_invocations_per_workgroup
            .min(limits.max_compute_workgroup_size_x)
            .min(MAX_WORKGROUP);
        let workgroup_size = prev_power_of_two(wg_cap.max(1));
        let max_groups = limits.max_compute_workgroups_per_dimension.max(1);
        if info.device_type == wgpu::DeviceType::Cpu {
            let cores = std::thread::available_parallelism().map_or(4, |n| n.get() as u32);
            return Tuning {
                workgroup_size,
                elements_per_thread: 8,
                max_row_threads: info.subgroup_max_size.max(1),
                // Measured on lavapipe (BENCHMARKS.md): Mesa unrolls a forward tile of up to
                // 16 quads into registers and a backward tile of 8; bigger tiles stay memory
                // arrays, still faster than a second read of the row up to 24 quads (rows of
                // 768 elements with a subgroup of 8 per row), slower from 32.
                register_quads: 24,
                vector_access: true,
                max_loop_trips: 2048,
                max_forward_groups: 4 * cores,
                backward_groups: 4 * cores,
                max_partials: 1 << 22,
            };
        }
        Tuning {
            workgroup_size,
            elements_per_thread: 8,
            max_row_threads: workgroup_size,
            // 32 elements per thread: rows up to 8192 elements in registers with 256
            // threads per row, a tile small enough to leave room for occupancy.
            register_quads: shader::MAX_CACHE,
            // 16-byte loads by consecutive threads are whole, coalesced transactions on
            // every GPU and a quarter of the load instructions: the usual choice of fast
            // norm kernels (vectorized loads in Apex, QuACK, Liger).
            vector_access: true,
            max_loop_trips: u32::MAX,
            max_forward_groups: max_groups,
            backward_groups: 512,
            max_partials: 1 << 22,
        }
    }
}

fn prev_power_of_two(v: u32) -> u32 {
    1 << (31 - v.leading_zeros())
}

/// Options for creating a [`NormContext`].
#[derive(Clone, Debug, Default)]
pub struct ContextOptions {
    /// Which adapter to use when the context creates its own device.
    pub adapter: AdapterChoice,
    /// How rows are reduced.
    pub reduction: Reduction,
    /// Limits to request when the context creates its own device; `None` asks for all the
    /// adapter offers.
    pub limits: Option<wgpu::Limits>,
    /// Launch knobs; `None` uses [`Tuning::for_device`].
    pub tuning: Option<Tuning>,
    /// How f16 tensors are accessed.
    pub f16: F16Path,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct PipelineKey {
    kernel: Kernel,
    variant: Variant,
    workgroup_size: u32,
    row_threads: u32,
    subgroup_mode: u32,
    cached: bool,
    flags: u32,
}

/// How a row kernel is launched for one shape: derived from the shape and the tuning only,
/// so the same shape always gets the same launch (and bitwise the same gradients).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RowLaunch {
    pub workgroup_size: u32,
    pub row_threads: u32,
    pub rows_per_group: u32,
    pub groups: u32,
    pub subgroup_mode: u32,
    /// Quads per thread of the register tile holding the row; 0 when rows are streamed.
    pub register_quads: u32,
    /// Rows of partial sums the backward grid leaves per gradient: one per row slot that
    /// visits a row (slot s of workgroup w first visits row w * rows_per_group + s, so the
    /// slots past the row count visit none and leave nothing).
    pub partial_rows: u32,
}

/// A shader module's identity.
type ModuleKey = (Family, Variant);

/// A launch chosen by [`NormContext::autotune`] holds for a kernel and a shape bucket:
/// rows and columns rounded up to powers of two.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct LaunchKey {
    pub kernel: Kernel,
    pub rows_bucket: u32,
    pub cols_bucket: u32,
}

impl LaunchKey {
    pub fn of(kernel: Kernel, rows: u32, cols: u32) -> Self {
        let bucket = |v: u32| v.checked_next_power_of_two().unwrap_or(1 << 31);
        LaunchKey { kernel, rows_bucket: bucket(rows), cols_bucket: bucket(cols) }
    }
}

/// What autotuning chooses for a bucket: threads per row, and whether a row that fits a
/// register tile of up to [`MAX_TUNED_TILE`] quads per thread is held in one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LaunchChoice {
    pub row_threads: u32,
    pub cached: bool,
}

/// Largest register tile (quads per thread) a tuned launch may use: autotuning measures
/// whether a tile beyond [`Tuning::register_quads`] pays on the adapter at hand.
pub(crate) const MAX_TUNED_TILE: u32 = 64;

/// Most rows of backward partial sums per gradient.
const MAX_PARTIAL_ROWS: u32 = 8192;

/// Entries past which the cache of parameter blocks is emptied; bind groups keep the
/// buffers they use alive, so dropping entries is always safe.
const UNIFORM_CACHE_LIMIT: usize = 4096;

/// Kernels bound to one `wgpu::Device`. `Send + Sync`: threads may encode at once.
///
/// ```no_run
/// let ctx = wgpu_norm::NormContext::new()?;
/// println!("{}", ctx.adapter_info().name);
/// # Ok::<(), wgpu_norm::NormError>(())
/// ```
pub struct NormContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    subgroups: bool,
    native_f16: bool,
    tuning: Tuning,
    /// Bound where a kernel's optional tensor is absent; never written (its flag is off).
    placeholder: wgpu::Buffer,
    modules: Mutex<HashMap<ModuleKey, wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, Arc<wgpu::ComputePipeline>>>,
    uniforms: Mutex<HashMap<Params, wgpu::Buffer>>,
    /// Launches chosen by autotuning; shapes outside them get the tuning's rules.
    launches: Mutex<HashMap<LaunchKey, LaunchChoice>>,
    options: ContextOptions,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The caches stay consistent even if a holder panicked: entries are inserted whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NormContext {
    /// Creates a device of its own on the best adapter (see [`AdapterChoice`]). Blocks.
    pub fn new() -> Result<Self> {
        Self::with_options(ContextOptions::default())
    }

    /// Like [`NormContext::new`], with options. Blocks.
    pub fn with_options(options: ContextOptions) -> Result<Self> {
        pollster::block_on(Self::with_options_async(options))
    }

    /// Creates a device of its own, asynchronously.
    pub async fn with_options_async(options: ContextOptions) -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            // GL has no storage buffers in every driver and adds nothing lavapipe lacks.
            backends: wgpu::Backends::PRIMARY,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let adapter = choose_adapter(&instance, options.adapter).await?;
        let info = adapter.get_info();
        let wanted = wgpu::Features::SUBGROUP | wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SHADER_F16;
        let required_features = adapter.features() & wanted;
        let required_limits = options.limits.clone().unwrap_or_else(|| adapter.limits());
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu_norm"),
                required_features,
                required_limits,
                ..Default::default()
            })
            .await
            .map_err(|e| NormError::RequestDevice { adapter: info.name.clone(), message: e.to_string() })?;
        Ok(Self::from_device(device, queue, options))
    }

    /// Wraps a device the caller owns. Kernels are recorded into the caller's encoders on
    /// the caller's buffers; `options.adapter` and `options.limits` are not used.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, options: ContextOptions) -> Self {
        let info = device.adapter_info();
        let limits = device.limits();
        let subgroups =
            options.reduction == Reduction::Auto && device.features().contains(wgpu::Features::SUBGROUP);
        let native_f16 =
            options.f16 == F16Path::Auto && device.features().contains(wgpu::Features::SHADER_F16);
        let mut tuning = options.tuning.unwrap_or_else(|| Tuning::for_device(&info, &limits));
        tuning.workgroup_size = prev_power_of_two(tuning.workgroup_size.clamp(1, MAX_WORKGROUP));
        tuning.elements_per_thread = tuning.elements_per_thread.max(1);
        tuning.register_quads = tuning.register_quads.clamp(1, 256);
        tuning.max_loop_trips = tuning.max_loop_trips.max(1);
        tuning.max_row_threads = prev_power_of_two(tuning.max_row_threads.clamp(1, tuning.workgroup_size));
        tuning.max_forward_groups =
            tuning.max_forward_groups.clamp(1, limits.max_compute_workgroups_per_dimension.max(1));
        tuning.backward_groups =
            tuning.backward_groups.clamp(1, limits.max_compute_workgroups_per_dimension.max(1));
        tuning.max_partials = tuning.max_partials.max(1);
        let placeholder = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgpu_norm.placeholder"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        NormContext {
            device,
            queue,
            info,
            limits,
            subgroups,
            native_f16,
            tuning,
            placeholder,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            uniforms: Mutex::new(HashMap::new()),
            launches: Mutex::new(HashMap::new()),
            options: ContextOptions { tuning: Some(tuning), ..options },
        }
    }

    /// The device kernels run on.
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue the convenience calls submit to.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// The adapter behind the device.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The device's limits.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.limits
    }

    /// Whether rows are reduced with subgroup operations.
    pub fn uses_subgroups(&self) -> bool {
        self.subgroups
    }

    /// Whether f16 tensors are accessed as `array<f16>` (else packed in u32 words).
    pub fn uses_native_f16(&self) -> bool {
        self.native_f16
    }

    /// The launch knobs in force.
    pub fn tuning(&self) -> &Tuning {
        &self.tuning
    }

    /// The options this context was made with, its tuning filled in.
    pub(crate) fn options(&self) -> &ContextOptions {
        &self.options
    }

    pub(crate) fn launch_choice(&self, key: &LaunchKey) -> Option<LaunchChoice> {
        lock(&self.launches).get(key).copied()
    }

    pub(crate) fn set_launch_choice(&self, key: LaunchKey, choice: LaunchChoice) {
        lock(&self.launches).insert(key, choice);
    }

    pub(crate) fn launch_choices(&self) -> Vec<(LaunchKey, LaunchChoice)> {
        let mut v: Vec<_> = lock(&self.launches).iter().map(|(k, c)| (*k, *c)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    pub(crate) fn placeholder(&self) -> &wgpu::Buffer {
        &self.placeholder
    }

    /// Rows longer than the workgroup can walk within max_loop_trips are refused.
    pub(crate) fn check_cols(&self, cols: u32) -> Result<()> {
        let t = &self.tuning;
        let max = 4 * u64::from(t.workgroup_size) * u64::from(t.max_loop_trips);
        if u64::from(cols) > max {
            return Err(NormError::RowTooLong { cols: cols as usize, max, trips: t.max_loop_trips });
        }
        Ok(())
    }

    /// Threads per row, rows per workgroup and grid size for a row kernel.
    pub(crate) fn row_launch(&self, kernel: Kernel, rows: u32, cols: u32) -> RowLaunch {
        let t = &self.tuning;
        let backward = kernel.is_backward();
        let choice = self.launch_choice(&LaunchKey::of(kernel, rows, cols));
        // Threads walk rows in quads of elements.
        let quads = cols.div_ceil(4).max(1);
        let wanted = cols.div_ceil(t.elements_per_thread.max(4)).max(1);
        // Enough threads per row that no thread walks more than max_loop_trips quads.
        let for_trips = quads.div_ceil(t.max_loop_trips).next_power_of_two();
        let preferred = choice.map_or(wanted.next_power_of_two().min(t.max_row_threads), |c| c.row_threads);
        let row_threads = preferred.max(for_trips).min(t.workgroup_size);
        let per_thread = quads.div_ceil(row_threads);
        let tile = match choice {
            Some(c) if c.cached => MAX_TUNED_TILE,
            Some(_) => 0,
            None => t.register_quads,
        };
        let register_quads = if per_thread <= tile { per_thread } else { 0 };
        // Few rows: smaller workgroups (down to one subgroup) until the row blocks reach the
        // workgroups that fill the device (the persistent backward grid's size), so 32 rows
        // of 8 threads each are not one workgroup on one core of a CPU adapter, or on one
        // compute unit of a GPU. More rows keep full workgroups: occupancy on a GPU is
        // capped per workgroup as well as per thread.
        let target = t.backward_groups;
        let smallest = row_threads.max(self.info.subgroup_max_size);
        let mut workgroup_size = t.workgroup_size;
        while workgroup_size > smallest && rows.div_ceil(workgroup_size / row_threads) < target {
            workgroup_size /= 2;
        }
        let rows_per_group = workgroup_size / row_threads;
        let blocks = rows.div_ceil(rows_per_group);
        // Enough workgroups that none loops over more than max_loop_trips row blocks.
        let min_groups = blocks.div_ceil(t.max_loop_trips);
        let groups = if backward {
            let by_workspace = (t.max_partials / (rows_per_group as u64 * cols as u64)).max(1);
            // reduce_columns walks every partial row: keep them within the loop bound and
            // few enough that the column pass stays a small fraction of the work.
            let by_column_pass = (t.max_loop_trips.min(MAX_PARTIAL_ROWS) / rows_per_group).max(1);
            blocks
                .min(t.backward_groups)
                .min(by_workspace.min(u32::MAX as u64) as u32)
                .min(by_column_pass)
                .max(min_groups.min(by_column_pass))
        } else {
            blocks.min(t.max_forward_groups).max(min_groups)
        };
        RowLaunch {
            workgroup_size,
            row_threads,
            rows_per_group,
            groups: groups.max(1),
            subgroup_mode: self.subgroup_mode(row_threads),
            register_quads,
            partial_rows: (groups.max(1) * rows_per_group).min(rows.max(1)),
        }
    }

    fn subgroup_mode(&self, row_threads: u32) -> u32 {
        if !self.subgroups {
            return 0;
        }
        let (min, max) = (self.info.subgroup_min_size, self.info.subgroup_max_size);
        if row_threads <= min {
            1
        } else if row_threads.is_multiple_of(max) && row_threads <= self.tuning.workgroup_size {
            2
        } else {
            0
        }
    }

    /// The pipeline for `kernel` launched as `launch`, compiled on first use.
    pub(crate) fn pipeline(
        &self,
        kernel: Kernel,
        storage: Storage,
        launch: Option<&RowLaunch>,
        layout: Layout,
        flags: u32,
    ) -> Result<Arc<wgpu::ComputePipeline>> {
        let subgroups = self.subgroups && kernel.family().reduces_rows();
        let tile = launch.map_or(0, |l| l.register_quads);
        let variant = Variant {
            subgroups,
            storage,
            native_f16: self.native_f16,
            layout,
            // Streamed launches share one module, whatever tile they would have had.
            register_quads: tile.max(1),
        };
        let key = PipelineKey {
            kernel,
            variant,
            workgroup_size: launch.map_or(self.tuning.workgroup_size, |l| l.workgroup_size),
            row_threads: launch.map_or(1, |l| l.row_threads),
            subgroup_mode: launch.map_or(0, |l| l.subgroup_mode),
            cached: tile > 0,
            flags,
        };
        let mut pipelines = lock(&self.pipelines);
        if let Some(p) = pipelines.get(&key) {
            return Ok(p.clone());
        }
        let module = self.module(kernel.family(), variant)?;
        let mut constants = vec![
            ("WORKGROUP_SIZE", key.workgroup_size as f64),
            ("ROW_THREADS", key.row_threads as f64),
            ("SUBGROUP_MODE", key.subgroup_mode as f64),
            ("FLAGS", key.flags as f64),
        ];
        if kernel.family() != Family::ReduceColumns {
            constants.push(("CACHED", if key.cached { 1.0 } else { 0.0 }));
        }
        let label = format!("wgpu_norm.{}", kernel.name());
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(&label),
            layout: None,
            module: &module,
            entry_point: Some(kernel.name()),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                // Every workgroup variable is written before it is read.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(NormError::Wgpu { during: "compute pipeline creation", message: e.to_string() });
        }
        let pipeline = Arc::new(pipeline);
        pipelines.insert(key, pipeline.clone());
        Ok(pipeline)
    }

    fn module(&self, family: Family, variant: Variant) -> Result<wgpu::ShaderModule> {
        let key = (family, variant);
        let mut modules = lock(&self.modules);
        if let Some(m) = modules.get(&key) {
            return Ok(m.clone());
        }
        let source = shader::wgsl_variant(family, &variant);
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(family.file_name()),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
        if let Some(e) = pollster::block_on(scope.pop()) {
            return Err(NormError::Wgpu { during: "shader module creation", message: e.to_string() });
        }
        modules.insert(key, module.clone());
        Ok(module)
    }

    /// A uniform buffer holding `params`. Parameter blocks never change after creation, so
    /// one buffer serves every call with the same shape and offsets, in any encoder.
    pub(crate) fn uniform(&self, params: &Params) -> wgpu::Buffer {
        let mut uniforms = lock(&self.uniforms);
        if let Some(b) = uniforms.get(params) {
            return b.clone();
        }
        if uniforms.len() >= UNIFORM_CACHE_LIMIT {
            uniforms.clear();
        }
        use wgpu::util::DeviceExt as _;
        let buffer = self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("wgpu_norm.params"),
            contents: bytemuck::bytes_of(params),
            usage: wgpu::BufferUsages::UNIFORM,
        });
        uniforms.insert(*params, buffer.clone());
        buffer
    }
}

async fn choose_adapter(instance: &wgpu::Instance, choice: AdapterChoice) -> Result<wgpu::Adapter> {
    let choice = match (choice, std::env::var("WGPU_NORM_ADAPTER").ok().as_deref()) {
        (AdapterChoice::Auto, Some("hardware")) => AdapterChoice::Hardware,
        (AdapterChoice::Auto, Some("software")) => AdapterChoice::Software,
        (c, _) => c,
    };
    let adapters = instance.enumerate_adapters(wgpu::Backends::PRIMARY).await;
    let seen: Vec<String> = adapters
        .iter()
        .map(|a| {
            let i = a.get_info();
            format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
        })
        .collect();
    let rank = |t: wgpu::DeviceType| -> Option<u8> {
        use wgpu::DeviceType::*;
        let software = matches!(t, Cpu);
        match choice {
            AdapterChoice::Hardware if software => None,
            AdapterChoice::Software if !software => None,
            _ => Some(match t {
                DiscreteGpu => 0,
                IntegratedGpu => 1,
                VirtualGpu => 2,
                Other => 3,
                Cpu => 4,
            }),
        }
    };
    adapters
        .into_iter()
        .filter_map(|a| rank(a.get_info().device_type).map(|r| (r, a)))
        .min_by_key(|(r, _)| *r)
        .map(|(_, a)| a)
        .ok_or_else(|| NormError::NoAdapter {
            detail: format!(
                "wanted {choice:?}; adapters seen: {}",
                if seen.is_empty() { "none".to_string() } else { seen.join(", ") }
            ),
        })
}
