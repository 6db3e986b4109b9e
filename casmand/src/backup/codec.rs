//! SHA-256 and zstd over files, in bounded memory (streamed in 1 MiB blocks).
//! Blocking: call from `spawn_blocking`.

use std::{
    fs::File,
    io::{self, BufReader, BufWriter, Read, Write},
    path::Path,
};

use sha2::{Digest, Sha256};

/// zstd level: zstd's default. On the field-size fixture (20 MB adopted
/// file) level 3 compresses in ~70 ms to 2.70 MB; level 6 took ~230 ms for
/// 2.39 MB: 12% fewer bytes for a full snapshot, stored once per chain, was
/// not worth tripling the time of every full backup.
pub const LEVEL: i32 = 3;

/// Reads `input` to its end in 1 MiB blocks, handing each to `sink` and
/// hashing it: the hex SHA-256 and the size of what was read.
pub fn hash_through(
    mut input: impl Read,
    mut sink: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<(String, u64)> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        sink(&buf[..n])?;
        total += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), total))
}

/// Hex SHA-256 and size of the file at `path`.
pub fn sha256_file(path: &Path) -> io::Result<(String, u64)> {
    hash_through(File::open(path)?, |_| Ok(()))
}

/// Compresses `src` into `dst` (created); returns the compressed size. `dst`
/// is not synced: it is a temporary file for an upload.
pub fn compress(src: &Path, dst: &Path) -> io::Result<u64> {
    let out = File::create(dst)?;
    let mut encoder = zstd::stream::Encoder::new(BufWriter::with_capacity(1 << 20, &out), LEVEL)?;
    io::copy(&mut File::open(src)?, &mut encoder)?;
    encoder.finish()?.flush()?;
    Ok(out.metadata()?.len())
}

/// Decompresses `src` into `dst` (created); returns the decompressed size.
/// `dst` is not synced: the caller syncs it once it is complete.
pub fn decompress(src: &Path, dst: &Path) -> io::Result<u64> {
    let mut decoder = zstd::stream::Decoder::new(BufReader::new(File::open(src)?))?;
    let out = File::create(dst)?;
    let mut writer = BufWriter::with_capacity(1 << 20, &out);
    let n = io::copy(&mut decoder, &mut writer)?;
    writer.flush()?;
    Ok(n)
}

/// A writer that decompresses the zstd stream written into it into a file,
/// hashing the decompressed bytes: a download streams through it, and the
/// file is whole, and its SHA-256 known, when the last chunk arrives.
///
/// Two threads: the one writing into it decompresses, a second hashes and
/// writes the file (SHA-256 and the page cache's copy cost about as much as
/// the decompression itself: done one after the other, a restore of the
/// 10× log took their sum).
pub struct Unpacker {
    decoder: zstd::stream::write::Decoder<'static, Handoff>,
}

/// Decompressed bytes gathered into blocks for the hashing thread.
const BLOCK: usize = 1 << 20;
/// Blocks on their way to the hashing thread at most (memory: 4 MiB).
const IN_FLIGHT: usize = 4;

/// Hands decompressed blocks to the thread that hashes and writes them.
struct Handoff {
    block: Vec<u8>,
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    worker: Option<std::thread::JoinHandle<io::Result<(String, u64)>>>,
}

impl Handoff {
    fn start(file: File) -> io::Result<Handoff> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(IN_FLIGHT);
        let worker = std::thread::Builder::new().name("casmand-unpack".into()).spawn(move || {
            let (mut out, mut hasher, mut total) = (file, Sha256::new(), 0u64);
            for block in rx {
                hasher.update(&block);
                out.write_all(&block).map_err(WriteError::wrap)?;
                total += block.len() as u64;
            }
            Ok((hex::encode(hasher.finalize()), total))
        })?;
        Ok(Handoff { block: Vec::with_capacity(BLOCK), tx: Some(tx), worker: Some(worker) })
    }

    /// Sends the gathered block; if the hashing thread stopped (it could not
    /// write), its error.
    fn send(&mut self) -> io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(BLOCK));
        match self.tx.as_ref().map(|tx| tx.send(block)) {
            Some(Ok(())) => Ok(()),
            _ => Err(self
                .join()
                .err()
                .unwrap_or_else(|| WriteError::wrap(io::Error::other("the writer stopped")))),
        }
    }

    /// Ends the stream and waits for the hashing thread: the file's hex
    /// SHA-256 and size.
    fn join(&mut self) -> io::Result<(String, u64)> {
        self.tx = None;
        match self.worker.take().map(std::thread::JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(WriteError::wrap(io::Error::other("the writing thread panicked"))),
            None => Err(WriteError::wrap(io::Error::other("the writer stopped"))),
        }
    }
}

impl Write for Handoff {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(BLOCK - self.block.len());
        self.block.extend_from_slice(&buf[..n]);
        if self.block.len() == BLOCK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An [`Unpacker`] failed to write its file (a full disk, say): the stream
/// itself may be sound, so this is not a verdict on the stored object.
#[derive(Debug, thiserror::Error)]
#[error("writing the decompressed file: {0}")]
pub struct WriteError(#[source] io::Error);

impl WriteError {
    fn wrap(e: io::Error) -> io::Error {
        io::Error::new(e.kind(), WriteError(e))
    }

    /// Whether `e` came from writing the file, not from decoding the stream.
    pub fn is(e: &io::Error) -> bool {
        e.get_ref().is_some_and(|inner| inner.is::<WriteError>())
    }
}

impl Unpacker {
    /// Decompresses into `dst` (created or truncated; not synced).
    pub fn create(dst: &Path) -> io::Result<Unpacker> {
        Ok(Unpacker { decoder: zstd::stream::write::Decoder::new(Handoff::start(File::create(dst)?)?)? })
    }

    /// Ends the stream: fails if it stopped inside a zstd frame (a
    /// truncated object). Returns the hex SHA-256 and size of the file.
    pub fn finish(self) -> io::Result<(String, u64)> {
        let mut out = self.decoder.finish()?;
        out.send()?;
        out.join()
    }
}

impl Write for Unpacker {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.decoder.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.decoder.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checksum() -> io::Result<()> {
        let dir = tempfile::tempdir()?;
        let (a, z, b) = (dir.path().join("a"), dir.path().join("a.zst"), dir.path().join("b"));
        std::fs::write(&a, b"SQLite format 3\0".repeat(10_000))?;
        let stored = compress(&a, &z)?;
        assert!(stored < 10_000);
        assert_eq!(decompress(&z, &b)?, 160_000);
        assert_eq!(sha256_file(&a)?, sha256_file(&b)?);
        let (sha, n) = sha256_file(&a)?;
        assert_eq!((sha.len(), n), (64, 160_000));
        // Streamed in small writes, as a download arrives: the same file.
        let mut unpacker = Unpacker::create(&b)?;
        for chunk in std::fs::read(&z)?.chunks(7) {
            unpacker.write_all(chunk)?;
        }
        assert_eq!(unpacker.finish()?, sha256_file(&a)?);
        // A truncated object is refused, not taken for a short file.
        let whole = std::fs::read(&z)?;
        let mut unpacker = Unpacker::create(&b)?;
        unpacker.write_all(&whole[..whole.len() - 3])?;
        assert!(unpacker.finish().is_err());
        std::fs::write(&z, b"not zstd")?;
        assert!(decompress(&z, &b).is_err());
        let mut unpacker = Unpacker::create(&b)?;
        let bad = unpacker.write_all(b"not zstd").and_then(|()| unpacker.finish().map(drop));
        assert!(bad.is_err_and(|e| !WriteError::is(&e)), "a bad stream is the object's fault");
        Ok(())
    }

    #[test]
    fn a_full_disk_is_not_taken_for_a_bad_stream() -> io::Result<()> {
        // /dev/full takes the file's place: every write fails with ENOSPC.
        let dir = tempfile::tempdir()?;
        let (a, z) = (dir.path().join("a"), dir.path().join("a.zst"));
        std::fs::write(&a, b"SQLite format 3\0".repeat(200_000))?;
        compress(&a, &z)?;
        let mut unpacker = Unpacker::create(Path::new("/dev/full"))?;
        let failed = unpacker.write_all(&std::fs::read(&z)?).and_then(|()| unpacker.finish().map(drop));
        let e = failed.expect_err("/dev/full took 3 MB");
        assert!(WriteError::is(&e), "{e}");
        assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
        Ok(())
    }
}
