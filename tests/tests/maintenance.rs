//! Storage-class maintenance end to end: the real casmand and casmanctl
//! against moto on 127.0.0.1 (moto keeps storage classes). Objects are damaged
//! behind casmand's back with the plain S3 SDK.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aws_sdk_s3::{
    config::{BehaviorVersion, Credentials, Region},
    types::{MetadataDirective, StorageClass},
};
use casman_tests::{Daemon, DaemonOpts, MotoServer};
use serde_json::Value;

const BUCKET: &str = "casman-test";

/// Full versions only: these tests damage single objects, and a damaged or
/// missing object also fails every delta built on it (tests/tests/deltas.rs).
fn opts(m: &MotoServer) -> DaemonOpts {
    m.daemon_opts(BUCKET, "lab").env("CASMAN_SYNC__DELTA_CHAIN_MAX", "0")
}

fn sdk(endpoint: &str) -> aws_sdk_s3::Client {
    let conf = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "test"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

fn keys(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_owned()).collect()
}

#[test]
fn maintenance_moves_infrequent_access_back_and_reports_damaged_and_missing_versions() {
    let m = MotoServer::start();
    m.create_bucket(BUCKET);
    let d = Daemon::start_with(opts(&m));
    let mut parts = Vec::new();
    for _ in 0..4 {
        d.ctl_ok(&["parts", "add", "ANTENNA", "3", "1"]);
        parts.push(
            d.ctl_json(&["sync", "backup", "--parts"])["backups"][0]["key"].as_str().unwrap().to_owned(),
        );
    }
    d.ctl_json(&["sync", "backup", "--assembled"]);
    let (ia, flipped, gone) = (&parts[0], &parts[1], &parts[2]);

    let c = sdk(&m.endpoint);
    block_on(async {
        // The store moved one version to Infrequent Access.
        c.copy_object()
            .bucket(BUCKET)
            .key(ia)
            .copy_source(format!("{BUCKET}/{ia}"))
            .storage_class(StorageClass::StandardIa)
            .metadata_directive(MetadataDirective::Copy)
            .send()
            .await
            .unwrap();
        let head = c.head_object().bucket(BUCKET).key(ia).send().await.unwrap();
        assert_eq!(head.storage_class(), Some(&StorageClass::StandardIa));
        // One is damaged (same size, one bit flipped), one is gone.
        let obj = c.get_object().bucket(BUCKET).key(flipped).send().await.unwrap();
        let mut bytes = obj.body.collect().await.unwrap().into_bytes().to_vec();
        let i = bytes.len() / 2;
        bytes[i] ^= 0x10;
        c.put_object().bucket(BUCKET).key(flipped).body(bytes.into()).send().await.unwrap();
        c.delete_object().bucket(BUCKET).key(gone).send().await.unwrap();
    });

    // Problems found: the report is printed, and the command fails.
    let out = d.ctl(&["--json", "sync", "maintain"]);
    assert!(!out.status.success(), "maintain exited 0 with problems");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["checked"], 4, "{r}");
    assert_eq!(
        r["moved"],
        serde_json::json!([{"key": ia, "from_class": "STANDARD_IA", "to_class": "STANDARD"}])
    );
    assert_eq!(keys(&r["missing"]), std::slice::from_ref(gone));
    assert_eq!(r["size_mismatches"], serde_json::json!([]));
    let verified = r["verified"].as_array().unwrap();
    // Never verified before: every present version is checked.
    assert_eq!(verified.len(), 4, "{r}");
    for v in verified {
        let bad = v["key"] == flipped.as_str();
        assert_eq!(v["ok"], !bad, "{v}");
        if bad {
            // Where the flipped bit lands decides which check catches it: the
            // zstd frame (its block structure) or the SHA-256 of the content.
            let p = v["problem"].as_str().unwrap();
            assert!(p.contains("SHA-256") || p.contains("not a valid zstd stream"), "{v}");
        }
    }
    assert!(r["summary"].as_str().unwrap().contains("1 missing"), "{r}");
    block_on(async {
        let head = c.head_object().bucket(BUCKET).key(ia).send().await.unwrap();
        assert!(head.storage_class().is_none_or(|s| *s == StorageClass::Standard), "{head:?}");
    });

    // Status remembers the run; the next one is a week away.
    let s = d.ctl_json(&["sync", "status"]);
    assert_eq!(s["maintenance"]["due"], false, "{s}");
    assert!(s["maintenance"]["last_summary"].as_str().unwrap().contains("1 failed verification"), "{s}");
    assert!(s["maintenance"]["next_at"].as_str().unwrap() > s["maintenance"]["last_at"].as_str().unwrap());

    // The next run checks a rotating share (ceil(4 × 7d / 30d) = 1 of the good
    // versions) and the damaged one again; nothing left to move.
    let again = d.ctl_json_allow_fail(&["sync", "maintain"]);
    assert_eq!(again["moved"], serde_json::json!([]));
    let checked = again["verified"].as_array().unwrap();
    assert_eq!(checked.len(), 2, "{again}");
    assert!(checked.iter().any(|v| v["key"] == flipped.as_str() && v["ok"] == false));
    let out = d.ctl(&["sync", "maintain"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && text.contains(&format!("✗ missing: {gone}")), "{text}");
}

#[test]
fn maintenance_on_the_local_backend_checks_and_verifies_without_classes() {
    let d = Daemon::start_with(DaemonOpts::default().env("CASMAN_SITE_ID", "lab"));
    d.ctl_ok(&["parts", "add", "LNA", "2", "1"]);
    d.ctl_json(&["sync", "backup"]);
    let r = d.ctl_json(&["sync", "maintain"]);
    assert_eq!(r["checked"], 2, "{r}");
    assert_eq!(r["moved"], serde_json::json!([]));
    assert!(r["verified"].as_array().unwrap().iter().all(|v| v["ok"] == true), "{r}");
    assert!(d.ctl_ok(&["sync", "status"]).contains("Last:                 20"));
}
