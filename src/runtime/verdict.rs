//! What wgpu says of the objects binding creates, without blocking.
//!
//! Each creation runs inside a validation error scope. On native wgpu the scope's answer is
//! ready the moment it is popped (errors are raised as objects are made), so [`Verdict::now`]
//! is exact there. In a browser the answer comes back later: [`Verdict::wait`] awaits it,
//! and `now` takes an unanswered scope as success (an error then reaches the device's
//! uncaptured-error handler instead).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use crate::error::NormError;
use crate::runtime::pipelines::PipelineKey;

/// wgpu's answer to an error scope: `Send` on native (so async calls that await it are),
/// as wgpu's own futures are there.
#[cfg(not(target_arch = "wasm32"))]
type Answer = Pin<Box<dyn Future<Output = Option<wgpu::Error>> + Send>>;
#[cfg(target_arch = "wasm32")]
type Answer = Pin<Box<dyn Future<Output = Option<wgpu::Error>>>>;

pub(crate) struct Verdict {
    during: &'static str,
    answer: Answer,
    /// A pipeline to drop from the cache if wgpu rejected it.
    forget: Option<PipelineKey>,
}

impl Verdict {
    /// Pops `scope`: its answer covers what was created since it was pushed.
    pub fn new(during: &'static str, scope: wgpu::ErrorScopeGuard) -> Self {
        Verdict { during, answer: Box::pin(scope.pop()), forget: None }
    }

    pub fn forgetting(self, key: PipelineKey) -> Self {
        Verdict { forget: Some(key), ..self }
    }

    /// The error, if wgpu has already answered with one.
    pub fn now(mut self) -> Option<(NormError, Option<PipelineKey>)> {
        let mut cx = Context::from_waker(Waker::noop());
        match self.answer.as_mut().poll(&mut cx) {
            Poll::Ready(Some(e)) => Some((wgpu_error(self.during, e), self.forget)),
            _ => None,
        }
    }

    /// The error, waiting for wgpu's answer.
    pub async fn wait(self) -> Option<(NormError, Option<PipelineKey>)> {
        let (during, forget) = (self.during, self.forget);
        let e = self.answer.await?;
        Some((wgpu_error(during, e), forget))
    }
}

fn wgpu_error(during: &'static str, e: wgpu::Error) -> NormError {
    NormError::Wgpu { during, message: e.to_string() }
}

/// Runs `f`, which creates wgpu objects, inside a validation error scope, and returns what
/// it made or wgpu's error, if answered now (see the module docs).
pub(crate) fn scoped<R>(
    device: &wgpu::Device,
    during: &'static str,
    f: impl FnOnce() -> R,
) -> Result<R, NormError> {
    let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
    let made = f();
    match Verdict::new(during, scope).now() {
        Some((e, _)) => Err(e),
        None => Ok(made),
    }
}

/// The errors among `verdicts`, answered now (see the module docs).
pub(crate) fn judge_now(verdicts: Vec<Verdict>) -> Vec<(NormError, Option<PipelineKey>)> {
    verdicts.into_iter().filter_map(Verdict::now).collect()
}

/// The errors among `verdicts`, waiting for every answer.
pub(crate) async fn judge_wait(verdicts: Vec<Verdict>) -> Vec<(NormError, Option<PipelineKey>)> {
    let mut errors = Vec::new();
    for v in verdicts {
        errors.extend(v.wait().await);
    }
    errors
}
