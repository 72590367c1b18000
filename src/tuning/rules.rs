//! Launch rules: the knobs chosen per adapter ([`Tuning`]) and the launch a row kernel gets
//! for a shape ([`Tuning::row_launch`]).

use crate::shader::{self, Kernel, MAX_WORKGROUP};

/// Launch-shape knobs, chosen per adapter by [`Tuning::for_device`] and open to override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Threads per workgroup: a power of two, at most 256 and at most the device allows.
    /// Launches of few rows use smaller workgroups (down to one subgroup) so that their
    /// row blocks still spread over `backward_groups` workgroups, the count that fills the
    /// device.
    pub workgroup_size: u32,
    /// Elements each thread of a forward kernel should own when picking the threads per
    /// row: short rows get fewer threads and share a workgroup with other rows.
    pub forward_elements_per_thread: u32,
    /// The same for a backward kernel, which holds two tensors' elements (x and dy) per
    /// element of the row where the forward holds one.
    pub backward_elements_per_thread: u32,
    /// Most threads that share one row (a power of two, at most `workgroup_size`).
    pub max_row_threads: u32,
    /// Most threads a forward row may take (a power of two, at most `workgroup_size`) so
    /// that it fits the register tile where `max_row_threads` would stream it: the fewest
    /// that hold it in `register_quads` quads each. Only for launches whose row slots each
    /// walk at least 16 rows, so that what a wider row costs once per slot is shared.
    pub max_forward_tile_row_threads: u32,
    /// The same for a backward row.
    pub max_backward_tile_row_threads: u32,
    /// Where rows are reduced through workgroup memory (no subgroup operations), each row
    /// takes one thread, reducing nothing, from this many rows per workgroup of the grid
    /// (`max_forward_groups` forward, `backward_groups` backward) on; 0: never.
    pub single_thread_rows: u32,
    /// Rows of at most `single_thread_short_cols` elements take one thread from
    /// `single_thread_short_rows` per workgroup of the grid on, where that is fewer than
    /// `single_thread_rows`: a short row's walks by one thread cost less than the barriers
    /// of several, sooner than a long row's do. 0 cols: no row is short.
    pub single_thread_short_cols: u32,
    /// See `single_thread_short_cols`.
    pub single_thread_short_rows: u32,
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
    /// Elements per segment of a split row (0: rows are never split). A forward of rows
    /// at least two segments long and too long for one workgroup's register tile
    /// (`4 * max_row_threads * register_quads` elements), fewer of them than compute units
    /// (a quarter of `backward_groups`), runs each row as segments, one per row slot, up
    /// to `backward_groups` of them, in two dispatches: each segment's sums, then each
    /// segment merges its row's sums and writes its part. Only where the device allows the
    /// split form's storage buffers per shader stage: LayerNorm's needs 9, one past WebGPU's
    /// default.
    pub split_chunk: u32,
    /// Least elements of work per workgroup of a dispatch (0: no floor). A dispatch of few
    /// short rows gets fewer workgroups, each looping over more of them: on a CPU adapter
    /// each workgroup past the first wakes another core, which costs about what the
    /// dispatch itself does.
    pub min_group_elements: u32,
    /// Most threads that sum one column quad's partial rows in the column pass (dgamma and
    /// dbeta), rounded down to a power of two; 1 leaves each quad's rows to one thread, in
    /// order.
    pub max_column_lanes: u32,
    /// A backward's streamed trip of four (or two) rows walks their sums together, one gamma
    /// read serving them all, where the compiler keeps the rows' sums in registers (up to 24
    /// floats a row for RMSNorm, 8 for LayerNorm); else one row after another.
    pub joint_walks: bool,
    /// A backward whose rows are held in the register tile, several to a workgroup, sums
    /// its row slots' dgamma and dbeta partial sums in the workgroup (a tree through
    /// workgroup memory, a barrier per level and quad of the tile) and leaves one row of
    /// them per workgroup, not one per slot: fewer bytes through the workspace, a shorter
    /// column pass, and a backward grid no longer capped by the partial rows.
    pub group_partials: bool,
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
    /// few workgroups per core (four; the cores the platform counts, `navigator.hardwareConcurrency`
    /// in a browser) that loop over the rows, so per-workgroup costs and the
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
            let dispatch_work = if swiftshader(info) { 4096 } else { 32768 };
            let cores = cpu_cores();
            return Tuning {
                workgroup_size,
                // SwiftShader's shuffles cost more than the walks of rows up to 256: one
                // thread per row up to 128 elements (no reduction at all) and two at 256 took
                // its backwards of rows of 16 to 128 from 0.7-1.1x the naive kernel (a
                // subgroup per row) to 1.2-1.65x, its forwards 1.2-1.7x faster
                // (BENCHMARKS.md, "SwiftShader: a thread per short row"). llvmpipe pays a
                // shuffle per live lane per step too: a forward row of up to 64 elements
                // takes one thread (16 quads in registers) and one of 128 two, 1.1-1.4x
                // faster at rows of 32 to 128 (BENCHMARKS.md, "lavapipe: forward rows of 16
                // quads a thread"). Its backward, holding x and dy, does best at 4 quads a
                // thread: 1.06-1.2x at rows of 32 and 64, where 8 quads lost at 128; rows
                // of 16, one thread each, lost 9-16% ("lavapipe: backward rows of 4 quads a
                // thread").
                forward_elements_per_thread: if swiftshader(info) { 128 } else { 64 },
                backward_elements_per_thread: if swiftshader(info) { 128 } else { 16 },
                max_row_threads: info.subgroup_max_size.max(1),
                // llvmpipe: a row of 2048 to 4096 elements, streamed by one subgroup, held
                // instead by two or four in a 32-quad tile, ran 1.01-1.19x faster forward and
                // 1.12-1.35x backward where each slot walks 16 rows, 1.09-1.56x at 32 and 64;
                // at 8 rows 0.94-1.19x, and at 1 to 4 up to 2x slower. Eight subgroups
                // (forward rows of 5120 to 8192) ran 0.90-1.03x (BENCHMARKS.md, "lavapipe:
                // rows of up to 4096 held by up to four subgroups"), but backward 1.02-1.21x
                // at rows of 8192, 1.09-1.21x where a slot walks 16 rows or more (the same
                // section, "Eight subgroups for the backward"). The reductions then cross
                // subgroups (barriers, each a switch between them). SwiftShader's tile is one
                // quad, in memory: its rows stay with one subgroup.
                max_forward_tile_row_threads: if swiftshader(info) { 1 } else { 4 }
                    * info.subgroup_max_size.max(1),
                max_backward_tile_row_threads: if swiftshader(info) { 1 } else { 8 }
                    * info.subgroup_max_size.max(1),
                // Without subgroup operations a row of several threads meets at two
                // barriers or more, each a switch between the workgroup's SIMD groups. In
                // the browser (Chrome's SwiftShader, a grid of 16) a thread per row ran the
                // forwards of 256 and 1024 rows of 768 1.7-2.0x faster, the backwards 1.0-1.3x
                // (BENCHMARKS.md, "The browser: a thread per row from 256 rows"); with the
                // grid of 8 its two cores give, from 128 rows: 128x768 1.2-2.25x faster. From
                // 8 rows per workgroup, rows up to 1024 ran faster still, but LayerNorm's
                // backward of rows of 2048 to 4097 1.07-1.31x slower ("The browser: the
                // grid from its core count"): one thread walks a row four times there, where
                // four threads shared it. So rows of up to 1024 take a thread each from 8
                // rows per workgroup, longer rows from 16 ("The browser: short rows a thread
                // each from 8 per workgroup").
                single_thread_rows: 16,
                single_thread_short_cols: 1024,
                single_thread_short_rows: 8,
                // Measured on lavapipe (BENCHMARKS.md, "Register tiles of 32 quads on CPU
                // adapters"): without wgpu's index checks a tile of 32 quads (rows of 1024
                // with a subgroup of 8 per row) runs 1.4-2.7x faster than a second read of
                // the row; 64 gained less and 128 lost on the forward. Mesa unrolls the
                // tile's loops and keeps it in registers. SwiftShader's JIT keeps loops as
                // loops, so the tile is stack memory, no cheaper than a second read from
                // cache, and tile rows go one per trip where streamed rows go four: there
                // streamed rows of 64 to 512 ran 1.2-1.5x faster forward and 1.0-1.4x
                // backward ("SwiftShader streams its short rows"), so it gets a tile of one
                // quad (the least a launch holds).
                register_quads: if swiftshader(info) { 1 } else { 32 },
                vector_access: true,
                max_loop_trips: 2048,
                max_forward_groups: 4 * cores,
                backward_groups: 4 * cores,
                max_partials: 1 << 22,
                // A row's workgroup runs on one core, and a split row spreads over the others
                // at the cost of a second dispatch. Where that costs what a segment's walk
                // does, the split loses: llvmpipe's dispatch takes about 36 us (a 1x16
                // forward), the stream of 9000 elements by one subgroup, and its split
                // pays from segments of 32768; SwiftShader's takes 20 us, 1400 elements'
                // worth, and 4096 pay there (measured, BENCHMARKS.md, "Split rows on
                // lavapipe: segments of 32768"). The driver, not the limits, says which.
                split_chunk: dispatch_work,
                // The same trade as the split's: another core pays only for about as much
                // work as a dispatch costs. Measured, BENCHMARKS.md, "Few rows on one core".
                min_group_elements: dispatch_work,
                // A workgroup's threads run one after another on one core, so lanes add
                // barriers and nothing in parallel: on lavapipe 65536x16's backward ran
                // 0.87-0.96x with 64 lanes (BENCHMARKS.md, "The column pass spreads its rows
                // over lanes").
                max_column_lanes: 1,
                // Fewer accesses, more live sums: on lavapipe 0.96-1.21x on streamed rows,
                // 22 turns of 24 faster; on SwiftShader, whose JIT keeps them in memory (as
                // the tile), 0.72-0.95x. BENCHMARKS.md, "Streamed backwards: the first walks
                // joined".
                joint_walks: !swiftshader(info),
                // A workgroup's slots run one after another on one core, and each of the
                // tree's barriers switches through all of them: on lavapipe the tile
                // backwards ran 0.76-1.00x a row per slot's speed (BENCHMARKS.md, "A tile
                // backward's partial sums summed in the workgroup").
                group_partials: false,
            };
        }
        Tuning {
            workgroup_size,
            forward_elements_per_thread: 8,
            backward_elements_per_thread: 8,
            max_row_threads: workgroup_size,
            max_forward_tile_row_threads: workgroup_size,
            max_backward_tile_row_threads: workgroup_size,
            // A thread per row would read a row per thread: consecutive threads a row
            // apart, no load coalesced. A GPU's barrier is cheap next to that.
            single_thread_rows: 0,
            single_thread_short_cols: 0,
            single_thread_short_rows: 0,
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
            // One workgroup at 8 elements per thread, in registers: a decode row
            // past 8192 elements would otherwise be streamed twice by one workgroup, on one
            // compute unit of a hundred, at that unit's bandwidth.
            split_chunk: workgroup_size * 8,
            // A GPU's workgroups run side by side from the start: more of them are never
            // slower to launch, and fewer would idle its compute units.
            min_group_elements: 0,
            // As many as column_launch finds work for.
            max_column_lanes: workgroup_size,
            // Not measured on a GPU, where it would hold four rows' sums per thread against
            // occupancy to save a gamma read that hits L1.
            joint_walks: false,
            // Not measured on a GPU. On paper (NVIDIA's 32768x128 backward: 16 rows a
            // workgroup, 512 workgroups): the workspace's 8192 partial rows per gradient, 4
            // MB written and read again next to the backward's 50 MB, become 512, and the
            // column pass's lanes walk 16 rows instead of 256; 65536x16's grid, capped at 64
            // workgroups by the partial rows, gets 512. The tree costs 2 quads x 5 barriers
            // (4 levels and the first) once per workgroup.
            group_partials: true,
        }
    }
}

/// Whether the adapter is SwiftShader: its shader JIT (Reactor) does not unroll loops, and a
/// dispatch there costs less than on Mesa's llvmpipe. A browser's CPU adapter counts: through
/// wgpu 30 a browser's adapter has no name, only whether it is the fallback
/// (`DeviceType::Cpu`), and Chrome's fallback is SwiftShader (BENCHMARKS.md, "The browser's CPU
/// adapter is SwiftShader").
fn swiftshader(info: &wgpu::AdapterInfo) -> bool {
    let browser_cpu =
        info.backend == wgpu::Backend::BrowserWebGpu && info.device_type == wgpu::DeviceType::Cpu;
    browser_cpu || [&info.name, &info.driver].iter().any(|s| s.to_ascii_lowercase().contains("swiftshader"))
}

pub(crate) fn prev_power_of_two(v: u32) -> u32 {
    1 << (31 - v.leading_zeros())
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
    /// Most streamed rows a slot walks at once ([`Kernel::trip_rows`]; 1 for tile rows):
    /// the `TRIP_ROWS` override.
    pub trip_rows: u32,
    /// A backward's streamed trips walk their rows' sums together ([`Tuning::joint_walks`]):
    /// the `FLAG_JOINT_WALKS` flag.
    pub joint_walks: bool,
    /// The workgroup sums its slots' partial sums ([`Tuning::group_partials`]): the
    /// `FLAG_GROUP_PARTIALS` flag, on tile backwards of several rows per workgroup.
    pub group_partials: bool,
    /// Rows of partial sums the backward grid leaves per gradient: one per workgroup with
    /// `group_partials`, else one per row slot below the row count (slot s of workgroup w is
    /// slot w * rows_per_group + s; the slots at or past the row count visit only rows past
    /// the last, `slot_start` in common.wgsl, which have no elements, and leave nothing).
    pub partial_rows: u32,
    /// Segments per row: 1, or more for a split row ([`Tuning::split_chunk`]), when the
    /// rest of the launch is that of `rows x chunks` rows of `chunk_len` elements.
    pub chunks: u32,
    /// Elements per segment (a multiple of 4; the last segment may be shorter); the row
    /// length when not split.
    pub chunk_len: u32,
}

impl RowLaunch {
    /// Whether rows are split into segments.
    pub fn split(&self) -> bool {
        self.chunks > 1
    }

    /// The same pipeline and row mapping over fewer rows: the grid shrinks to the row
    /// blocks there are, and the backward leaves as many partial rows as its slots visit.
    pub fn over_rows(&self, rows: u32) -> RowLaunch {
        let groups = self.groups.min((rows * self.chunks).div_ceil(self.rows_per_group)).max(1);
        RowLaunch { groups, partial_rows: self.partial_rows(groups, rows), ..*self }
    }

    /// Partial rows per workgroup.
    fn group_partial_rows(&self) -> u32 {
        if self.group_partials { 1 } else { self.rows_per_group }
    }

    /// The partial rows that `groups` workgroups leave over `rows` rows (each workgroup has
    /// a row block of its own: groups never exceed the blocks).
    fn partial_rows(&self, groups: u32, rows: u32) -> u32 {
        (groups * self.group_partial_rows()).min(rows.max(1))
    }
}

/// A launch chosen by [`autotune`](crate::autotune()) holds for a kernel and a shape bucket:
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

/// Fewest rows each row slot walks for a row to take more threads than `max_row_threads` to
/// fit the register tile ([`Tuning::max_forward_tile_row_threads`] and its backward twin).
pub(crate) const WIDE_TILE_TRIPS: u32 = 16;

/// Most rows of backward partial sums per gradient.
const MAX_PARTIAL_ROWS: u32 = 8192;

/// Fewest column quads a column-pass workgroup takes (where the row has that many): 8 quads
/// of f32 are 128 bytes of a partial row, a whole cache line, per load instruction.
const COLUMN_BLOCK_QUADS: u32 = 8;

/// Fewest partial rows each lane of the column pass sums in order, so that the tree that
/// joins the lanes (a barrier per level) stays a small part of its walk.
const COLUMN_LANE_ROWS: u32 = 16;

/// How the column pass (`reduce_columns`) is launched: `row_lanes` threads per quad of
/// columns, each summing every `row_lanes`-th partial row, `workgroup_size / row_lanes`
/// quads per workgroup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ColumnLaunch {
    pub workgroup_size: u32,
    pub row_lanes: u32,
    pub groups: u32,
}

impl Tuning {
    /// Elements each thread of `kernel` should own.
    pub(crate) fn elements_per_thread(&self, kernel: Kernel) -> u32 {
        if kernel.is_backward() {
            self.backward_elements_per_thread
        } else {
            self.forward_elements_per_thread
        }
    }

    /// The column pass over `partial_rows` rows of `cols` partial sums. One thread per quad
    /// of columns walking every partial row leaves a GPU idle where the columns are few:
    /// 32768x128 on NVIDIA's launch without `group_partials` is 8192 partial rows of 32
    /// quads, one warp's work, a walk of 8192 dependent loads. So each quad gets as many
    /// lanes as fill the device's workgroups (`backward_groups` full ones), each summing at
    /// least COLUMN_LANE_ROWS rows, while a workgroup keeps COLUMN_BLOCK_QUADS quads side by
    /// side for whole-line loads: there 32 lanes, 4 workgroups, walks of 256 rows; with
    /// `group_partials` (512 partial rows), walks of 16. At most `max_column_lanes` (1 on a
    /// CPU adapter).
    pub(crate) fn column_launch(&self, cols: u32, partial_rows: u32) -> ColumnLaunch {
        let quads = cols.div_ceil(4).max(1);
        let wg = self.workgroup_size;
        let block = COLUMN_BLOCK_QUADS.min(quads.next_power_of_two()).min(wg);
        let filling = (u64::from(self.backward_groups) * u64::from(wg) / u64::from(quads)).max(1);
        let lanes = filling
            .min(u64::from(partial_rows / COLUMN_LANE_ROWS))
            .min(u64::from(wg / block))
            .min(u64::from(self.max_column_lanes))
            .max(1);
        let row_lanes = prev_power_of_two(lanes as u32);
        // No more quads per workgroup than the row has.
        let per_group = (wg / row_lanes).min(quads.next_power_of_two());
        ColumnLaunch {
            workgroup_size: per_group * row_lanes,
            row_lanes,
            groups: quads.div_ceil(per_group).min(self.max_forward_groups).max(1),
        }
    }

    /// Threads per row that hold a row of `cols` elements in the register tile where
    /// `max_row_threads` would stream it, up to `kernel`'s direction's cap, and the fewest rows
    /// for which `kernel`'s launch takes them: where each row slot of its full grid walks
    /// [`WIDE_TILE_TRIPS`] rows. None where the rule does not apply.
    pub(crate) fn wide_tile(&self, kernel: Kernel, cols: u32) -> Option<(u32, u32)> {
        let quads = cols.div_ceil(4).max(1);
        let threads = quads.div_ceil(self.register_quads.max(1)).checked_next_power_of_two()?;
        let cap = match kernel.is_backward() {
            true => self.max_backward_tile_row_threads,
            false => self.max_forward_tile_row_threads,
        };
        if threads <= self.max_row_threads || threads > cap.min(self.workgroup_size) {
            return None;
        }
        let slots = u64::from(self.grid(kernel)) * u64::from(self.workgroup_size / threads);
        let from_rows = u32::try_from(u64::from(WIDE_TILE_TRIPS) * slots).ok()?;
        Some((threads, from_rows))
    }

    /// Rows per workgroup of the grid from which rows of `cols` elements, reduced through
    /// workgroup memory, take one thread each: [`Tuning::single_thread_rows`], or
    /// [`Tuning::single_thread_short_rows`] for a short row where that is fewer; 0: never.
    pub fn single_thread_rows_for(&self, cols: u32) -> u32 {
        match cols <= self.single_thread_short_cols && self.single_thread_short_rows > 0 {
            true => self.single_thread_short_rows.min(self.single_thread_rows),
            false => self.single_thread_rows,
        }
    }

    /// The fewest rows from which `kernel`'s rows of `cols` take one thread each
    /// ([`Tuning::single_thread_rows_for`] per workgroup of its grid), where rows are reduced
    /// through workgroup memory (`subgroup_ops` false). None where the rule does not apply.
    pub(crate) fn single_thread_from(&self, kernel: Kernel, cols: u32, subgroup_ops: bool) -> Option<u32> {
        let per_group = self.single_thread_rows_for(cols);
        if subgroup_ops || per_group == 0 {
            return None;
        }
        u32::try_from(u64::from(per_group) * u64::from(self.grid(kernel))).ok()
    }

    /// Most workgroups of `kernel`'s grid: `backward_groups` or `max_forward_groups`.
    fn grid(&self, kernel: Kernel) -> u32 {
        if kernel.is_backward() { self.backward_groups } else { self.max_forward_groups }
    }

    /// Threads per row, rows per workgroup and grid size for a row kernel.
    ///
    /// `choice` is autotuning's launch for the shape's bucket, if any; `subgroups` the
    /// adapter's subgroup size range when rows are reduced with subgroup operations.
    ///
    /// A forward of few long rows is split ([`Tuning::split_chunk`]) where `split` allows
    /// (the kernel has a split form the device can bind).
    pub(crate) fn row_launch(
        &self,
        kernel: Kernel,
        rows: u32,
        cols: u32,
        choice: Option<LaunchChoice>,
        subgroups: Option<(u32, u32)>,
        split: bool,
    ) -> RowLaunch {
        let tile_row =
            4 * u64::from(self.max_row_threads.min(self.workgroup_size)) * u64::from(self.register_quads);
        // Fewer rows than compute units (or cores): backward_groups is about four per unit.
        let few = u64::from(rows) * 4 < u64::from(self.backward_groups);
        if split && self.split_chunk > 0 && few && u64::from(cols) > tile_row {
            // Segments at least split_chunk long, and no more than fill the device: a power
            // of two, so that the launch changes only where the row count crosses one (the
            // counts binding compiles ahead, Op::bind).
            let fill = prev_power_of_two(self.backward_groups.max(1)) / rows.max(1);
            let most = (cols / self.split_chunk).min(fill);
            if most >= 2 {
                let chunk_len = cols.div_ceil(prev_power_of_two(most)).next_multiple_of(4);
                let chunks = cols.div_ceil(chunk_len);
                if chunks > 1 {
                    let whole = self.row_launch(kernel, rows * chunks, chunk_len, None, subgroups, false);
                    // The split kernels walk one segment per slot: no trips of several rows.
                    return RowLaunch { chunks, chunk_len, trip_rows: 1, ..whole };
                }
            }
        }
        let t = self;
        let backward = kernel.is_backward();
        // Threads walk rows in quads of elements.
        let quads = cols.div_ceil(4).max(1);
        let wanted = cols.div_ceil(t.elements_per_thread(kernel).max(4)).max(1);
        // Enough threads per row that no thread walks more than max_loop_trips quads.
        let for_trips = quads.div_ceil(t.max_loop_trips).next_power_of_two();
        let rule = match (t.single_thread_from(kernel, cols, subgroups.is_some()), t.wide_tile(kernel, cols))
        {
            (Some(from_rows), _) if rows >= from_rows => 1,
            (_, Some((threads, from_rows))) if rows >= from_rows => threads,
            _ => wanted.next_power_of_two().min(t.max_row_threads),
        };
        let preferred = choice.map_or(rule, |c| c.row_threads);
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
        // capped per workgroup as well as per thread. (A CPU adapter then launches only as
        // many of the blocks' workgroups as min_group_elements allows, below; the others'
        // blocks become trips of those.)
        // Kernels that walk streamed rows several per trip take them from as many row
        // blocks, so where the grid is capped at a few workgroups per core (a CPU adapter) a
        // streamed launch wants that many blocks per workgroup: at 256x16384 on lavapipe,
        // pairs made workgroups of 128, not 256, and ran 1.3x faster (BENCHMARKS.md,
        // "Streamed rows in pairs").
        let per_trip = if register_quads == 0 && t.max_forward_groups <= t.backward_groups {
            kernel.streamed_rows_per_trip()
        } else {
            1
        };
        let target = if per_trip > 1 { per_trip * t.grid(kernel) } else { t.backward_groups };
        // Without subgroup operations the launch does not know the SIMD width, but no
        // subgroup is narrower than 4 threads: a smaller workgroup would leave lanes idle
        // (64 rows of 768 on one thread each ran in the browser as workgroups of one).
        let smallest = row_threads.max(subgroups.map_or(wgpu::MINIMUM_SUBGROUP_MIN_SIZE, |(_, max)| max));
        let mut workgroup_size = t.workgroup_size;
        while workgroup_size > smallest && rows.div_ceil(workgroup_size / row_threads) < target {
            workgroup_size /= 2;
        }
        let rows_per_group = workgroup_size / row_threads;
        let blocks = rows.div_ceil(rows_per_group);
        // Enough workgroups that none loops over more than max_loop_trips row blocks.
        let min_groups = blocks.div_ceil(t.max_loop_trips);
        // At least min_group_elements of work per workgroup, or one workgroup.
        let most_groups = match t.min_group_elements {
            0 => u32::MAX,
            m => (u64::from(rows) * u64::from(cols) / u64::from(m)).clamp(1, u64::from(u32::MAX)) as u32,
        };
        // Everything but the grid; the backward's grid depends on the partial rows each
        // workgroup leaves.
        let launch = RowLaunch {
            workgroup_size,
            row_threads,
            rows_per_group,
            groups: 1,
            subgroup_mode: subgroup_mode(row_threads, t.workgroup_size, subgroups),
            register_quads,
            trip_rows: if register_quads == 0 { kernel.trip_rows(per_thread) } else { 1 },
            joint_walks: backward && register_quads == 0 && t.joint_walks,
            group_partials: backward && register_quads > 0 && rows_per_group > 1 && t.group_partials,
            partial_rows: 0,
            chunks: 1,
            chunk_len: cols,
        };
        let groups = if backward {
            let per_group = launch.group_partial_rows();
            let by_workspace = (t.max_partials / (u64::from(per_group) * u64::from(cols))).max(1);
            // reduce_columns walks every partial row: keep them within the loop bound and
            // few enough that the column pass stays a small fraction of the work.
            let by_column_pass = (t.max_loop_trips.min(MAX_PARTIAL_ROWS) / per_group).max(1);
            blocks
                .min(t.backward_groups)
                .min(by_workspace.min(u32::MAX as u64) as u32)
                .min(by_column_pass)
                .min(most_groups)
                .max(min_groups.min(by_column_pass))
        } else {
            blocks.min(t.max_forward_groups).min(most_groups).max(min_groups)
        }
        .max(1);
        RowLaunch { groups, partial_rows: launch.partial_rows(groups, rows), ..launch }
    }
}

/// The cores a CPU adapter's workgroups run on: the threads the platform says can run at
/// once, natively or in a browser (`navigator.hardwareConcurrency`, in a page or a worker,
/// where Chrome's SwiftShader sizes its thread pool by the same count); 4 where it does not say.
fn cpu_cores() -> u32 {
    // Past any machine's count, and low enough that 4 workgroups per core stay a u32.
    const MAX_CORES: u32 = 1 << 16;
    #[cfg(target_arch = "wasm32")]
    let cores = {
        let get = |of: &wasm_bindgen::JsValue, key: &str| js_sys::Reflect::get(of, &key.into()).ok();
        get(&js_sys::global(), "navigator")
            .and_then(|navigator| get(&navigator, "hardwareConcurrency"))
            .and_then(|n| n.as_f64())
            .filter(|&n| n >= 1.0)
            .map(|n| n.min(f64::from(MAX_CORES)) as u32)
    };
    #[cfg(not(target_arch = "wasm32"))]
    let cores = std::thread::available_parallelism().ok().map(|n| n.get().min(MAX_CORES as usize) as u32);
    cores.unwrap_or(4)
}

/// 0: workgroup-memory tree; 1: a row within one subgroup (butterfly); 2: subgroupAdd plus
/// one exchange through workgroup memory (shaders/reduce_subgroup.wgsl). A row of one thread
/// reduces nothing and takes mode 1 whatever the adapter has (shaders/reduce_workgroup.wgsl).
fn subgroup_mode(row_threads: u32, workgroup_size: u32, subgroups: Option<(u32, u32)>) -> u32 {
    if row_threads == 1 {
        return 1;
    }
    let Some((min, max)) = subgroups else {
        return 0;
    };
    if row_threads <= min {
        1
    } else if row_threads.is_multiple_of(max) && row_threads <= workgroup_size {
        2
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fmt::Write as _;

    /// The adapters of BENCHMARKS.md's launch table: name, device type, the subgroup size
    /// range each reports (wgpu's `AdapterInfo` documents the GPUs' ranges; Chrome's
    /// SwiftShader reports 4..4) and whether rows are reduced with subgroup operations
    /// (never in a browser under wgpu 30, whose adapters are `Backend::BrowserWebGpu`).
    type Adapter = (&'static str, wgpu::DeviceType, (u32, u32), bool);
    const ADAPTERS: [Adapter; 8] = [
        ("lavapipe", wgpu::DeviceType::Cpu, (8, 8), true),
        ("SwiftShader", wgpu::DeviceType::Cpu, (4, 4), true),
        ("WebGPU page, a GPU (wgpu 30)", wgpu::DeviceType::Other, (4, 128), false),
        ("WebGPU page, Chrome's SwiftShader (wgpu 30)", wgpu::DeviceType::Cpu, (4, 4), false),
        ("NVIDIA", wgpu::DeviceType::DiscreteGpu, (32, 32), true),
        ("AMD RDNA", wgpu::DeviceType::DiscreteGpu, (32, 64), true),
        ("Apple", wgpu::DeviceType::IntegratedGpu, (32, 32), true),
        ("Intel", wgpu::DeviceType::IntegratedGpu, (8, 32), true),
    ];

    const NVIDIA: Adapter = ADAPTERS[4];

    const SHAPES: [(u32, u32); 5] = [(1, 4096), (1, 65536), (8192, 768), (4096, 4096), (32768, 128)];

    /// The tuning of a table's adapter, and its subgroup sizes where rows are reduced with
    /// subgroup operations: CPU adapters as on an 8-core machine, and a browser's without
    /// a name.
    fn table_tuning(adapter: Adapter) -> (Tuning, Option<(u32, u32)>) {
        let (name, device_type, sizes, subgroup_ops) = adapter;
        let backend = if subgroup_ops { wgpu::Backend::Vulkan } else { wgpu::Backend::BrowserWebGpu };
        let mut info = wgpu::AdapterInfo::new(device_type, backend);
        if subgroup_ops {
            info.name = name.to_string();
        }
        (info.subgroup_min_size, info.subgroup_max_size) = sizes;
        let mut t = Tuning::for_device(&info, &wgpu::Limits::default());
        if device_type == wgpu::DeviceType::Cpu {
            (t.max_forward_groups, t.backward_groups) = (32, 32);
        }
        (t, subgroup_ops.then_some(sizes))
    }

    /// The launch table as BENCHMARKS.md shows it.
    fn launch_table() -> String {
        let mut out = String::from(
            "| adapter | subgroup | direction | shape | segments | workgroup | threads per row | rows per workgroup | reduction | row held | workgroups |\n|---|---|---|---|---|---:|---:|---:|---|---|---:|\n",
        );
        for adapter in ADAPTERS {
            let (name, (t, subgroups)) = (adapter.0, table_tuning(adapter));
            let sg = subgroups.map_or("none".to_string(), |(lo, hi)| {
                if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") }
            });
            for kernel in [Kernel::RmsNormForward, Kernel::RmsNormBackward] {
                for (rows, cols) in SHAPES {
                    let l = t.row_launch(kernel, rows, cols, None, subgroups, kernel.split().is_some());
                    let reduction = match l.row_threads {
                        1 => "none (a thread per row)",
                        _ => ["workgroup tree", "subgroup butterfly", "subgroupAdd + exchange"]
                            [l.subgroup_mode as usize],
                    };
                    let held = match l.register_quads {
                        0 if l.split() => "streamed, a segment per slot".to_string(),
                        0 if l.joint_walks => {
                            format!("streamed, up to {} per trip, sums walked together", l.trip_rows)
                        }
                        0 => format!("streamed, up to {} per trip", l.trip_rows),
                        q => format!("registers, {q} quads"),
                    };
                    let dir = if kernel.is_backward() { "backward" } else { "forward" };
                    let segments = match l.split() {
                        true => format!("{} of {}", l.chunks, l.chunk_len),
                        false => "whole rows".to_string(),
                    };
                    let _ = writeln!(
                        out,
                        "| {name} | {sg} | {dir} | {rows}x{cols} | {segments} | {} | {} | {} | {reduction} | {held} | {} |",
                        l.workgroup_size, l.row_threads, l.rows_per_group, l.groups
                    );
                }
            }
        }
        out
    }

    /// The column pass of each backward in the launch table, as BENCHMARKS.md shows it.
    fn column_table() -> String {
        let mut out = String::from(
            "| adapter | shape | partial rows | lanes per quad | quads per workgroup | workgroups |\n|---|---|---:|---:|---:|---:|\n",
        );
        for adapter in ADAPTERS {
            let (name, (t, subgroups)) = (adapter.0, table_tuning(adapter));
            for (rows, cols) in SHAPES {
                let l = t.row_launch(Kernel::RmsNormBackward, rows, cols, None, subgroups, false);
                let c = t.column_launch(cols, l.partial_rows);
                let _ = writeln!(
                    out,
                    "| {name} | {rows}x{cols} | {} | {} | {} | {} |",
                    l.partial_rows,
                    c.row_lanes,
                    c.workgroup_size / c.row_lanes,
                    c.groups
                );
            }
        }
        out
    }

    #[test]
    fn benchmarks_md_shows_the_column_pass_each_adapter_gets() {
        let table = column_table();
        let doc = include_str!("../../BENCHMARKS.md");
        assert!(
            doc.contains(&table),
            "BENCHMARKS.md's column pass table is not current; it reads, now:\n{table}"
        );
    }

    /// `max_column_lanes` caps the lanes, whatever the adapter: 8192 partial rows of 128 (NVIDIA's
    /// 32768x128 without `group_partials`) get 32, 4 when capped there, and one thread per
    /// quad at 1.
    #[test]
    fn max_column_lanes_caps_the_column_pass() {
        let (t, _) = table_tuning(NVIDIA);
        for (most, lanes) in [(t.workgroup_size, 32), (4, 4), (1, 1), (0, 1)] {
            let c = Tuning { max_column_lanes: most, ..t }.column_launch(128, 8192);
            assert_eq!(c.row_lanes, lanes, "at most {most} lanes");
            assert_eq!(c.workgroup_size, (32 * lanes).min(t.workgroup_size), "at most {most} lanes");
        }
    }

    /// With `group_partials` a tile backward leaves a partial row per workgroup: NVIDIA's
    /// 65536x16 (128 rows a workgroup) gets the full grid of 512 workgroups, where a row per
    /// slot caps it at 64 (8192 partial rows), and 32768x128 leaves 512 partial rows, not
    /// 8192. Streamed rows (a workgroup each) are the same either way.
    #[test]
    fn group_partials_leave_a_row_per_workgroup() {
        let (t, _) = table_tuning(NVIDIA);
        let launch = |t: &Tuning, rows, cols| {
            t.row_launch(Kernel::RmsNormBackward, rows, cols, None, Some((32, 32)), false)
        };
        let per_slot = Tuning { group_partials: false, ..t };
        for (rows, cols, grouped, slots) in
            [(65536, 16, (512, 512), (64, 8192)), (32768, 128, (512, 512), (512, 8192))]
        {
            let (g, s) = (launch(&t, rows, cols), launch(&per_slot, rows, cols));
            assert!(g.group_partials && !s.group_partials, "{rows}x{cols}");
            assert_eq!((g.groups, g.partial_rows), grouped, "{rows}x{cols}, a row per workgroup");
            assert_eq!((s.groups, s.partial_rows), slots, "{rows}x{cols}, a row per slot");
            assert_eq!(
                g.over_rows(1000).partial_rows,
                g.over_rows(1000).groups,
                "{rows}x{cols} over 1000 rows"
            );
        }
        let streamed = launch(&t, 64, 65536);
        assert!(!streamed.group_partials && streamed.partial_rows == 64, "{streamed:?}");
    }

    /// Rows reduced through workgroup memory on a CPU adapter (the page's SwiftShader, a grid
    /// of 32 here) take one thread from 8 rows per workgroup of the grid, 256, where they are
    /// at most 1024 elements long, and from 16, 512, where they are longer, both ways; never
    /// with subgroup operations (SwiftShader natively) nor on a GPU. However few the rows, a
    /// workgroup keeps at least 4 threads (WebGPU's narrowest subgroup).
    #[test]
    fn single_thread_rows_from_eight_or_sixteen_per_workgroup() {
        let page = ADAPTERS[3];
        for adapter in [page, ADAPTERS[1], ADAPTERS[2], NVIDIA] {
            let (t, subgroups) = table_tuning(adapter);
            for kernel in [Kernel::RmsNormForward, Kernel::LayerNormBackward] {
                for (cols, from) in [(768, 256), (1024, 256), (1025, 512), (4096, 512)] {
                    let threads = |rows| t.row_launch(kernel, rows, cols, None, subgroups, false).row_threads;
                    let name = format!("{} {kernel:?}, rows of {cols}", adapter.0);
                    let (below, at) = (threads(from - 1), threads(from));
                    assert!(below > 1, "{name}: {} rows take {below} threads", from - 1);
                    assert_eq!(at == 1, adapter == page, "{name}: {from} rows take {at}");
                }
            }
        }
        let (t, _) = table_tuning(page);
        for rows in [1, 3, 16, 512] {
            let l = t.row_launch(Kernel::RmsNormForward, rows, 128, None, None, false);
            assert_eq!((l.row_threads, l.workgroup_size.max(4)), (1, l.workgroup_size), "{rows}x128: {l:?}");
        }
    }

    #[test]
    fn benchmarks_md_shows_the_launch_each_adapter_gets() {
        let table = launch_table();
        let doc = include_str!("../../BENCHMARKS.md");
        assert!(doc.contains(&table), "BENCHMARKS.md's launch table is not current; it reads, now:\n{table}");
    }
}
