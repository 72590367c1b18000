//! Launch choices: the rules per adapter and the opt-in autotuner.

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod autotune;
pub(crate) mod rules;

pub(crate) use rules::{LaunchChoice, LaunchKey, RowLaunch, Tuning, prev_power_of_two};
