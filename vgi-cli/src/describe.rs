//! Discovery through `vgi_rpc.Reflection.v1`, decoded by the library
//! ([`Client::list_protocols`], [`Client::describe_protocol`]); the `describe` output and
//! argument parsing for `call` both work from what it returns. This module adds the
//! command line's reading of it: a hint for a worker without reflection, and one label per
//! kind of method.

use vgi_rpc::client::{CallOptions, Client, MethodKind};
use vgi_rpc::schema::reflection::ProtocolList;

use crate::failure::{Failure, Outcome};

/// Calls `list_protocols`.
pub(crate) fn list_protocols(client: &mut Client, options: &CallOptions) -> Outcome<ProtocolList> {
    match client.list_protocols(options) {
        Ok(list) => Ok(list),
        Err(vgi_rpc::Error::Rpc(mut e)) if e.kind.as_deref() == Some("protocol_not_supported") => {
            e.message.push_str(
                " (this worker does not host reflection; a Python worker needs --describe)",
            );
            Err(Failure::Remote(e))
        }
        Err(e) => Err(e.into()),
    }
}

/// The kind's label. A stream whose kind the server did not state is called as a
/// producer (without input), so it is shown as one.
pub(crate) fn kind_name(kind: MethodKind) -> &'static str {
    match kind {
        MethodKind::Unary => "unary",
        MethodKind::Exchange => "exchange",
        _ => "producer",
    }
}
