//! Delta objects: the pages of a database file that differ from another
//! stored object (its delta base), and the identity of the result. A version
//! stored as a delta is rebuilt by decompressing the full snapshot at the
//! root of its chain and applying every delta after it, in order; the result
//! must hash to the version's SHA-256. The format is documented in
//! `docs/object-format.md` (with a standalone rebuild script,
//! `tools/casman-rebuild.py`).
//!
//! Inside one zstd frame, little-endian:
//!
//! ```text
//! magic "CASMDLT1" (8) | format u32 | page size u32 | page count u64
//! | base content SHA-256 (32) | result SHA-256 (32)
//! | base key length u16 | base key (UTF-8)
//! | record count u64 | records: page index u64 (0-based), page bytes (page size)
//! ```
//!
//! The result is `page count × page size` bytes: the base truncated or
//! extended to that length, then every record written at `index × page size`.
//! Blocking: call from `spawn_blocking`.

use std::{
    fs::{File, OpenOptions},
    io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    path::Path,
};

use sha2::{Digest, Sha256};

use super::codec;

/// First bytes of a decompressed delta.
pub const MAGIC: &[u8; 8] = b"CASMDLT1";
/// Format number written after the magic.
pub const FORMAT: u32 = 1;

/// SHA-256 of one page.
pub type PageHash = [u8; 32];

/// The header of a delta.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Page size of the database (bytes).
    pub page_size: u32,
    /// Pages in the result.
    pub page_count: u64,
    /// Hex SHA-256 of the content the delta applies to.
    pub base_sha256: String,
    /// Hex SHA-256 of the result.
    pub result_sha256: String,
    /// Key of the object holding the base content.
    pub base_key: String,
}

fn bad(what: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.into())
}

fn sha_bytes(hex_sha: &str) -> io::Result<[u8; 32]> {
    let v = hex::decode(hex_sha).map_err(|_| bad(format!("SHA-256 {hex_sha:?} is not hex")))?;
    v.try_into().map_err(|_| bad(format!("SHA-256 {hex_sha:?} is not 32 bytes")))
}

/// The page size in an SQLite header (bytes 16-17, big-endian; 1 = 65536).
pub fn page_size_of(header: &[u8]) -> Option<u32> {
    let raw = u16::from_be_bytes([*header.get(16)?, *header.get(17)?]) as u32;
    let size = if raw == 1 { 65_536 } else { raw };
    (size >= 512 && size.is_power_of_two()).then_some(size)
}

/// Hashes a stream page by page, whatever the size of the chunks it is fed.
#[derive(Debug)]
pub struct PageHasher {
    page_size: usize,
    partial: Vec<u8>,
    /// SHA-256 of every complete page so far.
    pub hashes: Vec<PageHash>,
}

impl PageHasher {
    /// A hasher for pages of `page_size` bytes.
    pub fn new(page_size: u32) -> Self {
        PageHasher { page_size: page_size as usize, partial: Vec::new(), hashes: Vec::new() }
    }

    /// Feeds the next bytes of the file.
    pub fn update(&mut self, mut bytes: &[u8]) {
        if !self.partial.is_empty() {
            let need = self.page_size - self.partial.len();
            let take = need.min(bytes.len());
            self.partial.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if self.partial.len() == self.page_size {
                self.hashes.push(Sha256::digest(&self.partial).into());
                self.partial.clear();
            }
        }
        let mut pages = bytes.chunks_exact(self.page_size);
        for page in &mut pages {
            self.hashes.push(Sha256::digest(page).into());
        }
        self.partial.extend_from_slice(pages.remainder());
    }

    /// The page hashes, or `None` when the file was not a whole number of pages.
    pub fn finish(self) -> Option<Vec<PageHash>> {
        self.partial.is_empty().then_some(self.hashes)
    }
}

/// Indexes of the pages of `new` that differ from `old` (or that `old` lacks).
pub fn changed_pages(old: &[PageHash], new: &[PageHash]) -> Vec<u64> {
    new.iter().enumerate().filter(|(i, h)| old.get(*i) != Some(h)).map(|(i, _)| i as u64).collect()
}

/// Writes the delta taking the file holding `header.base_sha256` to `raw`
/// (whose `pages` differ) into `out`, zstd-compressed. Returns the size of `out`.
pub fn write(raw: &Path, pages: &[u64], header: &Header, out: &Path) -> io::Result<u64> {
    let file = File::create(out)?;
    let mut enc = zstd::stream::Encoder::new(BufWriter::new(&file), codec::LEVEL)?;
    write_header(&mut enc, header, pages.len() as u64)?;
    let mut src = File::open(raw)?;
    let mut page = vec![0u8; header.page_size as usize];
    for &index in pages {
        src.seek(SeekFrom::Start(index * header.page_size as u64))?;
        src.read_exact(&mut page)?;
        enc.write_all(&index.to_le_bytes())?;
        enc.write_all(&page)?;
    }
    enc.finish()?.flush()?;
    Ok(file.metadata()?.len())
}

/// The records of a delta: page index (0-based) and page bytes.
pub type Records = Vec<(u64, Vec<u8>)>;

/// Writes the delta `header` with `records` (page index, page bytes) into
/// `out`, zstd-compressed. Returns the size of `out`.
pub fn write_records(header: &Header, records: &[(u64, Vec<u8>)], out: &Path) -> io::Result<u64> {
    let file = File::create(out)?;
    let mut enc = zstd::stream::Encoder::new(BufWriter::new(&file), codec::LEVEL)?;
    write_header(&mut enc, header, records.len() as u64)?;
    for (index, page) in records {
        if page.len() != header.page_size as usize {
            return Err(bad(format!(
                "page {index} is {} bytes, not the page size {}",
                page.len(),
                header.page_size
            )));
        }
        enc.write_all(&index.to_le_bytes())?;
        enc.write_all(page)?;
    }
    enc.finish()?.flush()?;
    Ok(file.metadata()?.len())
}

/// Reads the delta in `delta` whole: its header and records, in stored
/// order (memory: the changed pages, at most the size of the database).
pub fn read_records(delta: &Path) -> io::Result<(Header, Records)> {
    let mut r = zstd::stream::Decoder::new(BufReader::new(File::open(delta)?))?;
    let header = read_header(&mut r)?;
    let count = read_u64(&mut r)?;
    let mut records = Vec::new();
    for _ in 0..count {
        let index = read_u64(&mut r)?;
        let mut page = vec![0u8; header.page_size as usize];
        r.read_exact(&mut page)?;
        records.push((index, page));
    }
    Ok((header, records))
}

fn write_header(enc: &mut impl Write, header: &Header, records: u64) -> io::Result<()> {
    enc.write_all(MAGIC)?;
    enc.write_all(&FORMAT.to_le_bytes())?;
    enc.write_all(&header.page_size.to_le_bytes())?;
    enc.write_all(&header.page_count.to_le_bytes())?;
    enc.write_all(&sha_bytes(&header.base_sha256)?)?;
    enc.write_all(&sha_bytes(&header.result_sha256)?)?;
    let key = header.base_key.as_bytes();
    let len =
        u16::try_from(key.len()).map_err(|_| bad(format!("base key {:?} is too long", header.base_key)))?;
    enc.write_all(&len.to_le_bytes())?;
    enc.write_all(key)?;
    enc.write_all(&records.to_le_bytes())
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> io::Result<u64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(u64::from_le_bytes(b))
}

fn read_header(r: &mut impl Read) -> io::Result<Header> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic)?;
    if &magic != MAGIC {
        return Err(bad("not a casman delta (magic CASMDLT1 missing)"));
    }
    let format = read_u32(r)?;
    if format != FORMAT {
        return Err(bad(format!("delta format {format}: this casman reads format {FORMAT}")));
    }
    let page_size = read_u32(r)?;
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(bad(format!("delta page size {page_size}: expected a power of two, 512 to 65536")));
    }
    let page_count = read_u64(r)?;
    let mut sha = [0u8; 32];
    r.read_exact(&mut sha)?;
    let base_sha256 = hex::encode(sha);
    r.read_exact(&mut sha)?;
    let result_sha256 = hex::encode(sha);
    let mut len = [0u8; 2];
    r.read_exact(&mut len)?;
    let mut key = vec![0u8; u16::from_le_bytes(len) as usize];
    r.read_exact(&mut key)?;
    let base_key = String::from_utf8(key).map_err(|_| bad("delta base key is not UTF-8"))?;
    Ok(Header { page_size, page_count, base_sha256, result_sha256, base_key })
}

/// Applies the delta in `delta` (zstd-compressed) to `target`, which holds
/// its base content. Returns its header (the caller checks it against the
/// manifest and hashes the final result).
pub fn apply(delta: &Path, target: &Path) -> io::Result<Header> {
    let mut r = zstd::stream::Decoder::new(BufReader::new(File::open(delta)?))?;
    let header = read_header(&mut r)?;
    let page_size = header.page_size as u64;
    let out = OpenOptions::new().write(true).open(target)?;
    out.set_len(header.page_count * page_size)?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let records = read_u64(&mut r)?;
    let mut page = vec![0u8; page_size as usize];
    for _ in 0..records {
        let index = read_u64(&mut r)?;
        if index >= header.page_count {
            return Err(bad(format!("delta page {index} is beyond the page count {}", header.page_count)));
        }
        r.read_exact(&mut page)?;
        out.seek(SeekFrom::Start(index * page_size))?;
        out.write_all(&page)?;
    }
    if r.read(&mut [0u8; 1])? != 0 {
        return Err(bad("delta has bytes after its last record"));
    }
    out.flush()?;
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hashes(bytes: &[u8], size: u32, chunk: usize) -> Option<Vec<PageHash>> {
        let mut h = PageHasher::new(size);
        bytes.chunks(chunk).for_each(|c| h.update(c));
        h.finish()
    }

    #[test]
    fn page_hashes_do_not_depend_on_chunking() {
        let bytes: Vec<u8> = (0..8192u32 * 3).map(|i| (i * 7 % 251) as u8).collect();
        let whole = hashes(&bytes, 8192, bytes.len());
        assert_eq!(whole.as_ref().map(Vec::len), Some(3));
        for chunk in [1, 100, 8191, 8192, 8193, 20_000] {
            assert_eq!(hashes(&bytes, 8192, chunk), whole, "chunk {chunk}");
        }
        assert_eq!(hashes(&bytes[..8000], 8192, 1000), None);
        let mut header = vec![0u8; 100];
        header[16..18].copy_from_slice(&4096u16.to_be_bytes());
        assert_eq!(page_size_of(&header), Some(4096));
        header[16..18].copy_from_slice(&1u16.to_be_bytes());
        assert_eq!(page_size_of(&header), Some(65_536));
        header[16..18].copy_from_slice(&1000u16.to_be_bytes());
        assert_eq!(page_size_of(&header), None);
    }

    #[test]
    fn a_delta_takes_the_base_to_the_result_growing_or_shrinking() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let size = 512u32;
        let page = |n: u8| vec![n; size as usize];
        let base: Vec<u8> = [page(1), page(2), page(3), page(4)].concat();
        for result in [
            [page(1), page(9), page(3), page(4), page(5)].concat(),
            [page(7), page(2)].concat(),
            base.clone(),
        ] {
            let (b, r, d) = (dir.path().join("base"), dir.path().join("result"), dir.path().join("d.zst"));
            std::fs::write(&b, &base)?;
            std::fs::write(&r, &result)?;
            let old = hashes(&base, size, 4096).unwrap_or_default();
            let new = hashes(&result, size, 4096).unwrap_or_default();
            let pages = changed_pages(&old, &new);
            let header = Header {
                page_size: size,
                page_count: new.len() as u64,
                base_sha256: codec::sha256_file(&b)?.0,
                result_sha256: codec::sha256_file(&r)?.0,
                base_key: "backups/parts.db/x.zst".into(),
            };
            write(&r, &pages, &header, &d)?;
            assert_eq!(apply(&d, &b)?, header);
            assert_eq!(std::fs::read(&b)?, result);
        }
        std::fs::write(dir.path().join("junk"), b"nope")?;
        assert!(apply(&dir.path().join("junk"), &dir.path().join("base")).is_err());
        Ok(())
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        /// Any chain of page edits (overwrite, grow, shrink) rebuilt from
        /// the first file and its deltas gives every file byte for byte.
        #[test]
        fn a_chain_of_deltas_rebuilds_every_file(
            first in proptest::collection::vec(0u8..4, 1..12),
            edits in proptest::collection::vec(proptest::collection::vec((0usize..16, 0u8..4), 0..6), 1..6),
        ) {
            let size = 512u32;
            let file = |pages: &[u8]| pages.iter().flat_map(|&p| vec![p; size as usize]).collect::<Vec<u8>>();
            let dir = tempfile::tempdir().map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let (rebuilt, next, d) = (dir.path().join("rebuilt"), dir.path().join("next"), dir.path().join("d"));
            let mut pages = first.clone();
            std::fs::write(&rebuilt, file(&pages)).ok();
            for edit in edits {
                let before = file(&pages);
                for (at, value) in edit {
                    if at < pages.len() { pages[at] = value } else { pages.push(value) }
                }
                if pages.len() > 2 && pages[0] == 3 { pages.pop(); }
                let after = file(&pages);
                std::fs::write(&next, &after).ok();
                let pages_changed = changed_pages(
                    &hashes(&before, size, 700).unwrap_or_default(),
                    &hashes(&after, size, 700).unwrap_or_default(),
                );
                let header = Header {
                    page_size: size,
                    page_count: pages.len() as u64,
                    base_sha256: hex::encode(Sha256::digest(&before)),
                    result_sha256: hex::encode(Sha256::digest(&after)),
                    base_key: "k".into(),
                };
                write(&next, &pages_changed, &header, &d).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
                apply(&d, &rebuilt).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
                proptest::prop_assert_eq!(std::fs::read(&rebuilt).ok(), Some(after));
            }
        }
    }
}
