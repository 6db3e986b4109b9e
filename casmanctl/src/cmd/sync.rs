//! `casmanctl sync ...`: backups, listing, restore, verify.

use std::{io::Write, path::PathBuf};

use casman_proto::v1::{
    BackupRequest, GetSyncStatusRequest, ListBackupsRequest, MaintainRequest, QuotaItem, QuotaUsage,
    RepairRequest, RestoreRequest, TransferProgress, VerifyRequest, backup_event, maintain_event,
    restore_event, verify_event,
};
use clap::Subcommand;
use serde_json::{Value, json};

use super::progress::Bar;
use crate::{
    cli::{Databases, Prefer},
    client::Conn,
    error::CtlError,
    output,
};

/// Sync commands (CAsMan's `casman sync ...`).
#[derive(Debug, Subcommand)]
pub enum SyncCmd {
    /// Fetch newer versions from other sites: pulls when the local database is
    /// unchanged since it was last synced; when both sides changed, keeps the
    /// local state as a branch and reports the divergence.
    Sync {
        #[command(flatten)]
        dbs: Databases,
        /// Replace the local file with the store's newest version whatever its
        /// state (up to date, local changes, diverged), after storing the local
        /// state as a safety version. Root or the admin group; asks first.
        #[arg(long)]
        force: bool,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(long, short = 'y', requires = "force")]
        yes: bool,
    },
    /// Bring a diverged database up to date by adding the other site's changes.
    Merge {
        #[command(flatten)]
        dbs: Databases,
        /// Which side wins conflicts.
        #[arg(long, value_enum)]
        prefer: Option<Prefer>,
    },
    /// Back up the databases now (both unless --parts or --assembled).
    Backup {
        #[command(flatten)]
        dbs: Databases,
    },
    /// List the stored versions, newest first.
    List {
        /// parts.db or assembled_casm.db.
        #[arg(long, value_name = "DB")]
        db: Option<String>,
        /// One table row per version with every column (wider than 100 columns).
        #[arg(long)]
        wide: bool,
    },
    /// Restore a version (a key as `sync list` prints it, e.g.
    /// backups/parts.db/20261201_212528_lab_3_parts.db.zst, or CAsMan's
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
        /// Do not ask for confirmation of a restore in place (needed without a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Bring every site back to the state of a stored version by compensating
    /// changes (previewed as a diff, confirmed, audited, replicated like any
    /// change; the log keeps everything before them). `restore` instead puts
    /// the version's file back at this site only, which then catches up with
    /// every change the store holds. Root or the admin group.
    Revert {
        /// The version's key (see `sync list`).
        key: String,
        /// Show the changes only.
        #[arg(long)]
        preview: bool,
        /// Do not ask for confirmation (needed without a terminal).
        #[arg(long, short = 'y', conflicts_with = "preview")]
        yes: bool,
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
    /// Backup settings, store reachability, each database's backup state,
    /// free-tier quota (this site and the fleet) and maintenance.
    Status,
    /// Storage-class maintenance now: move versions back to the configured
    /// class, report missing or damaged ones, verify a sample, apply retention.
    Maintain,
    /// Rebuild a missing or unreadable manifest (backups/<db>/MANIFEST.json)
    /// from the objects in the store (both databases unless --parts or
    /// --assembled). A readable manifest is left alone. Root or the admin group.
    Repair {
        #[command(flatten)]
        dbs: Databases,
    },
}

/// Shows a progress step on `bar`.
pub(super) fn show_progress(bar: &mut Bar, p: &TransferProgress) {
    bar.update(&format!("{} {}", p.database, p.phase), p.done_bytes, p.total_bytes);
}

/// Runs a sync command.
pub async fn run(conn: &Conn, cmd: SyncCmd, as_json: bool) -> Result<(), CtlError> {
    match cmd {
        SyncCmd::Sync { dbs, force, yes } => {
            if force {
                let which = dbs.names().join(" and ");
                super::prompt::confirm(
                    &format!(
                        "A forced sync replaces {which} with the store's newest version (the local state is \
                         stored first as a safety version)"
                    ),
                    yes,
                )?;
            }
            super::sync_sites::sync(conn, dbs, force, as_json).await
        }
        SyncCmd::Merge { dbs, prefer } => super::sync_sites::merge(conn, dbs, prefer, as_json).await,
        SyncCmd::Backup { dbs } => backup(conn, dbs.request(), as_json).await,
        SyncCmd::List { db, wide } => list(conn, db, wide, as_json).await,
        SyncCmd::Restore { key, dest, no_backup, yes } => {
            if dest.is_none() {
                super::prompt::confirm(&format!("Restoring {key} replaces the live database"), yes)?;
            }
            restore(conn, key, dest, no_backup, as_json).await
        }
        SyncCmd::Revert { key, preview, yes } => {
            super::sync_revert::revert(conn, key, preview, yes, as_json).await
        }
        SyncCmd::Verify { db, all, key } => verify(conn, db, all, key, as_json).await,
        SyncCmd::Status => status(conn, as_json).await,
        SyncCmd::Maintain => maintain(conn, as_json).await,
        SyncCmd::Repair { dbs } => repair(conn, dbs.request(), as_json).await,
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
                        crate::output::say!(
                            "{}  {}  {}  {}",
                            v.key,
                            output::bytes(v.stored_bytes),
                            v.created_at,
                            v.database
                        );
                    } else {
                        crate::output::say!(
                            "{} unchanged since {} ({}); nothing uploaded",
                            v.database,
                            v.key,
                            v.created_at
                        );
                    }
                }
                let mut j = output::message(&v);
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

async fn list(conn: &Conn, db: Option<String>, wide: bool, as_json: bool) -> Result<(), CtlError> {
    let r = conn
        .backups()
        .list_backups(conn.request(ListBackupsRequest { database: db.unwrap_or_default() }))
        .await?
        .into_inner();
    if as_json {
        output::json(&json!({ "backups": output::messages(&r.versions) }));
        return Ok(());
    }
    if r.versions.is_empty() {
        crate::output::say!("No backups found.");
        return Ok(());
    }
    crate::output::say!("Available Backups ({}):", r.versions.len());
    crate::output::put!("{}", super::sync_list::render(&r.versions, wide));
    if wide {
        crate::output::say!();
    }
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
            "restored": output::message(&v),
            "dest": dest,
            "safety_backup": done.safety_backup.as_ref().map(output::message),
            "local_copy": done.local_copy,
            "checksum_checked": done.checksum_checked,
            "missing_parts": done.missing_parts,
            "missing_parts_total": done.missing_parts_total,
            "missing_parts_file": (!done.missing_parts_file.is_empty()).then_some(&done.missing_parts_file),
        }));
        return Ok(());
    }
    match &dest {
        Some(d) => crate::output::say!("verified copy of {} written to {}", v.key, d.display()),
        None => {
            crate::output::say!("restored {} into {}", v.key, v.database);
            if let Some(s) = &done.safety_backup {
                crate::output::say!("  the previous state is kept as {}", s.key);
            }
            crate::output::say!("  local copy of the previous state: {}", done.local_copy);
            if done.missing_parts_total > 0 {
                crate::output::say!(
                    "  ⚠ the assembly log references {} part(s) that parts.db no longer holds \
                     (their numbers stay issued and are not generated again):",
                    done.missing_parts_total
                );
                for p in &done.missing_parts {
                    crate::output::say!("    {p}");
                }
                let more = done.missing_parts_total.saturating_sub(done.missing_parts.len() as u64);
                if more > 0 {
                    let file = &done.missing_parts_file;
                    if file.is_empty() {
                        crate::output::say!("    … and {more} more");
                    } else {
                        crate::output::say!("    … and {more} more; all of them are listed in {file}");
                    }
                }
            }
        }
    }
    if !done.checksum_checked {
        crate::output::say!("  note: CAsMan recorded no checksum for this version; integrity was checked");
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
                        crate::output::say!("✓ {}", r.key);
                    } else {
                        crate::output::say!("✗ {}: {}", r.key, r.problem);
                    }
                }
                results.push(output::message(&r));
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

fn item_json(i: &Option<QuotaItem>, marks: bool) -> Value {
    let i = i.clone().unwrap_or_default();
    let mut j = json!({
        "used": i.used, "limit": i.limit, "percent": (i.fraction * 1000.0).round() / 10.0, "level": i.level,
    });
    if marks {
        j["mark"] = json!(mark(&i.level));
    }
    j
}

fn usage_json(u: &Option<QuotaUsage>) -> Value {
    let u = u.clone().unwrap_or_default();
    json!({
        "storage": item_json(&u.storage, true),
        "class_a": item_json(&u.class_a, true),
        "class_b": item_json(&u.class_b, true),
    })
}

/// ✓, ⚠ or ✗ for a quota level.
fn mark(level: &str) -> &'static str {
    match level {
        "block" => "✗",
        "warn" => "⚠",
        _ => "✓",
    }
}

fn print_usage(u: &Option<QuotaUsage>) {
    let u = u.clone().unwrap_or_default();
    let gb = |b: u64| b as f64 / (1024.0 * 1024.0 * 1024.0);
    let limit_gb = |b: u64| {
        let s = format!("{:.2}", gb(b));
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    };
    let s = u.storage.unwrap_or_default();
    crate::output::say!(
        "  Storage:              {} {:.2} / {} GB ({:.1}%)",
        mark(&s.level),
        gb(s.used),
        limit_gb(s.limit),
        s.fraction * 100.0
    );
    for (label, i) in [("Class A Ops (writes):", u.class_a), ("Class B Ops (reads): ", u.class_b)] {
        let i = i.unwrap_or_default();
        crate::output::say!(
            "  {label} {} {} / {} ({:.1}%)",
            mark(&i.level),
            output::thousands(i.used),
            output::thousands(i.limit),
            i.fraction * 100.0
        );
    }
}

/// A window in milliseconds as the configuration writes it, whole seconds
/// from two seconds up.
fn window_text(ms: u64) -> String {
    let d = std::time::Duration::from_millis(ms);
    casman_proto::duration::format(if ms >= 2000 { std::time::Duration::from_secs(d.as_secs()) } else { d })
}

/// `10s`, `10s (widened to 2m 40s: Class A at 71% …)` or `off`.
fn replication_line(r: &casman_proto::v1::ReplicationWindow) -> String {
    if r.configured_ms == 0 {
        return "off (backups follow the count and time triggers)".into();
    }
    let configured = window_text(r.configured_ms);
    if r.widened {
        format!("{configured} (widened to {}: {})", window_text(r.effective_ms), r.reason)
    } else {
        configured
    }
}

async fn status(conn: &Conn, as_json: bool) -> Result<(), CtlError> {
    let s = conn.backups().get_sync_status(conn.request(GetSyncStatusRequest {})).await?.into_inner();
    let cfg = s.settings.clone().unwrap_or_default();
    let store = s.store.clone().unwrap_or_default();
    let q = s.quota.clone().unwrap_or_default();
    let m = s.maintenance.clone().unwrap_or_default();
    let r = s.replication.clone().unwrap_or_default();
    if as_json {
        let dbs: Vec<Value> = s
            .databases
            .iter()
            .map(|d| {
                json!({
                    "db": d.database, "size_bytes": d.size_bytes, "writes_since_backup": d.writes_since_backup,
                    "last_backup_at": d.last_backup_at, "last_backup_key": d.last_backup_key,
                    "pending": d.pending.as_ref().map(|p| json!({
                        "reason": p.reason, "first_failed_at": p.first_failed_at, "attempts": p.attempts,
                        "last_error": p.last_error, "next_attempt_at": p.next_attempt_at,
                    })),
                    "base_key": d.base_key, "base_sha256": d.base_sha256,
                    "newer": d.newer.as_ref().map(output::message),
                    "versions": (d.versions >= 0).then_some(d.versions), "stored_bytes": d.stored_bytes,
                    "lost": d.lost,
                    "spooled": d.spooled.unwrap_or(0),
                    "conflicts": d.conflicts.iter().map(output::message).collect::<Vec<_>>(),
                })
            })
            .collect();
        output::json(&json!({
            "site": s.site,
            "config": {
                "backend": cfg.backend, "location": cfg.location, "keep_versions": cfg.keep_versions,
                "backup_on_scan_count": cfg.backup_on_scan_count, "backup_on_seconds": cfg.backup_on_seconds,
                "storage_class": cfg.storage_class,
                "maintenance_interval_seconds": cfg.maintenance_interval_seconds,
                "verify_period_seconds": cfg.verify_period_seconds,
            },
            "store": { "enabled": store.enabled, "reachable": store.reachable, "error": store.error },
            "databases": dbs,
            "quota": {
                "enforced": q.enforced, "month": q.month,
                "warn_threshold": q.warn_threshold, "block_threshold": q.block_threshold,
                "site": usage_json(&q.site), "fleet": usage_json(&q.fleet),
                "backups_this_month": q.backups_this_month, "restores_this_month": q.restores_this_month,
                "other_sites": q.other_sites.iter().map(|l| json!({
                    "site": l.site, "month": l.month, "class_a": l.class_a, "class_b": l.class_b,
                    "updated_at": l.updated_at,
                })).collect::<Vec<_>>(),
            },
            "maintenance": {
                "last_at": m.last_at, "last_summary": m.last_summary, "next_at": m.next_at, "due": m.due,
            },
            "replication": {
                "configured_ms": r.configured_ms, "effective_ms": r.effective_ms, "widened": r.widened,
                "class_a_fraction": r.class_a_fraction, "warn_threshold": r.warn_threshold, "reason": r.reason,
            },
        }));
        return Ok(());
    }
    let secs = output::duration_secs;
    crate::output::say!("Sync configuration (site {}):", s.site);
    let location = if cfg.location.is_empty() { String::new() } else { format!(" ({})", cfg.location) };
    crate::output::say!("  Backend:              {}{location}", cfg.backend);
    crate::output::say!("  Keep versions:        {}", cfg.keep_versions);
    crate::output::say!(
        "  Automatic backup:     after {} writes, or {} after the last backup",
        cfg.backup_on_scan_count,
        secs(cfg.backup_on_seconds)
    );
    crate::output::say!("  Replication window:   {}", replication_line(&r));
    crate::output::say!("  Storage class:        {}", cfg.storage_class);
    let reach = match (store.enabled, store.reachable) {
        (false, _) => "backups disabled".to_owned(),
        (true, true) => "✓ reachable".to_owned(),
        (true, false) => format!("✗ unreachable: {}", store.error),
    };
    crate::output::say!("  Store:                {reach}");
    crate::output::say!();
    crate::output::say!("Databases:");
    for d in &s.databases {
        crate::output::say!("  {} ({}):", d.database, output::bytes(d.size_bytes));
        crate::output::say!("    Writes since last backup: {}", d.writes_since_backup);
        if d.last_backup_at.is_empty() {
            crate::output::say!("    Last backup:              never");
        } else {
            crate::output::say!("    Last backup:              {} ({})", d.last_backup_at, d.last_backup_key);
        }
        if let Some(p) = &d.pending {
            crate::output::say!(
                "    ⚠ Pending backup:         {} attempt(s) since {}, next {}: {}",
                p.attempts,
                p.first_failed_at,
                p.next_attempt_at,
                p.last_error
            );
        }
        for c in &d.conflicts {
            crate::output::say!("    ⚠ Conflict ({}):  {}", c.kind, c.detail);
        }
        if let Some(n) = d.spooled.filter(|n| *n > 0) {
            crate::output::say!(
                "    ⚠ Offline spool:          {n} version(s) taken while the store was unreachable, stored \
                 in order when it answers"
            );
        }
        if !d.lost.is_empty() {
            crate::output::say!(
                "    ✗ The store no longer holds the last backup ({}): the current state is stored again by \
                 `casmanctl sync maintain` or the next backup",
                d.lost
            );
        }
        if let Some(n) = &d.newer {
            crate::output::say!("    Newer version at site {}: {} ({})", n.site, n.key, n.created_at);
        }
    }
    crate::output::say!();
    crate::output::say!("R2 Free Tier Quota Usage (this site, {}):", q.month);
    print_usage(&q.site);
    crate::output::say!("  Backups this month:   {}", q.backups_this_month);
    crate::output::say!("  Restores this month:  {}", q.restores_this_month);
    crate::output::say!("Whole fleet (this site and {} other site(s)):", q.other_sites.len());
    print_usage(&q.fleet);
    if !q.enforced {
        crate::output::say!("  (backend {}: requests are counted, limits are not enforced)", cfg.backend);
    }
    crate::output::say!();
    crate::output::say!("Maintenance:");
    if m.last_at.is_empty() {
        crate::output::say!("  Last:                 never");
    } else {
        crate::output::say!("  Last:                 {} ({})", m.last_at, m.last_summary);
    }
    crate::output::say!("  Next:                 {}", if m.due { "due" } else { m.next_at.as_str() });
    Ok(())
}

async fn maintain(conn: &Conn, as_json: bool) -> Result<(), CtlError> {
    let mut stream = conn.backups().maintain(conn.request(MaintainRequest {})).await?.into_inner();
    let mut bar = Bar::new(!as_json);
    let mut report = None;
    while let Some(ev) = stream.message().await? {
        match ev.event {
            Some(maintain_event::Event::Progress(p)) => show_progress(&mut bar, &p),
            Some(maintain_event::Event::Report(r)) => report = Some(r),
            None => {}
        }
    }
    bar.clear();
    let r = report.ok_or_else(|| CtlError::Io("the daemon ended maintenance without a report".into()))?;
    if as_json {
        output::json(&output::message(&r));
        return maintain_outcome(&r);
    }
    for m in &r.moved {
        crate::output::say!("moved {} from {} to {}", m.key, m.from_class, m.to_class);
    }
    for k in &r.missing {
        crate::output::say!("✗ missing: {k}");
    }
    for m in &r.size_mismatches {
        crate::output::say!(
            "✗ size mismatch: {} (manifest {} bytes, store {} bytes)",
            m.key,
            m.expected,
            m.actual
        );
    }
    for v in &r.verified {
        if v.ok {
            crate::output::say!("✓ verified {}", v.key);
        } else {
            crate::output::say!("✗ {}: {}", v.key, v.problem);
        }
    }
    for k in &r.deleted {
        crate::output::say!("deleted by retention: {k}");
    }
    for k in &r.orphans {
        crate::output::say!("orphan (no version references it; kept until sync.orphan_grace): {k}");
    }
    for k in &r.orphans_deleted {
        crate::output::say!("deleted orphan (no version referenced it): {k}");
    }
    for e in &r.errors {
        crate::output::say!("error: {e}");
    }
    crate::output::say!("{}", r.summary);
    maintain_outcome(&r)
}

async fn repair(conn: &Conn, databases: Vec<String>, as_json: bool) -> Result<(), CtlError> {
    let r = conn.backups().repair(conn.request(RepairRequest { databases })).await?.into_inner();
    if as_json {
        output::json(&output::message(&r));
        return Ok(());
    }
    for d in &r.results {
        let mark = if d.repaired { "repaired" } else { "ok" };
        crate::output::say!("{}: {mark}: {} ({} versions listed)", d.database, d.detail, d.versions);
    }
    Ok(())
}

/// Missing versions, size mismatches, failed checks and errors make
/// `sync maintain` fail (exit 1), also with `--json`.
fn maintain_outcome(r: &casman_proto::v1::MaintenanceReport) -> Result<(), CtlError> {
    let failed = r.verified.iter().filter(|v| !v.ok).count();
    let problems = r.missing.len() + r.size_mismatches.len() + failed + r.errors.len();
    if problems == 0 {
        return Ok(());
    }
    Err(CtlError::Io(format!(
        "maintenance found {problems} problem(s): {} missing, {} size mismatches, {failed} failed verification, {} errors",
        r.missing.len(),
        r.size_mismatches.len(),
        r.errors.len()
    )))
}
