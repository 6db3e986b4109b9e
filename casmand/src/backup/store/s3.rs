//! The `s3` and `r2` backends (aws-sdk-s3).
//!
//! * `r2`: endpoint `store.endpoint`, else `https://<account_id>.r2.cloudflarestorage.com`;
//!   region `auto`; checksums only when an operation requires them (R2 rejects
//!   some of the SDK's default checksums).
//! * `s3`: endpoint `store.endpoint` (`R2_ENDPOINT`), else AWS's; region
//!   `us-east-1` unless configured; the SDK's default checksums (CRC32 on
//!   uploads, verified by the server).
//!
//! Credentials are the configured key pair when both halves are set, else the
//! standard AWS sources (`AWS_*` variables, then profile files). Path-style
//! addressing is used when configured or when the endpoint is an IP address or
//! `localhost`. Connect and operation timeouts and a small retry budget make an
//! unreachable store fail within seconds.
//!
//! Errors are mapped to [`StoreError`] by HTTP status and S3 error code; their
//! text never carries the credentials.

use std::{path::Path, sync::Arc, time::Duration};

use aws_config::{
    environment::EnvironmentVariableCredentialsProvider, meta::credentials::CredentialsProviderChain,
    profile::ProfileFileCredentialsProvider,
};
use aws_sdk_s3::{
    Client,
    config::{
        BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
        SharedCredentialsProvider, retry::RetryConfig, timeout::TimeoutConfig,
    },
    error::{ProvideErrorMetadata, SdkError},
    primitives::ByteStream,
    types::{MetadataDirective, StorageClass},
};
use aws_smithy_types::date_time::Format;
use futures_util::StreamExt;

use super::{ObjectInfo, Precondition, StoreError};
use crate::config::{Backend, REDACTED, StoreConfig};

/// How long to wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take, retries included (large bodies).
const OPERATION_TIMEOUT: Duration = Duration::from_secs(300);
/// Attempts per request (the first one included).
const MAX_ATTEMPTS: u32 = 3;
/// Objects per ListObjectsV2 page (the S3 maximum).
const PAGE_SIZE: i32 = 1000;

/// A backup store in an S3-compatible bucket.
#[derive(Clone)]
pub struct S3Store {
    client: Client,
    bucket: String,
    endpoint: String,
    /// Credential strings that must never appear in an error message.
    secrets: Arc<[String]>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Store").field("bucket", &self.bucket).field("endpoint", &self.endpoint).finish()
    }
}

/// True when virtual-hosted addressing cannot work for `endpoint`: an IP
/// address or `localhost`.
fn needs_path_style(endpoint: &str) -> bool {
    match url::Url::parse(endpoint).ok().and_then(|u| u.host().map(|h| h.to_owned())) {
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => true,
        Some(url::Host::Domain(h)) => {
            h.eq_ignore_ascii_case("localhost") || h.to_ascii_lowercase().ends_with(".localhost")
        }
        None => false,
    }
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Characters kept as they are in an `x-amz-copy-source` key: unreserved
/// characters and `/`.
const COPY_SOURCE: &percent_encoding::AsciiSet =
    &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~').remove(b'/');

/// `key` percent-encoded for the `x-amz-copy-source` header (`/` kept).
fn encode_key(key: &str) -> String {
    percent_encoding::utf8_percent_encode(key, COPY_SOURCE).to_string()
}

/// The messages of `e` and its causes, `: `-separated, without repeats
/// (errors often repeat their cause's message) and without Debug dumps.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let msg = err.to_string();
        if !msg.is_empty() && !out.contains(&msg) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&msg);
        }
        next = err.source();
    }
    out
}

fn strip_etag(etag: &str) -> String {
    etag.trim_start_matches("W/").trim_matches('"').to_owned()
}

fn rfc3339(t: Option<&aws_sdk_s3::primitives::DateTime>) -> Option<String> {
    t.and_then(|t| t.fmt(Format::DateTime).ok())
}

/// The storage class as reported; S3 omits the header for `STANDARD`.
fn class_name(c: Option<&StorageClass>) -> Option<String> {
    Some(c.map_or("STANDARD", StorageClass::as_str).to_owned())
}

impl S3Store {
    /// A store for `backend` (`r2` or `s3`) configured by `cfg`. Fails, naming
    /// the key, when the configuration cannot work; does not contact the store.
    pub fn new(cfg: &StoreConfig, backend: Backend) -> Result<S3Store, StoreError> {
        let bad = |msg: String| Err(StoreError::Other(msg));
        if cfg.bucket_name.trim().is_empty() {
            return bad("key `store.bucket_name` (R2_BUCKET_NAME) is empty".into());
        }
        let endpoint = match backend {
            Backend::R2 | Backend::S3 => cfg.endpoint_for(backend),
            other => return bad(format!("backend {} is not an S3 store", other.as_str())),
        };
        if backend == Backend::R2 && endpoint.is_none() {
            return bad(
                "backend r2 needs key `store.account_id` (R2_ACCOUNT_ID) or `store.endpoint` (R2_ENDPOINT)"
                    .into(),
            );
        }
        if let Some(e) = &endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return bad(format!("key `store.endpoint` = {e:?}: must be an http:// or https:// URL"));
        }
        let region = non_empty(&cfg.region)
            .map(str::to_owned)
            .unwrap_or_else(|| if backend == Backend::R2 { "auto" } else { "us-east-1" }.to_owned());
        let region = Region::new(region);

        let mut secrets = Vec::new();
        let credentials = match (non_empty(&cfg.access_key_id), non_empty(&cfg.secret_access_key)) {
            (Some(id), Some(secret)) => {
                secrets.extend([id.to_owned(), secret.to_owned()]);
                SharedCredentialsProvider::new(Credentials::new(id, secret, None, None, "casman-config"))
            }
            // The AWS variables, then the profile files (`~/.aws/credentials`,
            // `AWS_PROFILE`). Not the instance-metadata endpoints of the full
            // default chain: casmand runs on observatory hosts, not in a
            // cloud, and must not probe link-local addresses.
            _ => SharedCredentialsProvider::new(
                CredentialsProviderChain::first_try(
                    "environment",
                    EnvironmentVariableCredentialsProvider::new(),
                )
                .or_else("profile", ProfileFileCredentialsProvider::builder().build()),
            ),
        };

        let path_style = cfg.path_style || endpoint.as_deref().is_some_and(needs_path_style);
        let mut b = aws_sdk_s3::config::Builder::new()
            .behavior_version(BehaviorVersion::latest())
            .region(region)
            .credentials_provider(credentials)
            .force_path_style(path_style)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(OPERATION_TIMEOUT)
                    .build(),
            )
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(MAX_ATTEMPTS)
                    .with_initial_backoff(Duration::from_millis(200))
                    .with_max_backoff(Duration::from_secs(2)),
            );
        if backend == Backend::R2 {
            b = b
                .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
                .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
        }
        if let Some(e) = &endpoint {
            b = b.endpoint_url(e);
        }
        Ok(S3Store {
            client: Client::from_conf(b.build()),
            bucket: cfg.bucket_name.trim().to_owned(),
            endpoint: endpoint.unwrap_or_else(|| "AWS S3".into()),
            secrets: secrets.into(),
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The endpoint URL (or `AWS S3` for the SDK's default).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `text` with every credential string replaced by [`REDACTED`] (too
    /// short a string would match ordinary words: real keys are 20+ characters).
    fn scrub(&self, text: String) -> String {
        self.secrets.iter().filter(|s| s.len() >= 4).fold(text, |t, s| t.replace(s.as_str(), REDACTED))
    }

    /// Maps an SDK error of request `op` on `key`.
    fn error<E>(
        &self,
        op: &str,
        key: &str,
        e: &SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
    ) -> StoreError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = e.raw_response().map(|r| r.status().as_u16());
        let code = e.code().unwrap_or_default();
        let what = |detail: String| self.scrub(format!("{op} {key}: {detail}"));
        let service_detail = || {
            let msg = e.message().map(|m| format!(": {m}")).unwrap_or_default();
            let status = status.map(|s| format!(" (HTTP {s})")).unwrap_or_default();
            let code = if code.is_empty() { "error" } else { code };
            format!("{code}{msg}{status}")
        };
        match e {
            SdkError::TimeoutError(_) => StoreError::Unavailable(what("timed out".into())),
            SdkError::DispatchFailure(d) => {
                let detail = causes(e);
                if !d.is_io() && !d.is_timeout() && detail.contains("credential") {
                    StoreError::Auth(what(detail))
                } else {
                    StoreError::Unavailable(what(detail))
                }
            }
            SdkError::ConstructionFailure(_) => {
                let detail = causes(e);
                if detail.contains("credential") {
                    StoreError::Auth(what(detail))
                } else {
                    StoreError::Other(what(detail))
                }
            }
            _ => match (status, code) {
                (Some(412), _) | (_, "PreconditionFailed" | "ConditionalRequestConflict") => {
                    StoreError::PreconditionFailed(key.to_owned())
                }
                (_, "NoSuchBucket") => {
                    StoreError::Other(what(format!("bucket {}: {}", self.bucket, service_detail())))
                }
                (Some(404), _) | (_, "NoSuchKey" | "NotFound") => StoreError::NotFound(key.to_owned()),
                (Some(401 | 403), _)
                | (
                    _,
                    "InvalidAccessKeyId"
                    | "SignatureDoesNotMatch"
                    | "AccessDenied"
                    | "ExpiredToken"
                    | "InvalidToken"
                    | "Unauthorized",
                ) => StoreError::Auth(what(service_detail())),
                (Some(s), _) if s >= 500 => StoreError::Unavailable(what(service_detail())),
                (_, "SlowDown" | "ServiceUnavailable" | "InternalError" | "RequestTimeout") => {
                    StoreError::Unavailable(what(service_detail()))
                }
                (None, _) => StoreError::Unavailable(what(causes(e))),
                _ => StoreError::Other(what(service_detail())),
            },
        }
    }

    fn returned_etag(key: &str, etag: Option<&str>) -> String {
        match etag {
            Some(t) => strip_etag(t),
            None => {
                tracing::warn!(key, "the store returned no ETag for a write");
                String::new()
            }
        }
    }

    async fn put(
        &self,
        key: &str,
        body: ByteStream,
        cond: Option<&Precondition>,
    ) -> Result<String, StoreError> {
        self.put_with(key, body, cond, None).await
    }

    async fn put_with(
        &self,
        key: &str,
        body: ByteStream,
        cond: Option<&Precondition>,
        entry: Option<&str>,
    ) -> Result<String, StoreError> {
        let mut req = self.client.put_object().bucket(&self.bucket).key(key).body(body);
        if let Some(entry) = entry {
            req = req.metadata(ENTRY_METADATA, entry);
        }
        req = req.content_type(if key.ends_with(".json") {
            "application/json"
        } else {
            "application/octet-stream"
        });
        match cond {
            Some(Precondition::Absent) => req = req.if_none_match("*"),
            Some(Precondition::Matches(etag)) => req = req.if_match(format!("\"{}\"", strip_etag(etag))),
            None => {}
        }
        let out = req.send().await.map_err(|e| self.error("PUT", key, &e))?;
        Ok(Self::returned_etag(key, out.e_tag()))
    }

    pub(super) async fn put_file(
        &self,
        key: &str,
        src: &Path,
        cond: Option<&Precondition>,
    ) -> Result<String, StoreError> {
        let body = ByteStream::from_path(src)
            .await
            .map_err(|e| StoreError::Other(format!("PUT {key}: reading {}: {e}", src.display())))?;
        self.put(key, body, cond).await
    }

    pub(super) async fn put_version_file(
        &self,
        key: &str,
        src: &Path,
        cond: Option<&Precondition>,
        entry: &[u8],
    ) -> Result<(String, bool), StoreError> {
        let body = ByteStream::from_path(src)
            .await
            .map_err(|e| StoreError::Other(format!("PUT {key}: reading {}: {e}", src.display())))?;
        let inline = std::str::from_utf8(entry)
            .ok()
            .filter(|e| e.len() <= ENTRY_METADATA_MAX && e.bytes().all(|b| (0x20..0x7f).contains(&b)));
        let etag = self.put_with(key, body, cond, inline).await?;
        Ok((etag, inline.is_some()))
    }

    pub(super) async fn version_entry(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("HEAD", key, &e))?;
        Ok(out.metadata().and_then(|m| m.get(ENTRY_METADATA)).map(|e| e.as_bytes().to_vec()))
    }

    pub(super) async fn put_bytes(
        &self,
        key: &str,
        bytes: Vec<u8>,
        cond: Option<&Precondition>,
    ) -> Result<String, StoreError> {
        self.put(key, ByteStream::from(bytes), cond).await
    }

    pub(super) async fn get_bytes(
        &self,
        key: &str,
        if_none_match: Option<&str>,
    ) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        let mut req = self.client.get_object().bucket(&self.bucket).key(key);
        if let Some(etag) = if_none_match {
            req = req.if_none_match(format!("\"{}\"", strip_etag(etag)));
        }
        let out = match req.send().await {
            Ok(out) => out,
            Err(e) if e.raw_response().is_some_and(|r| r.status().as_u16() == 304) => return Ok(None),
            Err(e) => return Err(self.error("GET", key, &e)),
        };
        let etag = strip_etag(out.e_tag().unwrap_or_default());
        let bytes =
            out.body.collect().await.map_err(|e| {
                StoreError::Unavailable(self.scrub(format!("GET {key}: reading the body: {e}")))
            })?;
        Ok(Some((bytes.to_vec(), etag)))
    }

    pub(super) async fn get_into<W: std::io::Write + Send + 'static>(
        &self,
        key: &str,
        progress: &(dyn Fn(u64) + Send + Sync),
        sink: W,
    ) -> Result<std::io::Result<W>, StoreError> {
        let out = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("GET", key, &e))?;
        let expected = out.content_length().and_then(|n| u64::try_from(n).ok());
        let body = futures_util::stream::unfold(out.body, |mut body| async move {
            body.next().await.map(|chunk| (chunk, body))
        })
        .map(|chunk| {
            chunk
                .map_err(|e| StoreError::Unavailable(self.scrub(format!("GET {key}: reading the body: {e}"))))
        });
        let (written, total) = super::pump(body, progress, sink).await?;
        if written.is_ok()
            && let Some(n) = expected
            && n != total
        {
            return Err(StoreError::Unavailable(format!("GET {key}: body ended after {total} of {n} bytes")));
        }
        Ok(written)
    }

    pub(super) async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        let out = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.error("HEAD", key, &e))?;
        Ok(ObjectInfo {
            size: out.content_length().and_then(|n| u64::try_from(n).ok()).unwrap_or_default(),
            etag: strip_etag(out.e_tag().unwrap_or_default()),
            storage_class: class_name(out.storage_class()),
            last_modified: rfc3339(out.last_modified()),
        })
    }

    pub(super) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.client.delete_object().bucket(&self.bucket).key(key).send().await {
            Ok(_) => Ok(()),
            Err(e) => match self.error("DELETE", key, &e) {
                StoreError::NotFound(_) => Ok(()),
                other => Err(other),
            },
        }
    }

    pub(super) async fn list(&self, prefix: &str) -> Result<(Vec<(String, ObjectInfo)>, u32), StoreError> {
        let mut items = Vec::new();
        let mut pages = 0u32;
        let mut token: Option<String> = None;
        loop {
            let out = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .max_keys(PAGE_SIZE)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.error("LIST", prefix, &e))?;
            pages += 1;
            for o in out.contents() {
                let Some(key) = o.key() else { continue };
                items.push((
                    key.to_owned(),
                    ObjectInfo {
                        size: o.size().and_then(|n| u64::try_from(n).ok()).unwrap_or_default(),
                        etag: strip_etag(o.e_tag().unwrap_or_default()),
                        storage_class: Some(o.storage_class().map_or("STANDARD", |c| c.as_str()).to_owned()),
                        last_modified: rfc3339(o.last_modified()),
                    },
                ));
            }
            match out.next_continuation_token() {
                Some(t) if out.is_truncated() == Some(true) && !t.is_empty() => token = Some(t.to_owned()),
                _ => break,
            }
        }
        items.sort_by(|a, b| a.0.cmp(&b.0));
        Ok((items, pages))
    }

    pub(super) async fn set_storage_class(&self, key: &str, class: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .copy_object()
            .bucket(&self.bucket)
            .key(key)
            .copy_source(format!("{}/{}", self.bucket, encode_key(key)))
            .storage_class(StorageClass::from(class))
            .metadata_directive(MetadataDirective::Copy)
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            // S3 refuses a copy onto itself that changes nothing: the object
            // is in `class` already.
            Err(e)
                if e.code() == Some("InvalidRequest")
                    && e.message().is_some_and(|m| m.contains("copy an object to itself")) =>
            {
                Ok(())
            }
            Err(e) => Err(self.error("COPY", key, &e)),
        }
    }
}

/// The user-metadata name of a version's manifest entry (sent as
/// `x-amz-meta-casman-entry`).
const ENTRY_METADATA: &str = "casman-entry";

/// The longest entry sent as metadata: S3 allows 2 KB of user metadata in
/// all (name and value).
const ENTRY_METADATA_MAX: usize = 1900;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_style_for_ip_and_localhost_endpoints() {
        assert!(needs_path_style("http://127.0.0.1:9000"));
        assert!(needs_path_style("http://[::1]:9000/"));
        assert!(needs_path_style("http://localhost:4566"));
        assert!(needs_path_style("https://user@10.0.0.2/x"));
        assert!(!needs_path_style("https://abc.r2.cloudflarestorage.com"));
        assert!(!needs_path_style("https://s3.us-east-1.amazonaws.com"));
    }

    #[test]
    fn copy_source_keys_are_encoded() {
        assert_eq!(encode_key("backups/parts.db/x_parts.db"), "backups/parts.db/x_parts.db");
        assert_eq!(encode_key("a b/c+d"), "a%20b/c%2Bd");
    }

    #[test]
    fn etags_lose_their_quotes() {
        assert_eq!(strip_etag("\"abc\""), "abc");
        assert_eq!(strip_etag("W/\"abc\""), "abc");
        assert_eq!(strip_etag("abc"), "abc");
    }

    fn cfg() -> StoreConfig {
        StoreConfig { bucket_name: "b".into(), ..StoreConfig::default() }
    }

    #[test]
    fn r2_needs_an_account_or_an_endpoint() {
        let err = S3Store::new(&cfg(), Backend::R2).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("store.account_id") && err.contains("R2_ENDPOINT"), "{err}");
        let c = StoreConfig {
            account_id: Some("acct".into()),
            access_key_id: Some("AKID".into()),
            secret_access_key: Some("SECRET".into()),
            ..cfg()
        };
        let s = S3Store::new(&c, Backend::R2).map_err(|e| e.to_string());
        assert_eq!(s.as_ref().map(S3Store::endpoint), Ok("https://acct.r2.cloudflarestorage.com"));
        let shown = format!("{s:?}");
        assert!(!shown.contains("SECRET") && !shown.contains("AKID"), "{shown}");
    }

    /// The mapping of what servers answer (R2 and AWS answer 409 to a write
    /// racing another conditional write; 5xx are outages).
    #[test]
    fn service_errors_map_by_status_and_code() {
        use aws_sdk_s3::{error::ErrorMetadata, operation::put_object::PutObjectError};
        use aws_smithy_types::body::SdkBody;

        let c = StoreConfig {
            endpoint: Some("http://127.0.0.1:1".into()),
            access_key_id: Some("AKIDEXAMPLE0001".into()),
            secret_access_key: Some("wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY".into()),
            ..cfg()
        };
        let Ok(store) = S3Store::new(&c, Backend::S3) else { panic!("config") };
        let map = |status: u16, code: &str, message: &str| {
            let meta = ErrorMetadata::builder().code(code).message(message).build();
            let raw = aws_sdk_s3::config::http::HttpResponse::new(
                status.try_into().unwrap_or_else(|_| panic!("status {status}")),
                SdkBody::empty(),
            );
            store.error("PUT", "k", &SdkError::service_error(PutObjectError::generic(meta), raw))
        };
        let pf = StoreError::PreconditionFailed("k".into());
        assert_eq!(map(412, "PreconditionFailed", "At least one of the pre-conditions failed"), pf);
        assert_eq!(map(409, "ConditionalRequestConflict", "conflict"), pf);
        assert_eq!(map(404, "NoSuchKey", "gone"), StoreError::NotFound("k".into()));
        assert!(matches!(map(503, "SlowDown", "slow"), StoreError::Unavailable(_)));
        assert!(matches!(map(500, "InternalError", "oops"), StoreError::Unavailable(_)));
        assert!(matches!(map(400, "InvalidArgument", "bad"), StoreError::Other(_)));
        let auth = map(403, "InvalidAccessKeyId", "key AKIDEXAMPLE0001 is unknown");
        assert!(
            matches!(&auth, StoreError::Auth(m) if !m.contains("AKIDEXAMPLE0001") && m.contains(REDACTED)),
            "{auth:?}"
        );
        assert!(matches!(map(400, "SignatureDoesNotMatch", "sig"), StoreError::Auth(_)));
    }

    #[test]
    fn bad_configuration_is_named() {
        let empty = StoreConfig::default();
        let err = S3Store::new(&empty, Backend::S3).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("store.bucket_name"), "{err}");
        let c = StoreConfig { endpoint: Some("127.0.0.1:9000".into()), ..cfg() };
        let err = S3Store::new(&c, Backend::S3).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("store.endpoint"), "{err}");
        let err = S3Store::new(&cfg(), Backend::Local).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("not an S3 store"), "{err}");
    }
}
