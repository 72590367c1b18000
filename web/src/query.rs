//! The page's URL query: other shapes, and launch knobs other than the adapter's rules, so
//! that launches can be compared in a browser as normbench's flags compare them natively.
//!
//! `?shapes=512x768,1024x4096&workgroup_size=64&group_partials=false` runs those two shapes
//! with 64-thread workgroups and a row of partial sums per row slot. Every other key names a
//! field of [`Tuning`]; a key or value the page does not know is an error on the page, not
//! ignored.
//!
//! A key prefixed `b.` sets a knob of a second launch, B, which is the first (the rules and
//! the query's other knobs) with the `b.` knobs set on top: `?shapes=256x768&b.single_thread_rows=0`
//! runs and checks every case under both, times them in turns in the same page, and reports B's
//! time over the first's. Ratios from one page hold where times from two page loads do not.

use wgpu_norm::{Shape, Tuning};

/// What the query asks for.
#[derive(Clone, Debug, Default)]
pub struct Query {
    /// `shapes=`, in place of the page's own.
    pub shapes: Option<Vec<Shape>>,
    /// Every other `key=value`, in order: fields of [`Tuning`].
    knobs: Vec<(String, String)>,
    /// The `b.key=value` pairs, without the prefix: launch B's fields on top of the others.
    b_knobs: Vec<(String, String)>,
}

impl Query {
    /// The query of the page's URL (empty outside a page).
    pub fn of_page() -> Result<Query, String> {
        let search = web_sys::window().and_then(|w| w.location().search().ok()).unwrap_or_default();
        Query::parse(&search)
    }

    /// `search` as `location.search` gives it: `?key=value&...`, or empty.
    pub fn parse(search: &str) -> Result<Query, String> {
        let mut query = Query::default();
        for pair in search.trim_start_matches('?').split('&').filter(|p| !p.is_empty()) {
            let (key, value) =
                pair.split_once('=').ok_or_else(|| format!("query: `{pair}` is not key=value"))?;
            if key == "shapes" {
                let shape = |s: &str| s.parse().map_err(|e| format!("query: {e}"));
                query.shapes = Some(value.split(',').map(shape).collect::<Result<_, _>>()?);
            } else if let Some(key) = key.strip_prefix("b.") {
                query.b_knobs.push((key.to_string(), value.to_string()));
            } else {
                query.knobs.push((key.to_string(), value.to_string()));
            }
        }
        Ok(query)
    }

    /// Whether the query changes any launch knob.
    pub fn changes_tuning(&self) -> bool {
        !self.knobs.is_empty()
    }

    /// `tuning` with the query's knobs set.
    pub fn tuning(&self, tuning: Tuning) -> Result<Tuning, String> {
        set_all(tuning, &self.knobs)
    }

    /// Launch B's tuning, from the first launch's `tuning`; None where the query has no `b.`
    /// knobs.
    pub fn tuning_b(&self, tuning: Tuning) -> Result<Option<Tuning>, String> {
        match self.b_knobs.is_empty() {
            true => Ok(None),
            false => set_all(tuning, &self.b_knobs).map(Some),
        }
    }
}

fn set_all(mut tuning: Tuning, knobs: &[(String, String)]) -> Result<Tuning, String> {
    for (key, value) in knobs {
        set(&mut tuning, key, value)?;
    }
    Ok(tuning)
}

/// Sets the field of `tuning` named `key` (each field parses as its own type).
fn set(tuning: &mut Tuning, key: &str, value: &str) -> Result<(), String> {
    macro_rules! fields {
        ($($field:ident),* $(,)?) => {
            match key {
                $(stringify!($field) => {
                    tuning.$field = value
                        .parse()
                        .map_err(|_| format!("query: `{value}` is not a value of {key}"))?;
                })*
                _ => {
                    let known = [$(stringify!($field)),*].join(", ");
                    return Err(format!("query: `{key}` is neither `shapes` nor one of {known}"));
                }
            }
        };
    }
    fields!(
        workgroup_size,
        forward_elements_per_thread,
        backward_elements_per_thread,
        max_row_threads,
        max_forward_tile_row_threads,
        max_backward_tile_row_threads,
        single_thread_rows,
        single_thread_short_cols,
        single_thread_short_rows,
        max_loop_trips,
        register_quads,
        vector_access,
        max_forward_groups,
        backward_groups,
        max_partials,
        split_chunk,
        min_group_elements,
        max_column_lanes,
        joint_walks,
        group_partials,
    );
    Ok(())
}
