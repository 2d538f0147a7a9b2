use std::sync::Arc;

use arrow_schema::{Schema, SchemaRef};
use vgi_rpc::{Producer, ProducerState, Turn};

struct Ticks;

impl ProducerState for Ticks {
    fn output_schema(&self) -> SchemaRef {
        Arc::new(Schema::empty())
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> vgi_rpc::Result<()> {
        turn.finish();
        Ok(())
    }
}

// The server sees a producer through the alias, but the client only sees the spelling.
type TickStream = Producer<Ticks>;

#[vgi_rpc::service]
trait Aliased {
    fn ticks(&self) -> vgi_rpc::Result<TickStream>;
}

fn main() {}
