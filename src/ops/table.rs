//! Tensor tables: every tensor of an op described once. Its binding number, presence flag,
//! offset field in [`Params`](super::params::Params), dtype, size check, aliasing rule and
//! the name in every error message all follow from its [`TensorSpec`]; the WGSL files
//! declare the same bindings and flags (tests/shaders_validate.rs checks them against these
//! tables).

use crate::dtype::{DType, Storage};

/// Whether a kernel reads or writes a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Read only.
    In,
    /// Written (and maybe read).
    Out,
}

/// Which dtype a tensor is stored in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Its own, chosen in [`Storage`]'s field of the tensor's name.
    Stored,
    /// Always f32: statistics, gradients of parameters, the workspace.
    F32,
}

/// How many elements a tensor spans for a shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extent {
    /// Every row: [`Shape::span`](crate::Shape::span) elements.
    Rows,
    /// One row of parameters: `cols`.
    Cols,
    /// One value per row: `rows`.
    PerRow,
    /// Partial sums of the backward: `gradients x partial rows x cols`.
    Workspace {
        /// dgamma, and dbeta for LayerNorm.
        gradients: u32,
    },
}

/// Which dispatches of an op bind a tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    /// The op's row kernel.
    Rows,
    /// The column pass that sums the backward's partial rows (`reduce_columns`).
    Columns,
    /// Both.
    Both,
}

impl Pass {
    pub(crate) fn in_rows(self) -> bool {
        self != Pass::Columns
    }

    /// An output of the column pass alone (dgamma, dbeta): giving one runs that pass.
    pub(crate) fn column_output(self) -> bool {
        self == Pass::Columns
    }
}

/// One tensor of an op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TensorSpec {
    /// Its name in Rust, WGSL, labels and error messages.
    pub name: &'static str,
    /// Its `@binding` in the WGSL files, and the index of its offset in `Params`.
    pub binding: u32,
    /// Read or written.
    pub role: Role,
    /// Its dtype.
    pub class: Class,
    /// May be `None`; the kernels see whether it is there through the flag
    /// `1 << binding`.
    pub optional: bool,
    /// Its element count.
    pub extent: Extent,
    /// The dispatches that bind it.
    pub pass: Pass,
}

impl TensorSpec {
    /// The `FLAGS` bit that tells the kernels this tensor is present.
    pub fn flag(&self) -> u32 {
        1 << self.binding
    }

    /// Its dtype under `storage`.
    pub fn dtype(&self, storage: Storage) -> DType {
        match self.class {
            // Every stored tensor of every table has a field (a unit test checks it).
            Class::Stored => storage.dtype(self.name).unwrap_or_default(),
            Class::F32 => DType::F32,
        }
    }
}

const fn spec(
    name: &'static str,
    binding: u32,
    role: Role,
    class: Class,
    optional: bool,
    extent: Extent,
) -> TensorSpec {
    TensorSpec { name, binding, role, class, optional, extent, pass: Pass::Rows }
}

/// A tensor read by the row kernel.
pub(crate) const fn input(name: &'static str, binding: u32, class: Class, extent: Extent) -> TensorSpec {
    spec(name, binding, Role::In, class, false, extent)
}

/// A tensor written by the row kernel.
pub(crate) const fn output(name: &'static str, binding: u32, class: Class, extent: Extent) -> TensorSpec {
    spec(name, binding, Role::Out, class, false, extent)
}

impl TensorSpec {
    /// The same tensor, which the caller may leave out.
    pub(crate) const fn optional(self) -> TensorSpec {
        TensorSpec { optional: true, ..self }
    }

    /// The same tensor, bound by `pass`.
    pub(crate) const fn in_pass(self, pass: Pass) -> TensorSpec {
        TensorSpec { pass, ..self }
    }
}

// The tensors every op shares, each described here once.
pub(crate) const X: TensorSpec = input("x", 0, Class::Stored, Extent::Rows);
pub(crate) const GAMMA: TensorSpec = input("gamma", 1, Class::Stored, Extent::Cols).optional();
pub(crate) const BETA: TensorSpec = input("beta", 2, Class::Stored, Extent::Cols).optional();
pub(crate) const Y: TensorSpec = output("y", 3, Class::Stored, Extent::Rows);
pub(crate) const MEAN_OUT: TensorSpec = output("mean", 4, Class::F32, Extent::PerRow).optional();
pub(crate) const RSTD_OUT: TensorSpec = output("rstd", 5, Class::F32, Extent::PerRow).optional();
pub(crate) const MEAN_IN: TensorSpec = input("mean", 4, Class::F32, Extent::PerRow).optional();
pub(crate) const RSTD_IN: TensorSpec = input("rstd", 5, Class::F32, Extent::PerRow).optional();
pub(crate) const DY: TensorSpec = input("dy", 6, Class::Stored, Extent::Rows);
pub(crate) const DX: TensorSpec = output("dx", 7, Class::Stored, Extent::Rows);
pub(crate) const DGAMMA: TensorSpec =
    output("dgamma", 9, Class::F32, Extent::Cols).optional().in_pass(Pass::Columns);
pub(crate) const DBETA: TensorSpec =
    output("dbeta", 10, Class::F32, Extent::Cols).optional().in_pass(Pass::Columns);
pub(crate) const RESIDUAL: TensorSpec = input("residual", 11, Class::Stored, Extent::Rows).optional();
pub(crate) const H: TensorSpec = output("h", 12, Class::Stored, Extent::Rows).optional();
pub(crate) const DH: TensorSpec = input("dh", 13, Class::Stored, Extent::Rows).optional();

/// The backward's scratch of partial sums, for `gradients` column sums.
pub(crate) const fn workspace(gradients: u32) -> TensorSpec {
    output("workspace", 8, Class::F32, Extent::Workspace { gradients }).optional().in_pass(Pass::Both)
}

/// Pairs of tensors that may be the very same range of one buffer (in place): the kernels
/// read each element of the first before the thread that reads it writes the second.
pub(crate) const IN_PLACE: [(&str, &str); 6] =
    [("y", "x"), ("y", "residual"), ("h", "x"), ("h", "residual"), ("dx", "dy"), ("dx", "dh")];

/// Every op's table, named after its kernel: what tests/shaders_validate.rs checks the WGSL
/// against.
#[doc(hidden)]
pub fn all() -> Vec<(&'static str, &'static [TensorSpec])> {
    use crate::ops::op::OpKind;
    fn entry<K: OpKind>() -> (&'static str, &'static [TensorSpec]) {
        (K::KERNEL.name(), K::TABLE)
    }
    vec![
        entry::<crate::RmsNormForwardKind>(),
        entry::<crate::RmsNormBackwardKind>(),
        entry::<crate::LayerNormForwardKind>(),
        entry::<crate::LayerNormBackwardKind>(),
        entry::<crate::StreamCopyKind>(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each stored tensor of every op has its own field in [`Storage`].
    #[test]
    fn every_stored_tensor_has_a_dtype() {
        for (kernel, table) in all() {
            for spec in table.iter().filter(|s| s.class == Class::Stored) {
                assert!(Storage::default().dtype(spec.name).is_some(), "{kernel}: {}", spec.name);
            }
        }
    }
}
