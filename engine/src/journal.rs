//! The live engine's journal: every epoch the live dataflow is fed, in order,
//! on disk before the request that made it is answered, so a restarted
//! engine rebuilds its model state by feeding the same epochs again.
//!
//! **What is journaled.** One record per epoch: the events exactly as the
//! workers received them (sequence number, lateness flag and processing time
//! stamped), the watermark after it, the largest event time seen (to restore
//! the lateness decision), the names of the patrol units it mentions (unit
//! tokens are hashes; the names live in the reference data's directory), and
//! the request's idempotency key. Clock ticks (epochs with no events) are
//! journaled too, so a restored dataflow sees the very same epochs, and fires
//! the same alerts (alert ids are deterministic: model, kind, subject, time).
//!
//! **Format.** Segment files `NNNNNNNNNNNNNNNNNNNN.cwj` (the first record's
//! number), each a run of records `[len: u32 LE][crc32: u32 LE][bincode]`.
//! A torn record at the end of the last segment (the process died inside a
//! write) is cut off on open; a bad record anywhere else is an error (the
//! file was damaged: restore it or move the journal away, knowingly).
//!
//! **Durability (the fsync policy).** With `fsync` on (the default) a
//! request is answered only after `fdatasync` of the segment covers its
//! record. Syncs are shared (group commit): a request that finds a sync in
//! progress waits for it and the next one covers every record written in the
//! meantime, so concurrent requests pay for one sync, not one each. With
//! `fsync` off, records reach the OS before the answer (a killed process
//! loses nothing) but a power loss can lose the last seconds. Clock ticks are
//! written, never synced on their own.
//!
//! **Bounds (compaction).** A segment is closed at `segment_bytes`; when one
//! closes, the oldest closed segments are deleted while their newest event
//! time is older than the newest one by more than `retention_ms`, and while
//! the journal is over `max_bytes`. The byte bound is what bounds the restore
//! time (a restore replays the journal at the engine's replay speed: restore
//! time ~ journal bytes / replay rate); the time bound keeps a quiet journal
//! from holding days. So model state older than what is kept (e.g. a hotspot
//! model's long baseline) is not restored after a restart: choose the bounds
//! from the models' longest window, the event rate and the restore time you
//! accept. A deletion by the byte bound that leaves less than `retention_ms`
//! of history is logged (warn) with the history kept.

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::event::{Event, UnitToken};
use crate::{Error, EventTime, Result};

/// Where and how the live engine journals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalOptions {
    /// Folder of the segment files (created if missing).
    pub dir: PathBuf,
    /// `fdatasync` before a request is answered (group commit). Default on.
    pub fsync: bool,
    /// A segment is closed past this many bytes. Default 64 MiB.
    pub segment_bytes: u64,
    /// Closed segments whose newest event is older than the newest event
    /// seen by more than this are deleted, ms. Default 24 h.
    pub retention_ms: u64,
    /// The oldest closed segments are deleted while the journal is over
    /// this many bytes. Default 1 GiB.
    pub max_bytes: u64,
}

impl JournalOptions {
    /// Defaults for a folder.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Self {
        JournalOptions {
            dir: dir.into(),
            fsync: true,
            segment_bytes: 64 << 20,
            retention_ms: 86_400_000,
            max_bytes: 1 << 30,
        }
    }
}

/// One journaled epoch.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Record {
    /// The request's idempotency key, if it had one.
    pub key: Option<String>,
    /// Largest event time seen after this epoch (the watermark's state).
    pub max_seen: Option<EventTime>,
    /// The watermark after this epoch.
    pub watermark: EventTime,
    /// Names of the patrol units its events mention.
    pub units: Vec<(UnitToken, String)>,
    /// The events, stamped, in order.
    pub events: Vec<Event>,
}

/// Largest record accepted when reading, bytes: a corrupt length must not
/// make the reader allocate gigabytes.
const MAX_RECORD: u32 = 1 << 30;

/// A closed (or the current) segment.
#[derive(Debug)]
struct Segment {
    path: PathBuf,
    /// Largest event time in it.
    max_seen: Option<EventTime>,
    /// Its size (of the current one: when it was opened).
    bytes: u64,
}

/// The shared sync state: what has been written and what is on disk.
#[derive(Debug)]
struct SyncState {
    /// Bytes written over the journal's life in this process (a log sequence number).
    written: AtomicU64,
    /// Bytes known on disk; the lock is held while a sync runs (group commit).
    synced: Mutex<u64>,
    /// The current segment, for syncs outside the writer's lock.
    file: Mutex<Arc<File>>,
}

/// An open journal, ready to append (after [`Journal::open`] read it back).
#[derive(Debug)]
pub struct Journal {
    opts: JournalOptions,
    file: Arc<File>,
    /// Bytes in the current segment.
    bytes: u64,
    /// Number of the next record.
    next: u64,
    segments: VecDeque<Segment>,
    sync: Arc<SyncState>,
}

/// A handle to wait for a write to be on disk, after the writer's lock is released.
#[derive(Debug, Clone)]
pub struct SyncHandle(Arc<SyncState>, bool);

impl SyncHandle {
    /// Bytes written and not yet known on disk (0 with fsync off).
    pub fn lag(&self) -> u64 {
        if !self.1 {
            return 0;
        }
        let written = self.0.written.load(Ordering::SeqCst);
        self.0.synced.try_lock().map_or(0, |s| written.saturating_sub(*s))
    }

    /// Returns once the journal is on disk up to `lsn` (see [`Journal::append`]).
    pub fn sync_to(&self, lsn: u64) -> Result<()> {
        if !self.1 {
            return Ok(());
        }
        let mut synced = self.0.synced.lock().map_err(|_| Error::Bug("journal sync lock poisoned".into()))?;
        if *synced >= lsn {
            return Ok(()); // a sync that started after our write covered it
        }
        let target = self.0.written.load(Ordering::SeqCst);
        let file = self.0.file.lock().map_err(|_| Error::Bug("journal file lock poisoned".into()))?.clone();
        file.sync_data().map_err(|e| Error::io(Path::new("journal segment"), e))?;
        *synced = target;
        Ok(())
    }
}

fn segment_path(dir: &Path, first: u64) -> PathBuf {
    dir.join(format!("{first:020}.cwj"))
}

/// Reads one record; `Ok(None)` at a clean end, `Err(offset)` on a torn or bad record.
fn read_record(r: &mut impl Read, buf: &mut Vec<u8>) -> std::result::Result<Option<Record>, ()> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < 8 {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    let len = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
    let crc = u32::from_le_bytes(head[4..].try_into().expect("4 bytes"));
    if len > MAX_RECORD {
        return Err(());
    }
    buf.resize(len as usize, 0);
    r.read_exact(buf).map_err(|_| ())?;
    if crc32fast::hash(buf) != crc {
        return Err(());
    }
    bincode::deserialize(buf).map(Some).map_err(|_| ())
}

impl Journal {
    /// Opens the journal in `opts.dir`, handing every record to `restore` in
    /// order (oldest first), and returns it ready to append. A torn record at
    /// the very end is cut off (the process died inside a write).
    pub fn open(opts: JournalOptions, mut restore: impl FnMut(Record) -> Result<()>) -> Result<Journal> {
        std::fs::create_dir_all(&opts.dir).map_err(|e| Error::io(&opts.dir, e))?;
        let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(&opts.dir)
            .map_err(|e| Error::io(&opts.dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| {
                let n = p.file_name()?.to_str()?.strip_suffix(".cwj")?.parse().ok()?;
                Some((n, p))
            })
            .collect();
        names.sort();
        let mut segments = VecDeque::new();
        let mut next = names.first().map_or(0, |(n, _)| *n);
        let mut buf = Vec::new();
        let last = names.len().saturating_sub(1);
        for (i, (first, path)) in names.iter().enumerate() {
            if *first != next {
                return Err(Error::config(
                    format!("journal {}", opts.dir.display()),
                    format!("segment {} does not follow record {next}: a segment is missing", path.display()),
                ));
            }
            let file = File::open(path).map_err(|e| Error::io(path, e))?;
            let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
            let mut r = CountingReader { inner: BufReader::new(file), read: 0 };
            let mut max_seen = None;
            let mut good = 0;
            loop {
                match read_record(&mut r, &mut buf) {
                    Ok(Some(rec)) => {
                        good = r.read;
                        next += 1;
                        max_seen = max_seen.max(rec.max_seen);
                        restore(rec)?;
                    }
                    Ok(None) => break,
                    Err(()) if i == last => {
                        // Torn tail: keep what is whole.
                        let f = OpenOptions::new().write(true).open(path).map_err(|e| Error::io(path, e))?;
                        f.set_len(good).map_err(|e| Error::io(path, e))?;
                        f.sync_all().map_err(|e| Error::io(path, e))?;
                        tracing::warn!(
                            segment = %path.display(),
                            kept_bytes = good,
                            size,
                            "journal: cut a torn record (the process died inside a write)"
                        );
                        break;
                    }
                    Err(()) => {
                        return Err(Error::config(
                            format!("journal segment {}", path.display()),
                            format!(
                                "bad record at byte {good}; the file is damaged (restore it from a backup, or move the journal away to start without that state)"
                            ),
                        ));
                    }
                }
            }
            segments.push_back(Segment { path: path.clone(), max_seen, bytes: good });
        }
        // Append to the last segment, or start one.
        let path = match segments.back() {
            Some(s) => s.path.clone(),
            None => {
                let p = segment_path(&opts.dir, next);
                segments.push_back(Segment { path: p.clone(), max_seen: None, bytes: 0 });
                p
            }
        };
        let file = Arc::new(OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io(&path, e))?);
        let bytes = file.metadata().map_err(|e| Error::io(&path, e))?.len();
        let sync = Arc::new(SyncState {
            written: AtomicU64::new(0),
            synced: Mutex::new(0),
            file: Mutex::new(Arc::clone(&file)),
        });
        Ok(Journal { opts, file, bytes, next, segments, sync })
    }

    /// A handle to wait for appended records to be on disk.
    pub fn sync_handle(&self) -> SyncHandle {
        SyncHandle(Arc::clone(&self.sync), self.opts.fsync)
    }

    /// Appends a record (written to the OS, not yet synced); returns its end
    /// as a log sequence number for [`SyncHandle::sync_to`]. On a failed
    /// write the segment is cut back, so the journal stays readable.
    pub fn append(&mut self, rec: &Record) -> Result<u64> {
        let body = bincode::serialize(rec).map_err(|e| Error::Bug(format!("journal record: {e}")))?;
        let mut frame = Vec::with_capacity(body.len() + 8);
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        let path = self.segments.back().map(|s| s.path.clone()).unwrap_or_default();
        if let Err(e) = (&*self.file).write_all(&frame) {
            let _ = self.file.set_len(self.bytes);
            return Err(Error::io(&path, e));
        }
        self.bytes += frame.len() as u64;
        self.next += 1;
        if let Some(s) = self.segments.back_mut() {
            s.max_seen = s.max_seen.max(rec.max_seen);
        }
        let lsn = self.sync.written.fetch_add(frame.len() as u64, Ordering::SeqCst) + frame.len() as u64;
        if self.bytes >= self.opts.segment_bytes {
            self.rotate()?;
        }
        Ok(lsn)
    }

    /// Closes the current segment (synced), starts the next, and deletes
    /// segments past the retention.
    fn rotate(&mut self) -> Result<()> {
        let path = segment_path(&self.opts.dir, self.next);
        let file = Arc::new(OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io(&path, e))?);
        {
            let mut synced = self.sync.synced.lock().map_err(|_| Error::Bug("journal sync lock poisoned".into()))?;
            self.file.sync_data().map_err(|e| Error::io(&path, e))?;
            *synced = self.sync.written.load(Ordering::SeqCst);
            *self.sync.file.lock().map_err(|_| Error::Bug("journal file lock poisoned".into()))? = Arc::clone(&file);
        }
        if let Some(closed) = self.segments.back_mut() {
            closed.bytes = self.bytes;
        }
        self.file = file;
        self.bytes = 0;
        self.segments.push_back(Segment { path, max_seen: None, bytes: 0 });
        let newest = self.segments.iter().filter_map(|s| s.max_seen).max().unwrap_or(0);
        let mut total: u64 = self.segments.iter().map(|s| s.bytes).sum();
        while self.segments.len() > 1 {
            let old = &self.segments[0];
            let expired = old.max_seen.is_none_or(|m| m.saturating_add(self.opts.retention_ms) < newest);
            let over = total > self.opts.max_bytes;
            if !expired && !over {
                break;
            }
            std::fs::remove_file(&old.path).map_err(|e| Error::io(&old.path, e))?;
            total -= old.bytes;
            let gone = self.segments.pop_front().and_then(|s| s.max_seen);
            if !expired {
                tracing::warn!(
                    max_bytes = self.opts.max_bytes,
                    history_kept_s = newest.saturating_sub(gone.unwrap_or(newest)) / 1000,
                    retention_s = self.opts.retention_ms / 1000,
                    "journal: oldest segment deleted by the byte bound; a restart restores less than the retention"
                );
            }
        }
        Ok(())
    }

    /// Segment files now on disk (for tests and metrics).
    pub fn segments(&self) -> usize {
        self.segments.len()
    }

    /// Bytes of the journal on disk (closed segments and the current one).
    pub fn bytes(&self) -> u64 {
        self.segments.iter().rev().skip(1).map(|s| s.bytes).sum::<u64>() + self.bytes
    }
}

/// Counts the bytes read, to know where the last whole record ended.
struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

/// The idempotency keys of the most recent keyed requests, oldest dropped first.
#[derive(Debug, Default)]
pub struct RecentKeys {
    order: VecDeque<String>,
    set: HashSet<String>,
}

impl RecentKeys {
    /// Most keys remembered: a retry comes seconds after the lost answer,
    /// not a hundred thousand requests later.
    pub const CAPACITY: usize = 100_000;

    /// Whether the key was seen.
    pub fn contains(&self, key: &str) -> bool {
        self.set.contains(key)
    }

    /// Remembers a key.
    pub fn insert(&mut self, key: String) {
        if self.set.insert(key.clone()) {
            self.order.push_back(key);
            while self.order.len() > Self::CAPACITY {
                if let Some(old) = self.order.pop_front() {
                    self.set.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64) -> Record {
        Record { key: Some(format!("k{i}")), max_seen: Some(i * 1000), watermark: i, units: vec![], events: vec![] }
    }

    /// The watermarks of the records a journal restores, in order.
    fn watermarks(opts: JournalOptions) -> Vec<u64> {
        let mut back = Vec::new();
        Journal::open(opts, |r| {
            back.push(r.watermark);
            Ok(())
        })
        .unwrap();
        back
    }

    #[test]
    fn records_come_back_in_order_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let opts = JournalOptions::in_dir(dir.path());
        let mut j = Journal::open(opts.clone(), |_| Ok(())).unwrap();
        for i in 0..5 {
            j.append(&rec(i)).unwrap();
        }
        drop(j);
        // A torn write: half a header at the end.
        let seg = segment_path(dir.path(), 0);
        OpenOptions::new().append(true).open(&seg).unwrap().write_all(&[9, 0, 0]).unwrap();
        let mut back = Vec::new();
        let mut j = Journal::open(opts.clone(), |r| {
            back.push(r);
            Ok(())
        })
        .unwrap();
        assert_eq!(back, (0..5).map(rec).collect::<Vec<_>>());
        j.append(&rec(5)).unwrap();
        drop(j);
        let mut n = 0;
        Journal::open(opts, |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(n, 6, "the record after the cut is readable");
    }

    #[test]
    fn damage_before_the_tail_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let opts = JournalOptions { segment_bytes: 40, ..JournalOptions::in_dir(dir.path()) };
        let mut j = Journal::open(opts.clone(), |_| Ok(())).unwrap();
        for i in 0..4 {
            j.append(&rec(i)).unwrap();
        }
        drop(j);
        let first = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&first).unwrap();
        bytes[10] ^= 0xff;
        std::fs::write(&first, bytes).unwrap();
        assert!(Journal::open(opts, |_| Ok(())).is_err());
    }

    #[test]
    fn old_segments_are_deleted_past_the_retention() {
        let dir = tempfile::tempdir().unwrap();
        let opts = JournalOptions { segment_bytes: 1, retention_ms: 2_500, ..JournalOptions::in_dir(dir.path()) };
        let mut j = Journal::open(opts.clone(), |_| Ok(())).unwrap();
        for i in 0..10 {
            j.append(&rec(i)).unwrap();
        }
        // Newest event 9000 ms: the segments of 7000, 8000 and 9000 ms stay, and the empty current one.
        assert_eq!(j.segments(), 4);
        drop(j);
        let back = watermarks(opts);
        assert_eq!(back, vec![7, 8, 9]);
    }

    #[test]
    fn the_journal_stays_under_its_byte_bound_and_restores_the_newest_records() {
        let dir = tempfile::tempdir().unwrap();
        // Records of ~40 bytes, segments of 3, at most ~4 segments' worth kept.
        let opts = JournalOptions { segment_bytes: 100, max_bytes: 400, ..JournalOptions::in_dir(dir.path()) };
        let mut j = Journal::open(opts.clone(), |_| Ok(())).unwrap();
        let mut peak = 0;
        for i in 0..1000 {
            j.append(&rec(i)).unwrap();
            peak = peak.max(j.bytes());
        }
        let on_disk: u64 = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().metadata().unwrap().len()).sum();
        assert_eq!(on_disk, j.bytes());
        assert!(peak <= 400 + 100 + 64, "peak {peak} bytes: the bound plus one segment");
        drop(j);
        let back = watermarks(opts);
        assert!(!back.is_empty() && back.len() < 20, "{} records restored", back.len());
        assert_eq!(*back.last().unwrap(), 999, "the newest records are kept");
        assert!(back.windows(2).all(|w| w[1] == w[0] + 1), "a contiguous tail: {back:?}");
    }

    #[test]
    fn recent_keys_forget_the_oldest() {
        let mut k = RecentKeys::default();
        for i in 0..RecentKeys::CAPACITY + 1 {
            k.insert(i.to_string());
        }
        assert!(!k.contains("0") && k.contains("1") && k.contains(&RecentKeys::CAPACITY.to_string()));
    }
}
