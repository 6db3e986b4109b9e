//! `casmanctl sync ...`: backups, listing, restore, verify.

use std::{io::Write, path::PathBuf};

use casman_proto::v1::{
    BackupRequest, BackupVersion, ListBackupsRequest, RestoreRequest, TransferProgress, VerifyRequest,
    backup_event, restore_event, verify_event,
};
use clap::Subcommand;
use serde_json::{Value, json};

use super::progress::Bar;
use crate::{client::Conn, error::CtlError, output};

/// Sync commands (CAsMan's `casman sync ...`).
#[derive(Debug, Subcommand)]
pub enum SyncCmd {
    /// Back up the databases now (both unless --parts or --assembled).
    Backup {
        /// Only parts.db.
        #[arg(long)]
        parts: bool,
        /// Only assembled_casm.db.
        #[arg(long)]
        assembled: bool,
    },
    /// List the stored versions, newest first.
    List {
        /// parts.db or assembled_casm.db.
        #[arg(long, value_name = "DB")]
        db: Option<String>,
    },
    /// Restore a version (a key from `sync list`, e.g.
    /// backups/parts.db/20241208_143022_parts.db) over the live database, or
    /// with --dest write a verified copy to PATH and leave the database alone.
    Restore {
        /// The version's key.
        key: String,
        /// Write the verified copy here instead of restoring in place.
        #[arg(long, value_name = "PATH")]
        dest: Option<PathBuf>,
        /// Do not take a safety backup of the current database first.
        #[arg(long)]
        no_backup: bool,
    },
    /// Download versions and check their checksum and integrity (the newest by default).
    Verify {
        /// parts.db or assembled_casm.db (default: both).
        #[arg(long, value_name = "DB")]
        db: Option<String>,
        /// Every version, not just the newest.
        #[arg(long)]
        all: bool,
        /// One version by key.
        #[arg(long, value_name = "KEY")]
        key: Option<String>,
    },
}

fn selected(parts: bool, assembled: bool) -> Vec<String> {
    match (parts, assembled) {
        (true, false) => vec!["parts.db".into()],
        (false, true) => vec!["assembled_casm.db".into()],
        _ => vec![],
    }
}

/// The `--json` shape of a version.
pub fn version_json(v: &BackupVersion) -> Value {
    json!({
        "key": v.key, "db": v.database, "sha256": v.sha256, "raw_bytes": v.raw_bytes,
        "stored_bytes": v.stored_bytes, "created_at": v.created_at, "site": v.site, "seq": v.seq,
        "reason": v.reason, "codec": v.codec, "parent": v.parent, "record_counts": v.record_counts,
        "schema_version": v.schema_version, "branch": v.branch,
    })
}

fn show_progress(bar: &mut Bar, p: &TransferProgress) {
    bar.update(&format!("{} {}", p.database, p.phase), p.done_bytes, p.total_bytes);
}

/// Runs a sync command.
pub async fn run(conn: &Conn, cmd: SyncCmd, as_json: bool) -> Result<(), CtlError> {
    match cmd {
        SyncCmd::Backup { parts, assembled } => backup(conn, selected(parts, assembled), as_json).await,
        SyncCmd::List { db } => list(conn, db, as_json).await,
        SyncCmd::Restore { key, dest, no_backup } => restore(conn, key, dest, no_backup, as_json).await,
        SyncCmd::Verify { db, all, key } => verify(conn, db, all, key, as_json).await,
    }
}

async fn backup(conn: &Conn, databases: Vec<String>, as_json: bool) -> Result<(), CtlError> {
    let mut stream = conn.backups().backup(conn.request(BackupRequest { databases })).await?.into_inner();
    let mut bar = Bar::new(!as_json);
    let mut done = Vec::new();
    while let Some(ev) = stream.message().await? {
        match ev.event {
            Some(backup_event::Event::Progress(p)) => show_progress(&mut bar, &p),
            Some(backup_event::Event::Done(d)) => {
                bar.clear();
                let v = d.version.unwrap_or_default();
                if !as_json {
                    if d.uploaded {
                        println!(
                            "{}  {}  {}  {}",
                            v.key,
                            output::bytes(v.stored_bytes),
                            v.created_at,
                            v.database
                        );
                    } else {
                        println!(
                            "{} unchanged since {} ({}); nothing uploaded",
                            v.database, v.key, v.created_at
                        );
                    }
                }
                let mut j = version_json(&v);
                j["uploaded"] = json!(d.uploaded);
                done.push(j);
            }
            None => {}
        }
    }
    bar.clear();
    if as_json {
        output::json(&json!({ "backups": done }));
    }
    Ok(())
}

async fn list(conn: &Conn, db: Option<String>, as_json: bool) -> Result<(), CtlError> {
    let r = conn
        .backups()
        .list_backups(conn.request(ListBackupsRequest { database: db.unwrap_or_default() }))
        .await?
        .into_inner();
    if as_json {
        output::json(&json!({ "backups": r.versions.iter().map(version_json).collect::<Vec<_>>() }));
        return Ok(());
    }
    if r.versions.is_empty() {
        println!("No backups found.");
        return Ok(());
    }
    println!("Available Backups ({}):", r.versions.len());
    let mut t = output::table(["key", "time", "size", "records", "reason", "site", "checksum"]);
    for v in &r.versions {
        let main = if v.database == "parts.db" { "parts" } else { "assembly" };
        let records = v.record_counts.get(main).map(|n| format!("{n} {main}")).unwrap_or_else(|| "-".into());
        let sha = if v.sha256.len() > 16 { format!("{}...", &v.sha256[..16]) } else { v.sha256.clone() };
        let reason = if v.branch { format!("{} (branch)", v.reason) } else { v.reason.clone() };
        t.add_row([
            v.key.clone(),
            v.created_at.clone(),
            output::bytes(v.stored_bytes),
            records,
            reason,
            v.site.clone(),
            sha,
        ]);
    }
    println!("{t}");
    Ok(())
}

async fn restore(
    conn: &Conn,
    key: String,
    dest: Option<PathBuf>,
    no_backup: bool,
    as_json: bool,
) -> Result<(), CtlError> {
    let to_client = dest.is_some();
    // The copy is written next to its destination and renamed when complete.
    let mut out = match &dest {
        Some(d) => {
            let dir = d.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
            Some(
                tempfile::Builder::new()
                    .prefix(".casman-restore")
                    .tempfile_in(dir)
                    .map_err(|e| CtlError::Io(format!("{}: {e}", dir.display())))?,
            )
        }
        None => None,
    };
    let req = RestoreRequest { key, no_backup, to_client };
    let mut stream = conn.backups().restore(conn.request(req)).await?.into_inner();
    let mut bar = Bar::new(!as_json);
    let mut done = None;
    while let Some(ev) = stream.message().await? {
        match ev.event {
            Some(restore_event::Event::Progress(p)) => show_progress(&mut bar, &p),
            Some(restore_event::Event::Chunk(bytes)) => {
                if let Some(f) = out.as_mut() {
                    f.write_all(&bytes).map_err(|e| CtlError::Io(format!("writing the copy: {e}")))?;
                }
            }
            Some(restore_event::Event::Done(d)) => done = Some(d),
            None => {}
        }
    }
    bar.clear();
    let done = done.ok_or_else(|| CtlError::Io("the daemon ended the restore without a result".into()))?;
    let v = done.version.clone().unwrap_or_default();
    if let (Some(tmp), Some(dest)) = (out, &dest) {
        tmp.as_file().sync_all().map_err(|e| CtlError::Io(format!("writing the copy: {e}")))?;
        tmp.persist(dest).map_err(|e| CtlError::Io(format!("{}: {}", dest.display(), e.error)))?;
    }
    if as_json {
        output::json(&json!({
            "restored": version_json(&v),
            "dest": dest,
            "safety_backup": done.safety_backup.as_ref().map(version_json),
            "local_copy": done.local_copy,
            "checksum_checked": done.checksum_checked,
        }));
        return Ok(());
    }
    match &dest {
        Some(d) => println!("verified copy of {} written to {}", v.key, d.display()),
        None => {
            println!("restored {} into {}", v.key, v.database);
            if let Some(s) = &done.safety_backup {
                println!("  the previous state is kept as {}", s.key);
            }
            println!("  local copy of the previous state: {}", done.local_copy);
        }
    }
    if !done.checksum_checked {
        println!("  note: CAsMan recorded no checksum for this version; integrity was checked");
    }
    Ok(())
}

async fn verify(
    conn: &Conn,
    db: Option<String>,
    all: bool,
    key: Option<String>,
    as_json: bool,
) -> Result<(), CtlError> {
    let req = VerifyRequest { database: db.unwrap_or_default(), all, key: key.unwrap_or_default() };
    let mut stream = conn.backups().verify(conn.request(req)).await?.into_inner();
    let mut bar = Bar::new(!as_json);
    let mut results = Vec::new();
    let mut failed = 0;
    while let Some(ev) = stream.message().await? {
        match ev.event {
            Some(verify_event::Event::Progress(p)) => show_progress(&mut bar, &p),
            Some(verify_event::Event::Result(r)) => {
                bar.clear();
                if !r.ok {
                    failed += 1;
                }
                if !as_json {
                    if r.ok {
                        println!("✓ {}", r.key);
                    } else {
                        println!("✗ {}: {}", r.key, r.problem);
                    }
                }
                results.push(json!({"key": r.key, "ok": r.ok, "problem": r.problem, "checksum_checked": r.checksum_checked}));
            }
            None => {}
        }
    }
    bar.clear();
    if as_json {
        output::json(&json!({ "results": results }));
    }
    if failed > 0 {
        return Err(CtlError::Io(format!("{failed} version(s) failed verification")));
    }
    Ok(())
}
