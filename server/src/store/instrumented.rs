//! A store wrapper that records the latency of every operation.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chat_shared::{ChatMessage, Epoch, RoomName};

use super::{Appended, HistoryStore, NewMessage, Page, StoreError};
use crate::metrics::{Metrics, StoreOperation};

/// Times each call to the inner store.
pub struct InstrumentedStore {
    inner: Arc<dyn HistoryStore>,
    metrics: Metrics,
}

impl InstrumentedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn HistoryStore>, metrics: Metrics) -> Self {
        Self { inner, metrics }
    }
}

#[async_trait]
impl HistoryStore for InstrumentedStore {
    async fn append_batch(&self, messages: Vec<NewMessage>) -> Result<Vec<Appended>, StoreError> {
        let started = Instant::now();
        let result = self.inner.append_batch(messages).await;
        self.metrics.observe_store(StoreOperation::Append, started);
        result
    }

    async fn page(&self, room: &RoomName, page: Page) -> Result<Vec<ChatMessage>, StoreError> {
        let started = Instant::now();
        let result = self.inner.page(room, page).await;
        self.metrics.observe_store(StoreOperation::Read, started);
        result
    }

    async fn latest_id(&self, room: &RoomName) -> Result<Option<u64>, StoreError> {
        let started = Instant::now();
        let result = self.inner.latest_id(room).await;
        self.metrics.observe_store(StoreOperation::Read, started);
        result
    }

    async fn latest_ids(&self, rooms: &[RoomName]) -> Result<HashMap<RoomName, u64>, StoreError> {
        let started = Instant::now();
        let result = self.inner.latest_ids(rooms).await;
        self.metrics.observe_store(StoreOperation::Read, started);
        result
    }

    async fn pages_after(&self, from: &[(RoomName, u64)], limit: u32) -> Result<Vec<ChatMessage>, StoreError> {
        let started = Instant::now();
        let result = self.inner.pages_after(from, limit).await;
        self.metrics.observe_store(StoreOperation::Read, started);
        result
    }

    fn epoch(&self) -> &Epoch {
        self.inner.epoch()
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }

    async fn has_messages(&self) -> Result<bool, StoreError> {
        self.inner.has_messages().await
    }

    async fn close(&self) {
        self.inner.close().await;
    }
}
