//! The page's report: the adapter, a row per case as it finishes, a summary and a chart.

use std::fmt::Write as _;

use wgpu_norm::{Norm, NormContext};

use crate::cases::Outcome;
use crate::timing::Clock;

/// The document `www/index.html` lays out.
pub struct Page {
    document: Option<web_sys::Document>,
}

impl Page {
    pub fn new() -> Page {
        Page { document: web_sys::window().and_then(|w| w.document()) }
    }

    fn set(&self, id: &str, html: &str) {
        if let Some(e) = self.document.as_ref().and_then(|d| d.get_element_by_id(id)) {
            e.set_inner_html(html);
        }
    }

    /// The body's `data-status`, which a page check waits on.
    pub fn status(&self, status: &str) {
        if let Some(body) = self.document.as_ref().and_then(|d| d.body()) {
            // Infallible for a valid attribute name.
            let _ = body.set_attribute("data-status", status);
        }
    }

    /// The adapter, and the launch knobs of the context and of launch B (if any).
    pub fn adapter(&self, ctx: &NormContext, b: Option<&NormContext>, clock: Clock) {
        let i = ctx.adapter_info();
        // Through wgpu 30 Chrome's adapter has no name; the page asks WebGPU for it itself.
        let vendor = if i.vendor == 0 { String::new() } else { format!("vendor {:#x}", i.vendor) };
        let name = [&i.name, &i.driver, &i.driver_info, &vendor].into_iter().filter(|s| !s.is_empty());
        self.set(
            "adapter",
            &format!(
                "wgpu's adapter: <b>{}</b> ({:?}, {:?}, subgroup sizes {}..{}), {} reductions. GPU time: {}.<br>\
                 Launch knobs: {}{}",
                escape(&name.cloned().collect::<Vec<_>>().join(" / ")),
                i.backend,
                i.device_type,
                i.subgroup_min_size,
                i.subgroup_max_size,
                if ctx.uses_subgroups() { "subgroup" } else { "workgroup-memory" },
                clock.describe(),
                escape(&format!("{:?}", ctx.tuning())),
                b.map_or(String::new(), |b| format!(
                    "<br>Launch B, timed against it (the last column): {}",
                    escape(&format!("{:?}", b.tuning()))
                )),
            ),
        );
        if b.is_some() {
            // Infallible for a valid attribute name.
            let head = self.document.as_ref().and_then(|d| d.get_element_by_id("b-head"));
            let _ = head.map(|h| h.remove_attribute("hidden"));
        }
    }

    pub fn row(&self, o: &Outcome) {
        let Some(body) = self.document.as_ref().and_then(|d| d.get_element_by_id("rows")) else { return };
        let c = &o.case;
        let html = format!(
            "<tr class=\"{}\"><td>{}</td><td>{}x{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.2}</td><td>{:.1e}</td><td>{}</td>{}</tr>",
            if o.pass { "pass" } else { "fail" },
            c.name(),
            c.shape.rows,
            c.shape.cols,
            o.times.gpu_ms,
            o.times.wall_ms,
            o.gb_per_s,
            o.max_error,
            if o.pass { "pass" } else { "FAIL" },
            o.b_times.map_or(String::new(), |b| format!("<td>{:.3}</td>", b.gpu_ms / o.times.gpu_ms)),
        );
        // Infallible for "beforeend" and well-formed HTML.
        let _ = body.insert_adjacent_html("beforeend", &html);
    }

    pub fn finish(&self, outcomes: &[Outcome]) {
        let passed = outcomes.iter().filter(|o| o.pass).count();
        let summary = if passed == outcomes.len() {
            format!("All {passed} checks passed.")
        } else {
            format!("{} of {} checks FAILED.", outcomes.len() - passed, outcomes.len())
        };
        self.set("summary", &summary);
        self.set("chart", &chart(outcomes));
    }

    pub fn error(&self, message: &str) {
        self.set("summary", &format!("Error: {}", escape(message)));
    }
}

/// A horizontal bar per case: GB/s by the byte model.
fn chart(outcomes: &[Outcome]) -> String {
    const ROW: usize = 18;
    const LABEL: f64 = 250.0;
    const BARS: f64 = 420.0;
    let max = outcomes.iter().map(|o| o.gb_per_s).fold(0.0, f64::max).max(1e-9);
    let height = ROW * outcomes.len() + 30;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">",
        LABEL + BARS + 70.0
    );
    for (i, o) in outcomes.iter().enumerate() {
        let y = i * ROW;
        let w = BARS * o.gb_per_s / max;
        let color = match o.case.norm {
            Norm::RmsNorm => "#3b6fb6",
            Norm::LayerNorm => "#d08a2c",
        };
        // Infallible: writing to a String.
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{} {}x{}</text>\
             <rect x=\"{LABEL}\" y=\"{}\" width=\"{w:.1}\" height=\"{}\" fill=\"{color}\"/>\
             <text x=\"{:.1}\" y=\"{}\">{:.2}</text>",
            LABEL - 6.0,
            y + 13,
            o.case.name(),
            o.case.shape.rows,
            o.case.shape.cols,
            y + 2,
            ROW - 4,
            LABEL + w + 4.0,
            y + 13,
            o.gb_per_s,
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\">GB/s (bytes the op must move / GPU time)</text></svg>",
        LABEL,
        ROW * outcomes.len() + 20
    );
    s
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
