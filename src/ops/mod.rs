//! The ops: one module per op family with its config, its tensors and their tables
//! ([`table`]), the generic prepared op ([`op`]) they share, and the one-shot calls.

pub(crate) mod layer_norm;
pub(crate) mod op;
pub(crate) mod params;
pub(crate) mod rms_norm;
pub(crate) mod roofline;
pub mod table;
