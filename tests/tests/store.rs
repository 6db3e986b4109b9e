//! The backup store against real servers on 127.0.0.1: moto (storage classes,
//! conditional writes and GETs, restarts), s3s-fs (signatures, checksums,
//! persistence) and the local directory backend. Each behaviour is checked
//! against every backend that can tell.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use aws_sdk_s3::{
    config::{BehaviorVersion, Credentials, Region},
    primitives::ByteStream,
    types::StorageClass,
};
use casman_tests::{MotoServer, S3sFs, s3::free_port};
use casmand::{
    backup::{
        accounting::Accounting,
        store::{LocalStore, Precondition, S3Store, Store, StoreError},
    },
    config::{Backend, Config, StoreConfig},
};
use tempfile::TempDir;

const BUCKET: &str = "casman-test";

fn s3_config(endpoint: &str, key: &str, secret: &str) -> StoreConfig {
    StoreConfig {
        bucket_name: BUCKET.into(),
        endpoint: Some(endpoint.into()),
        access_key_id: Some(key.into()),
        secret_access_key: Some(secret.into()),
        ..StoreConfig::default()
    }
}

async fn store_for(cfg: &StoreConfig, backend: Backend) -> Store {
    Store::s3(S3Store::new(cfg, backend).expect("store config"), Accounting::default())
}

/// moto with an empty bucket and a store on it (moto accepts any key).
async fn moto() -> (MotoServer, Store) {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let store = store_for(&s3_config(&m.endpoint, "moto-key", "moto-secret"), Backend::S3).await;
    (m, store)
}

/// s3s-fs on a temp dir with an empty bucket and a store on it.
async fn s3s_fs() -> (TempDir, S3sFs, Store) {
    let dir = tempfile::tempdir().unwrap();
    let s = S3sFs::start(dir.path());
    s.create_bucket(BUCKET);
    let store = store_for(&s3_config(&s.endpoint, &s.access_key, &s.secret_key), Backend::S3).await;
    (dir, s, store)
}

/// A plain SDK client, to do what the store never does.
fn sdk_client(endpoint: &str, key: &str, secret: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new(key, secret, None, None, "test"))
        .endpoint_url(endpoint)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn local() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::local(LocalStore::new(dir.path().join("backups")), Accounting::default());
    (dir, store)
}

/// Deterministic pseudo-random content (not compressible, not all zero).
fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------- behaviours

/// put_file/get_file round trip of a multi-megabyte file, progress reported
/// monotonically up to the size, head agreeing, delete idempotent.
async fn round_trip(store: &Store) {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("snapshot.db.zst");
    let data = content(3 * 1024 * 1024 + 17, 1);
    std::fs::write(&src, &data).unwrap();
    let key = "backups/parts.db/20250101_000000_parts.db";

    let etag = store.put_file(key, &src, Some(Precondition::Absent)).await.unwrap();
    assert!(!etag.is_empty() && !etag.contains('"'), "etag {etag:?}");

    let info = store.head(key).await.unwrap();
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.etag, etag);

    let dest = dir.path().join("restored");
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let n = store.get_file(key, &dest, &move |b| s2.lock().unwrap().push(b)).await.unwrap();
    assert_eq!(n, data.len() as u64);
    assert!(std::fs::read(&dest).unwrap() == data, "downloaded bytes differ");
    let seen = seen.lock().unwrap().clone();
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "progress not increasing");
    assert_eq!(seen.last().copied(), Some(data.len() as u64));

    store.delete(key).await.unwrap();
    store.delete(key).await.unwrap();
    assert_eq!(store.head(key).await, Err(StoreError::NotFound(key.into())));
    assert!(matches!(store.get_bytes(key, None).await, Err(StoreError::NotFound(_))));
    let missing = dir.path().join("missing");
    assert!(matches!(store.get_file(key, &missing, &|_| {}).await, Err(StoreError::NotFound(_))));
}

/// A second create-if-absent write of the same key fails and leaves the
/// first content intact (no silent overwrite, unlike CAsMan).
async fn absent_twice(store: &Store) {
    let key = "backups/parts.db/20250101_000001_parts.db";
    let first = store.put_bytes(key, b"first".to_vec(), Some(Precondition::Absent)).await.unwrap();
    let second = store.put_bytes(key, b"second".to_vec(), Some(Precondition::Absent)).await;
    assert_eq!(second, Err(StoreError::PreconditionFailed(key.into())));
    let (bytes, etag) = store.get_bytes(key, None).await.unwrap().unwrap();
    assert_eq!(bytes, b"first");
    assert_eq!(etag, first);
}

/// The manifest's compare-and-swap: a write conditioned on the etag just
/// read succeeds, a second one with the now stale etag fails.
async fn manifest_cas(store: &Store) {
    let key = "backups/parts.db/MANIFEST.json";
    store.put_bytes(key, br#"{"versions":[]}"#.to_vec(), Some(Precondition::Absent)).await.unwrap();
    let (bytes, etag) = store.get_bytes(key, None).await.unwrap().unwrap();
    assert_eq!(bytes, br#"{"versions":[]}"#);

    let v2 = br#"{"versions":[1]}"#.to_vec();
    let new = store.put_bytes(key, v2.clone(), Some(Precondition::Matches(etag.clone()))).await.unwrap();
    assert_ne!(new, etag);
    let stale =
        store.put_bytes(key, br#"{"versions":[2]}"#.to_vec(), Some(Precondition::Matches(etag))).await;
    assert_eq!(stale, Err(StoreError::PreconditionFailed(key.into())));
    let (bytes, etag) = store.get_bytes(key, None).await.unwrap().unwrap();
    assert_eq!(bytes, v2);
    assert_eq!(etag, new);
}

/// A conditional GET with the current etag answers "unchanged".
async fn not_modified(store: &Store) {
    let key = "backups/assembled_casm.db/MANIFEST.json";
    let etag = store.put_bytes(key, b"{}".to_vec(), None).await.unwrap();
    assert_eq!(store.get_bytes(key, Some(&etag)).await, Ok(None));
    let changed = store.get_bytes(key, Some("0123456789abcdef")).await.unwrap();
    assert_eq!(changed, Some((b"{}".to_vec(), etag)));
}

/// More than 1000 keys: every one listed, in order, in two LIST pages, each
/// counted as a Class A request.
async fn paginated_list(store: &Store, n: usize) {
    let mut set = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(8));
    for i in 0..n {
        let (store, sem) = (store.clone(), sem.clone());
        set.spawn(async move {
            let _permit = sem.acquire_owned().await.unwrap();
            store.put_bytes(&format!("backups/many/{i:05}"), vec![b'x'], None).await.unwrap();
        });
    }
    while let Some(r) = set.join_next().await {
        r.unwrap();
    }
    store.put_bytes("backups/other/x", vec![1], None).await.unwrap();

    let (a0, _, _) = store.accounting().totals();
    let items = store.list("backups/many/").await.unwrap();
    let (a1, _, _) = store.accounting().totals();
    assert_eq!(items.len(), n);
    assert!(items.windows(2).all(|w| w[0].0 < w[1].0), "not sorted by key");
    assert_eq!(items[0].0, "backups/many/00000");
    assert_eq!(items[0].1.size, 1);
    assert_eq!(a1 - a0, n.div_ceil(1000) as u64, "LIST pages counted");
}

// ----------------------------------------------------------------- local

#[tokio::test]
async fn local_round_trip_and_preconditions() {
    let (_dir, store) = local();
    round_trip(&store).await;
    absent_twice(&store).await;
    manifest_cas(&store).await;
    not_modified(&store).await;
    let info = store.head("backups/parts.db/MANIFEST.json").await.unwrap();
    assert_eq!(info.storage_class, None);
    assert!(info.last_modified.is_some());
}

#[tokio::test]
async fn local_list_counts_pages() {
    let (_dir, store) = local();
    paginated_list(&store, 1001).await;
}

// ------------------------------------------------------------------ moto

#[tokio::test]
async fn moto_round_trip_and_preconditions() {
    let (_moto, store) = moto().await;
    round_trip(&store).await;
    absent_twice(&store).await;
    manifest_cas(&store).await;
    not_modified(&store).await;
}

#[tokio::test]
async fn moto_head_reports_size_class_and_time() {
    let (_moto, store) = moto().await;
    let key = "backups/parts.db/v1";
    store.put_bytes(key, content(1234, 2), Some(Precondition::Absent)).await.unwrap();
    let info = store.head(key).await.unwrap();
    assert_eq!(info.size, 1234);
    assert_eq!(info.storage_class.as_deref(), Some("STANDARD"));
    assert!(info.last_modified.as_deref().is_some_and(|t| t.parse::<jiff::Timestamp>().is_ok()), "{info:?}");
    let listed = store.list("backups/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1.size, 1234);
    assert_eq!(listed[0].1.etag, info.etag);
    assert_eq!(listed[0].1.storage_class.as_deref(), Some("STANDARD"));
}

#[tokio::test]
async fn moto_storage_class_back_to_standard() {
    let (moto, store) = moto().await;
    let key = "backups/parts.db/20250101_000000_parts.db";
    let data = content(4096, 3);
    // Put the object in Infrequent Access with the SDK directly, as a
    // lifecycle rule would have.
    sdk_client(&moto.endpoint, "moto-key", "moto-secret")
        .put_object()
        .bucket(BUCKET)
        .key(key)
        .storage_class(StorageClass::StandardIa)
        .body(ByteStream::from(data.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(store.head(key).await.unwrap().storage_class.as_deref(), Some("STANDARD_IA"));

    let (a0, _, _) = store.accounting().totals();
    store.set_storage_class(key, "STANDARD").await.unwrap();
    assert_eq!(store.accounting().totals().0 - a0, 1, "a CopyObject is Class A");
    let info = store.head(key).await.unwrap();
    assert_eq!(info.storage_class.as_deref(), Some("STANDARD"));
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(store.get_bytes(key, None).await.unwrap().map(|(b, _)| b), Some(data));
    // Already STANDARD: nothing to change, not an error.
    store.set_storage_class(key, "STANDARD").await.unwrap();
    assert_eq!(
        store.set_storage_class("backups/none", "STANDARD").await,
        Err(StoreError::NotFound("backups/none".into()))
    );
}

#[tokio::test]
async fn moto_list_paginates() {
    let (_moto, store) = moto().await;
    paginated_list(&store, 1001).await;
}

#[tokio::test]
async fn moto_down_then_back() {
    let (mut moto, store) = moto().await;
    store.put_bytes("k", b"v".to_vec(), None).await.unwrap();
    moto.stop();
    let err = store.head("k").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    moto.restart();
    // moto keeps nothing across restarts; the pooled connections are dead.
    moto.create_bucket(BUCKET);
    assert_eq!(store.head("k").await, Err(StoreError::NotFound("k".into())));
    store.put_bytes("k", b"v2".to_vec(), Some(Precondition::Absent)).await.unwrap();
    assert_eq!(store.get_bytes("k", None).await.unwrap().map(|(b, _)| b), Some(b"v2".to_vec()));
}

#[tokio::test]
async fn missing_bucket_is_not_a_missing_object() {
    let moto = MotoServer::start();
    let store = store_for(&s3_config(&moto.endpoint, "moto-key", "moto-secret"), Backend::S3).await;
    let err = store.get_bytes("backups/x", None).await.unwrap_err();
    assert!(matches!(&err, StoreError::Other(m) if m.contains(BUCKET)), "{err:?}");
}

// ---------------------------------------------------------------- s3s-fs

#[tokio::test]
async fn s3s_fs_round_trip_and_preconditions() {
    let (dir, _s, store) = s3s_fs().await;
    round_trip(&store).await;
    absent_twice(&store).await;
    manifest_cas(&store).await;
    // Not `not_modified`: s3s-fs 0.14.1 ignores If-None-Match on GET.
    // s3s-fs persists to disk.
    assert!(dir.path().join(BUCKET).join("backups/parts.db/MANIFEST.json").is_file());
}

#[tokio::test]
async fn s3s_fs_wrong_secret_is_an_auth_error() {
    let (_dir, s, good) = s3s_fs().await;
    good.put_bytes("k", b"v".to_vec(), None).await.unwrap();
    let secret = "not-the-secret-key";
    let bad = store_for(&s3_config(&s.endpoint, &s.access_key, secret), Backend::S3).await;
    for err in [
        bad.get_bytes("k", None).await.unwrap_err(),
        bad.put_bytes("k2", b"v".to_vec(), None).await.unwrap_err(),
        bad.list("").await.unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::Auth(_)), "{err:?}");
        let text = err.to_string();
        assert!(!text.contains(secret) && !text.contains(&s.access_key), "secret in {text}");
    }
    let unknown = store_for(&s3_config(&s.endpoint, "nobody", &s.secret_key), Backend::S3).await;
    assert!(matches!(unknown.head("k").await, Err(StoreError::Auth(_))));
}

/// The R2 settings (region `auto`, checksums only when required) against a
/// server that verifies signatures.
#[tokio::test]
async fn s3s_fs_accepts_the_r2_settings() {
    let (_dir, s, _) = s3s_fs().await;
    let store = store_for(&s3_config(&s.endpoint, &s.access_key, &s.secret_key), Backend::R2).await;
    round_trip(&store).await;
    absent_twice(&store).await;
}

/// Without configured keys the AWS variables and profile files are asked;
/// with nothing there (or keys the server doesn't know) it is an Auth error.
#[tokio::test]
async fn s3s_fs_missing_credentials_are_an_auth_error() {
    let (_dir, s, _) = s3s_fs().await;
    let cfg = StoreConfig { access_key_id: None, secret_access_key: None, ..s3_config(&s.endpoint, "", "") };
    let store = store_for(&cfg, Backend::S3).await;
    let err = store.head("k").await.unwrap_err();
    assert!(matches!(err, StoreError::Auth(_)), "{err:?}");
}

/// s3s-fs verifies the checksum an upload carries: a corrupt one is refused
/// and nothing is stored. (The store's own uploads carry the SDK's CRC32 on
/// the `s3` backend and pass the same check in the tests above.)
#[tokio::test]
async fn s3s_fs_rejects_a_corrupt_checksum() {
    let (_dir, s, _) = s3s_fs().await;
    let res = sdk_client(&s.endpoint, &s.access_key, &s.secret_key)
        .put_object()
        .bucket(BUCKET)
        .key("corrupt")
        .checksum_sha256("47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=") // SHA-256 of nothing
        .body(ByteStream::from_static(b"not empty"))
        .send()
        .await;
    let err = res.expect_err("corrupt checksum accepted");
    assert_eq!(aws_sdk_s3::error::ProvideErrorMetadata::code(&err), Some("BadDigest"), "{err:?}");
    // s3s-fs 0.14.1 verifies after it has renamed the body into place, so
    // the refused object is there anyway: never rely on it for atomicity.
}

/// s3s-fs keeps one storage class: an upload in Infrequent Access is refused.
#[tokio::test]
async fn s3s_fs_rejects_standard_ia_uploads() {
    let (_dir, s, _) = s3s_fs().await;
    let res = sdk_client(&s.endpoint, &s.access_key, &s.secret_key)
        .put_object()
        .bucket(BUCKET)
        .key("ia")
        .storage_class(StorageClass::StandardIa)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await;
    assert!(res.is_err());
}

// ------------------------------------------------------- configuration

#[tokio::test]
async fn unreachable_endpoint_is_unavailable_quickly() {
    let port = free_port();
    let store =
        store_for(&s3_config(&format!("http://127.0.0.1:{port}"), "key-id", "secret"), Backend::S3).await;
    let start = Instant::now();
    let err = store.head("k").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store.put_bytes("k", b"v".to_vec(), Some(Precondition::Absent)).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    // Bounded retries, not the SDK's minutes: a generous sanity bound.
    assert!(start.elapsed() < Duration::from_secs(30), "took {:?}", start.elapsed());
}

#[tokio::test]
async fn from_config_chooses_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config { data_dir: dir.path().to_path_buf(), ..Config::default() };
    let store = Store::from_config(&cfg, Accounting::default()).await.unwrap();
    assert!(!store.is_none());
    store.put_bytes("a/b", b"x".to_vec(), None).await.unwrap();
    assert!(dir.path().join("backups/a/b").is_file());

    cfg.sync.enabled = false;
    let store = Store::from_config(&cfg, Accounting::default()).await.unwrap();
    assert!(store.is_none());
    assert_eq!(store.head("a/b").await, Err(StoreError::Disabled));

    cfg.sync.enabled = true;
    cfg.sync.backend = Some(Backend::R2);
    let err = Store::from_config(&cfg, Accounting::default()).await.unwrap_err();
    assert!(err.to_string().contains("store.account_id"), "{err}");

    let s = S3sFs::start(&dir.path().join("s3"));
    s.create_bucket(BUCKET);
    cfg.sync.backend = Some(Backend::S3);
    cfg.store = s3_config(&s.endpoint, &s.access_key, &s.secret_key);
    let store = Store::from_config(&cfg, Accounting::default()).await.unwrap();
    store.put_bytes("a/b", b"y".to_vec(), None).await.unwrap();
    assert!(dir.path().join("s3").join(BUCKET).join("a/b").is_file());
}

/// The fixtures work from plain (non-async) tests too, as the end-to-end
/// tests that drive the casmand binary use them.
#[test]
fn fixtures_work_without_a_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let s = S3sFs::start(dir.path());
    s.create_bucket("bkt");
    let mut m = MotoServer::start();
    m.create_bucket("bkt");
    m.reset();
    m.create_bucket("bkt");
    m.stop();
    m.restart();
    m.create_bucket("bkt");
    drop(s);
    drop(m);
}
