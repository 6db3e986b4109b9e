//! Restoring and verifying versions: download to a temporary file, check the
//! SHA-256, decompress, `PRAGMA integrity_check`, then (in place) take a safety
//! backup of the current database and swap the file atomically under the
//! running daemon. A failure at any step leaves the current database untouched
//! and says which check failed.

use std::path::{Path, PathBuf};

use super::{
    layout,
    manifest::{Reason, Version},
    missing::MissingParts,
    phases::Phases,
    service::{BackupService, Progress, ProgressFn},
};
use crate::{
    db::{issued, preflight, sync_state},
    error::{Error, Result},
};

/// A downloaded version that passed every check.
#[derive(Debug)]
pub struct Verified {
    /// The version.
    pub version: Version,
    /// The raw SQLite file (deleted when dropped).
    pub file: tempfile::TempPath,
    /// False for CAsMan versions whose metadata had no checksum.
    pub checksum_checked: bool,
}

/// What an in-place restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// The version now in place.
    pub version: Version,
    /// The safety backup of what was there before, if one was stored.
    pub safety_backup: Option<Version>,
    /// A local copy of what was there before.
    pub local_copy: PathBuf,
    /// The part numbers the assembly log references that parts.db no longer
    /// holds.
    pub missing_parts: MissingParts,
}

impl BackupService {
    /// The version stored under `key`: from the manifest, or a CAsMan version
    /// (found by the manifest import).
    pub async fn find_version(&self, key: &str) -> Result<Version> {
        let db = layout::database_of(key)?;
        let (m, _) = self.manifest(db).await?;
        m.find(key.trim()).cloned().ok_or_else(|| {
            Error::NotFound(format!(
                "no backup {} in the manifest of {db} (see casmanctl sync list)",
                key.trim()
            ))
        })
    }

    /// Downloads `version` and checks it; the database is not touched.
    pub async fn fetch_verified(&self, version: &Version, progress: ProgressFn<'_>) -> Result<Verified> {
        let db = layout::database_of(&version.key)?;
        let refuse = |check: &str| {
            Error::refused(format!("backup {} failed {check}; nothing was changed", version.key))
        };
        // Downloaded (every object of a delta chain), rebuilt and hashed.
        let content = self.fetch_content(db, version, progress).await?;
        let (raw, sha) = (content.file, content.sha256);
        let expected = version.content_sha();
        let checksum_checked = expected != "unknown";
        if checksum_checked && sha != expected {
            return Err(refuse(&format!("the SHA-256 check (expected {expected}, got {sha})")));
        }
        // A matching checksum means these are the bytes of a snapshot that
        // passed PRAGMA quick_check when it was taken: the structure is
        // checked (an SQLite header, a schema that reads, the main table
        // counted below), not every page again. Without a checksum (some
        // CAsMan versions), the whole integrity check runs.
        let checked =
            if checksum_checked { preflight::check_header(&raw) } else { preflight::check(&raw).await };
        match checked {
            Ok(()) => {}
            Err(crate::db::DbError::NotSqlite { .. }) => {
                return Err(refuse("the SQLite check (not an SQLite database)"));
            }
            Err(crate::db::DbError::Integrity { detail, .. }) => {
                return Err(refuse(&format!("PRAGMA integrity_check ({detail})")));
            }
            Err(e) => return Err(refuse(&format!("the SQLite check ({e})"))),
        }
        let main = if db == crate::db::PARTS_DB { "parts" } else { "assembly" };
        let has_main = super::snapshot::has_table(&raw, main)
            .await
            .map_err(|e| refuse(&format!("the SQLite check (the schema does not read: {e})")))?;
        if !has_main {
            return Err(refuse(&format!("the content check (no table {main}: not a copy of {db})")));
        }
        Ok(Verified { version: version.clone(), file: raw, checksum_checked })
    }

    /// Adopts (if CAsMan wrote it) and migrates the downloaded copy of a
    /// version to the current schema; the live file is not touched.
    pub(super) async fn to_current_schema(&self, verified: &Verified) -> Result<()> {
        let db = layout::database_of(&verified.version.key)?;
        crate::db::prepare_replacement(&verified.file, db, &self.legacy_tz, verified.checksum_checked)
            .await
            .map_err(|e| {
                Error::refused(format!(
                    "backup {} cannot be brought to the current schema ({e}); nothing was changed",
                    verified.version.key
                ))
            })
    }

    /// Restores `key` over the live database.
    pub async fn restore_in_place(
        &self,
        key: &str,
        safety_backup: bool,
        progress: ProgressFn<'_>,
    ) -> Result<Restored> {
        let version = self.find_version(key).await?;
        let db_name = layout::database_of(&version.key)?;
        let _guard = self.lock(db_name).await?;
        let db = self.db(db_name)?.clone();
        let mut phases = Phases::start();
        // The live database that stays is read on the other core while the
        // version downloads and rebuilds: its numbers, and its parts (for
        // the missing-parts report). The one replaced is read after the swap
        // (issued::defer), from the local copy kept of it.
        let restoring_parts = db_name == crate::db::PARTS_DB;
        let other = if restoring_parts { &self.dbs.assembled } else { &self.dbs.parts };
        let live_other = issued::read_file(&other.path, other.name);
        let (verified, live) = tokio::join!(self.fetch_verified(&version, progress), live_other);
        let verified = verified?;
        phases.mark("fetch");
        let local_copy = local_copy_path(&db)?;
        // The rebuilt file is made durable (fsync, tens of ms for the field
        // database) while it is migrated and read; the swap waits for both.
        let durable = crate::db::sync_file(&verified.file);
        let checked = async {
            // Adopt (if CAsMan wrote it) and migrate the copy before the live file is touched.
            progress(Progress { database: db_name.into(), phase: "migrate", done: 0, total: 0 });
            self.to_current_schema(&verified).await?;
            phases.mark("prepare");
            // Every number the replaced file, the restored one and the other
            // sites mention stays known as issued, whatever the restored file
            // holds; and the parts the log will reference that parts.db will
            // not hold (a report). One more read: the restored file.
            let learned = async {
                let live = live?;
                let incoming = issued::read_file(&verified.file, db_name).await?;
                let missing = if restoring_parts {
                    issued::missing_parts(&live.parts, &incoming.parts)
                } else {
                    issued::missing_parts(&incoming.parts, &live.parts)
                };
                let mut set = incoming.issued;
                set.extend(&live.issued);
                self.record_issued(set).await?;
                let deferred = issued::defer(&self.dbs.state, &local_copy, db_name).await?;
                Ok::<_, Error>((missing, deferred))
            };
            let learned = learned.await.map_err(|e| {
                Error::refused(format!(
                    "the issued part numbers could not be recorded ({e}); nothing was changed"
                ))
            })?;
            phases.mark("issued");
            Ok::<_, Error>(learned)
        };
        let (checked, durable) = tokio::join!(checked, durable);
        let (missing_parts, deferred) = checked?;
        durable.map_err(|e| Error::internal("syncing the restored file", e))?;
        phases.mark("synced");
        // A safety backup in the store unless declined (nothing is uploaded
        // when the current state is already stored); a local copy always:
        // the replaced file itself, kept by link, not copied.
        let safety = if safety_backup {
            progress(Progress { database: db_name.into(), phase: "safety backup", done: 0, total: 0 });
            let outcome = self.backup_locked(&db, Reason::PreRestore, progress).await.map_err(|e| {
                Error::refused(format!(
                    "the safety backup of the current {db_name} failed ({e}); nothing was changed \
                     (use --no-backup to restore without one)"
                ))
            })?;
            Some(outcome.version)
        } else {
            None
        };
        phases.mark("safety");
        progress(Progress { database: db_name.into(), phase: "swap", done: 0, total: 0 });
        db.replace_file(&verified.file, Some(&local_copy))
            .await
            .map_err(|e| Error::internal("replacing the database file", e))?;
        // Reading the download left its (empty) -wal and -shm beside its old name.
        for side in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{side}", verified.file.display()));
        }
        // The replaced file's numbers, read now that it is kept (generation
        // waits for them, see issued::settle).
        drop(deferred);
        let state = self.dbs.state.clone();
        tokio::spawn(async move {
            if let Err(e) = issued::settle(&state).await {
                tracing::warn!(error = %e, "the replaced file's part numbers are not recorded yet");
            }
        });
        // Record the restored state as the newest version, descending from the
        // current head, so that no sync (here or at another site) undoes it;
        // meanwhile the missing parts are listed beside the local copy.
        phases.mark("swap");
        let list = local_copy.with_extension("missing-parts.txt");
        let report = tokio::task::spawn_blocking(move || MissingParts::report(&missing_parts, &list));
        let (_, report) = tokio::join!(self.record_restore(&db, &version), report);
        let missing_parts = report.map_err(|e| Error::internal("listing the missing parts", e))?;
        phases.mark("record");
        if missing_parts.total > 0 {
            tracing::warn!(
                database = db_name,
                missing = missing_parts.total,
                first = %missing_parts.listed.iter().take(10).cloned().collect::<Vec<_>>().join(" "),
                list = %missing_parts.file.as_ref().map(|f| f.display().to_string()).unwrap_or_default(),
                "the assembly log references parts that parts.db no longer holds"
            );
        }
        self.dbs.release_memory().await;
        tracing::info!(database = db_name, key = %version.key, local_copy = %local_copy.display(), phases = %phases, "restored");
        Ok(Restored { version, safety_backup: safety, local_copy, missing_parts })
    }

    /// Records in state.db, before the live database `name` is replaced by
    /// (or merged with) the file at `incoming`, every part number either
    /// mentions, and those other sites published in the parts.db manifest
    /// (when the store answers; the files alone are enough to go on).
    ///
    /// Only the file about to change is read: the numbers of a file are
    /// recorded before it is ever replaced, so those of the other database
    /// are read when its turn comes. The one exception is the assembly log
    /// when parts.db is replaced: the log may name parts (written by other
    /// programs) that only the replaced parts.db held.
    pub(super) async fn learn_issued(&self, incoming: &Path, name: &str) -> Result<()> {
        let (mut set, from_incoming) =
            tokio::try_join!(self.live_issued(name), issued::in_file(incoming, name))?;
        set.extend(&from_incoming);
        self.record_issued(set).await
    }

    /// What [`Self::learn_issued`] reads of the live files before `name` is
    /// replaced: `name` itself, and the assembly log when it is parts.db.
    async fn live_issued(&self, name: &str) -> Result<crate::inventory::Issued> {
        let mut set = issued::in_live(self.db(name)?).await?;
        if name == crate::db::PARTS_DB {
            set.extend(&issued::in_live(&self.dbs.assembled).await?);
        }
        Ok(set)
    }

    /// Records `set` (see [`Self::learn_issued`]) with the numbers other
    /// sites published.
    async fn record_issued(&self, mut set: crate::inventory::Issued) -> Result<()> {
        // The numbers other sites published, as last read (a request only
        // when this process has not read the parts.db manifest yet).
        let published = match self.cached_manifest(crate::db::PARTS_DB) {
            Some((m, _)) => Ok(m),
            None => self.manifest(crate::db::PARTS_DB).await.map(|(m, _)| m),
        };
        match published {
            Ok(m) => set.extend(&m.published_issued()),
            Err(e) => tracing::debug!(error = %e, "issued numbers of other sites not read"),
        }
        issued::record(&self.dbs.state, &set).await?;
        Ok(())
    }
}

impl BackupService {
    /// After a restore in place: records in the manifest that `restored` is
    /// now the state of this site, as a new version descending from the
    /// current head that points at the same stored object (nothing is
    /// uploaded), and makes it the base. If the store cannot be reached, the
    /// base is the restored version with reason `restore`, which sync will
    /// not fast-forward over.
    async fn record_restore(&self, db: &crate::db::Db, restored: &Version) {
        let state = &self.dbs.state;
        let recorded = async {
            let covered = sync_state::writes_since_backup(state, db.name).await?;
            let now = crate::timestamp::now();
            let mut record = None;
            let site = self.site.clone();
            self.update_manifest(db.name, |m| {
                let r =
                    restored.restored(m.head().map(|h| h.sha256.as_str()), &site, m.next_seq(&site), &now);
                if m.versions.iter().all(|v| v.sha256 != r.sha256) {
                    m.versions.push(r.clone());
                }
                m.bases.insert(site.clone(), r.sha256.clone());
                record = Some(r);
                Ok(())
            })
            .await?;
            let r = record.ok_or_else(|| Error::internal("recording the restore", "no manifest update"))?;
            // Its sidecar, so a rebuilt manifest keeps the restore (issue 31).
            if super::rebuild::parse_version_key(&r.key, db.name).is_some() {
                let side = super::rebuild::restore_sidecar_key(&r);
                let bytes = super::rebuild::sidecar_bytes(db.name, &r);
                if let Err(e) =
                    self.store.put_bytes(&side, bytes, Some(super::store::Precondition::Absent)).await
                {
                    tracing::warn!(key = %side, error = %e, "could not store the restore record's sidecar");
                }
            }
            sync_state::set_base(state, db.name, &r.key, &r.sha256, "backup").await?;
            // The last backup is now this version (its key and its time).
            sync_state::backup_stored(state, db.name, &r.key, &r.created_at, covered).await?;
            Ok::<_, Error>(r)
        }
        .await;
        if let Err(e) = recorded {
            tracing::warn!(database = db.name, error = %e, "the restore is applied but not yet recorded in the store");
            let _ = sync_state::set_base(state, db.name, &restored.key, &restored.sha256, "restore").await;
        }
    }
}

/// Where the file a restore replaces is kept: `<data dir>/safety/`.
fn local_copy_path(db: &crate::db::Db) -> Result<PathBuf> {
    let dir = db.path.parent().map(|d| d.join("safety")).unwrap_or_else(|| PathBuf::from("safety"));
    std::fs::create_dir_all(&dir).map_err(|e| Error::internal("creating the safety directory", e))?;
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3fZ").to_string();
    Ok(dir.join(format!("{}.{stamp}.pre-restore", db.name)))
}

/// The result of verifying one version.
#[derive(Debug, Clone)]
pub struct Verification {
    /// The version's key.
    pub key: String,
    /// What failed, if anything.
    pub problem: Option<String>,
    /// Whether a checksum was there to compare.
    pub checksum_checked: bool,
}

impl BackupService {
    /// Downloads `version` and runs every restore check on it.
    pub async fn verify(&self, version: &Version, progress: ProgressFn<'_>) -> Verification {
        match self.fetch_verified(version, progress).await {
            Ok(v) => {
                Verification { key: version.key.clone(), problem: None, checksum_checked: v.checksum_checked }
            }
            Err(e) => Verification {
                key: version.key.clone(),
                problem: Some(e.to_string()),
                checksum_checked: false,
            },
        }
    }

    /// [`Self::verify`] of a version taken from a manifest read earlier:
    /// `None` when it failed because it is no longer stored (retention
    /// removed it, and the versions built on it, meanwhile: `sync verify
    /// --all` while backups run), which is not damage.
    pub async fn verify_listed(&self, version: &Version, progress: ProgressFn<'_>) -> Option<Verification> {
        let result = self.verify(version, progress).await;
        if result.problem.is_some()
            && matches!(self.find_version(&version.key).await, Err(Error::NotFound(_)))
        {
            tracing::info!(key = %version.key, "not verified: removed by retention since the listing");
            return None;
        }
        Some(result)
    }
}
