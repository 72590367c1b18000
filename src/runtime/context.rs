//! The context: a device and queue (the caller's or our own), what the adapter can do, the
//! launch rules in force and the cache of compiled pipelines. No global state: everything a
//! kernel needs hangs off a `NormContext`, and several may share one device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{NormError, Result};
use crate::runtime::pipelines::Pipelines;
use crate::shader::{Kernel, MAX_WORKGROUP};
use crate::tuning::{LaunchChoice, LaunchKey, RowLaunch, Tuning, prev_power_of_two};

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
    /// Compile the kernels with wgpu's bounds checks on every array index (and on buffer
    /// accesses where the driver has no robust access of its own). Off by default: the
    /// kernels index only inside the ranges binding has checked, and on lavapipe the checks
    /// on the register tile's indices made rows of 768 run at 0.6 of a copy instead of 0.9
    /// (BENCHMARKS.md, "Kernels without wgpu's index checks"). Turn on to rule the kernels
    /// out when chasing memory corruption. The browser checks every access regardless.
    pub checked_shaders: bool,
}

/// Kernels bound to one `wgpu::Device`. Cloning is cheap and shares the pipelines; `Send +
/// Sync`: threads may bind and encode at once.
///
/// ```no_run
/// # #[cfg(not(target_arch = "wasm32"))] {
/// let ctx = wgpu_norm::NormContext::new()?;
/// println!("{}", ctx.adapter_info().name);
/// # }
/// # Ok::<(), wgpu_norm::NormError>(())
/// ```
#[derive(Clone)]
pub struct NormContext {
    shared: Arc<Shared>,
}

struct Shared {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    limits: wgpu::Limits,
    subgroups: bool,
    native_f16: bool,
    tuning: Tuning,
    /// Bound where a kernel's optional tensor is absent; never written (its flag is off).
    /// Each binding number has a range of its own ([`NormContext::placeholder`]).
    placeholder: wgpu::Buffer,
    pipelines: Pipelines,
    /// Launches chosen by autotuning; shapes outside them get the tuning's rules.
    launches: Mutex<HashMap<LaunchKey, LaunchChoice>>,
    /// Set by the device-lost callback of a device this context made: (reason, message).
    lost: Arc<Mutex<Option<(String, String)>>>,
    #[cfg_attr(target_arch = "wasm32", expect(dead_code, reason = "read by the autotuner, native only"))]
    options: ContextOptions,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The map stays consistent even if a holder panicked: entries are inserted whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl NormContext {
    /// Creates a device of its own on the best adapter (see [`AdapterChoice`]). Blocks; not
    /// on wasm32, where [`NormContext::with_options_async`] is the way.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        Self::with_options(ContextOptions::default())
    }

    /// Like [`NormContext::new`], with options. Blocks.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_options(options: ContextOptions) -> Result<Self> {
        pollster::block_on(Self::with_options_async(options))
    }

    /// Creates a device of its own, asynchronously (native and browser).
    ///
    /// Natively, the contexts made this way share one `wgpu::Instance` per process: wgpu
    /// then knows every buffer they make, and a buffer of one context's device bound on
    /// another's is its validation error ([`NormError::Wgpu`]), where separate instances
    /// would resolve it to an unrelated buffer of the same id.
    pub async fn with_options_async(options: ContextOptions) -> Result<Self> {
        let instance = instance();
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
        let ctx = Self::from_device(device, queue, options);
        // The device is ours, so is its one lost callback.
        let lost = ctx.shared.lost.clone();
        ctx.device().set_device_lost_callback(move |reason, message| {
            *lock(&lost) = Some((format!("{reason:?}"), message));
        });
        Ok(ctx)
    }

    /// Wraps a device the caller owns. Kernels are recorded into the caller's encoders on
    /// the caller's buffers; `options.adapter` and `options.limits` are not used. Nothing
    /// is compiled here.
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue, options: ContextOptions) -> Self {
        let pipelines = Pipelines::new(options.checked_shaders);
        Self::build(device, queue, options, pipelines, Arc::default())
    }

    /// A context on this one's device and queue with other `options` (reduction, launch
    /// rules, f16 path), sharing its compiled pipelines: a pipeline both need is compiled
    /// once. Pipelines are shared only where both keep the same `checked_shaders`.
    /// `options.adapter` and `options.limits` are not used; nothing is compiled here.
    ///
    /// ```no_run
    /// # #[cfg(not(target_arch = "wasm32"))] {
    /// use wgpu_norm::{ContextOptions, NormContext, Reduction};
    /// let ctx = NormContext::new()?;
    /// // The portable reduction next to the fast one, for a cross-check.
    /// let portable = ctx.sibling(ContextOptions { reduction: Reduction::Workgroup, ..Default::default() });
    /// assert!(!portable.uses_subgroups());
    /// # }
    /// # Ok::<(), wgpu_norm::NormError>(())
    /// ```
    pub fn sibling(&self, options: ContextOptions) -> Self {
        let pipelines = self.shared.pipelines.sibling(options.checked_shaders);
        let (device, queue) = (self.shared.device.clone(), self.shared.queue.clone());
        Self::build(device, queue, options, pipelines, self.shared.lost.clone())
    }

    /// `lost` is where the device's lost callback reports (the context that made the
    /// device installs one).
    fn build(
        device: wgpu::Device,
        queue: wgpu::Queue,
        options: ContextOptions,
        pipelines: Pipelines,
        lost: Arc<Mutex<Option<(String, String)>>>,
    ) -> Self {
        let info = device.adapter_info();
        let limits = device.limits();
        let subgroups =
            options.reduction == Reduction::Auto && device.features().contains(wgpu::Features::SUBGROUP);
        let native_f16 =
            options.f16 == F16Path::Auto && device.features().contains(wgpu::Features::SHADER_F16);
        let mut tuning = options.tuning.unwrap_or_else(|| Tuning::for_device(&info, &limits));
        tuning.workgroup_size = prev_power_of_two(tuning.workgroup_size.clamp(1, MAX_WORKGROUP));
        tuning.forward_elements_per_thread = tuning.forward_elements_per_thread.max(1);
        tuning.backward_elements_per_thread = tuning.backward_elements_per_thread.max(1);
        tuning.register_quads = tuning.register_quads.clamp(1, 256);
        tuning.max_loop_trips = tuning.max_loop_trips.max(1);
        tuning.max_row_threads = prev_power_of_two(tuning.max_row_threads.clamp(1, tuning.workgroup_size));
        for cap in [&mut tuning.max_forward_tile_row_threads, &mut tuning.max_backward_tile_row_threads] {
            *cap = prev_power_of_two((*cap).clamp(1, tuning.workgroup_size));
        }
        tuning.max_forward_groups =
            tuning.max_forward_groups.clamp(1, limits.max_compute_workgroups_per_dimension.max(1));
        tuning.backward_groups =
            tuning.backward_groups.clamp(1, limits.max_compute_workgroups_per_dimension.max(1));
        tuning.max_partials = tuning.max_partials.max(1);
        let placeholder = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgpu_norm.placeholder"),
            size: 16 * placeholder_stride(&limits),
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let shared = Shared {
            device,
            queue,
            info,
            limits,
            subgroups,
            native_f16,
            tuning,
            placeholder,
            pipelines,
            launches: Mutex::new(HashMap::new()),
            lost,
            options: ContextOptions { tuning: Some(tuning), ..options },
        };
        #[cfg_attr(
            target_arch = "wasm32",
            expect(
                clippy::arc_with_non_send_sync,
                reason = "wgpu's WebGPU objects are not Send on wasm32, which has one thread"
            )
        )]
        let shared = Arc::new(shared);
        NormContext { shared }
    }

    /// The device kernels run on.
    pub fn device(&self) -> &wgpu::Device {
        &self.shared.device
    }

    /// The queue the convenience calls submit to.
    pub fn queue(&self) -> &wgpu::Queue {
        &self.shared.queue
    }

    /// The adapter behind the device.
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.shared.info
    }

    /// The device's limits.
    pub fn limits(&self) -> &wgpu::Limits {
        &self.shared.limits
    }

    /// Whether rows are reduced with subgroup operations.
    pub fn uses_subgroups(&self) -> bool {
        self.shared.subgroups
    }

    /// Whether f16 tensors are accessed as `array<f16>` (else packed in u32 words).
    pub fn uses_native_f16(&self) -> bool {
        self.shared.native_f16
    }

    /// Whether streamed kernels may read the parameters from a private copy
    /// ([`Variant::params_copied`](crate::shader::Variant::params_copied)): where naga
    /// translates the WGSL, not in the browser, whose compiler rejects barriers under loop
    /// bounds read from a private variable.
    pub fn copies_params(&self) -> bool {
        self.shared.info.backend != wgpu::Backend::BrowserWebGpu
    }

    /// The launch knobs in force.
    pub fn tuning(&self) -> &Tuning {
        &self.shared.tuning
    }

    /// Compute pipelines this context has compiled so far: each is compiled once, when an
    /// op is first bound to a launch that needs it, and never while encoding.
    pub fn pipelines_compiled(&self) -> u64 {
        self.shared.pipelines.compiled()
    }

    /// The options this context was made with, its tuning filled in.
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn options(&self) -> &ContextOptions {
        &self.shared.options
    }

    pub(crate) fn pipelines(&self) -> &Pipelines {
        &self.shared.pipelines
    }

    pub(crate) fn launch_choice(&self, key: &LaunchKey) -> Option<LaunchChoice> {
        lock(&self.shared.launches).get(key).copied()
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn set_launch_choice(&self, key: LaunchKey, choice: LaunchChoice) {
        lock(&self.shared.launches).insert(key, choice);
        self.pipelines().uncover_rows();
    }

    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn launch_choices(&self) -> Vec<(LaunchKey, LaunchChoice)> {
        let mut v: Vec<_> = lock(&self.shared.launches).iter().map(|(k, c)| (*k, *c)).collect();
        v.sort_by_key(|(k, _)| *k);
        v
    }

    /// The placeholder range for an absent tensor at `binding`: 16 bytes of its own, since
    /// WebGPU forbids two writable bindings of one dispatch to overlap.
    pub(crate) fn placeholder(&self, binding: u32) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.shared.placeholder,
            offset: u64::from(binding) * placeholder_stride(&self.shared.limits),
            size: wgpu::BufferSize::new(16),
        })
    }

    /// `DeviceLost` if the device this context made was lost, else `e`: after wgpu reports
    /// an error. wgpu runs the lost callback when it next maintains the device, so it is
    /// given a non-blocking chance to first (a no-op in a browser, which runs it itself).
    pub(crate) fn lost_or(&self, e: NormError) -> NormError {
        let _ = self.device().poll(wgpu::PollType::Poll);
        self.check_device().err().unwrap_or(e)
    }

    /// `DeviceLost` once the device this context made is lost.
    pub(crate) fn check_device(&self) -> Result<()> {
        match &*lock(&self.shared.lost) {
            Some((reason, message)) => {
                Err(NormError::DeviceLost { reason: reason.clone(), message: message.clone() })
            }
            None => Ok(()),
        }
    }

    /// Rows longer than the workgroup can walk within max_loop_trips are refused.
    pub(crate) fn check_cols(&self, cols: u32) -> Result<()> {
        let t = self.tuning();
        let max = 4 * u64::from(t.workgroup_size) * u64::from(t.max_loop_trips);
        if u64::from(cols) > max {
            return Err(NormError::RowTooLong { cols: cols as usize, max, trips: t.max_loop_trips });
        }
        Ok(())
    }

    /// How `kernel` is launched for `rows x cols` on this context: autotuning's choice for
    /// the shape's bucket where there is one, else the tuning's rules; rows split only where
    /// `splits` (the op's config allows it) and the device can bind the split form.
    pub(crate) fn row_launch(&self, kernel: Kernel, rows: u32, cols: u32, splits: bool) -> RowLaunch {
        let choice = self.launch_choice(&LaunchKey::of(kernel, rows, cols));
        let info = &self.shared.info;
        let subgroups = self.uses_subgroups().then_some((info.subgroup_min_size, info.subgroup_max_size));
        let allowed = self.limits().max_storage_buffers_per_shader_stage;
        let split = splits && kernel.split().is_some_and(|k| k.storage_buffers() <= allowed);
        self.tuning().row_launch(kernel, rows, cols, choice, subgroups, split)
    }

    /// One launch per pipeline `kernel` can need for rows of `cols` and any row count from
    /// 1 to `rows`: what binding compiles, so that binding again with fewer rows never does.
    pub(crate) fn row_launches_up_to(
        &self,
        kernel: Kernel,
        rows: u32,
        cols: u32,
        splits: bool,
    ) -> Vec<RowLaunch> {
        // The launch is a step function of the row count. It steps where the workgroup
        // shrinks (just past (target - 1) * k rows, k = rows per workgroup, a power of two),
        // where autotuning's row bucket and a split row's segment count change (just past a
        // power of two), where rows stop being split (at target / 4), and where a row takes
        // more threads to fit the register tile (Tuning::wide_tile) and where it takes one
        // (Tuning::single_thread_from); the count below each too, since those steps need
        // not be powers of two.
        let target = u64::from(self.tuning().backward_groups.max(1));
        let mut counts = vec![1, u64::from(rows), target.div_ceil(4)];
        let wide = self.tuning().wide_tile(kernel, cols).map(|(_, from)| from);
        let single = self.tuning().single_thread_from(kernel, cols, self.uses_subgroups());
        for from in wide.into_iter().chain(single).map(u64::from) {
            counts.extend([from.saturating_sub(1), from]);
        }
        for p in (0..32).map(|i| 1_u64 << i) {
            counts.extend([p, p + 1, (target - 1) * p + 1]);
        }
        let mut launches: Vec<RowLaunch> = Vec::new();
        for r in counts.into_iter().filter(|&r| r >= 1 && r <= u64::from(rows)) {
            let l = self.row_launch(kernel, r as u32, cols, splits);
            // Launches of one row pipeline may still differ in their column pass (which
            // follows the partial rows): each is kept.
            if !launches.contains(&l) {
                launches.push(l);
            }
        }
        launches
    }
}

/// Bytes between the placeholder ranges of two bindings: the device's storage offset
/// alignment, at least 16.
fn placeholder_stride(limits: &wgpu::Limits) -> u64 {
    u64::from(limits.min_storage_buffer_offset_alignment.max(16))
}

fn new_instance() -> wgpu::Instance {
    wgpu::Instance::new(wgpu::InstanceDescriptor {
        // GL has no storage buffers in every driver and adds nothing lavapipe lacks;
        // BROWSER_WEBGPU is the browser's WebGPU on wasm32.
        backends: wgpu::Backends::PRIMARY | wgpu::Backends::BROWSER_WEBGPU,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn instance() -> wgpu::Instance {
    static INSTANCE: std::sync::OnceLock<wgpu::Instance> = std::sync::OnceLock::new();
    INSTANCE.get_or_init(new_instance).clone()
}

/// The browser has one WebGPU, whatever the instance.
#[cfg(target_arch = "wasm32")]
fn instance() -> wgpu::Instance {
    new_instance()
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
