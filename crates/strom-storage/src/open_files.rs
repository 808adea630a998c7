//! Segment files opened on demand, under a process-wide cap on the handles kept open.
//!
//! Every segment file (`.log`, `.index`, `.timeindex`, `.txnindex`) is a [`LazyFile`]: a
//! path and, while it is in use, an open handle. A sealed segment's files are closed once
//! it is opened or sealed and reopened when read; the active segment's are opened when
//! written or read. Each open handle joins one least-recently-used list for the whole
//! process; once it holds more than [`open_files_max`] handles the least recently used
//! eighth is closed (readers holding an `Arc<File>` from [`LazyFile::get`], such as a fetch
//! response being sent, keep theirs until they drop it). So thousands of idle partitions
//! hold no descriptor at all, while the busy ones keep theirs.
//!
//! A closed file is reopened by its path, so nothing may rename a segment's files while
//! the segment object still reads them (the cleaner swaps whole segments, and opens a new
//! `Segment` for the renamed files). Writes through a handle that is then closed stay in
//! the page cache; an fsync through a later handle on the same file makes them durable.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::error::StorageError;
use crate::files::open_read_write;

/// Default cap when the fd limit cannot be read.
const OPEN_FILES_MAX_FALLBACK: usize = 512;

static OPEN_FILES_MAX: AtomicUsize = AtomicUsize::new(0);
static TICK: AtomicU64 = AtomicU64::new(1);

fn open_list() -> &'static Mutex<Vec<Weak<Inner>>> {
    static OPEN: OnceLock<Mutex<Vec<Weak<Inner>>>> = OnceLock::new();
    OPEN.get_or_init(|| Mutex::new(Vec::new()))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing under these locks can leave the data half-updated.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The cap on segment files held open at once by this process
/// (`strom.log.open.files.max`). Until set: half the soft `RLIMIT_NOFILE`, leaving the
/// other half to connections and everything else.
pub fn open_files_max() -> usize {
    match OPEN_FILES_MAX.load(Ordering::Relaxed) {
        0 => default_open_files_max(),
        max => max,
    }
}

/// Sets the cap (at least 8); already open files over it close at the next open.
pub fn set_open_files_max(max: usize) {
    OPEN_FILES_MAX.store(max.max(8), Ordering::Relaxed);
}

fn default_open_files_max() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct passed; nothing else is touched.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    let max = if ok && limit.rlim_cur != libc::RLIM_INFINITY {
        usize::try_from(limit.rlim_cur / 2).unwrap_or(usize::MAX)
    } else {
        OPEN_FILES_MAX_FALLBACK
    };
    let max = max.max(8);
    OPEN_FILES_MAX.store(max, Ordering::Relaxed);
    max
}

/// Raises this process's soft open-files limit to its hard limit (what a broker that may
/// hold thousands of connections and segment files wants); returns the soft limit in
/// force afterwards, or `None` when it cannot be read. Call it before the first segment
/// opens: the default cap is computed from the soft limit once.
pub fn raise_fd_soft_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    Some(limit.rlim_cur as u64)
}

/// Segment files held open now, by this process (dead entries included until the next
/// eviction pass prunes them; a gauge, not an exact count).
pub fn open_files_count() -> usize {
    lock(open_list()).len()
}

struct Inner {
    path: PathBuf,
    handle: Mutex<Option<Arc<File>>>,
    last_used: AtomicU64,
    /// Whether the open list holds an entry for this file (changed under the list lock).
    listed: AtomicBool,
}

/// One segment file: its path and, while in use, an open handle (see the module docs).
pub(crate) struct LazyFile {
    inner: Arc<Inner>,
}

impl LazyFile {
    /// Takes over `file`, just opened at `path`: it stays open until evicted or closed.
    pub fn from_open(path: PathBuf, file: File) -> LazyFile {
        let lazy = LazyFile {
            inner: Arc::new(Inner {
                path,
                handle: Mutex::new(Some(Arc::new(file))),
                last_used: AtomicU64::new(TICK.fetch_add(1, Ordering::Relaxed)),
                listed: AtomicBool::new(false),
            }),
        };
        register(&lazy.inner);
        lazy
    }

    /// The open handle, reopening the file when it was closed.
    pub fn get(&self) -> Result<Arc<File>, StorageError> {
        self.inner
            .last_used
            .store(TICK.fetch_add(1, Ordering::Relaxed), Ordering::Relaxed);
        if let Some(file) = lock(&self.inner.handle).as_ref() {
            return Ok(Arc::clone(file));
        }
        let file = Arc::new(open_read_write(&self.inner.path, false)?);
        {
            let mut handle = lock(&self.inner.handle);
            if let Some(raced) = handle.as_ref() {
                return Ok(Arc::clone(raced));
            }
            *handle = Some(Arc::clone(&file));
        }
        register(&self.inner);
        Ok(file)
    }

    /// Closes the handle now (a reader's `Arc` keeps it until dropped); the next
    /// [`LazyFile::get`] reopens it.
    pub fn close(&self) {
        let closed = lock(&self.inner.handle).take();
        drop(closed);
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

/// Adds a newly opened handle to the list and closes the least recently used ones when
/// the list is over the cap. Lock order: the list, then a file's handle (never the
/// reverse: [`LazyFile::get`] releases its handle lock before calling this).
fn register(inner: &Arc<Inner>) {
    let max = open_files_max();
    let mut open = lock(open_list());
    if !inner.listed.swap(true, Ordering::Relaxed) {
        open.push(Arc::downgrade(inner));
    }
    if open.len() <= max {
        return;
    }
    let mut live: Vec<(u64, Arc<Inner>)> = Vec::with_capacity(open.len());
    for weak in open.drain(..) {
        let Some(inner) = weak.upgrade() else {
            continue;
        };
        if lock(&inner.handle).is_some() {
            live.push((inner.last_used.load(Ordering::Relaxed), inner));
        } else {
            inner.listed.store(false, Ordering::Relaxed);
        }
    }
    if live.len() > max {
        // Close down to 7/8 of the cap, so the sort runs once per max/8 opens.
        let keep = max - max / 8;
        live.sort_unstable_by_key(|(tick, _)| *tick);
        let close = live.len() - keep;
        for (_, inner) in live.drain(..close) {
            let closed = lock(&inner.handle).take();
            inner.listed.store(false, Ordering::Relaxed);
            drop(closed);
        }
    }
    open.extend(live.iter().map(|(_, inner)| Arc::downgrade(inner)));
}
