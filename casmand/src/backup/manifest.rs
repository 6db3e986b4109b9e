//! The per-database manifest `backups/<db>/MANIFEST.json`: every version with
//! its identity and provenance. Listing and "is there something newer?" read
//! it (one GET), never the bucket (a LIST costs as much as an upload on R2).
//! It is replaced by compare-and-swap, so concurrent sites never lose an entry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::inventory::{Issued, PartType, Polarization};

/// Format number of the manifest.
pub const FORMAT: u32 = 1;

/// Why a version was made.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Reason {
    /// `casmanctl sync backup`.
    Manual,
    /// The write counter or the time trigger.
    Scheduled,
    /// After a batch of parts was generated.
    PartsGenerated,
    /// The state of a database just before a restore or forced sync replaced it.
    PreRestore,
    /// The result of merging two sites' branches.
    Merge,
    /// A restored older state, recorded as the newest so sync does not undo it.
    Restore,
    /// Written by the Python CAsMan.
    Legacy,
}

impl Reason {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Manual => "manual",
            Reason::Scheduled => "scheduled",
            Reason::PartsGenerated => "parts-generated",
            Reason::PreRestore => "pre-restore",
            Reason::Merge => "merge",
            Reason::Restore => "restore",
            Reason::Legacy => "legacy",
        }
    }
}

/// How a version's object holds its content.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// The whole file (every manifest written before deltas existed).
    #[default]
    Full,
    /// The pages changed since the object `delta_base` (see `backup::delta`).
    Delta,
}

impl Kind {
    fn is_full(&self) -> bool {
        *self == Kind::Full
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One stored version of a database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Version {
    /// Object key.
    pub key: String,
    /// When the snapshot was taken, UTC ISO.
    pub created_at: String,
    /// Site that made it.
    pub site: String,
    /// Per-site sequence number.
    pub seq: u64,
    /// The version's identity: the SHA-256 of the raw (uncompressed)
    /// snapshot, except for a restore record (see `content_sha256`).
    pub sha256: String,
    /// For a restore record only: the SHA-256 of the content it points at
    /// (the object under `key`, an older version's). A restore stores no new
    /// object; its identity is new, so ancestry has no cycle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_sha256: Option<String>,
    /// Size of the raw snapshot.
    pub raw_bytes: u64,
    /// Size of the stored object.
    pub stored_bytes: u64,
    /// `zstd`, or `none` for CAsMan's uncompressed versions.
    pub codec: String,
    /// SHA-256 of the version this one descends from (the site's base).
    #[serde(default)]
    pub parent: Option<String>,
    /// Second parent of a merge.
    #[serde(default)]
    pub merged_from: Option<String>,
    /// Why it was made.
    pub reason: Reason,
    /// Rows per main table.
    #[serde(default)]
    pub record_counts: BTreeMap<String, i64>,
    /// casman version that wrote it.
    #[serde(default)]
    pub casman_version: String,
    /// Schema version (last migration) of the snapshot.
    #[serde(default)]
    pub schema_version: i64,
    /// True when its parent was not the head when it was stored: a branch
    /// that diverged from another site's work.
    #[serde(default)]
    pub branch: bool,
    /// Full snapshot or delta; absent (older manifests) means full.
    #[serde(default, skip_serializing_if = "Kind::is_full")]
    pub kind: Kind,
    /// For a delta: the key of the object it applies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_base: Option<String>,
    /// For a delta: how many deltas lie between it and its full snapshot,
    /// itself included (1 for the first delta after a full snapshot).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chain_depth: u32,
}

impl Version {
    /// SHA-256 of the bytes stored under `key` (what a download must hash to).
    pub fn content_sha(&self) -> &str {
        self.content_sha256.as_deref().unwrap_or(&self.sha256)
    }

    /// A record that `self` was restored at `site` over `head` (SHA-256 of the
    /// head then), at `now`, as sequence `seq`: the same object, a new
    /// identity descending from the head, so sync never undoes the restore.
    pub fn restored(&self, head: Option<&str>, site: &str, seq: u64, now: &str) -> Version {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for part in ["casman-restore", self.content_sha(), head.unwrap_or(""), site, now] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        Version {
            sha256: hex::encode(h.finalize()),
            content_sha256: Some(self.content_sha().to_owned()),
            created_at: now.to_owned(),
            site: site.to_owned(),
            seq,
            parent: head.map(str::to_owned),
            merged_from: None,
            reason: Reason::Restore,
            casman_version: env!("CARGO_PKG_VERSION").into(),
            branch: false,
            ..self.clone()
        }
    }
}

/// The manifest of one database.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// File name of the database.
    pub database: String,
    /// Versions, oldest first.
    pub versions: Vec<Version>,
    /// Each site's sync base (SHA-256 of the version its file descends from);
    /// retention never deletes these.
    #[serde(default)]
    pub bases: std::collections::BTreeMap<String, String>,
    /// Each site's request ledger of the month, as of its last stored
    /// version: with it, every site sees the whole fleet's use of the quota.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ledgers: BTreeMap<String, crate::backup::quota::SiteLedger>,
    /// The part numbers each site knows as issued (parts.db manifest only),
    /// as of its last stored version: `{"lab": {"ANTENNA P1": [[1, 40]]}}`.
    /// Every site raises its own record from them, so no site issues a
    /// number another one already gave out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub issued: BTreeMap<String, IssuedRuns>,
    /// Keys retention removed from `versions` (the newest few hundred):
    /// their objects may go as orphans even when older than every version
    /// listed (see `backup::rebuild::unaccounted`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<String>,
    /// When the manifest was rebuilt from the objects (`casmanctl sync
    /// repair` or automatically), UTC ISO; absent for one that never was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebuilt_at: Option<String>,
    /// When the history this manifest records starts, UTC ISO: the time of
    /// the oldest version it ever listed. Set when the manifest is created
    /// (its first version's time), on a rebuild (the oldest object's time),
    /// lowered when an older version is recorded (a spooled one, stored
    /// with its snapshot's time), never raised by retention. A version
    /// object no version lists and stamped at or after it was uploaded while
    /// this manifest existed (an upload whose manifest update never landed):
    /// an orphan; one stamped before it is history the manifest lost (see
    /// `backup::rebuild::unaccounted`). Absent in manifests written before
    /// the field existed: see [`Manifest::history_start`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_since: Option<String>,
}

/// How many retired keys a manifest remembers.
pub const RETIRED_MAX: usize = 256;

/// Issued numbers of one site: `"TYPE POL"` to runs `[first, last]`.
pub type IssuedRuns = BTreeMap<String, Vec<[u32; 2]>>;

/// The manifest form of an issued set.
pub fn issued_runs(set: &Issued) -> IssuedRuns {
    set.iter()
        .map(|(t, p, runs)| {
            (format!("{} {}", t.name(), p.as_str()), runs.iter().map(|&(a, b)| [a, b]).collect())
        })
        .collect()
}

/// An issued set from its manifest form; unknown types are skipped.
pub fn issued_set(runs: &IssuedRuns) -> Issued {
    let mut set = Issued::new();
    for (key, runs) in runs {
        let Some((t, p)) = key.split_once(' ') else { continue };
        if let (Ok(t), Ok(p)) = (PartType::parse(t), Polarization::parse(p)) {
            for [a, b] in runs {
                set.add_run(t, p, *a, (*b).min(crate::inventory::MAX_PART_NUMBER));
            }
        }
    }
    set
}

impl Manifest {
    /// An empty manifest for `db`.
    pub fn new(db: &str) -> Manifest {
        Manifest {
            format: FORMAT,
            database: db.to_owned(),
            versions: Vec::new(),
            bases: Default::default(),
            ledgers: Default::default(),
            issued: Default::default(),
            retired: Vec::new(),
            rebuilt_at: None,
            history_since: None,
        }
    }

    /// When the history this manifest records starts: `history_since`, or
    /// for a manifest written before that field existed (the upgrade rule)
    /// the oldest time among its listed versions and its `retired` keys
    /// (retention moved past those; their objects were uploaded while the
    /// manifest existed). The first write by this casman stores that value
    /// (see [`Manifest::keep_history_start`]); until then every reader
    /// computes the same value from the same manifest. `None`: no version.
    pub fn history_start(&self) -> Option<String> {
        if let Some(since) = &self.history_since {
            return Some(since.clone());
        }
        let listed = self.own_versions().filter_map(|v| stored_form(&v.created_at));
        let retired = self
            .retired
            .iter()
            .filter_map(|k| super::rebuild::parse_version_key(k, &self.database))
            .map(|p| p.created_at());
        listed.chain(retired).min()
    }

    /// The versions casman stored. CAsMan's (Python) versions are imported
    /// into every manifest created or rebuilt while their files are in the
    /// bucket, whatever happened before: their times say nothing about when
    /// this manifest's history started.
    fn own_versions(&self) -> impl Iterator<Item = &Version> {
        self.versions.iter().filter(|v| v.reason != Reason::Legacy)
    }

    /// Stores `start` (what [`Manifest::history_start`] said before a
    /// change) as `history_since`, lowered to the oldest version listed
    /// now: a change never moves the start of history later (retention
    /// removing the oldest versions does not), and recording an older
    /// version (a spooled one, a rebuild) moves it back.
    pub fn keep_history_start(&mut self, start: Option<String>) {
        let listed = self.own_versions().filter_map(|v| stored_form(&v.created_at)).min();
        let start = start.as_deref().and_then(stored_form);
        self.history_since = match (start, listed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    /// Every number any site published as issued.
    pub fn published_issued(&self) -> Issued {
        let mut set = Issued::new();
        for runs in self.issued.values() {
            set.extend(&issued_set(runs));
        }
        set
    }

    /// Parses a manifest.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("manifest is not valid JSON: {e}"))
    }

    /// Serialises it (pretty, so a person can read it in the bucket).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The newest version that is not a pre-restore safety copy nor a branch:
    /// what "the latest" means for sync. Ancestry comes before clocks: a
    /// version another eligible version descends from is never the head, so a
    /// merge made on a site whose clock runs behind still wins.
    pub fn head(&self) -> Option<&Version> {
        let eligible: Vec<&Version> =
            self.versions.iter().filter(|v| v.reason != Reason::PreRestore && !v.branch).collect();
        eligible
            .iter()
            .filter(|v| {
                !eligible.iter().any(|w| w.sha256 != v.sha256 && self.is_ancestor(&v.sha256, &w.sha256))
            })
            .max_by(|a, b| order(a, b))
            .copied()
    }

    /// The newest version of any kind.
    pub fn newest(&self) -> Option<&Version> {
        self.versions.iter().max_by(|a, b| order(a, b))
    }

    /// The version stored under `key`.
    pub fn find(&self, key: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.key == key)
    }

    /// Every object key the versions depend on: each version's object (a
    /// restore record's is an older version's). An object of the database's
    /// prefix outside this set (and not the manifest) is an orphan
    /// (`backup::orphans`): whatever a version needs to be read back must be
    /// named here.
    pub fn referenced_keys(&self) -> std::collections::BTreeSet<&str> {
        self.versions.iter().map(|v| v.key.as_str()).collect()
    }

    /// A version whose stored content has this SHA-256 (a version or a
    /// restore record of it).
    pub fn find_content(&self, sha: &str) -> Option<&Version> {
        self.versions.iter().find(|v| v.content_sha() == sha)
    }

    /// The objects to read to rebuild `v`'s content, its full snapshot
    /// first and `v`'s own object last (only `v` for a full version).
    /// Fails, naming the missing key, when a delta base is not listed.
    pub fn chain<'a>(&'a self, v: &'a Version) -> Result<Vec<&'a Version>, String> {
        let mut chain = vec![v];
        let mut at = v;
        while at.kind == Kind::Delta {
            let Some(base) = at.delta_base.as_deref() else {
                return Err(format!("delta {} names no base", at.key));
            };
            let Some(next) = self.find(base) else {
                return Err(format!("delta {} applies to {base}, which the manifest does not list", at.key));
            };
            if chain.len() > self.versions.len() {
                return Err(format!("delta chain of {} loops", v.key));
            }
            chain.push(next);
            at = next;
        }
        chain.reverse();
        Ok(chain)
    }

    /// The content SHA-256 of the version with identity `id` (`id` itself
    /// when no version has it: a base recorded before the manifest knew it).
    pub fn content_of<'a>(&'a self, id: &'a str) -> &'a str {
        self.versions.iter().find(|v| v.sha256 == id).map_or(id, Version::content_sha)
    }

    /// The next sequence number for `site`.
    pub fn next_seq(&self, site: &str) -> u64 {
        self.versions.iter().filter(|v| v.site == site).map(|v| v.seq).max().unwrap_or(0) + 1
    }

    /// Whether the version with SHA-256 `ancestor` is `descendant` or one of
    /// its ancestors (through parents and merge parents).
    pub fn is_ancestor(&self, ancestor: &str, descendant: &str) -> bool {
        let mut todo = vec![descendant.to_owned()];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(sha) = todo.pop() {
            if sha == ancestor {
                return true;
            }
            if !seen.insert(sha.clone()) {
                continue;
            }
            for v in self.versions.iter().filter(|v| v.sha256 == sha) {
                todo.extend(v.parent.iter().cloned());
                todo.extend(v.merged_from.iter().cloned());
            }
        }
        false
    }

    /// Stored bytes of all versions' objects, each object once (a restore
    /// record lists the size of the object it shares), a delta at its own
    /// size: what the store bills.
    pub fn stored_bytes(&self) -> u64 {
        let mut seen = std::collections::BTreeSet::new();
        self.versions.iter().filter(|v| seen.insert(v.key.as_str())).map(|v| v.stored_bytes).sum()
    }

    /// Versions newest first.
    pub fn newest_first(&self) -> Vec<&Version> {
        let mut v: Vec<&Version> = self.versions.iter().collect();
        v.sort_by(|a, b| order(b, a));
        v
    }
}

/// A time in the stored form (`2026-01-01T00:00:00Z`, fractions dropped),
/// so that string order is time order; `None` when unreadable.
fn stored_form(at: &str) -> Option<String> {
    at.parse::<jiff::Timestamp>().ok().map(crate::timestamp::format)
}

fn order(a: &Version, b: &Version) -> std::cmp::Ordering {
    (&a.created_at, &a.site, a.seq).cmp(&(&b.created_at, &b.site, b.seq))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn v(key: &str, at: &str, site: &str, seq: u64, reason: Reason) -> Version {
        Version {
            key: key.into(),
            created_at: at.into(),
            site: site.into(),
            seq,
            sha256: format!("sha-{key}"),
            content_sha256: None,
            raw_bytes: 10,
            stored_bytes: 5,
            codec: "zstd".into(),
            parent: None,
            merged_from: None,
            reason,
            record_counts: BTreeMap::new(),
            casman_version: "0".into(),
            schema_version: 1,
            branch: false,
            kind: Kind::Full,
            delta_base: None,
            chain_depth: 0,
        }
    }

    #[test]
    fn head_skips_safety_copies_and_branches() {
        let mut m = Manifest::new("parts.db");
        m.versions.push(v("a", "2026-01-01T00:00:00Z", "lab", 1, Reason::Manual));
        m.versions.push(v("b", "2026-01-02T00:00:00Z", "lab", 2, Reason::PreRestore));
        let mut c = v("c", "2026-01-03T00:00:00Z", "field", 1, Reason::Manual);
        c.branch = true;
        m.versions.push(c);
        assert_eq!(m.head().map(|v| v.key.as_str()), Some("a"));
        assert_eq!(m.newest().map(|v| v.key.as_str()), Some("c"));
        assert_eq!(m.next_seq("lab"), 3);
        assert_eq!(m.next_seq("elsewhere"), 1);
        let round = Manifest::parse(&m.to_bytes()).unwrap_or_default();
        assert_eq!(round, m);
    }

    #[test]
    fn a_restore_record_descends_from_the_head_and_points_at_the_old_content() {
        let mut m = Manifest::new("assembled_casm.db");
        let a = v("a", "2026-01-01T00:00:00Z", "lab", 1, Reason::Manual);
        let mut b = v("b", "2026-01-02T00:00:00Z", "lab", 2, Reason::Manual);
        b.parent = Some(a.sha256.clone());
        m.versions.extend([a.clone(), b.clone()]);
        let r = a.restored(Some(&b.sha256), "lab", 3, "2026-01-03T00:00:00Z");
        assert_eq!((r.key.as_str(), r.content_sha()), ("a", a.sha256.as_str()));
        assert_ne!(r.sha256, a.sha256);
        m.versions.push(r.clone());
        assert_eq!(m.head().map(|h| h.sha256.as_str()), Some(r.sha256.as_str()));
        assert!(m.is_ancestor(&b.sha256, &r.sha256));
        assert_eq!(m.content_of(&r.sha256), a.sha256);
        assert_eq!(m.content_of("unknown"), "unknown");
        assert_eq!(m.find_content(&b.sha256).map(|v| v.key.as_str()), Some("b"));
        let round = Manifest::parse(&m.to_bytes()).unwrap_or_default();
        assert_eq!(round, m);
        // Old manifests (no content field) still read; the field is omitted when absent.
        assert!(
            !String::from_utf8_lossy(&Manifest::parse(&a_manifest(&a)).unwrap_or_default().to_bytes())
                .contains("content_sha256")
        );
    }

    fn a_manifest(a: &Version) -> Vec<u8> {
        let mut m = Manifest::new("parts.db");
        m.versions.push(a.clone());
        m.to_bytes()
    }

    #[test]
    fn a_delta_chain_leads_back_to_its_full_snapshot_and_old_manifests_read_as_full() {
        let mut m = Manifest::new("parts.db");
        m.versions.push(v("full", "2026-01-01T00:00:00Z", "lab", 1, Reason::Manual));
        for (i, base) in [(2, "full"), (3, "d2")] {
            let mut d = v(&format!("d{i}"), &format!("2026-01-0{i}T00:00:00Z"), "lab", i, Reason::Scheduled);
            (d.kind, d.delta_base, d.chain_depth) = (Kind::Delta, Some(base.into()), i as u32 - 1);
            m.versions.push(d);
        }
        let keys = |v: &Version| -> Vec<String> {
            m.chain(v).unwrap_or_default().iter().map(|c| c.key.clone()).collect()
        };
        assert_eq!(keys(&m.versions[2]), ["full", "d2", "d3"]);
        assert_eq!(keys(&m.versions[0]), ["full"]);
        // A restore record of a delta rebuilds through the same chain.
        let r = m.versions[2].restored(Some("sha-d3"), "lab", 4, "2026-01-05T00:00:00Z");
        assert_eq!(keys(&r), ["full", "d2", "d3"]);
        let mut orphan = m.versions[2].clone();
        orphan.delta_base = Some("gone".into());
        assert!(m.chain(&orphan).is_err_and(|e| e.contains("gone")));
        let round = Manifest::parse(&m.to_bytes()).unwrap_or_default();
        assert_eq!(round, m);
        // Full versions serialise as before: no new fields.
        let text = String::from_utf8_lossy(&a_manifest(&m.versions[0])).into_owned();
        assert!(
            !text.contains("kind") && !text.contains("delta_base") && !text.contains("chain_depth"),
            "{text}"
        );
        let old = br#"{"format":1,"database":"parts.db","versions":[{"key":"k","created_at":"t","site":"s",
            "seq":1,"sha256":"x","raw_bytes":1,"stored_bytes":1,"codec":"zstd","reason":"manual"}]}"#;
        assert_eq!(Manifest::parse(old).map(|m| m.versions[0].kind), Ok(Kind::Full));
    }

    #[test]
    fn published_issued_numbers_round_trip_and_join() {
        let mut lab = Issued::new();
        lab.add_run(PartType::Antenna, Polarization::P1, 1, 40);
        let mut field = Issued::new();
        field.add_run(PartType::Antenna, Polarization::P1, 50_000, 50_002);
        field.add_run(PartType::Lna, Polarization::P2, 7, 7);
        let mut m = Manifest::new("parts.db");
        m.issued.insert("lab".into(), issued_runs(&lab));
        m.issued.insert("field".into(), issued_runs(&field));
        let round = Manifest::parse(&m.to_bytes()).unwrap_or_default();
        assert_eq!(round, m);
        assert_eq!(m.issued["lab"]["ANTENNA P1"], vec![[1, 40]]);
        let all = round.published_issued();
        assert_eq!(all.runs(PartType::Antenna, Polarization::P1), &[(1, 40), (50_000, 50_002)]);
        assert_eq!(all.runs(PartType::Lna, Polarization::P2), &[(7, 7)]);
        // An older manifest without the field still reads.
        let old = br#"{"format":1,"database":"parts.db","versions":[]}"#;
        assert!(Manifest::parse(old).unwrap_or_default().published_issued().is_empty());
    }
}
