use std::time::Duration;

use figment::providers::Serialized;

use super::*;
use crate::config::{Backend, Config};

/// The shipped R2-era config.yaml (§1.1, §7.1), with non-default values.
const SITE_YAML: &str = r#"
PART_TYPES:
  1: [ANTENNA, ANT]
  2: [LNA, LNA]
CASMAN_ASSEMBLED_DB: database/assembled_casm.db
CASMAN_PARTS_DB: database/parts.db
grid:
  core: {array_id: "C", north_rows: 21}
web_app: {dev: {port: 5555, host: 0.0.0.0}}
barcode: {default_format: code128}
logging: {level: INFO}
database:
  sync:
    enabled: true
    backend: s3
    auto_sync_on_import: true
    cache_ttl_seconds: 3600
    keep_versions: 7
    backup_on_scan_count: 30
    backup_on_hours: 1.0
    quota_limits: {storage_gb: 5.0, class_a_operations: 500000, warn_threshold: 0.7}
r2:
  bucket_name: lab-databases
  region: auto
  keep_versions: 8
  public_urls: {parts: "https://example.invalid/parts.db"}
"#;

fn layer(yaml: &str) -> Result<(tempfile::TempDir, YamlLayer), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, yaml)?;
    let layer = YamlLayer::read(&path)?;
    Ok((dir, layer))
}

#[test]
fn every_key_with_a_casman_meaning_is_mapped() -> Result<(), Box<dyn std::error::Error>> {
    let (dir, layer) = layer(SITE_YAML)?;
    let fig = Figment::from(Serialized::defaults(Config::default())).merge(layer.clone());
    let c: Config = fig.extract()?;
    assert_eq!(c.data_dir, dir.path().join("database"));
    assert_eq!(c.sync.backend, Some(Backend::S3));
    assert!(c.sync.sync_on_start);
    assert_eq!(c.sync.keep_versions, 8, "r2 wins over database.sync");
    assert_eq!(c.sync.backup_on_scan_count, 30);
    assert_eq!(c.sync.backup_on_hours, Duration::from_secs(3600));
    assert_eq!(c.store.bucket_name, "lab-databases");
    assert_eq!(c.store.region.as_deref(), Some("auto"));
    assert_eq!(c.quota.storage_gb, 5.0);
    assert_eq!(c.quota.class_a_operations, 500_000);
    assert_eq!(c.quota.warn_threshold, 0.7);
    for ignored in [
        "PART_TYPES",
        "grid",
        "web_app",
        "barcode",
        "logging",
        "database.sync.cache_ttl_seconds",
        "r2.public_urls",
    ] {
        assert!(
            layer.ignored().iter().any(|k| k == ignored),
            "{ignored} not reported: {:?}",
            layer.ignored()
        );
    }
    let line = layer.describe(&fig);
    assert!(line.contains("sync.backup_on_scan_count <- database.sync.backup_on_scan_count"), "{line}");
    assert!(line.contains("ignored: ") && line.contains("PART_TYPES"), "{line}");
    Ok(())
}

#[test]
fn a_higher_layer_override_is_shown() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, layer) = layer("database:\n  sync:\n    keep_versions: 3\n    backup_on_scan_count: 4\n")?;
    let fig = Figment::from(Serialized::defaults(Config::default()))
        .merge(layer.clone())
        .merge(Serialized::default("sync.keep_versions", 9));
    assert_eq!(fig.extract::<Config>()?.sync.keep_versions, 9);
    let line = layer.describe(&fig);
    assert!(line.contains("overridden by a higher layer: sync.keep_versions"), "{line}");
    assert!(line.contains("sets: sync.backup_on_scan_count"), "{line}");
    Ok(())
}

#[test]
fn the_github_backend_is_ignored_not_refused() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, layer) = layer("database:\n  sync:\n    backend: github\n    github_owner: x\n")?;
    assert!(layer.keys().is_empty());
    assert!(layer.ignored().iter().any(|k| k.contains("database.sync.backend") && k.contains("github")));
    assert!(layer.ignored().iter().any(|k| k == "database.sync.github_owner"));
    Ok(())
}

#[test]
fn a_bad_value_is_named_with_the_yaml_key() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, layer) = layer("r2:\n  keep_versions: many\n")?;
    let fig = Figment::from(Serialized::defaults(Config::default())).merge(layer);
    let err = fig.extract::<Config>().err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("r2.keep_versions"), "{err}");
    Ok(())
}

#[test]
fn database_paths_elsewhere_are_refused() -> Result<(), Box<dyn std::error::Error>> {
    let err = layer("CASMAN_PARTS_DB: /a/parts.db\nCASMAN_ASSEMBLED_DB: /b/assembled_casm.db\n")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("different directories"), "{err}");
    Ok(())
}

#[test]
fn found_beside_the_databases_only_when_it_is_casmans() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("database");
    std::fs::create_dir_all(&data)?;
    assert_eq!(locate(None, &data), None);
    std::fs::write(dir.path().join("config.yaml"), "something_else: 1\n")?;
    assert_eq!(locate(None, &data), None);
    std::fs::write(dir.path().join("config.yaml"), SITE_YAML)?;
    assert_eq!(locate(None, &data), Some((dir.path().join("config.yaml"), true)));
    assert_eq!(locate(Some(Path::new("")), &data), None);
    assert_eq!(locate(Some(Path::new("/x.yaml")), &data), Some((PathBuf::from("/x.yaml"), false)));
    Ok(())
}
