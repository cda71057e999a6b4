//! `corral:platform/messaging` for one instance, and the conversions
//! between the WIT message and the broker's (the queue trigger uses them
//! too, for deliveries).

use wasmtime::component::{HasSelf, Linker};

use super::{Messaging, MessagingHandle, Target};
use crate::bindings::corral::platform::messaging::{self as wit, Message};
use crate::broker;
use crate::capabilities::{CapabilityView, state_of};

pub fn add_to_linker<T: CapabilityView>(linker: &mut Linker<T>) -> anyhow::Result<()> {
    wit::add_to_linker::<_, HasSelf<MessagingHandle>>(linker, state_of::<Messaging, T>)?;
    Ok(())
}

impl From<Message> for broker::Message {
    fn from(m: Message) -> Self {
        Self {
            body: m.body,
            content_type: m.content_type,
            headers: m.headers,
            message_id: m.message_id,
        }
    }
}

impl From<broker::Message> for Message {
    fn from(m: broker::Message) -> Self {
        Self {
            body: m.body,
            content_type: m.content_type,
            headers: m.headers,
            message_id: m.message_id,
        }
    }
}

fn into_broker(messages: Vec<Message>) -> Vec<broker::Message> {
    messages.into_iter().map(Into::into).collect()
}

impl wit::Host for MessagingHandle {
    async fn publish(
        &mut self,
        queue: String,
        message: Message,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        Ok(self
            .0
            .publish(Target::Queue(&queue), vec![message.into()])
            .await)
    }

    async fn publish_batch(
        &mut self,
        queue: String,
        messages: Vec<Message>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        Ok(self
            .0
            .publish(Target::Queue(&queue), into_broker(messages))
            .await)
    }

    async fn publish_to_exchange(
        &mut self,
        exchange: String,
        routing_key: String,
        message: Message,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let target = Target::Exchange {
            name: &exchange,
            routing_key: &routing_key,
        };
        Ok(self.0.publish(target, vec![message.into()]).await)
    }

    async fn publish_batch_to_exchange(
        &mut self,
        exchange: String,
        routing_key: String,
        messages: Vec<Message>,
    ) -> wasmtime::Result<Result<(), wit::Error>> {
        let target = Target::Exchange {
            name: &exchange,
            routing_key: &routing_key,
        };
        Ok(self.0.publish(target, into_broker(messages)).await)
    }
}
