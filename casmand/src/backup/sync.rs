//! Sync between field sites. Each site's database descends from a manifest
//! version, its base. Pulling replaces the local file only when it can do so
//! without losing anything: the local file is unchanged since its base and
//! the base is an ancestor of the remote head (a fast-forward), or the site is
//! a new installation with no data of its own. When both sides changed, the
//! local state is backed up first (a branch, nothing lost) and the divergence
//! is reported; `sync merge` brings the other side's changes in.
//!
//! `--force` ("force download even if up-to-date") replaces the local file
//! with the store's newest version in every state (up to date, local ahead,
//! diverged), after storing the local state as a pre-restore safety version
//! (never a sync head, so no site pulls it back) unless the store already
//! holds exactly that state.

use super::{
    manifest::{Manifest, Reason, Version},
    service::{BackupService, Progress, ProgressFn},
};
use crate::{
    db::{
        merge::{self, Merged, Prefer},
        sync_state,
    },
    error::{Error, Result},
};

/// What syncing one database did.
#[derive(Debug, Clone)]
pub enum SyncOutcome {
    /// The local file is the remote head.
    UpToDate(Option<Version>),
    /// The remote head was downloaded, verified and swapped in.
    Pulled {
        /// The version now in place.
        version: Version,
        /// The backup of the replaced local state, when one was needed.
        safety: Option<Version>,
        /// True when `--force` replaced local changes.
        forced: bool,
    },
    /// Local changes, nothing new remotely: nothing to pull (back them up).
    LocalAhead {
        /// Writes not yet backed up.
        unsaved_writes: i64,
    },
    /// Both sides changed since the common base (the whole-file sync of
    /// earlier versions; `sync sync` now exchanges changes instead).
    Diverged(Divergence),
    /// Changes exchanged: this site's published, the other sites' applied
    /// (`super::exchange`). The live file was not replaced.
    Exchanged(super::exchange::Exchanged),
}

impl SyncOutcome {
    /// The outcome in one word: `up-to-date`, `pulled`, `forced`,
    /// `local-ahead` or `diverged` (answered and audited).
    pub fn state(&self) -> &'static str {
        match self {
            SyncOutcome::UpToDate(_) => "up-to-date",
            SyncOutcome::Pulled { forced: true, .. } => "forced",
            SyncOutcome::Pulled { .. } => "pulled",
            SyncOutcome::LocalAhead { .. } => "local-ahead",
            SyncOutcome::Diverged(_) => "diverged",
            SyncOutcome::Exchanged(_) => "exchanged",
        }
    }
}

/// Two sites changed the same database.
#[derive(Debug, Clone)]
pub struct Divergence {
    /// The local state, stored as a branch before anything else.
    pub local: Version,
    /// The remote head.
    pub remote: Version,
    /// The version both descend from, if known.
    pub base: Option<String>,
    /// Versions stored since the base by other sites.
    pub remote_versions: usize,
    /// Rows per table: local minus remote.
    pub row_differences: Vec<(String, i64, i64)>,
}

/// What merging did.
#[derive(Debug, Clone)]
pub struct MergeOutcome {
    /// The SQL side: rows added, conflicts.
    pub merged: Merged,
    /// The merged state, stored with both parents (when applied).
    pub version: Option<Version>,
    /// The remote head that was merged.
    pub remote: Version,
    /// True when this site's file already contained the remote head:
    /// nothing to merge, nothing written.
    pub up_to_date: bool,
}

fn is_empty(counts: &std::collections::BTreeMap<String, i64>) -> bool {
    counts.values().all(|n| *n == 0)
}

impl BackupService {
    /// Syncs `db` with the store (see the module documentation).
    pub async fn sync(&self, db: &str, force: bool, progress: ProgressFn<'_>) -> Result<SyncOutcome> {
        self.check_quota(crate::backup::quota::Op::Sync).await?;
        let _guard = self.lock(db).await?;
        let live = self.db(db)?.clone();
        // Sites that exchange changes read the site list beside the manifest
        // and, once the file has a base (a version stored or taken: the
        // exchange follows), publish beside them too: publishing needs
        // neither. One round trip instead of three on a field site's link.
        let exchanging = !force && self.exchange_changes;
        let publishing = exchanging && sync_state::base(&self.dbs.state, db).await?.is_some();
        let (manifest, ahead) = if exchanging {
            let publish = async {
                if publishing { Some((live.name, self.publish_changes(live.name).await)) } else { None }
            };
            let (manifest, sites, published) = tokio::join!(self.manifest(db), self.site_list(), publish);
            (manifest?.0, super::exchange::Ahead { sites: Some(sites), published })
        } else {
            (self.manifest(db).await?.0, super::exchange::Ahead::default())
        };
        // Whatever happens next, the numbers other sites issued are known here.
        let published = manifest.published_issued();
        if !published.is_empty() && !crate::db::issued::load(&self.dbs.state).await?.covers(&published) {
            crate::db::issued::record(&self.dbs.state, &published).await?;
            // ...and the blocks they were issued from (only when something
            // new was learned: an up-to-date sync stays one conditional GET).
            self.refresh_leases_quietly().await;
        }
        let Some(head) = manifest.head().cloned() else {
            // No version to exchange beside (a lost manifest): the changes
            // published ahead stay published; a failure is said, not dropped.
            if let Some((_, Err(e))) = &ahead.published {
                tracing::warn!(database = db, error = %e, "could not publish the changes; the next sync tries again");
            }
            if force {
                return Err(Error::refused(format!(
                    "the store holds no version of {db} to take; nothing was changed"
                )));
            }
            let unsaved = sync_state::writes_since_backup(&self.dbs.state, db).await?;
            return Ok(SyncOutcome::LocalAhead { unsaved_writes: unsaved });
        };
        if exchanging && (publishing || has_rows(&live).await?) {
            // Sites exchange changes; a live file with data is never replaced.
            progress(Progress { database: db.into(), phase: "exchange", done: 0, total: 0 });
            let ex = self.exchange_with_sites(&[live.name], ahead).await?.pop().map(|(_, ex)| ex);
            let ex = ex.unwrap_or_default();
            return Ok(SyncOutcome::Exchanged(ex));
        }
        progress(Progress { database: db.into(), phase: "snapshot", done: 0, total: 0 });
        // The file as it is before the snapshot: a pull replaces it only if
        // nothing was written since (a scan acknowledged meanwhile is never
        // replaced away).
        let before = live.change_token().ok();
        let local = self.snapshot(&live).await?;
        let base = sync_state::base(&self.dbs.state, db).await?;
        if force {
            let safety = match manifest.find_content(&local.sha256) {
                Some(v) => v.clone(),
                None => {
                    let covered = sync_state::writes_since_backup(&self.dbs.state, db).await?;
                    let v = self
                        .store_snapshot(db, &local, Reason::PreRestore, &manifest, None, progress)
                        .await?;
                    sync_state::backup_stored(&self.dbs.state, db, &v.key, &v.created_at, covered).await?;
                    v
                }
            };
            let Some(version) = self.pull(db, &head, before, progress).await? else {
                return Err(Error::Aborted(format!(
                    "{db} was written while the forced sync downloaded {}; nothing was replaced \
                     (the state before is stored as {}): run the sync again",
                    head.key, safety.key
                )));
            };
            tracing::info!(database = db, key = %version.key, safety = %safety.key, "forced sync: local file replaced");
            return Ok(SyncOutcome::Pulled { version, safety: Some(safety), forced: true });
        }
        if local.sha256 == head.content_sha() {
            if base.as_ref().map(|b| &b.sha256) != Some(&head.sha256) {
                sync_state::set_base(&self.dbs.state, db, &head.key, &head.sha256, "sync").await?;
            }
            return Ok(SyncOutcome::UpToDate(Some(head)));
        }
        if base.as_ref().is_some_and(|b| b.reason == "restore") {
            // A restore not yet recorded in the store: never pull over it.
            let unsaved = sync_state::writes_since_backup(&self.dbs.state, db).await?.max(1);
            return Ok(SyncOutcome::LocalAhead { unsaved_writes: unsaved });
        }
        let local_unchanged = match &base {
            Some(b) => manifest.content_of(&b.sha256) == local.sha256,
            None => is_empty(&local.record_counts),
        };
        let fast_forward = match &base {
            Some(b) => manifest.is_ancestor(&b.sha256, &head.sha256),
            None => true,
        };
        if local_unchanged && fast_forward {
            match self.pull(db, &head, before, progress).await? {
                Some(version) => return Ok(SyncOutcome::Pulled { version, safety: None, forced: false }),
                // Written while downloading: those writes stay; they are
                // local changes to back up (and merge) like any other.
                None => {
                    tracing::info!(database = db, key = %head.key, "written during the pull; not replaced");
                    let unsaved = sync_state::writes_since_backup(&self.dbs.state, db).await?.max(1);
                    return Ok(SyncOutcome::LocalAhead { unsaved_writes: unsaved });
                }
            }
        }
        if base.as_ref().is_some_and(|b| manifest.is_ancestor(&head.sha256, &b.sha256)) {
            let unsaved = sync_state::writes_since_backup(&self.dbs.state, db).await?;
            return Ok(SyncOutcome::LocalAhead { unsaved_writes: unsaved });
        }
        if let Some(b) = &base {
            altered_entry(&manifest, db, &b.key, &b.sha256)?;
        }
        // Both sides changed: keep the local state first.
        let stored = match manifest.find_content(&local.sha256) {
            Some(v) => v.clone(),
            None => {
                let covered = sync_state::writes_since_backup(&self.dbs.state, db).await?;
                let v = self.store_snapshot(db, &local, Reason::Manual, &manifest, None, progress).await?;
                sync_state::set_base(&self.dbs.state, db, &v.key, &v.sha256, "backup").await?;
                sync_state::backup_stored(&self.dbs.state, db, &v.key, &v.created_at, covered).await?;
                v
            }
        };
        Ok(SyncOutcome::Diverged(divergence(&manifest, stored, head, base.map(|b| b.sha256))))
    }

    /// Downloads `head`, verifies it, brings it to the current schema and swaps
    /// it in, if the live file is unchanged since `before`; it becomes the
    /// base. `None`: the file was written meanwhile and was not replaced.
    async fn pull(
        &self,
        db: &str,
        head: &Version,
        before: Option<crate::db::watch::ChangeToken>,
        progress: ProgressFn<'_>,
    ) -> Result<Option<Version>> {
        let live = self.db(db)?.clone();
        let verified = self.fetch_verified(head, progress).await?;
        let checked = verified.checksum_checked;
        crate::db::prepare_replacement(&verified.file, live.name, &self.legacy_tz, checked).await.map_err(
            |e| Error::refused(format!("{} cannot be brought to the current schema ({e})", head.key)),
        )?;
        self.learn_issued(&verified.file, live.name).await?;
        self.refresh_leases_quietly().await;
        progress(Progress { database: db.into(), phase: "swap", done: 0, total: 0 });
        match live.replace_file_if_unchanged(&verified.file, None, before).await {
            Ok(()) => {}
            Err(crate::db::DbError::ChangedMeanwhile { .. }) => return Ok(None),
            Err(e) => return Err(Error::internal("replacing the database file", e)),
        }
        sync_state::set_base(&self.dbs.state, db, &head.key, &head.sha256, "sync").await?;
        let (site, sha) = (self.site.clone(), head.sha256.clone());
        self.update_manifest(db, |m| {
            m.bases.insert(site.clone(), sha.clone());
            Ok(())
        })
        .await?;
        self.dbs.release_memory().await;
        tracing::info!(database = db, key = %head.key, site = %head.site, "pulled the newest version");
        Ok(Some(head.clone()))
    }

    /// Merges the remote head of `db` into the local database. Conflicts
    /// without `prefer` stop it before anything is written.
    pub async fn merge(
        &self,
        db: &str,
        prefer: Option<Prefer>,
        progress: ProgressFn<'_>,
    ) -> Result<MergeOutcome> {
        let _guard = self.lock(db).await?;
        let live = self.db(db)?.clone();
        let (manifest, _) = self.manifest(db).await?;
        let head =
            manifest.head().cloned().ok_or_else(|| Error::refused(format!("no version of {db} to merge")))?;
        let base = sync_state::base(&self.dbs.state, db).await?;
        if base.as_ref().is_some_and(|b| manifest.is_ancestor(&head.sha256, &b.sha256)) {
            // Not an error: `sync merge` of both databases when only one
            // diverged says so for the other and goes on.
            return Ok(MergeOutcome {
                merged: Merged::default(),
                version: None,
                remote: head,
                up_to_date: true,
            });
        }
        let verified = self.fetch_verified(&head, progress).await?;
        let checked = verified.checksum_checked;
        crate::db::prepare_replacement(&verified.file, live.name, &self.legacy_tz, checked).await.map_err(
            |e| Error::refused(format!("{} cannot be brought to the current schema ({e})", head.key)),
        )?;
        self.learn_issued(&verified.file, live.name).await?;
        self.refresh_leases_quietly().await;
        progress(Progress { database: db.into(), phase: "merge", done: 0, total: 0 });
        let merged = merge::merge(&live, &verified.file, prefer).await?;
        if !merged.applied {
            return Ok(MergeOutcome { merged, version: None, remote: head, up_to_date: false });
        }
        let (fresh, _) = self.manifest(db).await?;
        let snap = self.snapshot(&live).await?;
        let version = self
            .store_snapshot(db, &snap, Reason::Merge, &fresh, Some(head.sha256.clone()), progress)
            .await?;
        sync_state::set_base(&self.dbs.state, db, &version.key, &version.sha256, "merge").await?;
        let (site, sha) = (self.site.clone(), version.sha256.clone());
        self.update_manifest(db, |m| {
            m.bases.insert(site.clone(), sha.clone());
            Ok(())
        })
        .await?;
        Ok(MergeOutcome { merged, version: Some(version), remote: head, up_to_date: false })
    }
}

impl BackupService {
    /// Whether `db` is a new installation's (no base, no rows): its first
    /// sync takes the newest version whole, with the history from before
    /// the change exchange, rather than only the exchanged changes.
    pub async fn is_new(&self, db: &str) -> Result<bool> {
        let live = self.db(db)?.clone();
        Ok(sync_state::base(&self.dbs.state, db).await?.is_none() && !has_rows(&live).await?)
    }
}

/// Whether `db` holds any row of its own tables (a new installation has
/// none: its first sync takes the store's newest version whole).
async fn has_rows(db: &crate::db::Db) -> Result<bool> {
    let tables: &[&str] = if db.name == crate::db::ASSEMBLED_DB {
        &["assembly"]
    } else {
        &["parts", "antenna_positions", "snap_boards", "grid_positions"]
    };
    for t in tables {
        let sql = format!("SELECT EXISTS (SELECT 1 FROM {t})");
        let any: bool = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&*db.reader().await).await?;
        if any {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Refuses when the manifest lists this site's base under its key with
/// another SHA-256 than the site recorded when it stored or took it: the
/// entry was altered (or damaged), which would otherwise look like this site
/// diverging from itself.
fn altered_entry(m: &Manifest, db: &str, key: &str, sha256: &str) -> Result<()> {
    let mut listed = m.versions.iter().filter(|v| v.key == key).peekable();
    let Some(first) = listed.peek().map(|v| v.sha256.clone()) else { return Ok(()) };
    if listed.any(|v| v.sha256 == sha256) {
        return Ok(());
    }
    Err(Error::refused(format!(
        "{db}: the manifest lists {key} with SHA-256 {first}, but this site recorded that version as {sha256}: \
         the manifest entry was altered or damaged, so {db} was not synced (nothing was changed); \
         check the stored versions with `casmanctl sync verify --all`"
    )))
}

fn divergence(m: &Manifest, local: Version, remote: Version, base: Option<String>) -> Divergence {
    let remote_versions = m
        .versions
        .iter()
        .filter(|v| v.site != local.site)
        .filter(|v| base.as_deref().is_none_or(|b| !m.is_ancestor(&v.sha256, b)))
        .filter(|v| m.is_ancestor(&v.sha256, &remote.sha256))
        .count();
    let mut tables: Vec<&String> = local.record_counts.keys().chain(remote.record_counts.keys()).collect();
    tables.sort();
    tables.dedup();
    let row_differences = tables
        .into_iter()
        .map(|t| {
            (
                t.clone(),
                local.record_counts.get(t).copied().unwrap_or(0),
                remote.record_counts.get(t).copied().unwrap_or(0),
            )
        })
        .collect();
    Divergence { local, remote, base, remote_versions, row_differences }
}
