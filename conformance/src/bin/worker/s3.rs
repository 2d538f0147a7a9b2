//! The worker's `--s3-*` flags: external storage in an S3 bucket (AWS or any S3-API
//! server), configured as the reference's `S3Storage` is (bucket, prefix, presigned-URL
//! lifetime, region, endpoint URL), credentials from the environment as boto3 and
//! `object_store` read them (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`).
//!
//! ```text
//! --s3-bucket B [--s3-endpoint URL] [--s3-region R] [--s3-prefix P] [--s3-presign-ttl SECS]
//! ```

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use vgi_rpc::external::object_store::aws::AmazonS3Builder;
use vgi_rpc::external::{ExternalConfig, ObjectStoreStorage, UrlPolicy};

/// The `--s3-*` flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct S3Flags {
    bucket: Option<String>,
    endpoint: Option<String>,
    region: Option<String>,
    prefix: Option<String>,
    presign_ttl: Option<u64>,
}

impl S3Flags {
    /// Takes `flag` (with its value from `value`) if it is an `--s3-*` flag.
    pub(crate) fn take(
        &mut self,
        flag: &str,
        mut value: impl FnMut(&str) -> Result<String, String>,
    ) -> Result<bool, String> {
        match flag {
            "--s3-bucket" => self.bucket = Some(value(flag)?),
            "--s3-endpoint" => self.endpoint = Some(value(flag)?),
            "--s3-region" => self.region = Some(value(flag)?),
            "--s3-prefix" => self.prefix = Some(value(flag)?),
            "--s3-presign-ttl" => {
                let v = value(flag)?;
                self.presign_ttl = Some(
                    v.parse()
                        .map_err(|_| format!("argument {flag}: invalid int value {v:?}"))?,
                );
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Whether `--s3-bucket` was given.
    pub(crate) fn enabled(&self) -> bool {
        self.bucket.is_some()
    }

    /// Checks the flags go together.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let others = self.endpoint.is_some()
            || self.region.is_some()
            || self.prefix.is_some()
            || self.presign_ttl.is_some();
        if others && self.bucket.is_none() {
            return Err("the --s3-* flags require --s3-bucket".to_owned());
        }
        Ok(())
    }

    /// The external-storage configuration: the bucket as storage for batches from
    /// `threshold` bytes; pointers resolved under the loopback policy when the endpoint
    /// is this machine, the default (public `https`) otherwise.
    pub(crate) fn config(&self, threshold: u64) -> anyhow::Result<Option<ExternalConfig>> {
        let Some(bucket) = &self.bucket else {
            return Ok(None);
        };
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        let region = self
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".to_owned());
        builder = builder.with_region(region);
        let mut policy = UrlPolicy::default();
        if let Some(endpoint) = &self.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
            if UrlPolicy::loopback().check(endpoint).is_ok() {
                policy = UrlPolicy::loopback();
            }
        }
        let s3 = builder.build().context("configuring the S3 store")?;
        let mut storage = ObjectStoreStorage::new(Arc::new(s3));
        if let Some(prefix) = &self.prefix {
            storage = storage.with_prefix(prefix);
        }
        if let Some(ttl) = self.presign_ttl {
            storage = storage.with_ttl(Duration::from_secs(ttl));
        }
        Ok(Some(
            ExternalConfig::new()
                .with_storage(Arc::new(storage))
                .with_threshold(usize::try_from(threshold).unwrap_or(usize::MAX))
                .with_url_policy(policy),
        ))
    }
}
