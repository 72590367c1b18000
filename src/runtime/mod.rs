//! What every op runs on: the context, its pipeline cache, the checks of a binding and
//! where dispatches are recorded.

pub(crate) mod binding;
pub(crate) mod context;
pub(crate) mod pipelines;
pub(crate) mod recorder;
pub(crate) mod verdict;
