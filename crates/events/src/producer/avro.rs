//! The Avro side of publishing (evcore's AvroCodec; a placeholder until it lands).

use serde::Serialize;

use crate::envelope::Event;
use crate::error::EventsError;
use crate::format::{EncodedEvent, SerdeConfig};
use crate::registry::SchemaRegistry;
use crate::typed::EventPayload;

pub(crate) struct Avro {
    _registry: SchemaRegistry,
}

impl Avro {
    pub(crate) fn new(registry: SchemaRegistry, _serde: SerdeConfig) -> Self {
        Avro {
            _registry: registry,
        }
    }

    pub(crate) async fn encode<T>(
        &self,
        _topic: &str,
        _event: &Event<T>,
    ) -> Result<EncodedEvent, EventsError>
    where
        T: EventPayload + Serialize,
    {
        Err(EventsError::configuration("avro", "AvroCodec not merged yet"))
    }
}
