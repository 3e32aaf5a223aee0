use async_trait::async_trait;

use super::{BusHealth, EventBus};
use crate::events::Event;
use crate::realtime::{Delivery, Origin};

/// The single-node bus: every socket is local, so publishing is delivering.
pub struct LocalBus {
    delivery: Delivery,
}

impl LocalBus {
    pub fn new(delivery: Delivery) -> Self {
        LocalBus { delivery }
    }
}

#[async_trait]
impl EventBus for LocalBus {
    async fn publish(&self, event: Event) {
        self.delivery.dispatch(&event, Origin::Local).await;
    }

    fn health(&self) -> BusHealth {
        BusHealth::Disabled
    }
}
