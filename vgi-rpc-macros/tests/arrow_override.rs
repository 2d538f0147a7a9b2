//! Every Arrow override token the macro accepts becomes exactly the intended `DataType`
//! (built at compile time, never parsed at run time), and the library spells that type
//! back as the same token (`vgi_rpc::schema::type_token`, the protocol hash's spelling).

// `vgi_rpc::Error` is currently 152 bytes, which clippy flags on every handler signature.
#![allow(clippy::result_large_err, clippy::unwrap_used)]

use arrow_schema::{DataType, TimeUnit};

#[vgi_rpc::service]
trait Overrides {
    fn int8(&self, #[vgi(arrow = "int8")] v: i64) -> vgi_rpc::Result<()>;
    fn uint64(&self, #[vgi(arrow = "uint64")] v: i64) -> vgi_rpc::Result<()>;
    fn float32(&self, #[vgi(arrow = "float32")] v: f64) -> vgi_rpc::Result<()>;
    fn large_utf8(&self, #[vgi(arrow = "large_utf8")] v: String) -> vgi_rpc::Result<()>;
    fn large_binary(&self, #[vgi(arrow = "large_binary")] v: Vec<u8>) -> vgi_rpc::Result<()>;
    fn fixed(&self, #[vgi(arrow = "fixed_size_binary(8)")] v: Vec<u8>) -> vgi_rpc::Result<()>;
    fn decimal(&self, #[vgi(arrow = "decimal128( 20, 4 )")] v: f64) -> vgi_rpc::Result<()>;
    fn date(&self, #[vgi(arrow = "date32")] v: i64) -> vgi_rpc::Result<()>;
    fn date64(&self, #[vgi(arrow = "date64")] v: i64) -> vgi_rpc::Result<()>;
    fn time32(&self, #[vgi(arrow = "time32(ms)")] v: i64) -> vgi_rpc::Result<()>;
    fn time64(&self, #[vgi(arrow = "time64(us)")] v: i64) -> vgi_rpc::Result<()>;
    fn ts(&self, #[vgi(arrow = "timestamp(us)")] v: i64) -> vgi_rpc::Result<()>;
    fn ts_utc(&self, #[vgi(arrow = "timestamp(us,tz=UTC)")] v: i64) -> vgi_rpc::Result<()>;
    fn ts_ny(
        &self,
        #[vgi(arrow = "timestamp(ns,tz=America/New_York)")] v: i64,
    ) -> vgi_rpc::Result<()>;
    fn duration(&self, #[vgi(arrow = "duration(ms)")] v: i64) -> vgi_rpc::Result<()>;
    fn dict(
        &self,
        #[vgi(arrow = "dictionary<index:int16,value:utf8>")] v: String,
    ) -> vgi_rpc::Result<()>;
    fn optional(&self, #[vgi(arrow = "int32")] v: Option<i64>) -> vgi_rpc::Result<()>;
}

#[test]
fn every_accepted_token_is_its_data_type() {
    let dictionary =
        |key: DataType, value: DataType| DataType::Dictionary(Box::new(key), Box::new(value));
    let expected = [
        DataType::Int8,
        DataType::UInt64,
        DataType::Float32,
        DataType::LargeUtf8,
        DataType::LargeBinary,
        DataType::FixedSizeBinary(8),
        DataType::Decimal128(20, 4),
        DataType::Date32,
        DataType::Date64,
        DataType::Time32(TimeUnit::Millisecond),
        DataType::Time64(TimeUnit::Microsecond),
        DataType::Timestamp(TimeUnit::Microsecond, None),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        DataType::Timestamp(TimeUnit::Nanosecond, Some("America/New_York".into())),
        DataType::Duration(TimeUnit::Millisecond),
        dictionary(DataType::Int16, DataType::Utf8),
        DataType::Int32,
    ];
    // As written in the trait, whitespace removed.
    let tokens = [
        "int8",
        "uint64",
        "float32",
        "large_utf8",
        "large_binary",
        "fixed_size_binary(8)",
        "decimal128(20,4)",
        "date32",
        "date64",
        "time32(ms)",
        "time64(us)",
        "timestamp(us)",
        "timestamp(us,tz=UTC)",
        "timestamp(ns,tz=America/New_York)",
        "duration(ms)",
        "dictionary<index:int16,value:utf8>",
        "int32",
    ];
    let spec = OverridesServer::spec();
    assert_eq!(spec.methods.len(), expected.len());
    for ((method, expected), token) in spec.methods.iter().zip(expected).zip(tokens) {
        let field = method.params.field(0);
        assert_eq!(field.data_type(), &expected, "{}", method.name);
        assert_eq!(
            vgi_rpc::schema::type_token(field.data_type()).unwrap(),
            token
        );
        assert_eq!(
            field.is_nullable(),
            method.name == "optional",
            "{}",
            method.name
        );
    }
}
