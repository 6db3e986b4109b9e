//! The change exchange between sites (DESIGN.md "Sync between sites"):
//! each site publishes its changes to parts.db and assembled_casm.db as
//! immutable segments in the store, and applies the segments of the other
//! sites through its own writer. A sync never replaces a live file.
//!
//! In the store:
//! * `changes/sites.json`: the sites that publish (`{"format":1,"sites":[…]}`),
//!   updated by compare-and-swap when a site publishes for the first time;
//! * `changes/<database>/<site>/<segment>.json.zst`: the site's changes
//!   after its previous segment, in sequence order (segment numbers 1, 2, …
//!   without gaps; written with `If-None-Match`, never replaced).
//!
//! Costs. Publishing is one PUT per database with new changes. Pulling is
//! one GET of `sites.json` and, per other site and database, one GET of the
//! segment after the last one applied (a 404 when the site has nothing
//! new): Class B only, never a LIST.
//!
//! Progress. What this site published is in state.db
//! (`exchange_published`); what a file applied from each other site is in
//! the file (`exchange_applied`), written with the changes, so a file
//! restored from an older version fetches again what it lacks.

use serde::{Deserialize, Serialize};

use super::{
    service::BackupService,
    store::{Precondition, StoreError},
};
use crate::{
    db::{
        self,
        changes::{self, Applied, Change},
    },
    error::{Error, Result},
};

/// Root of the exchange in the store.
pub const ROOT: &str = "changes";
/// The list of publishing sites.
pub const SITES_KEY: &str = "changes/sites.json";
/// Most changes in one segment (a few hundred KB compressed).
const SEGMENT_MAX: i64 = 5_000;
/// Most changes applied in one write transaction (scans wait at most one):
/// ~0.25 ms a change on the field-size fixture, so a scan arriving while a
/// sync applies waits ~25 ms at most (500 made that ~140 ms at p99).
const APPLY_CHUNK: usize = 100;

/// The key of segment `n` of `site` for database `db`.
pub fn segment_key(db: &str, site: &str, n: i64) -> String {
    format!("{ROOT}/{db}/{site}/{n:010}.json.zst")
}

/// A segment: consecutive changes of one site to one database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// Format version (1).
    pub format: u32,
    /// `parts.db` or `assembled_casm.db`.
    pub database: String,
    /// The site that made the changes.
    pub site: String,
    /// This segment's number (1, 2, …).
    pub number: i64,
    /// The changes, in sequence order.
    pub changes: Vec<Change>,
}

impl Segment {
    /// The sequence number of the last change (0 for none).
    pub fn last_seq(&self) -> i64 {
        self.changes.last().map_or(0, |c| c.seq)
    }

    /// JSON, zstd-compressed.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(self).map_err(|e| Error::internal("encoding a change segment", e))?;
        zstd::encode_all(json.as_slice(), 3).map_err(|e| Error::internal("compressing a change segment", e))
    }

    /// Reads a segment stored at `key`, checking it is the one the key names.
    pub fn decode(key: &str, bytes: &[u8], db: &str, site: &str, number: i64) -> Result<Segment> {
        let bad = |why: String| {
            Error::refused(format!(
                "change segment {key} in the backup store is damaged ({why}); nothing of it was applied"
            ))
        };
        let json = zstd::decode_all(bytes).map_err(|e| bad(e.to_string()))?;
        let s: Segment = serde_json::from_slice(&json).map_err(|e| bad(e.to_string()))?;
        if s.format != 1 || s.database != db || s.site != site || s.number != number {
            return Err(bad(format!(
                "it says format {}, database {}, site {}, segment {}",
                s.format, s.database, s.site, s.number
            )));
        }
        if s.changes.windows(2).any(|w| w[0].seq >= w[1].seq) {
            return Err(bad("its changes are not in sequence order".into()));
        }
        Ok(s)
    }
}

/// What a `sync sync` did beside reading the manifest, for the exchange
/// that follows: the site list read, one database's changes published.
#[derive(Debug, Default)]
pub(super) struct Ahead {
    /// The site list, as read.
    pub sites: Option<Result<Sites>>,
    /// A database and the outcome of publishing its changes.
    pub published: Option<(&'static str, Result<(u64, u64)>)>,
}

/// The list of publishing sites.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct Sites {
    format: u32,
    sites: Vec<String>,
}

/// What one exchange did for one database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exchanged {
    /// Segments this site published, and the changes in them.
    pub published_segments: u64,
    /// Changes published.
    pub published_changes: u64,
    /// Segments of other sites applied.
    pub fetched_segments: u64,
    /// What applying them did.
    pub applied: Applied,
    /// Conflicts standing after the exchange.
    pub conflicts: Vec<changes::Conflict>,
}

impl BackupService {
    /// Publishes this site's new changes of `db` as segments (nothing with
    /// `sync.exchange = false`: the store is shared with sites of a version
    /// before the exchange, and the files move whole).
    pub async fn publish_changes(&self, db: &'static str) -> Result<(u64, u64)> {
        if !self.exchange_changes {
            return Ok((0, 0));
        }
        let live = self.db(db)?.clone();
        db::history::enter(&live, &self.site).await?;
        let (mut segment, mut last_seq) = db::sync_state::published(&self.dbs.state, db).await?;
        let (mut segments, mut published) = (0u64, 0u64);
        loop {
            let batch = changes::local_since(&live, &self.site, last_seq, SEGMENT_MAX).await?;
            if batch.is_empty() {
                break;
            }
            let seg = Segment {
                format: 1,
                database: db.to_owned(),
                site: self.site.clone(),
                number: segment + 1,
                changes: batch,
            };
            let key = segment_key(db, &self.site, seg.number);
            match self.store.put_bytes(&key, seg.encode()?, Some(Precondition::Absent)).await {
                Ok(_) => {
                    segments += 1;
                    published += seg.changes.len() as u64;
                    (segment, last_seq) = (seg.number, seg.last_seq());
                }
                Err(StoreError::PreconditionFailed(_)) => {
                    // Published before this site recorded it (a crash in
                    // between): take the stored one as published.
                    let stored = self.fetch_segment(db, &self.site, seg.number).await?;
                    let Some(stored) = stored else { continue };
                    (segment, last_seq) = (stored.number, stored.last_seq().max(last_seq));
                }
                Err(e) => return Err(e.into()),
            }
            let first = seg.changes.first().map_or(last_seq, |c| c.seq);
            db::sync_state::set_published(&self.dbs.state, db, segment, first, last_seq).await?;
        }
        if segments > 0 {
            self.register_site().await?;
            tracing::info!(database = db, segments, changes = published, "published changes");
        }
        Ok((segments, published))
    }

    /// Adds this site to `changes/sites.json` if it is not listed (read once
    /// per process: after that, publishing costs its PUT alone).
    async fn register_site(&self) -> Result<()> {
        if self.site_registered.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        for _ in 0..16 {
            let (mut sites, etag) = self.read_sites().await?;
            if sites.sites.contains(&self.site) {
                self.site_registered.store(true, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            sites.format = 1;
            sites.sites.push(self.site.clone());
            sites.sites.sort();
            let bytes =
                serde_json::to_vec(&sites).map_err(|e| Error::internal("writing the site list", e))?;
            let cond = etag.map_or(Precondition::Absent, Precondition::Matches);
            match self.store.put_bytes(SITES_KEY, bytes, Some(cond)).await {
                Ok(_) => {
                    self.site_registered.store(true, std::sync::atomic::Ordering::Relaxed);
                    return Ok(());
                }
                Err(StoreError::PreconditionFailed(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(Error::Aborted(format!("{SITES_KEY} kept changing (other sites registering); try again")))
    }

    async fn read_sites(&self) -> Result<(Sites, Option<String>)> {
        match self.store.get_bytes(SITES_KEY, None).await {
            Ok(Some((bytes, etag))) => {
                let s: Sites = serde_json::from_slice(&bytes).map_err(|e| {
                    Error::refused(format!(
                        "{SITES_KEY} in the backup store is not a valid site list ({e}); \
                         put back a list of the sites' ids: {{\"format\":1,\"sites\":[\"site-a\",…]}}"
                    ))
                })?;
                Ok((s, Some(etag)))
            }
            Ok(None) | Err(StoreError::NotFound(_)) => Ok((Sites::default(), None)),
            Err(e) => Err(e.into()),
        }
    }

    /// Segment `n` of `site` for `db`, if stored.
    async fn fetch_segment(&self, db: &str, site: &str, n: i64) -> Result<Option<Segment>> {
        let key = segment_key(db, site, n);
        match self.store.get_bytes(&key, None).await {
            Ok(Some((bytes, _))) => Segment::decode(&key, &bytes, db, site, n).map(Some),
            Ok(None) | Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Applies the other sites' segments of `db` this file lacks.
    async fn pull_changes(&self, db: &'static str, sites: &[String]) -> Result<(u64, Applied)> {
        let live = self.db(db)?.clone();
        // Before anything of the others is applied: what this site held
        // before the upgrade is its own (see `db::history`).
        db::history::enter(&live, &self.site).await?;
        let applied = changes::applied(&live).await?;
        let (mut fetched, mut done) = (0u64, Applied::default());
        for site in sites.iter().filter(|s| **s != self.site) {
            let (mut segment, _) = applied.get(site).copied().unwrap_or((0, 0));
            while let Some(seg) = self.fetch_segment(db, site, segment + 1).await? {
                let chunks: Vec<&[Change]> = seg.changes.chunks(APPLY_CHUNK).collect();
                let n = chunks.len();
                for (i, chunk) in chunks.into_iter().enumerate() {
                    let through = (i + 1 == n).then(|| (seg.number, seg.last_seq()));
                    done.add(&changes::apply(&live, site, chunk, through).await?);
                }
                if n == 0 {
                    changes::apply(&live, site, &[], Some((seg.number, seg.last_seq()))).await?;
                }
                fetched += 1;
                segment = seg.number;
            }
        }
        if live.name == db::PARTS_DB {
            done.conflicts += changes::settle_places(&live).await?;
        }
        // This site's own published changes the file lacks: after a restore
        // of an older version, the site catches up with its own work too.
        let (_, published) = db::sync_state::published(&self.dbs.state, db).await?;
        if published > 0 {
            let present = changes::newest_own_at_most(&live, &self.site, published).await?;
            if present < published {
                for n in db::sync_state::own_segments_after(&self.dbs.state, db, present).await? {
                    let Some(seg) = self.fetch_segment(db, &self.site, n).await? else { continue };
                    for chunk in seg.changes.chunks(APPLY_CHUNK) {
                        done.add(&changes::apply(&live, &self.site, chunk, None).await?);
                    }
                    fetched += 1;
                }
                tracing::info!(
                    database = db,
                    from = present + 1,
                    to = published,
                    "applied this site's own published changes the restored file lacked"
                );
            }
        }
        Ok((fetched, done))
    }

    /// Publishes this site's new changes to `databases` and applies the
    /// other sites' new ones: what `casmanctl sync sync` and the scheduler's
    /// pull do. Nothing replaces a live file.
    pub async fn exchange(&self, databases: &[&'static str]) -> Result<Vec<(&'static str, Exchanged)>> {
        self.exchange_with_sites(databases, Ahead::default()).await
    }

    /// The site list, for [`Self::exchange_with_sites`] (read ahead by a
    /// `sync sync` beside the manifest).
    pub(super) async fn site_list(&self) -> Result<Sites> {
        Ok(self.read_sites().await?.0)
    }

    /// [`Self::exchange`], with what was done ahead of it.
    pub(super) async fn exchange_with_sites(
        &self,
        databases: &[&'static str],
        ahead: Ahead,
    ) -> Result<Vec<(&'static str, Exchanged)>> {
        let Ahead { sites: read, mut published } = ahead;
        // The site list is read while this site publishes (one round trip
        // less: publishing needs nothing from it, and the pull skips this
        // site whether or not the list read names it yet).
        let publish = async {
            let mut out = Vec::new();
            for &db in databases {
                let (published_segments, published_changes) = match published.take_if(|(d, _)| *d == db) {
                    Some((_, done)) => done?,
                    None => self.publish_changes(db).await?,
                };
                out.push((db, Exchanged { published_segments, published_changes, ..Default::default() }));
            }
            Ok::<_, Error>(out)
        };
        let sites = async {
            match read {
                Some(sites) => sites,
                None => self.site_list().await,
            }
        };
        let (mut out, sites) = tokio::try_join!(publish, sites)?;
        for (db, ex) in &mut out {
            let (fetched, applied) = self.pull_changes(db, &sites.sites).await?;
            ex.fetched_segments = fetched;
            if applied.applied > 0 {
                tracing::info!(
                    database = *db,
                    segments = fetched,
                    changes = applied.applied,
                    superseded = applied.superseded,
                    conflicts = applied.conflicts,
                    "applied other sites' changes"
                );
            }
            ex.applied = applied;
            ex.conflicts = self.conflicts(db).await?;
            for c in &ex.conflicts {
                self.notices().event(crate::notify::Event::conflict(db, c, jiff::Timestamp::now()));
            }
        }
        Ok(out)
    }

    /// The conflicts standing in `db` (read again only when the file
    /// changed since they were last read).
    pub async fn conflicts(&self, db: &str) -> Result<Vec<changes::Conflict>> {
        let live = self.db(db)?.clone();
        let token = live.change_token().ok();
        if let Some(t) = token {
            let cache = self.conflict_cache.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, list)) = cache.get(live.name)
                && *at == t
            {
                return Ok(list.clone());
            }
        }
        let list = if live.name == db::ASSEMBLED_DB {
            changes::connection_conflicts(&live).await?
        } else {
            changes::row_conflicts(&live).await?
        };
        if let Some(t) = token {
            let mut cache = self.conflict_cache.lock().unwrap_or_else(|p| p.into_inner());
            cache.insert(live.name, (t, list.clone()));
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn seg() -> Segment {
        Segment {
            format: 1,
            database: "assembled_casm.db".into(),
            site: "site-a".into(),
            number: 3,
            changes: vec![
                Change {
                    seq: 7,
                    hlc: 1 << 20,
                    tbl: "assembly".into(),
                    op: "insert".into(),
                    row: Some(serde_json::json!({"part_number": "ANT00001P1", "connected_to": "LNA00001P1"})),
                    nth: None,
                },
                Change {
                    seq: 9,
                    hlc: 2 << 20,
                    tbl: "assembly".into(),
                    op: "clear".into(),
                    row: None,
                    nth: None,
                },
            ],
        }
    }

    #[test]
    fn a_segment_reads_back_and_names_itself() {
        let s = seg();
        let bytes = s.encode().unwrap();
        let key = segment_key("assembled_casm.db", "site-a", 3);
        assert_eq!(key, "changes/assembled_casm.db/site-a/0000000003.json.zst");
        assert_eq!(Segment::decode(&key, &bytes, "assembled_casm.db", "site-a", 3).unwrap(), s);
        assert_eq!(s.last_seq(), 9);
        // Stored under another site's or number's key: refused, in words.
        let e = Segment::decode(&key, &bytes, "assembled_casm.db", "site-b", 3).unwrap_err().to_string();
        assert!(e.contains("damaged") && e.contains("site site-a"), "{e}");
        assert!(Segment::decode(&key, b"junk", "assembled_casm.db", "site-a", 3).is_err());
    }

    #[test]
    fn changes_out_of_order_are_refused() {
        let mut s = seg();
        s.changes.swap(0, 1);
        let bytes = s.encode().unwrap();
        let e = Segment::decode("k", &bytes, "assembled_casm.db", "site-a", 3).unwrap_err().to_string();
        assert!(e.contains("sequence order"), "{e}");
    }
}
