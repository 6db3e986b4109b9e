//! The field-size fixture every benchmark runs on.

use std::path::{Path, PathBuf};

/// The fixture directory (`parts.db`, `assembled_casm.db`): `CASMAN_BENCH_FIXTURE`
/// if set, else made under `scratch` by `../shared/bench/make_fixture_dbs.py`
/// (100,000 events; `CASMAN_SHARED_DIR` names another shared directory).
pub fn fixture(scratch: &Path) -> PathBuf {
    if let Ok(dir) = std::env::var("CASMAN_BENCH_FIXTURE") {
        return PathBuf::from(dir);
    }
    let shared = std::env::var_os("CASMAN_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    let script = shared.join("bench/make_fixture_dbs.py");
    let out = scratch.join("fixture");
    let status = std::process::Command::new("python3").arg(&script).arg(&out).status().expect("python3");
    assert!(status.success(), "{} failed", script.display());
    out
}
