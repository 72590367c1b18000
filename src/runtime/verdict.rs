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
            Poll::Ready(Some(e)) => Some((self.error(e), self.forget)),
            _ => None,
        }
    }

    /// The error, waiting for wgpu's answer.
    pub async fn wait(self) -> Option<(NormError, Option<PipelineKey>)> {
        let (during, forget) = (self.during, self.forget);
        let e = self.answer.await?;
        Some((NormError::Wgpu { during, message: e.to_string() }, forget))
    }

    fn error(&self, e: wgpu::Error) -> NormError {
        NormError::Wgpu { during: self.during, message: e.to_string() }
    }
}

/// The first error among `verdicts`, answered now (see the module docs).
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
