//! Prepared ops: an [`Op`] is made once from a context and a config, bound once to its
//! tensors and a shape ([`Op::bind`]), and the [`BoundOp`] then records itself with three
//! calls per dispatch: no allocation, no lock, no error scope, no blocking.

use std::marker::PhantomData;

use crate::dtype::{DType, Storage};
use crate::error::{NormError, Result};
use crate::ops::params::{Params, flags};
use crate::ops::table::{Extent, TensorSpec};
use crate::runtime::binding::{self, Checked, Footprint, Tensor};
use crate::runtime::context::NormContext;
use crate::runtime::pipelines::PipelineKey;
use crate::runtime::recorder::Recorder;
use crate::runtime::verdict::{self, Verdict};
use crate::shader::{Kernel, Layout, Variant};
use crate::shape::Shape;
use crate::tuning::RowLaunch;

/// What one kind of op is: its kernel, its tensor table and its tensors. Implemented by
/// the op kinds of this crate only.
pub trait OpKind: Send + Sync + 'static {
    /// Settings that do not change per call.
    type Config: OpConfig;
    /// The op's tensors, one field per entry of `TABLE`.
    type Tensors<'a>;
    /// The row kernel.
    const KERNEL: Kernel;
    /// Every tensor of the op.
    const TABLE: &'static [TensorSpec];
    /// The tensors in `TABLE`'s order.
    fn tensors<'a>(t: &Self::Tensors<'a>) -> Vec<Option<Tensor<'a>>>;
}

/// What an op's config says: its own checks, the tensors' dtypes and the parameter block.
/// Implemented by the configs of this crate only.
pub trait OpConfig: Copy + std::fmt::Debug + Send + Sync {
    /// The config's own checks.
    fn check(&self) -> Result<()>;
    /// The tensors' dtypes.
    fn storage(&self) -> Storage;
    /// Why the tensor `name` has no use under this config, if it has none: giving it is an
    /// error, not silently ignored.
    fn unused(&self, _name: &str) -> Option<&'static str> {
        None
    }
    /// The parameter block for rows of `cols` elements `stride` apart: shape, eps and
    /// option flags; binding fills in the tensor offsets and presence flags.
    #[doc(hidden)]
    fn params(&self, rows: u32, cols: u32, stride: u32) -> Params;
    /// Whether a forward of few long rows may run split ([`Tuning::split_chunk`]).
    ///
    /// [`Tuning::split_chunk`]: crate::Tuning::split_chunk
    #[doc(hidden)]
    fn splits(&self) -> bool {
        true
    }
}

/// Bindings of the column pass (`reduce_columns`): the workspace, dgamma and dbeta.
const COLUMN_BINDINGS: [u32; 3] = [WORKSPACE_BINDING, 9, 10];
/// The binding of the parameter block.
const PARAMS_BINDING: u32 = 15;
/// The binding of the workspace: the backward's partial sums, a split forward's segment sums.
const WORKSPACE_BINDING: u32 = 8;

/// A call an op will be bound to, named when the op is made ([`Op::with_calls`]) so that
/// the pipelines it needs are compiled then, not at its first bind.
#[derive(Clone, Copy, Debug)]
pub struct ExpectedCall<'a> {
    /// The most rows, and the row length and strides, the op will be bound with: binding it
    /// so, or with fewer rows, compiles nothing.
    pub shape: Shape,
    /// The optional tensors the call will give, by their names in the op's table
    /// ([`OpKind::TABLE`]); the required ones are implied, and the workspace goes with dgamma
    /// and dbeta. Every tensor is taken to start at an element offset that is a multiple of 4
    /// (16 bytes for f32), as buffers an engine allocates do: a call bound off that alignment
    /// runs a scalar-access pipeline, compiled at its bind.
    pub optional: &'a [&'a str],
}

impl ExpectedCall<'static> {
    /// A call of `shape` with no optional tensor.
    pub fn new(shape: Shape) -> Self {
        ExpectedCall { shape, optional: &[] }
    }
}

impl<'a> ExpectedCall<'a> {
    /// The same call, giving the optional tensors named.
    pub fn with(self, optional: &'a [&'a str]) -> ExpectedCall<'a> {
        ExpectedCall { optional, ..self }
    }
}

/// An op made from a context and a config: checked once, then bound to tensors as often
/// as needed. Cheap to make and to clone; pipelines are shared through the context.
///
/// ```
/// # #[cfg(not(target_arch = "wasm32"))] {
/// use wgpu_norm::{NormContext, RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape};
/// let ctx = NormContext::new()?;
/// let op = RmsNormForwardOp::new(&ctx, RmsNormConfig::default())?;
/// let buffer = |bytes| ctx.device().create_buffer(&wgpu::BufferDescriptor {
///     label: None, size: bytes, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false,
/// });
/// let (x, y) = (buffer(4 * 4096), buffer(4 * 4096));
/// // Bind once: every check, the pipeline, the parameter block and the bind group.
/// let bound = op.bind(Shape::new(1, 4096), &RmsNormForward::new(&x, &y))?;
/// // Encode every step: three calls into an open pass.
/// let mut encoder = ctx.device().create_command_encoder(&Default::default());
/// {
///     let mut pass = encoder.begin_compute_pass(&Default::default());
///     bound.encode(&mut pass);
/// }
/// ctx.queue().submit([encoder.finish()]);
/// # }
/// # Ok::<(), wgpu_norm::NormError>(())
/// ```
pub struct Op<K: OpKind> {
    ctx: NormContext,
    config: K::Config,
    kind: PhantomData<K>,
}

impl<K: OpKind> Clone for Op<K> {
    fn clone(&self) -> Self {
        Op { ctx: self.ctx.clone(), config: self.config, kind: PhantomData }
    }
}

/// The pipelines of one bound launch: its row kernel, a split launch's first pass (each
/// segment's sums) and the column pass.
struct Keys {
    rows: PipelineKey,
    sums: Option<PipelineKey>,
    /// The column pass's key and workgroups.
    columns: Option<(PipelineKey, u32)>,
}

/// One dispatch of a bound op.
struct Dispatch {
    /// How its pipeline moves quads (kept for tests).
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the unit tests"))]
    layout: Layout,
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    groups: u32,
}

/// An op bound to its tensors and a shape, ready to record. `Send + Sync`, and it keeps
/// its buffers alive.
pub struct BoundOp {
    label: &'static str,
    /// A split launch's first pass: each segment's sums.
    split_pass: Option<Dispatch>,
    rows_pass: Dispatch,
    columns_pass: Option<Dispatch>,
    /// The buffer of those sums (the bind groups hold it too).
    _partials: Option<wgpu::Buffer>,
    params: Params,
    uniform: wgpu::Buffer,
    launch: RowLaunch,
    bound_rows: u32,
}

impl<K: OpKind> Op<K> {
    /// Checks `config` and makes the op on `ctx`. Nothing is compiled until a launch is
    /// first bound (the pipelines depend on the row length, the layout and which optional
    /// tensors are given), or made with [`Op::with_calls`].
    pub fn new(ctx: &NormContext, config: K::Config) -> Result<Self> {
        config.check()?;
        Ok(Op { ctx: ctx.clone(), config, kind: PhantomData })
    }

    /// [`Op::new`], compiling now every pipeline that binding the op as `calls` say, or
    /// with fewer rows, needs: an engine that knows its shapes at load pays no compile at
    /// any bind. Every shape is not an option: one kernel has 32 launches per layout and
    /// set of optional tensors under the GPU rules and 168 on lavapipe, at 15-110 ms each
    /// there. On native every wgpu error is known when this returns; in a browser use
    /// [`Op::with_calls_async`].
    ///
    /// ```
    /// # #[cfg(not(target_arch = "wasm32"))] {
    /// use wgpu_norm::{ExpectedCall, NormContext, RmsNormConfig, RmsNormForward, RmsNormForwardOp, Shape};
    /// let ctx = NormContext::new()?;
    /// let prefill = ExpectedCall::new(Shape::new(512, 1024)).with(&["gamma", "rstd"]);
    /// let op = RmsNormForwardOp::with_calls(&ctx, RmsNormConfig::default(), &[prefill])?;
    /// let compiled = ctx.pipelines_compiled();
    /// let buffer = |bytes| ctx.device().create_buffer(&wgpu::BufferDescriptor {
    ///     label: None, size: bytes, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false,
    /// });
    /// let (x, y, gamma, rstd) = (buffer(4 << 19), buffer(4 << 19), buffer(4 << 10), buffer(4 << 9));
    /// let args = RmsNormForward { gamma: Some((&gamma).into()), rstd: Some((&rstd).into()), ..RmsNormForward::new(&x, &y) };
    /// op.bind(Shape::new(512, 1024), &args)?; // prefill
    /// op.bind(Shape::new(1, 1024), &args)?; // a decode step
    /// assert_eq!(ctx.pipelines_compiled(), compiled);
    /// # }
    /// # Ok::<(), wgpu_norm::NormError>(())
    /// ```
    pub fn with_calls(ctx: &NormContext, config: K::Config, calls: &[ExpectedCall<'_>]) -> Result<Self> {
        let op = Op::new(ctx, config)?;
        let mut verdicts = Vec::new();
        let compiled = op.compile_calls(calls, &mut verdicts);
        op.settle(compiled, verdict::judge_now(verdicts))?;
        Ok(op)
    }

    /// [`Op::with_calls`], waiting for wgpu's word on every pipeline it compiled (needed in
    /// a browser, where that word comes back asynchronously).
    pub async fn with_calls_async(
        ctx: &NormContext,
        config: K::Config,
        calls: &[ExpectedCall<'_>],
    ) -> Result<Self> {
        let op = Op::new(ctx, config)?;
        let mut verdicts = Vec::new();
        let compiled = op.compile_calls(calls, &mut verdicts);
        op.settle(compiled, verdict::judge_wait(verdicts).await)?;
        Ok(op)
    }

    /// The op's config.
    pub fn config(&self) -> &K::Config {
        &self.config
    }

    /// Binds the op to `tensors` laid out as `shape`: checks every tensor (see
    /// [`NormError`] for what is refused), compiles the pipelines this launch needs if the
    /// context has not yet, and those the same tensors need at any smaller row count (so
    /// that binding them again with fewer rows compiles nothing), and creates the parameter
    /// block and bind groups. Never blocks:
    /// on native wgpu every error is known here; in a browser use [`Op::bind_async`] to wait
    /// for wgpu's word on what was created.
    pub fn bind(&self, shape: Shape, tensors: &K::Tensors<'_>) -> Result<BoundOp> {
        self.bind_for(shape, tensors, Reach::FewerRows)
    }

    /// [`Op::bind`], waiting for wgpu's word on every object it created (needed in a
    /// browser, where that word comes back asynchronously).
    pub async fn bind_async(&self, shape: Shape, tensors: &K::Tensors<'_>) -> Result<BoundOp> {
        self.bind_async_for(shape, tensors, Reach::FewerRows).await
    }

    /// Binds and records in one call, for scripts and tests; an engine that runs the same
    /// op on the same tensors again binds once and keeps the [`BoundOp`]. Compiles only
    /// this call's pipelines: nothing is kept that could run fewer rows.
    pub fn encode(&self, into: &mut impl Recorder, shape: Shape, tensors: &K::Tensors<'_>) -> Result<()> {
        self.bind_for(shape, tensors, Reach::ThisCall)?.encode(into);
        Ok(())
    }

    /// [`Op::bind`] compiling what `reach` asks for.
    fn bind_for(&self, shape: Shape, tensors: &K::Tensors<'_>, reach: Reach) -> Result<BoundOp> {
        let mut verdicts = Vec::new();
        let bound = self.prepare(shape, tensors, reach, &mut verdicts);
        self.settle(bound, verdict::judge_now(verdicts))
    }

    /// [`Op::bind_async`] compiling what `reach` asks for: the host functions, which run
    /// their binding once, ask for this call only.
    pub(crate) async fn bind_async_for(
        &self,
        shape: Shape,
        tensors: &K::Tensors<'_>,
        reach: Reach,
    ) -> Result<BoundOp> {
        let mut verdicts = Vec::new();
        let bound = self.prepare(shape, tensors, reach, &mut verdicts);
        self.settle(bound, verdict::judge_wait(verdicts).await)
    }

    /// Bytes of workspace the op needs for `shape` on this context (0 for ops that have
    /// none).
    pub fn workspace_size(&self, shape: Shape) -> Result<u64> {
        let (rows, cols) = shape.checked()?;
        let launch = self.ctx.row_launch(K::KERNEL, rows, cols, self.config.splits());
        let workspace = K::TABLE.iter().find(|s| matches!(s.extent, Extent::Workspace { .. }));
        Ok(workspace.map_or(0, |s| footprint(s.extent, shape, launch.partial_rows, 0, 4).run))
    }

    fn settle<T>(&self, done: Result<T>, errors: Vec<(NormError, Option<PipelineKey>)>) -> Result<T> {
        let mut first = None;
        for (e, key) in errors {
            if let Some(key) = key {
                self.ctx.pipelines().forget(&key);
            }
            first.get_or_insert(e);
        }
        match first {
            Some(e) => Err(self.ctx.lost_or(e)),
            None => done,
        }
    }

    /// Compiles the pipelines of each of `calls` (see [`Op::with_calls`]).
    fn compile_calls(&self, calls: &[ExpectedCall<'_>], verdicts: &mut Vec<Verdict>) -> Result<()> {
        let ctx = &self.ctx;
        for call in calls {
            let shape = call.shape;
            let (rows, cols) = self.check_shape(shape)?;
            for &name in call.optional {
                let Some(spec) = K::TABLE.iter().find(|s| s.name == name && s.optional) else {
                    return Err(NormError::UnknownTensor {
                        op: K::KERNEL.name(),
                        name: name.to_string(),
                        optional: K::TABLE.iter().filter(|s| s.optional).map(|s| s.name).collect(),
                    });
                };
                if let Some(why) = self.config.unused(spec.name) {
                    return Err(NormError::UnusedArgument { what: spec.name, why });
                }
            }
            let named = |s: &TensorSpec| !s.optional || call.optional.contains(&s.name);
            let sums = K::TABLE.iter().any(|s| s.pass.column_output() && named(s));
            let mut params = self.row_params(shape, rows, cols);
            params.flags |= K::TABLE
                .iter()
                .filter(|s| match s.extent {
                    Extent::Workspace { .. } => sums,
                    _ => named(s),
                })
                .map(TensorSpec::flag)
                .sum::<u32>();
            let launch = ctx.row_launch(K::KERNEL, rows, cols, self.config.splits());
            let columns = sums.then(|| self.layout(&params, true));
            self.compile(&launch, &params, self.layout(&params, true), columns, Reach::FewerRows, verdicts);
        }
        Ok(())
    }

    /// The rows and columns of `shape`, checked, on a device that can run the op: what
    /// binding and naming a call both check before anything else.
    fn check_shape(&self, shape: Shape) -> Result<(u32, u32)> {
        let ctx = &self.ctx;
        ctx.check_device()?;
        let (rows, cols) = shape.checked()?;
        ctx.check_cols(cols)?;
        let allowed = ctx.limits().max_storage_buffers_per_shader_stage;
        let needed = rows_bindings::<K>().len().max(COLUMN_BINDINGS.len()) as u32;
        if needed > allowed {
            return Err(NormError::DeviceLimit {
                what: K::KERNEL.name(),
                limit: "max_storage_buffers_per_shader_stage",
                needed: needed.into(),
                allowed: allowed.into(),
            });
        }
        Ok((rows, cols))
    }

    /// The parameter block of `shape` (`rows` x `cols`) before any tensor is bound.
    fn row_params(&self, shape: Shape, rows: u32, cols: u32) -> Params {
        let mut params = self.config.params(rows, cols, shape.row_stride as u32);
        // Checked by shape.checked(): within u32.
        (params.heads, params.head_stride) = (shape.heads as u32, shape.head_stride as u32);
        params
    }

    /// Compiles, where the context has not yet, the pipelines of `launch` for the tensors
    /// `params` flags, with rows in `layout` (and a column pass in `columns`, if any), and
    /// (`Reach::FewerRows`) those the same tensors need at any smaller row count; returns
    /// the launch's keys.
    fn compile(
        &self,
        launch: &RowLaunch,
        params: &Params,
        layout: Layout,
        columns: Option<Layout>,
        reach: Reach,
        verdicts: &mut Vec<Verdict>,
    ) -> Keys {
        let ctx = &self.ctx;
        let pipelines = ctx.pipelines();
        // A split launch runs the kernel's split form twice: the segments' sums, then the
        // finishing pass (the key this gives).
        let row_key = |launch: &RowLaunch| PipelineKey {
            kernel: if launch.split() { K::KERNEL.split().unwrap_or(K::KERNEL) } else { K::KERNEL },
            variant: Variant {
                subgroups: ctx.uses_subgroups() && K::KERNEL.family().reduces_rows(),
                storage: self.config.storage(),
                // Only f16 tensors read otherwise: the same text, one key, on contexts
                // that share pipelines (NormContext::sibling).
                native_f16: ctx.uses_native_f16() && self.config.storage().contains(DType::F16),
                layout,
                // Streamed launches (0) share one module, whatever tile they would have had.
                register_quads: launch.register_quads,
                params_copied: launch.register_quads == 0 && ctx.copies_params(),
            },
            workgroup_size: launch.workgroup_size,
            row_threads: launch.row_threads,
            subgroup_mode: launch.subgroup_mode,
            cached: launch.register_quads > 0,
            trip_rows: launch.trip_rows,
            flags: params.flags
                | if launch.split() { flags::SPLIT | flags::SPLIT_FINISH } else { 0 }
                | if launch.joint_walks { flags::JOINT_WALKS } else { 0 }
                | if launch.group_partials { flags::GROUP_PARTIALS } else { 0 },
        };
        let sums_key = |key: PipelineKey| PipelineKey { flags: key.flags & !flags::SPLIT_FINISH, ..key };
        let column_flags = K::TABLE
            .iter()
            .filter(|s| COLUMN_BINDINGS.contains(&s.binding))
            .map(TensorSpec::flag)
            .sum::<u32>();
        // The column pass's launch follows the row launch's partial rows.
        let column_key = |launch: &RowLaunch, layout: Layout| {
            let c = ctx.tuning().column_launch(params.cols, launch.partial_rows);
            let key = PipelineKey {
                kernel: Kernel::ReduceColumns,
                variant: Variant {
                    subgroups: false,
                    storage: Storage::default(),
                    native_f16: false,
                    layout,
                    register_quads: 1,
                    params_copied: false,
                },
                workgroup_size: c.workgroup_size,
                row_threads: c.row_lanes,
                subgroup_mode: 0,
                cached: false,
                trip_rows: 1,
                flags: params.flags & column_flags,
            };
            (key, c.groups)
        };
        let mut compile = |launch: &RowLaunch| {
            let key = row_key(launch);
            pipelines.get(ctx.device(), key, verdicts);
            let sums = launch.split().then(|| sums_key(key));
            if let Some(sums) = sums {
                pipelines.get(ctx.device(), sums, verdicts);
            }
            let columns = columns.map(|layout| column_key(launch, layout));
            if let Some((key, _)) = columns {
                pipelines.get(ctx.device(), key, verdicts);
            }
            (key, sums, columns)
        };
        let (rows, cols) = (params.rows, params.cols);
        let (key, sums, columns) = compile(launch);
        // Every pipeline a later binding of these tensors with fewer rows runs is compiled
        // now, so that such a binding (a decode step after prefill) never compiles; once per
        // launch and row length, so that binding again does not enumerate them again.
        if reach == Reach::FewerRows && pipelines.rows_covered(key, cols) < rows {
            for other in ctx.row_launches_up_to(K::KERNEL, rows, cols, self.config.splits()) {
                compile(&other);
            }
            pipelines.cover_rows(key, cols, rows);
        }
        Keys { rows: key, sums, columns }
    }

    fn prepare(
        &self,
        shape: Shape,
        tensors: &K::Tensors<'_>,
        reach: Reach,
        verdicts: &mut Vec<Verdict>,
    ) -> Result<BoundOp> {
        let ctx = &self.ctx;
        let (rows, cols) = self.check_shape(shape)?;
        let rows_bindings = rows_bindings::<K>();
        let storage = self.config.storage();
        let mut params = self.row_params(shape, rows, cols);
        let launch = ctx.row_launch(K::KERNEL, rows, cols, self.config.splits());
        params.partial_rows = launch.partial_rows;
        (params.chunks, params.chunk_len) = (launch.chunks, launch.chunk_len);
        let given = K::tensors(tensors);
        // The column pass runs when one of its outputs is asked for, and needs the workspace.
        let sums = K::TABLE.iter().zip(&given).any(|(s, t)| s.pass.column_output() && t.is_some());
        let mut checked = Vec::with_capacity(given.len());
        for (spec, t) in K::TABLE.iter().zip(&given) {
            let workspace = matches!(spec.extent, Extent::Workspace { .. });
            if workspace && sums && t.is_none() {
                return Err(NormError::MissingArgument {
                    what: spec.name,
                    why: "the parameter gradients are summed over rows through it",
                });
            }
            let Some(t) = t.filter(|_| !workspace || sums) else { continue };
            if let Some(why) = self.config.unused(spec.name) {
                return Err(NormError::UnusedArgument { what: spec.name, why });
            }
            let elem = spec.dtype(storage).size();
            let footprint = footprint(spec.extent, shape, launch.partial_rows, t.offset, elem);
            let c = binding::check(ctx.limits(), *spec, t, footprint, elem)?;
            params.offsets[spec.binding as usize] = c.element_offset;
            params.flags |= spec.flag();
            checked.push(c);
        }
        let webgpu = ctx.adapter_info().backend == wgpu::Backend::BrowserWebGpu;
        binding::check_aliasing(&checked, webgpu)?;
        let scope = ctx.device().push_error_scope(wgpu::ErrorFilter::Validation);
        let uniform = ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgpu_norm.params"),
            size: std::mem::size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        ctx.queue().write_buffer(&uniform, 0, bytemuck::bytes_of(&params));
        verdicts.push(Verdict::new("parameter block creation", scope));
        // The vector layout wherever every quad a pass moves is aligned and whole (all but
        // the per-row statistics move in quads).
        let aligned = |bindings: &[u32]| {
            checked.iter().all(|c| {
                !bindings.contains(&c.spec.binding)
                    || c.spec.extent == Extent::PerRow
                    || c.element_offset.is_multiple_of(4)
            })
        };
        let layout = self.layout(&params, aligned(&rows_bindings));
        let columns = sums.then(|| self.layout(&params, aligned(&COLUMN_BINDINGS)));
        let keys = self.compile(&launch, &params, layout, columns, reach, verdicts);
        let max_groups = ctx.limits().max_compute_workgroups_per_dimension.max(1);
        let groups = launch.groups.min(max_groups);
        // A split launch's segment sums, in a buffer of the binding's own: up to two quads per
        // segment (LayerNorm's spreads, unscaled and scaled; RMSNorm's sums take one).
        let partials = launch.split().then(|| {
            let scope = ctx.device().push_error_scope(wgpu::ErrorFilter::Validation);
            let buffer = ctx.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgpu_norm.split_partials"),
                size: 32 * u64::from(rows) * u64::from(launch.chunks),
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            });
            verdicts.push(Verdict::new("split partials creation", scope));
            buffer
        });
        let mut split_bindings = rows_bindings.clone();
        split_bindings.push(WORKSPACE_BINDING);
        let (bindings, scratch) = match &partials {
            Some(buffer) => (&split_bindings, Some(buffer)),
            None => (&rows_bindings, None),
        };
        let split_pass =
            keys.sums.map(|key| self.dispatch(key, bindings, &checked, scratch, &uniform, groups, verdicts));
        let rows_pass = self.dispatch(keys.rows, bindings, &checked, scratch, &uniform, groups, verdicts);
        let columns_pass = keys.columns.map(|(key, groups)| {
            self.dispatch(key, &COLUMN_BINDINGS, &checked, None, &uniform, groups.min(max_groups), verdicts)
        });
        Ok(BoundOp {
            label: K::KERNEL.pass_label(),
            split_pass,
            rows_pass,
            columns_pass,
            _partials: partials,
            params,
            uniform,
            launch: RowLaunch { groups, ..launch },
            bound_rows: rows,
        })
    }

    /// The vector layout where the tuning allows it, rows of `params` are whole quads apart
    /// and the tensors' offsets are `aligned` to quads.
    fn layout(&self, params: &Params, aligned: bool) -> Layout {
        let vector = self.ctx.tuning().vector_access
            && aligned
            && params.cols.is_multiple_of(4)
            && params.stride.is_multiple_of(4)
            && params.head_stride.is_multiple_of(4);
        if vector { Layout::Vector } else { Layout::Scalar }
    }

    /// The dispatch of `key` with `bindings`: the checked tensors, `scratch` as the
    /// workspace where it is given, placeholders for the rest.
    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &self,
        key: PipelineKey,
        bindings: &[u32],
        checked: &[Checked<'_>],
        scratch: Option<&wgpu::Buffer>,
        uniform: &wgpu::Buffer,
        groups: u32,
        verdicts: &mut Vec<Verdict>,
    ) -> Dispatch {
        let ctx = &self.ctx;
        let pipeline = ctx.pipelines().get(ctx.device(), key, verdicts);
        let mut entries: Vec<wgpu::BindGroupEntry<'_>> = bindings
            .iter()
            .map(|&b| {
                let resource = match checked.iter().find(|c| c.spec.binding == b) {
                    Some(c) => wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: c.buffer,
                        offset: c.bind_offset,
                        size: wgpu::BufferSize::new(c.bind_size),
                    }),
                    None => match scratch {
                        Some(buffer) if b == WORKSPACE_BINDING => buffer.as_entire_binding(),
                        _ => ctx.placeholder(b),
                    },
                };
                wgpu::BindGroupEntry { binding: b, resource }
            })
            .collect();
        entries.push(wgpu::BindGroupEntry { binding: PARAMS_BINDING, resource: uniform.as_entire_binding() });
        let scope = ctx.device().push_error_scope(wgpu::ErrorFilter::Validation);
        let bind_group = ctx.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some(key.kernel.name()),
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        verdicts.push(Verdict::new("bind group creation", scope));
        Dispatch { layout: key.variant.layout, pipeline, bind_group, groups }
    }
}

/// Which pipelines a binding compiles besides its own launch's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reach {
    /// Those of every smaller row count too, so that `BoundOp::set_rows` and binding
    /// fewer rows later compile nothing (`Op::bind`).
    FewerRows,
    /// None: the binding is recorded once (`Op::encode`, the host functions).
    ThisCall,
}

/// The bindings of `K`'s row kernel.
fn rows_bindings<K: OpKind>() -> Vec<u32> {
    K::TABLE.iter().filter(|s| s.pass.in_rows()).map(|s| s.binding).collect()
}

/// Where a tensor of `extent` lies for `shape`, from byte `offset`.
fn footprint(extent: Extent, shape: Shape, partial_rows: u32, offset: u64, elem: u64) -> Footprint {
    let contiguous = |elements: u64| Footprint::run(offset, elements * elem);
    match extent {
        Extent::Rows => Footprint {
            start: offset,
            run: shape.cols as u64 * elem,
            stride: shape.row_stride as u64 * elem,
            rows: shape.tokens() as u64,
            head_stride: shape.head_stride as u64 * elem,
            heads: shape.heads as u64,
        },
        Extent::Cols => contiguous(shape.cols as u64),
        Extent::PerRow => contiguous(shape.rows as u64),
        Extent::Workspace { gradients } => {
            contiguous(u64::from(gradients) * u64::from(partial_rows) * shape.cols as u64)
        }
    }
}

impl BoundOp {
    /// Records the op into `into`: a `wgpu::CommandEncoder` (in a compute pass of its own)
    /// or an open `wgpu::ComputePass`. Three calls per dispatch; nothing is checked,
    /// allocated or locked.
    pub fn encode(&self, into: &mut impl Recorder) {
        into.in_compute_pass(self.label, &mut |pass| {
            for d in self.split_pass.iter().chain([&self.rows_pass]).chain(&self.columns_pass) {
                pass.set_pipeline(&d.pipeline);
                pass.set_bind_group(0, &d.bind_group, &[]);
                pass.dispatch_workgroups(d.groups, 1, 1);
            }
        });
    }

    /// Rows the op was bound for: the most [`BoundOp::set_rows`] accepts.
    pub fn bound_rows(&self) -> u32 {
        self.bound_rows
    }

    /// Rows the op runs over now.
    pub fn rows(&self) -> u32 {
        self.params.rows
    }

    /// Runs the bound op over the first `rows` rows from the next submission on, without
    /// binding again: the parameter block is rewritten through `queue.write_buffer`, and
    /// the pipelines, bind groups and tensors stay. For prefill steps whose row count
    /// varies up to what was bound. The value holds for whole submissions: to run two row
    /// counts in one submission, bind twice.
    pub fn set_rows(&mut self, queue: &wgpu::Queue, rows: u32) -> Result<()> {
        if rows == 0 || rows > self.bound_rows {
            return Err(NormError::RowsOutsideBinding { rows, bound: self.bound_rows });
        }
        let launch = self.launch.over_rows(rows);
        self.params.rows = rows;
        self.params.partial_rows = launch.partial_rows;
        self.rows_pass.groups = launch.groups;
        if let Some(d) = &mut self.split_pass {
            d.groups = launch.groups;
        }
        queue.write_buffer(&self.uniform, 0, bytemuck::bytes_of(&self.params));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::roofline::{StreamCopy, StreamCopyOp};
    use crate::{ContextOptions, DType, Tuning};

    /// A storage buffer of `size` bytes on `ctx`'s device, for tensors to bind.
    fn storage(ctx: &NormContext, size: u64) -> wgpu::Buffer {
        ctx.device().create_buffer(&wgpu::BufferDescriptor {
            label: None,
            size,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        })
    }

    /// The vector layout is taken exactly when every quad is aligned and whole.
    #[test]
    fn vector_layout_needs_aligned_whole_quads() {
        let ctx = NormContext::new().unwrap();
        let buffer = storage(&ctx, 1 << 16);
        let layout = |ctx: &NormContext, shape: Shape, y: u64| {
            let args = StreamCopy { x: Tensor::new(&buffer, 0), y: Tensor::new(&buffer, y) };
            StreamCopyOp::new(ctx, DType::F32).unwrap().bind(shape, &args).unwrap().rows_pass.layout
        };
        let s = Shape::new(8, 64);
        assert_eq!(layout(&ctx, s, 4096), Layout::Vector);
        assert_eq!(layout(&ctx, s, 4096 + 8), Layout::Scalar, "y off a quad");
        assert_eq!(layout(&ctx, Shape::new(8, 62), 4096), Layout::Scalar, "cols");
        assert_eq!(layout(&ctx, s.with_row_stride(66), 8192), Layout::Scalar, "stride");
        let tuning = Tuning { vector_access: false, ..*ctx.tuning() };
        let scalar = NormContext::from_device(
            ctx.device().clone(),
            ctx.queue().clone(),
            ContextOptions { tuning: Some(tuning), ..Default::default() },
        );
        assert_eq!(layout(&scalar, s, 4096), Layout::Scalar, "tuning");
    }

    /// Few long rows take the split form, in two dispatches; many rows, or short ones, one.
    #[test]
    fn few_long_rows_are_split() {
        use crate::{RmsNormConfig, RmsNormForward, RmsNormForwardOp};
        let ctx = NormContext::new().unwrap();
        let buffer = storage(&ctx, 4 << 20);
        let split = |rows: usize, cols: usize| {
            let op = RmsNormForwardOp::new(&ctx, RmsNormConfig::default()).unwrap();
            let args = RmsNormForward::new(Tensor::new(&buffer, 0), Tensor::new(&buffer, 2 << 20));
            op.bind(Shape::new(rows, cols), &args).unwrap().split_pass.is_some()
        };
        let t = ctx.tuning();
        let long = (2 * t.split_chunk).max(4 * t.max_row_threads * t.register_quads + 4) as usize;
        assert!(split(1, long), "1x{long}");
        assert!(!split((t.backward_groups / 4) as usize, long), "a row per core");
        assert!(!split(1, 1024), "1x1024");
    }
}
