//! The offline spool: versions taken while the store was unreachable, kept
//! under `<data>/spool/<db>/` until the store answers again, then stored in
//! order (`BackupService::drain_spool`), each a delta chained on the one
//! before (or a full snapshot where the chain rules ask for one).
//!
//! An entry is its object (`<seq>.<first>.delta.zst` in the delta format
//! of [`super::delta`], or `<seq>.<first>.full.zst`) and its sidecar
//! `<seq>.json` (the version's metadata), each written to a temporary file,
//! synced, renamed into place, then the directory synced. The sidecar is
//! written last: an entry exists once its sidecar does. `pages` holds the
//! page hashes of the newest entry's content (what the next entry's delta is
//! computed against, across restarts).
//!
//! At most `sync.offline_spool_max` entries are kept: beyond that the two
//! oldest are folded into one (the later one's content and metadata, built
//! on the earlier one's base), so the spool stays bounded and the oldest
//! states give way first. A fold writes the folded object and sidecar under
//! the later entry's sequence number, covering the earlier one's
//! (`first_seq`); an entry a later one covers is a fold that a crash
//! interrupted and is removed when the spool is read.
//!
//! Everything here blocks: call from `spawn_blocking`.

use std::{
    collections::BTreeMap,
    fs::{self, File},
    io::{self, Read, Write},
    path::{Path, PathBuf},
};

use serde::{Deserialize, Serialize};

use super::{
    codec,
    delta::{self, PageHash},
    manifest::{Kind, Reason},
};

/// First bytes of the page hashes file.
const PAGES_MAGIC: &[u8; 8] = b"CASMPGS1";

/// The base key written in a spooled delta whose base is itself spooled (it
/// gets its key only when stored); the delta is re-keyed then.
pub const SPOOLED_BASE: &str = "spool";

/// One spooled version: the metadata its manifest entry will carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Order in the spool.
    pub seq: u64,
    /// The first spooled sequence number this entry covers (folds).
    pub first_seq: u64,
    /// File name of the object in the spool directory.
    pub object: String,
    /// Full snapshot or delta.
    pub kind: Kind,
    /// When the snapshot was taken, UTC ISO (kept as the version's).
    pub created_at: String,
    /// Why it was made.
    pub reason: Reason,
    /// SHA-256 of the content.
    pub sha256: String,
    /// Identity of the version it descends from (this site's base, or the
    /// entry before).
    pub parent: Option<String>,
    /// For a delta: the content it applies to.
    pub base_sha256: Option<String>,
    /// For a delta: the stored key of its base, when known at spool time.
    pub base_key: Option<String>,
    /// Size of the content.
    pub raw_bytes: u64,
    /// Size of the object.
    pub stored_bytes: u64,
    /// Rows per main table.
    pub record_counts: BTreeMap<String, i64>,
    /// Last applied migration.
    pub schema_version: i64,
    /// Deltas since the chain's full snapshot, this one included.
    pub depth: u32,
    /// Stored bytes of those deltas.
    pub chain_bytes: u64,
    /// Stored bytes of the chain's full snapshot.
    pub full_bytes: u64,
}

/// The spool of every database, under one directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    /// Most entries per database (0: spooling is off).
    pub max: usize,
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` durably: temporary file, sync, rename, sync dir.
fn durable_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Copies `src` to `path` durably.
fn durable_copy(src: &Path, path: &Path) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    fs::copy(src, &tmp)?;
    File::open(&tmp)?.sync_all()?;
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

fn remove_if_there(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn bad(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

impl Spool {
    /// The spool under `dir` keeping at most `max` entries per database.
    pub fn new(dir: PathBuf, max: usize) -> Spool {
        Spool { dir, max }
    }

    fn db_dir(&self, db: &str) -> PathBuf {
        self.dir.join(db)
    }

    /// Where the object of `e` is.
    pub fn object_path(&self, db: &str, e: &Entry) -> PathBuf {
        self.db_dir(db).join(&e.object)
    }

    /// How many entries wait for `db` (without tidying: for status).
    pub fn count(&self, db: &str) -> usize {
        fs::read_dir(self.db_dir(db))
            .map_or(0, |d| d.flatten().filter(|f| f.file_name().to_string_lossy().ends_with(".json")).count())
    }

    /// The entries of `db`, oldest first. What a crash left behind (temporary
    /// files, objects without a sidecar, entries a fold covered) is removed.
    pub fn entries(&self, db: &str) -> io::Result<Vec<Entry>> {
        let dir = self.db_dir(db);
        let listing = match fs::read_dir(&dir) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut entries: Vec<Entry> = Vec::new();
        let mut files = Vec::new();
        for f in listing {
            let name = f?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
                remove_if_there(&dir.join(&name))?;
            } else if name.ends_with(".json") {
                let bytes = fs::read(dir.join(&name))?;
                match serde_json::from_slice(&bytes) {
                    Ok(e) => entries.push(e),
                    // Written whole or not at all: only a damaged disk gets
                    // here. The live database still holds its writes (the
                    // next backup stores them); the spool must not block.
                    Err(err) => {
                        tracing::error!(entry = %dir.join(&name).display(), error = %err, "damaged spool entry removed");
                        remove_if_there(&dir.join(&name))?;
                    }
                }
            } else {
                files.push(name);
            }
        }
        entries.sort_by_key(|e| e.seq);
        // An entry that a later one covers: a fold interrupted before it
        // removed the entries it replaced.
        let covered: Vec<u64> = entries
            .iter()
            .filter(|e| entries.iter().any(|l| l.seq > e.seq && l.first_seq <= e.seq))
            .map(|e| e.seq)
            .collect();
        for seq in &covered {
            remove_if_there(&dir.join(format!("{seq:012}.json")))?;
        }
        entries.retain(|e| !covered.contains(&e.seq));
        for name in files {
            if name != "pages" && !entries.iter().any(|e| e.object == name) {
                remove_if_there(&dir.join(&name))?;
            }
        }
        Ok(entries)
    }

    /// The page size and page hashes of content `sha256` (the newest entry's),
    /// if they were kept.
    pub fn pages(&self, db: &str, sha256: &str) -> Option<(u32, Vec<PageHash>)> {
        let mut f = File::open(self.db_dir(db).join("pages")).ok()?;
        let mut head = [0u8; 8 + 32 + 4 + 8];
        f.read_exact(&mut head).ok()?;
        if &head[..8] != PAGES_MAGIC || hex::encode(&head[8..40]) != sha256 {
            return None;
        }
        let page_size = u32::from_le_bytes(head[40..44].try_into().ok()?);
        let count = u64::from_le_bytes(head[44..52].try_into().ok()?);
        let mut hashes = Vec::with_capacity(count.min(1 << 24) as usize);
        let mut h = [0u8; 32];
        for _ in 0..count {
            f.read_exact(&mut h).ok()?;
            hashes.push(h);
        }
        Some((page_size, hashes))
    }

    fn write_pages(&self, db: &str, sha256: &str, page_size: u32, hashes: &[PageHash]) -> io::Result<()> {
        let sha = hex::decode(sha256).map_err(|_| bad(format!("SHA-256 {sha256:?} is not hex")))?;
        let mut bytes = Vec::with_capacity(52 + hashes.len() * 32);
        bytes.extend_from_slice(PAGES_MAGIC);
        bytes.extend_from_slice(&sha);
        bytes.extend_from_slice(&page_size.to_le_bytes());
        bytes.extend_from_slice(&(hashes.len() as u64).to_le_bytes());
        hashes.iter().for_each(|h| bytes.extend_from_slice(h));
        durable_write(&self.db_dir(db).join("pages"), &bytes)
    }

    /// Forgets the page hashes (the spool was stored).
    pub fn clear_pages(&self, db: &str) -> io::Result<()> {
        remove_if_there(&self.db_dir(db).join("pages"))
    }

    fn write_entry(&self, db: &str, e: &Entry) -> io::Result<()> {
        let bytes =
            serde_json::to_vec_pretty(e).map_err(|err| bad(format!("spool entry {}: {err}", e.seq)))?;
        durable_write(&self.db_dir(db).join(format!("{:012}.json", e.seq)), &bytes)
    }

    /// Adds `e` (its object copied from `object`; `seq`, `first_seq` and
    /// `object` are set here) with the page hashes of its content, folding
    /// the oldest entries first so that there are never more than `max`
    /// (at least 2). Returns the number of entries.
    pub fn push(
        &self,
        db: &str,
        mut e: Entry,
        object: &Path,
        pages: Option<&(u32, Vec<PageHash>)>,
        tmp_dir: &Path,
    ) -> io::Result<usize> {
        let dir = self.db_dir(db);
        fs::create_dir_all(&dir)?;
        let mut entries = self.entries(db)?;
        while entries.len() >= self.max.max(2) {
            let folded = self.fold(db, &entries[0], &entries[1], tmp_dir)?;
            entries.splice(0..2, [folded]);
        }
        e.seq = entries.last().map_or(1, |l| l.seq + 1);
        e.first_seq = e.seq;
        e.object = object_name(&e);
        durable_copy(object, &dir.join(&e.object))?;
        match pages {
            Some((size, hashes)) => self.write_pages(db, &e.sha256, *size, hashes)?,
            None => self.clear_pages(db)?,
        }
        self.write_entry(db, &e)?;
        Ok(entries.len() + 1)
    }

    /// Removes a stored entry: its sidecar first (the entry is gone), then
    /// its object.
    pub fn remove(&self, db: &str, e: &Entry) -> io::Result<()> {
        let dir = self.db_dir(db);
        remove_if_there(&dir.join(format!("{:012}.json", e.seq)))?;
        sync_dir(&dir)?;
        remove_if_there(&dir.join(&e.object))
    }

    /// Folds `a` and the entry after it, `b`, into one entry holding `b`'s
    /// content built on `a`'s base, under `b`'s sequence number.
    fn fold(&self, db: &str, a: &Entry, b: &Entry, tmp_dir: &Path) -> io::Result<Entry> {
        let dir = self.db_dir(db);
        let mut f = Entry { first_seq: a.first_seq, parent: a.parent.clone(), ..b.clone() };
        let (pa, pb) = (dir.join(&a.object), dir.join(&b.object));
        match (a.kind, b.kind) {
            // A full snapshot needs nothing before it.
            (_, Kind::Full) => {}
            (Kind::Delta, Kind::Delta) => {
                f.base_sha256 = a.base_sha256.clone();
                f.base_key = a.base_key.clone();
                f.object = object_name(&f);
                let out = dir.join(format!("{}.tmp", f.object));
                let stored = fold_deltas(&pa, &pb, &out)?;
                File::open(&out)?.sync_all()?;
                fs::rename(&out, dir.join(&f.object))?;
                (f.depth, f.stored_bytes, f.full_bytes) = (a.depth, stored, a.full_bytes);
                f.chain_bytes = a.chain_bytes.saturating_sub(a.stored_bytes) + stored;
            }
            (Kind::Full, Kind::Delta) => {
                let raw = tempfile::Builder::new().prefix(&format!("{db}.fold.")).tempfile_in(tmp_dir)?;
                codec::decompress(&pa, raw.path())?;
                delta::apply(&pb, raw.path())?;
                let (sha, _) = codec::sha256_file(raw.path())?;
                if sha != b.sha256 {
                    return Err(bad(format!("folding spool entries {} and {}: got {sha}", a.seq, b.seq)));
                }
                (f.kind, f.base_sha256, f.base_key) = (Kind::Full, None, None);
                f.object = object_name(&f);
                let out = dir.join(format!("{}.tmp", f.object));
                let stored = codec::compress(raw.path(), &out)?;
                fs::rename(&out, dir.join(&f.object))?;
                (f.depth, f.chain_bytes, f.stored_bytes, f.full_bytes) = (0, 0, stored, stored);
            }
        }
        sync_dir(&dir)?;
        self.write_entry(db, &f)?;
        self.remove(db, a)?;
        if f.object != b.object {
            remove_if_there(&pb)?;
        }
        tracing::info!(
            database = db,
            folded = a.seq,
            into = b.seq,
            "offline spool full: oldest versions folded"
        );
        Ok(f)
    }
}

fn object_name(e: &Entry) -> String {
    let kind = match e.kind {
        Kind::Full => "full",
        Kind::Delta => "delta",
    };
    format!("{:012}.{}.{kind}.zst", e.seq, e.first_seq)
}

/// Writes into `out` the delta equal to applying delta `first` then delta
/// `second` (which applies to `first`'s result): `first`'s pages that the
/// result still has, `second`'s pages over them. Returns the size of `out`.
pub fn fold_deltas(first: &Path, second: &Path, out: &Path) -> io::Result<u64> {
    let (h1, r1) = delta::read_records(first)?;
    let (h2, r2) = delta::read_records(second)?;
    if h1.page_size != h2.page_size || h1.result_sha256 != h2.base_sha256 {
        return Err(bad(format!(
            "cannot fold: the second delta applies to {} ({} bytes a page), the first gives {} ({})",
            h2.base_sha256, h2.page_size, h1.result_sha256, h1.page_size
        )));
    }
    let mut pages: BTreeMap<u64, Vec<u8>> = r1.into_iter().filter(|(i, _)| *i < h2.page_count).collect();
    pages.extend(r2);
    let records: Vec<(u64, Vec<u8>)> = pages.into_iter().collect();
    let header = delta::Header { base_sha256: h1.base_sha256, base_key: h1.base_key, ..h2 };
    delta::write_records(&header, &records, out)
}

/// Writes into `out` the delta `src` with its base key replaced by `base_key`.
pub fn rekey(src: &Path, base_key: &str, out: &Path) -> io::Result<u64> {
    let (h, records) = delta::read_records(src)?;
    delta::write_records(&delta::Header { base_key: base_key.to_owned(), ..h }, &records, out)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;

    const SIZE: u32 = 512;

    fn file(pages: &[u8]) -> Vec<u8> {
        pages.iter().flat_map(|&p| vec![p; SIZE as usize]).collect()
    }

    fn hashes(bytes: &[u8]) -> Vec<PageHash> {
        bytes.chunks(SIZE as usize).map(|c| Sha256::digest(c).into()).collect()
    }

    fn sha(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    /// The delta from `old` to `new`, written at `out`.
    fn delta_of(dir: &Path, old: &[u8], new: &[u8], out: &Path) -> io::Result<()> {
        let raw = dir.join("raw");
        fs::write(&raw, new)?;
        let header = delta::Header {
            page_size: SIZE,
            page_count: (new.len() / SIZE as usize) as u64,
            base_sha256: sha(old),
            result_sha256: sha(new),
            base_key: "backups/parts.db/base.zst".into(),
        };
        delta::write(&raw, &delta::changed_pages(&hashes(old), &hashes(new)), &header, out)?;
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Folding two deltas then applying the fold gives what applying
        /// both in turn gives, whether the files grow or shrink.
        #[test]
        fn folding_then_applying_equals_applying_both(
            a in proptest::collection::vec(0u8..4, 1..10),
            b in proptest::collection::vec(0u8..4, 1..10),
            c in proptest::collection::vec(0u8..4, 1..10),
        ) {
            let fail = |e: io::Error| proptest::test_runner::TestCaseError::fail(e.to_string());
            let dir = tempfile::tempdir().map_err(fail)?;
            let p = |n: &str| dir.path().join(n);
            let (fa, fb, fc) = (file(&a), file(&b), file(&c));
            delta_of(dir.path(), &fa, &fb, &p("d1")).map_err(fail)?;
            delta_of(dir.path(), &fb, &fc, &p("d2")).map_err(fail)?;
            fold_deltas(&p("d1"), &p("d2"), &p("fold")).map_err(fail)?;
            fs::write(p("both"), &fa).map_err(fail)?;
            delta::apply(&p("d1"), &p("both")).map_err(fail)?;
            delta::apply(&p("d2"), &p("both")).map_err(fail)?;
            fs::write(p("folded"), &fa).map_err(fail)?;
            let header = delta::apply(&p("fold"), &p("folded")).map_err(fail)?;
            proptest::prop_assert_eq!(fs::read(p("folded")).ok(), Some(fc.clone()));
            proptest::prop_assert_eq!(fs::read(p("both")).ok(), Some(fc.clone()));
            proptest::prop_assert_eq!(header.base_sha256, sha(&fa));
            proptest::prop_assert_eq!(header.result_sha256, sha(&fc));
            proptest::prop_assert_eq!(header.base_key, "backups/parts.db/base.zst");
        }
    }

    fn entry(kind: Kind, old: &[u8], new: &[u8], parent: &str) -> Entry {
        Entry {
            seq: 0,
            first_seq: 0,
            object: String::new(),
            kind,
            created_at: "2026-12-02T00:00:00Z".into(),
            reason: Reason::Scheduled,
            sha256: sha(new),
            parent: Some(parent.into()),
            base_sha256: (kind == Kind::Delta).then(|| sha(old)),
            base_key: None,
            raw_bytes: new.len() as u64,
            stored_bytes: 1,
            record_counts: BTreeMap::new(),
            schema_version: 1,
            depth: 1,
            chain_bytes: 1,
            full_bytes: 100,
        }
    }

    /// Pushed entries beyond the bound are folded from the oldest; the
    /// result, applied to the spool's base, is the newest content; a fold a
    /// crash interrupted is tidied when the spool is read.
    #[test]
    fn a_full_spool_folds_its_oldest_entries_and_keeps_the_newest_content() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let spool = Spool::new(dir.path().join("spool"), 2);
        let states: Vec<Vec<u8>> =
            [vec![1, 2, 3], vec![1, 9, 3], vec![1, 9, 3, 4], vec![5, 9], vec![5, 9, 7]]
                .iter()
                .map(|s| file(s))
                .collect();
        // The first entry is a full snapshot, the others deltas.
        let full = dir.path().join("full.zst");
        fs::write(dir.path().join("s0"), &states[0])?;
        codec::compress(&dir.path().join("s0"), &full)?;
        let pages = (SIZE, hashes(&states[0]));
        spool.push(
            "parts.db",
            entry(Kind::Full, &[], &states[0], "base"),
            &full,
            Some(&pages),
            dir.path(),
        )?;
        for w in states.windows(2) {
            let d = dir.path().join("d");
            delta_of(dir.path(), &w[0], &w[1], &d)?;
            let pages = (SIZE, hashes(&w[1]));
            let e = entry(Kind::Delta, &w[0], &w[1], &sha(&w[0]));
            let n = spool.push("parts.db", e, &d, Some(&pages), dir.path())?;
            assert!(n <= 2, "{n} entries");
        }
        let entries = spool.entries("parts.db")?;
        assert_eq!(entries.len(), 2);
        assert_eq!(
            (entries[0].kind, entries[0].first_seq, entries[0].parent.as_deref()),
            (Kind::Full, 1, Some("base"))
        );
        assert_eq!(entries[1].parent.as_deref(), Some(entries[0].sha256.as_str()));
        assert_eq!(entries[1].sha256, sha(&states[4]));
        // Rebuild: the full entry, then the delta.
        let rebuilt = dir.path().join("rebuilt");
        codec::decompress(&spool.object_path("parts.db", &entries[0]), &rebuilt)?;
        assert_eq!(codec::sha256_file(&rebuilt)?.0, entries[0].sha256);
        delta::apply(&spool.object_path("parts.db", &entries[1]), &rebuilt)?;
        assert_eq!(fs::read(&rebuilt)?, states[4]);
        assert_eq!(spool.pages("parts.db", &sha(&states[4])).map(|p| p.1), Some(hashes(&states[4])));
        assert_eq!(spool.pages("parts.db", &sha(&states[3])), None);
        assert_eq!(spool.count("parts.db"), 2);

        // A fold of both interrupted after writing its sidecar: the entry
        // it covers is removed on reading, object and all.
        let mut covering = entries[1].clone();
        covering.first_seq = entries[0].first_seq;
        spool.write_entry("parts.db", &covering)?;
        let tidied = spool.entries("parts.db")?;
        assert_eq!(tidied, vec![covering]);
        assert!(!spool.object_path("parts.db", &entries[0]).exists());
        // A damaged sidecar does not block the spool.
        fs::write(dir.path().join("spool/parts.db/000000000099.json"), b"{not json")?;
        assert_eq!(spool.entries("parts.db")?, tidied);
        assert!(!dir.path().join("spool/parts.db/000000000099.json").exists());
        for e in &tidied {
            spool.remove("parts.db", e)?;
        }
        assert!(spool.entries("parts.db")?.is_empty());
        Ok(())
    }
}
