//! Every macro expands inside a `#![no_implicit_prelude]` module whose names shadow the
//! prelude, so generated code must use absolute paths throughout.

// `vgi_rpc::Error` is currently 152 bytes, which clippy flags on every handler signature.
#![allow(clippy::result_large_err)]

mod expanded {
    #![no_implicit_prelude]
    #![allow(dead_code, non_camel_case_types, clippy::upper_case_acronyms)]

    // Shadows for names generated code must not pick up by accident.
    struct Option;
    struct Some;
    struct None;
    struct Result;
    struct Ok;
    struct Err;
    struct String;
    struct Vec;
    struct Arc;
    struct Box;
    struct From;
    struct Field;
    struct Schema;
    struct SCHEMA;
    // Used in the trait, so the generated server must pick another type parameter name.
    type T = i64;
    mod vgi_rpc {}

    /// A point.
    #[derive(::vgi_rpc::ArrowRecord)]
    pub(crate) struct Point {
        pub(crate) x: f64,
        #[vgi(rename = "Y")]
        pub(crate) y: ::core::option::Option<f64>,
    }

    #[derive(::vgi_rpc::ArrowRecord)]
    pub(crate) struct Nothing {}

    #[derive(::core::clone::Clone, ::core::marker::Copy, ::vgi_rpc::ArrowEnum)]
    pub(crate) enum Status {
        Active,
        #[vgi(rename = "OFF")]
        Inactive,
    }

    /// The hygiene service.
    #[::vgi_rpc::service(protocol = "Hygiene", version = "1.0")]
    pub(crate) trait Hygiene: ::core::marker::Send + ::core::marker::Sync + 'static {
        /// Everything at once.
        fn unary(
            &self,
            ctx: &::vgi_rpc::CallContext,
            point: Point,
            #[vgi(arrow = "int32")] n: i64,
            #[vgi(default = "x")] s: ::std::string::String,
            status: Status,
        ) -> ::vgi_rpc::Result<::std::vec::Vec<Point>>;
        fn void(
            &self,
            #[vgi(arrow = "timestamp(us,tz=UTC)")] at: i64,
            #[vgi(arrow = "dictionary<index:int8,value:utf8>")] label: ::std::string::String,
        ) -> ::vgi_rpc::Result<()>;
        fn alias(&self, value: T) -> ::vgi_rpc::Result<T>;
        fn produce(&self) -> ::vgi_rpc::Result<::vgi_rpc::Producer<super::Ticker, Point>>;
        fn exchange(&self) -> ::vgi_rpc::Result<::vgi_rpc::Exchange<super::Echo>>;
    }

    /// A service with no methods also expands.
    #[::vgi_rpc::service]
    pub(crate) trait Nil {}
}

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use vgi_rpc::server::MethodKind;
use vgi_rpc::{ExchangeState, ProducerState, Turn};

pub(crate) struct Ticker;

impl ProducerState for Ticker {
    fn output_schema(&self) -> SchemaRef {
        Arc::new(Schema::empty())
    }

    fn produce(&mut self, turn: &mut Turn<'_>) -> vgi_rpc::Result<()> {
        turn.finish();
        Ok(())
    }
}

pub(crate) struct Echo;

impl ExchangeState for Echo {
    fn input_schema(&self) -> SchemaRef {
        Arc::new(Schema::empty())
    }

    fn output_schema(&self) -> SchemaRef {
        Arc::new(Schema::empty())
    }

    fn exchange(&mut self, input: RecordBatch, turn: &mut Turn<'_>) -> vgi_rpc::Result<()> {
        turn.emit(input)
    }
}

#[test]
fn expanded_items_work() {
    let spec = expanded::HygieneServer::spec();
    assert_eq!(spec.name, "Hygiene");
    assert_eq!(spec.doc, "The hygiene service.");
    let kinds: Vec<MethodKind> = spec.methods.iter().map(|m| m.kind).collect();
    assert_eq!(
        kinds,
        [
            MethodKind::Unary,
            MethodKind::Unary,
            MethodKind::Unary,
            MethodKind::Producer,
            MethodKind::Exchange
        ]
    );
    assert_eq!(spec.methods[0].params.fields().len(), 4);
    assert!(spec.methods[3].header.is_some());
    assert_eq!(expanded::NilServer::spec().name, "Nil");
}

/// The generated client's signatures, checked by the compiler (never run: no server).
#[allow(dead_code)]
fn client_signatures(client: &mut expanded::HygieneClient) -> vgi_rpc::Result<()> {
    let point = expanded::Point { x: 1.0, y: None };
    let _: Vec<expanded::Point> =
        client.unary(point, 1, "s".to_owned(), expanded::Status::Active)?;
    let point = expanded::Point { x: 1.0, y: None };
    let _: Vec<expanded::Point> = client.unary_with_defaults(point, 1, expanded::Status::Active)?;
    client.void(0, "label".to_owned())?;
    let _: i64 = client.alias(1)?;
    let stream: vgi_rpc::client::ProducerStream<'_, expanded::Point> = client.produce()?;
    let _: f64 = stream.header().x;
    stream.close()?;
    let session: vgi_rpc::client::ExchangeStream<'_> = client.exchange()?;
    session.close()?;
    let _: expanded::NilClient = expanded::NilClient::connect("unix:/nonexistent")?;
    Ok(())
}
