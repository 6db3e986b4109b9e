//! Snapshots of what casmanctl prints, from constructed API messages (no
//! daemon): the human output of a few representative commands and the
//! `--json` mapping of a message. `cargo insta review` after an intended change.

use casman_proto::v1::{
    AntennaPosition, BackendSummary, BackupVersion, DatabaseInfo, GetPositionResponse, GetStatusResponse,
    Part,
};

use crate::{cmd, output};

fn part(n: u32, pol: &str) -> Part {
    Part {
        id: i64::from(n),
        part_number: format!("ANT{n:05}{pol}"),
        part_type: "ANTENNA".into(),
        polarization: pol.into(),
        date_created: "2026-12-01 21:25:28".into(),
        ..Default::default()
    }
}

#[test]
fn status_for_people() {
    let s = GetStatusResponse {
        version: "0.1.0".into(),
        protocol: 1,
        uptime_seconds: 3 * 3600 + 12 * 60 + 5,
        pid: 4242,
        data_dir: "/var/lib/casman".into(),
        socket: "/run/casman/casmand.sock".into(),
        backend: Some(BackendSummary {
            kind: "local".into(),
            location: "/var/lib/casman/backups".into(),
            enabled: true,
        }),
        databases: vec![
            DatabaseInfo {
                name: "parts.db".into(),
                path: "/var/lib/casman/parts.db".into(),
                size_bytes: 28_672,
                schema_version: 3,
            },
            DatabaseInfo {
                name: "assembled_casm.db".into(),
                path: "/var/lib/casman/assembled_casm.db".into(),
                size_bytes: 5 * 1024 * 1024,
                schema_version: 2,
            },
        ],
        site_id: "lab".into(),
        started_at: "2026-12-01T18:13:23Z".into(),
        // Backup state and health: shown when the daemon reports them.
        ..Default::default()
    };
    insta::assert_snapshot!(cmd::daemon::status_text(&s));
}

#[test]
fn parts_list_for_people() {
    insta::assert_snapshot!(cmd::parts::parts_text(&[part(1, "P1"), part(2, "P2"), part(3, "")]));
    assert_eq!(cmd::parts::parts_text(&[]), "No parts found.\n");
}

#[test]
fn sync_list_for_people() {
    let v = BackupVersion {
        key: "backups/parts.db/20261201_212528_lab_3_parts.db.zst".into(),
        database: "parts.db".into(),
        sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        raw_bytes: 28_672,
        stored_bytes: 3_210,
        created_at: "2026-12-01T21:25:28Z".into(),
        site: "lab".into(),
        seq: 3,
        reason: "manual".into(),
        record_counts: [("parts".to_owned(), 44)].into_iter().collect(),
        ..Default::default()
    };
    let branch = BackupVersion { key: v.key.replace("_3_", "_4_"), branch: true, seq: 4, ..v.clone() };
    insta::assert_snapshot!("sync_list", cmd::sync_list::render(&[branch.clone(), v.clone()], false));
    insta::assert_snapshot!("sync_list_wide", cmd::sync_list::render(&[branch, v], true));
}

/// `--json` is the proto3 JSON mapping: proto field names, every scalar with
/// its default, an unset message left out, 64-bit integers as numbers.
#[test]
fn json_is_the_proto_mapping() {
    let r = GetPositionResponse {
        position: Some(AntennaPosition {
            id: 7,
            antenna_number: "ANT00001".into(),
            grid_code: "CN002E03".into(),
            ..Default::default()
        }),
        grid_code: "CN002E03".into(),
        kernel_index: Some(0),
        coordinate: None,
    };
    insta::assert_snapshot!(serde_json::to_string_pretty(&output::message(&r)).unwrap_or_default());
    let p = output::message(&part(1, "P1"));
    assert_eq!(p["id"], 1);
    assert_eq!(p["historic"], false);
}
