//! A thin SQLite VFS over the platform's default one that hands each commit's write-ahead log
//! frames to the operating system in one write instead of two per page.
//!
//! SQLite writes a WAL frame as two `pwrite` calls, its 24-byte header and then the page. A
//! checkout touches about 48 pages, so its commit made about 96 system calls; measured on this
//! machine, 48 frames written that way took 116–119 µs against 44 µs as one write of the same
//! bytes. This VFS collects the contiguous frames of a transaction in memory and writes them
//! out when the transaction's commit frame is complete, before SQLite publishes the commit in
//! the WAL index (which only happens after the last frame's write returns), so no other
//! connection can see a committed frame that is not in the file.
//!
//! The buffer is written out before anything that could observe the file (a read, a size, a
//! sync, a truncate, a file control, close), before a write that is not contiguous with it,
//! whenever it passes [`MAX_BUFFER`], and before the connection gives up writing: the WAL write
//! lock (taken on the database file, linked to its WAL file through
//! `sqlite3_database_file_object`), or, in `locking_mode=EXCLUSIVE`, its lock on the database
//! file. Frames a large transaction spilled and then rolled back must not reach the file after
//! another connection has committed frames at the same offsets. Only appends are buffered: a
//! write below what the transaction already wrote (SQLite rewriting its frames' checksums just
//! before it publishes the commit, or a spilled page changed again) goes straight to the file.
//!
//! A crash while frames are buffered loses only frames of a transaction that had not
//! committed, exactly as a crash before those writes would: WAL recovery stops at the first
//! frame whose checksum chain breaks. A write that fails is reported by the call that made it;
//! one that fails while being written out for another call is reported as a write error, and
//! every later write and sync of that transaction fails too, so it can only roll back.
//!
//! Only the WAL file is buffered; the database file, journals and everything else go straight
//! to the underlying VFS, and every other VFS call is forwarded unchanged.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name the VFS is registered under.
pub const NAME: &str = "pos-tenancy-batched-wal";
const NAME_C: &CStr = c"pos-tenancy-batched-wal";

/// Above this many buffered bytes the frames are written out even without a commit (a large
/// transaction), so memory stays bounded.
pub const MAX_BUFFER: usize = 4 << 20;

/// The most one call hands to the wrapped file: SQLite's unix VFS writes at most 128 KiB - 1
/// bytes per call (it masks the length) and reports a full disk for a write of exactly 128 KiB.
const MAX_WRITE: usize = 0x1_f000;

/// The WAL write lock's slot among the shared-memory locks (SQLite's `WAL_WRITE_LOCK`).
const WAL_WRITE_LOCK: c_int = 0;

/// Size of a WAL file header and of a frame header (SQLite's file format).
const WAL_HEADER: i64 = 32;
const FRAME_HEADER: usize = 24;

/// Registers the VFS once per process; `Some(NAME)` when it is available, `None` when the
/// platform gave SQLite no default VFS to wrap (connections then open on the default).
pub fn register() -> Option<&'static str> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find(NULL) returns the default VFS, which lives for the process.
        // The VFS we register is leaked on purpose: SQLite keeps the pointer for the process.
        unsafe {
            if ffi::sqlite3_initialize() != ffi::SQLITE_OK {
                return false;
            }
            let inner = ffi::sqlite3_vfs_find(ptr::null());
            if inner.is_null() {
                return false;
            }
            let _ = INNER.set(Inner(inner));
            let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
                iVersion: (*inner).iVersion.min(2),
                szOsFile: c_int::try_from(std::mem::offset_of!(File, inner)).unwrap_or(0)
                    + (*inner).szOsFile,
                mxPathname: (*inner).mxPathname,
                pNext: ptr::null_mut(),
                zName: NAME_C.as_ptr(),
                pAppData: ptr::null_mut(),
                xOpen: Some(x_open),
                xDelete: Some(x_delete),
                xAccess: Some(x_access),
                xFullPathname: Some(x_full_pathname),
                xDlOpen: Some(x_dl_open),
                xDlError: Some(x_dl_error),
                xDlSym: Some(x_dl_sym),
                xDlClose: Some(x_dl_close),
                xRandomness: Some(x_randomness),
                xSleep: Some(x_sleep),
                xCurrentTime: Some(x_current_time),
                xGetLastError: Some(x_get_last_error),
                xCurrentTimeInt64: Some(x_current_time_int64),
                xSetSystemCall: None,
                xGetSystemCall: None,
                xNextSystemCall: None,
            }));
            ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK
        }
    });
    ok.then_some(NAME)
}

/// Opens (creating if needed) a database file as [`rusqlite::Connection::open`] does, on this
/// VFS when it is available. A [`crate::Store`] opens its file this way; so can a tool or a
/// benchmark baseline that should write the log the same way a store does.
pub fn open(path: impl AsRef<std::path::Path>) -> rusqlite::Result<rusqlite::Connection> {
    match register() {
        Some(vfs) => {
            rusqlite::Connection::open_with_flags_and_vfs(path, rusqlite::OpenFlags::default(), vfs)
        }
        None => rusqlite::Connection::open(path),
    }
}

/// The VFS this one wraps.
struct Inner(*mut ffi::sqlite3_vfs);
// SAFETY: the default VFS is a process-wide static that SQLite itself shares between threads.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}
static INNER: OnceLock<Inner> = OnceLock::new();

fn inner_vfs() -> *mut ffi::sqlite3_vfs {
    INNER.get().map_or(ptr::null_mut(), |i| i.0)
}

/// What SQLite allocates for each open file (`szOsFile` bytes): our header, then the wrapped
/// VFS's file, which must stay last because its size is only known at run time.
#[repr(C)]
struct File {
    base: ffi::sqlite3_file,
    /// The WAL file's write buffer; null for every other file.
    wal: *mut WalBuffer,
    /// A database file's open WAL file, and a WAL file's database file, while both are open
    /// (null otherwise): releasing the write lock, which SQLite does on the database file,
    /// must first empty the buffer of its WAL file.
    partner: *mut File,
    inner: ffi::sqlite3_file,
}

/// Frames of the transaction being written, not yet handed to the operating system.
#[derive(Debug, Default)]
struct WalBuffer {
    /// File offset of `data[0]`.
    start: i64,
    data: Vec<u8>,
    /// The database page size, read from the WAL header; frame headers are recognised by
    /// their offset, so nothing is buffered until it is known.
    page_size: Option<i64>,
    /// The last frame header written had the commit flag: every write until the next frame
    /// header finishes that commit and is written out at once.
    committing: bool,
    /// End of what this handle has written (or buffered) since it last held no write lock. A
    /// write below it rewrites bytes of the current transaction (SQLite rewriting frame
    /// checksums, or a page it spilled earlier) and goes straight to the file, in order.
    end: i64,
    /// A write of buffered frames failed (the offset of the first byte that never reached the
    /// file): every later write and sync fails too, so the transaction cannot commit over
    /// frames that are not in the file. Cleared when the write lock goes, or when SQLite,
    /// having rolled back past the lost frames, writes a new frame header at or below it (in
    /// `locking_mode=EXCLUSIVE` no lock ever goes).
    failed: Option<i64>,
}

impl WalBuffer {
    /// Whether a write of `len` bytes at `offset` is a frame header.
    fn is_frame_header(&self, offset: i64, len: usize) -> bool {
        match self.page_size {
            Some(page) => {
                len == FRAME_HEADER
                    && offset >= WAL_HEADER
                    && (offset - WAL_HEADER) % (page + FRAME_HEADER as i64) == 0
            }
            None => false,
        }
    }
}

/// Reads the page size from a WAL header (`None` if it is not one).
fn page_size_of(header: &[u8]) -> Option<i64> {
    let word = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(header.get(at..at + 4)?.try_into().ok()?))
    };
    let magic = word(0)?;
    if magic != 0x377f_0682 && magic != 0x377f_0683 {
        return None;
    }
    let page = i64::from(word(8)?);
    (512..=65_536)
        .contains(&page)
        .then_some(page)
        .filter(|p| p & (p - 1) == 0)
}

unsafe fn parts(file: *mut ffi::sqlite3_file) -> (*mut ffi::sqlite3_file, *mut WalBuffer) {
    let file = file.cast::<File>();
    (ptr::addr_of_mut!((*file).inner), (*file).wal)
}

unsafe fn methods(inner: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    &*(*inner).pMethods
}

impl WalBuffer {
    /// Hands the buffered frames to the wrapped file. The buffer is emptied either way; a
    /// failure is remembered (see `failed`).
    unsafe fn flush(&mut self, inner: *mut ffi::sqlite3_file) -> c_int {
        if self.data.is_empty() {
            return ffi::SQLITE_OK;
        }
        let mut rc = ffi::SQLITE_OK;
        let mut offset = self.start;
        for chunk in self.data.chunks(MAX_WRITE) {
            rc = write_through(inner, chunk, offset);
            if rc != ffi::SQLITE_OK {
                // Everything before `offset` is in the file; nothing from it on is.
                self.failed = Some(self.failed.map_or(offset, |hole| hole.min(offset)));
                break;
            }
            offset += chunk.len() as i64;
        }
        self.data.clear();
        rc
    }

    /// The connection gives up writing (the WAL write lock, or its lock on the database file,
    /// goes): a commit has written its frames already, so what is still buffered belongs to a
    /// transaction that spilled frames and rolled back. Written now, while no other
    /// connection can write, it is garbage past the end of the log, as it would have been
    /// without the buffer; kept, it would land later on top of frames another connection
    /// had committed in the meantime.
    unsafe fn release(&mut self, inner: *mut ffi::sqlite3_file) {
        let _ = self.flush(inner);
        self.end = 0;
        self.committing = false;
        self.failed = None;
    }
}

/// One write straight to the wrapped file.
unsafe fn write_through(inner: *mut ffi::sqlite3_file, bytes: &[u8], offset: i64) -> c_int {
    match (methods(inner).xWrite, c_int::try_from(bytes.len())) {
        (Some(write), Ok(len)) => write(inner, bytes.as_ptr().cast(), len, offset),
        _ => ffi::SQLITE_IOERR_WRITE,
    }
}

/// Writes out what a WAL file buffers before a call that could observe the file. A failure
/// here is reported as a write error, which makes SQLite roll the whole transaction back (a
/// full disk reported on a read would only undo the statement).
unsafe fn flush_before(inner: *mut ffi::sqlite3_file, wal: *mut WalBuffer) -> c_int {
    match wal.as_mut() {
        Some(wal) if !wal.data.is_empty() => match wal.flush(inner) {
            ffi::SQLITE_OK => ffi::SQLITE_OK,
            _ => ffi::SQLITE_IOERR_WRITE,
        },
        _ => ffi::SQLITE_OK,
    }
}

/// The WAL file of a database file opened through this VFS, with its wrapped file.
unsafe fn partner_wal<'a>(
    file: *mut ffi::sqlite3_file,
) -> Option<(*mut ffi::sqlite3_file, &'a mut WalBuffer)> {
    let wal_file = (*file.cast::<File>()).partner;
    let wal_file = wal_file.as_mut()?;
    let buffer = wal_file.wal.as_mut()?;
    Some((ptr::addr_of_mut!(wal_file.inner), buffer))
}

// ---------------------------------------------------------------- the file

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let (inner, wal) = parts(file);
    let flushed = flush_before(inner, wal);
    let this = file.cast::<File>();
    if let Some(partner) = (*this).partner.as_mut() {
        partner.partner = ptr::null_mut();
        (*this).partner = ptr::null_mut();
    }
    let closed = match methods(inner).xClose {
        Some(close) => close(inner),
        None => ffi::SQLITE_OK,
    };
    if !wal.is_null() {
        drop(Box::from_raw(wal));
        (*file.cast::<File>()).wal = ptr::null_mut();
    }
    if flushed != ffi::SQLITE_OK {
        flushed
    } else {
        closed
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let (inner, wal) = parts(file);
    let rc = flush_before(inner, wal);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match methods(inner).xRead {
        Some(read) => read(inner, buf, amount, offset),
        None => ffi::SQLITE_IOERR,
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let (inner, wal) = parts(file);
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), len);
    let Some(wal) = wal.as_mut() else {
        return write_through(inner, bytes, offset);
    };
    if let Some(hole) = wal.failed {
        // A new frame at or below the first byte that never reached the file: SQLite rolled
        // back (or back to a savepoint) past the lost frames and appends again.
        if !wal.is_frame_header(offset, len) || offset > hole {
            return ffi::SQLITE_IOERR_WRITE;
        }
        wal.failed = None;
        wal.committing = false;
        wal.end = wal.end.min(offset);
    }
    if offset == 0 && len >= WAL_HEADER as usize {
        // A new WAL header (the log restarts): it names the page size, and what came before
        // belongs to the old log.
        wal.page_size = page_size_of(bytes);
        wal.committing = false;
        wal.end = 0;
    } else if wal.page_size.is_none() {
        // Appending to a log this connection did not start: read its header. Whatever is
        // buffered is written first, so the read sees it.
        let rc = wal.flush(inner);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let mut header = [0u8; WAL_HEADER as usize];
        if let Some(read) = methods(inner).xRead {
            if read(inner, header.as_mut_ptr().cast(), WAL_HEADER as c_int, 0) == ffi::SQLITE_OK {
                wal.page_size = page_size_of(&header);
            }
        }
    }
    if offset < wal.end && !wal.committing && wal.is_frame_header(offset, len) {
        // SQLite rewrites frame headers only after the commit frame (checksums). A header
        // below `end` before that is a new frame after frames were undone (ROLLBACK in
        // exclusive mode, ROLLBACK TO after a spill): appending, so buffering, resumes here.
        wal.end = offset;
    }
    if wal.page_size.is_none() || offset < wal.end {
        // Not a log we can read frames of, or a rewrite of bytes this transaction wrote:
        // straight to the file, after what is buffered. SQLite publishes a commit right after
        // rewriting its frames' checksums, so these must not wait in the buffer.
        let rc = wal.flush(inner);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        wal.end = wal.end.max(offset + len as i64);
        return write_through(inner, bytes, offset);
    }
    wal.end = offset + len as i64;
    if !wal.data.is_empty() && wal.start + wal.data.len() as i64 != offset {
        let rc = wal.flush(inner);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if wal.data.is_empty() {
        wal.start = offset;
    }
    wal.data.extend_from_slice(bytes);
    if wal.is_frame_header(offset, len) {
        // Bytes 4..8 of a frame header: the database size after a commit, 0 otherwise.
        wal.committing = bytes[4..8] != [0, 0, 0, 0];
        if wal.data.len() < MAX_BUFFER {
            return ffi::SQLITE_OK;
        }
    } else if !wal.committing && wal.data.len() < MAX_BUFFER {
        return ffi::SQLITE_OK;
    }
    wal.flush(inner)
}

unsafe extern "C" fn x_truncate(file: *mut ffi::sqlite3_file, size: ffi::sqlite3_int64) -> c_int {
    let (inner, wal) = parts(file);
    let rc = flush_before(inner, wal);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match methods(inner).xTruncate {
        Some(truncate) => truncate(inner, size),
        None => ffi::SQLITE_IOERR,
    }
}

unsafe extern "C" fn x_sync(file: *mut ffi::sqlite3_file, flags: c_int) -> c_int {
    let (inner, wal) = parts(file);
    let rc = flush_before(inner, wal);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    if wal.as_ref().is_some_and(|w| w.failed.is_some()) {
        return ffi::SQLITE_IOERR_WRITE;
    }
    match methods(inner).xSync {
        Some(sync) => sync(inner, flags),
        None => ffi::SQLITE_IOERR,
    }
}

unsafe extern "C" fn x_file_size(
    file: *mut ffi::sqlite3_file,
    size: *mut ffi::sqlite3_int64,
) -> c_int {
    let (inner, wal) = parts(file);
    let rc = flush_before(inner, wal);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match methods(inner).xFileSize {
        Some(file_size) => file_size(inner, size),
        None => ffi::SQLITE_IOERR,
    }
}

unsafe extern "C" fn x_lock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (inner, _) = parts(file);
    match methods(inner).xLock {
        Some(lock) => lock(inner, level),
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn x_unlock(file: *mut ffi::sqlite3_file, level: c_int) -> c_int {
    let (inner, _) = parts(file);
    // In `locking_mode=EXCLUSIVE` SQLite takes no shared-memory locks, so the write lock's
    // release below never happens; it lowers its lock on the database file instead.
    if let Some((wal_inner, wal)) = partner_wal(file) {
        wal.release(wal_inner);
    }
    match methods(inner).xUnlock {
        Some(unlock) => unlock(inner, level),
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn x_check_reserved_lock(file: *mut ffi::sqlite3_file, out: *mut c_int) -> c_int {
    let (inner, _) = parts(file);
    match methods(inner).xCheckReservedLock {
        Some(check) => check(inner, out),
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn x_file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    let (inner, wal) = parts(file);
    let rc = flush_before(inner, wal);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match methods(inner).xFileControl {
        Some(control) => control(inner, op, arg),
        None => ffi::SQLITE_NOTFOUND,
    }
}

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let (inner, _) = parts(file);
    methods(inner).xSectorSize.map_or(4096, |size| size(inner))
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let (inner, _) = parts(file);
    methods(inner)
        .xDeviceCharacteristics
        .map_or(0, |chars| chars(inner))
}

unsafe extern "C" fn x_shm_map(
    file: *mut ffi::sqlite3_file,
    region: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let (inner, _) = parts(file);
    match methods(inner).xShmMap {
        Some(map) => map(inner, region, size, extend, out),
        None => ffi::SQLITE_IOERR,
    }
}

unsafe extern "C" fn x_shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    let (inner, _) = parts(file);
    if flags & ffi::SQLITE_SHM_UNLOCK != 0
        && offset <= WAL_WRITE_LOCK
        && WAL_WRITE_LOCK < offset + n
    {
        if let Some((wal_inner, wal)) = partner_wal(file) {
            wal.release(wal_inner);
        }
    }
    match methods(inner).xShmLock {
        Some(lock) => lock(inner, offset, n, flags),
        None => ffi::SQLITE_IOERR,
    }
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    let (inner, _) = parts(file);
    if let Some(barrier) = methods(inner).xShmBarrier {
        barrier(inner);
    }
}

unsafe extern "C" fn x_shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let (inner, _) = parts(file);
    match methods(inner).xShmUnmap {
        Some(unmap) => unmap(inner, delete),
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn x_fetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    amount: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let (inner, _) = parts(file);
    match methods(inner).xFetch {
        Some(fetch) => fetch(inner, offset, amount, out),
        None => {
            *out = ptr::null_mut();
            ffi::SQLITE_OK
        }
    }
}

unsafe extern "C" fn x_unfetch(
    file: *mut ffi::sqlite3_file,
    offset: ffi::sqlite3_int64,
    page: *mut c_void,
) -> c_int {
    let (inner, _) = parts(file);
    match methods(inner).xUnfetch {
        Some(unfetch) => unfetch(inner, offset, page),
        None => ffi::SQLITE_OK,
    }
}

/// One table for every file: each method forwards to the wrapped file's own, so a wrapped VFS
/// of an older version (no shared memory, no memory map) is still honoured per call.
static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

// ---------------------------------------------------------------- the VFS

unsafe extern "C" fn x_open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let inner_vfs = inner_vfs();
    let this = file.cast::<File>();
    (*this).base.pMethods = ptr::null();
    (*this).wal = ptr::null_mut();
    (*this).partner = ptr::null_mut();
    let inner = ptr::addr_of_mut!((*this).inner);
    (*inner).pMethods = ptr::null();
    let Some(open) = inner_vfs.as_ref().and_then(|v| v.xOpen) else {
        return ffi::SQLITE_ERROR;
    };
    let rc = open(inner_vfs, name, inner, flags, out_flags);
    if (*inner).pMethods.is_null() {
        // SQLite calls xClose only on a file whose pMethods is set.
        return rc;
    }
    if flags & ffi::SQLITE_OPEN_WAL != 0 {
        (*this).wal = Box::into_raw(Box::default());
        // SQLite names the database file of a WAL file it opens; it is one of ours when the
        // database was opened through this VFS, which is the only way a WAL file is.
        let db = ffi::sqlite3_database_file_object(name).cast::<File>();
        if let Some(db) = db.as_mut() {
            if ptr::eq(db.base.pMethods, &METHODS) {
                db.partner = this;
                (*this).partner = db;
            }
        }
    }
    (*this).base.pMethods = &METHODS;
    rc
}

unsafe extern "C" fn x_delete(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    sync_dir: c_int,
) -> c_int {
    let v = inner_vfs();
    match v.as_ref().and_then(|v| v.xDelete) {
        Some(delete) => delete(v, name, sync_dir),
        None => ffi::SQLITE_IOERR,
    }
}

unsafe extern "C" fn x_access(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    flags: c_int,
    out: *mut c_int,
) -> c_int {
    let v = inner_vfs();
    match v.as_ref().and_then(|v| v.xAccess) {
        Some(access) => access(v, name, flags, out),
        None => ffi::SQLITE_IOERR,
    }
}

unsafe extern "C" fn x_full_pathname(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const c_char,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let v = inner_vfs();
    match v.as_ref().and_then(|v| v.xFullPathname) {
        Some(full) => full(v, name, n, out),
        None => ffi::SQLITE_IOERR,
    }
}

unsafe extern "C" fn x_dl_open(_vfs: *mut ffi::sqlite3_vfs, name: *const c_char) -> *mut c_void {
    let v = inner_vfs();
    match v.as_ref().and_then(|v| v.xDlOpen) {
        Some(dl_open) => dl_open(v, name),
        None => ptr::null_mut(),
    }
}

unsafe extern "C" fn x_dl_error(_vfs: *mut ffi::sqlite3_vfs, n: c_int, out: *mut c_char) {
    let v = inner_vfs();
    if let Some(dl_error) = v.as_ref().and_then(|v| v.xDlError) {
        dl_error(v, n, out);
    }
}

type DlSym = unsafe extern "C" fn(*mut ffi::sqlite3_vfs, *mut c_void, *const c_char);

unsafe extern "C" fn x_dl_sym(
    _vfs: *mut ffi::sqlite3_vfs,
    handle: *mut c_void,
    symbol: *const c_char,
) -> Option<DlSym> {
    let v = inner_vfs();
    match v.as_ref().and_then(|v| v.xDlSym) {
        Some(dl_sym) => dl_sym(v, handle, symbol),
        None => None,
    }
}

unsafe extern "C" fn x_dl_close(_vfs: *mut ffi::sqlite3_vfs, handle: *mut c_void) {
    let v = inner_vfs();
    if let Some(dl_close) = v.as_ref().and_then(|v| v.xDlClose) {
        dl_close(v, handle);
    }
}

unsafe extern "C" fn x_randomness(
    _vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let v = inner_vfs();
    match v.as_ref().and_then(|v| v.xRandomness) {
        Some(random) => random(v, n, out),
        None => 0,
    }
}

unsafe extern "C" fn x_sleep(_vfs: *mut ffi::sqlite3_vfs, micros: c_int) -> c_int {
    let v = inner_vfs();
    match v.as_ref().and_then(|v| v.xSleep) {
        Some(sleep) => sleep(v, micros),
        None => 0,
    }
}

unsafe extern "C" fn x_current_time(_vfs: *mut ffi::sqlite3_vfs, out: *mut f64) -> c_int {
    let v = inner_vfs();
    match v.as_ref().and_then(|v| v.xCurrentTime) {
        Some(now) => now(v, out),
        None => ffi::SQLITE_ERROR,
    }
}

unsafe extern "C" fn x_get_last_error(
    _vfs: *mut ffi::sqlite3_vfs,
    n: c_int,
    out: *mut c_char,
) -> c_int {
    let v = inner_vfs();
    match v.as_ref().and_then(|v| v.xGetLastError) {
        Some(last) => last(v, n, out),
        None => 0,
    }
}

unsafe extern "C" fn x_current_time_int64(
    _vfs: *mut ffi::sqlite3_vfs,
    out: *mut ffi::sqlite3_int64,
) -> c_int {
    let v = inner_vfs();
    match v.as_ref() {
        Some(inner) if inner.iVersion >= 2 && inner.xCurrentTimeInt64.is_some() => {
            match inner.xCurrentTimeInt64 {
                Some(now) => now(v, out),
                None => ffi::SQLITE_ERROR,
            }
        }
        _ => ffi::SQLITE_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    use super::*;

    fn header(page: u32) -> [u8; 32] {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&0x377f_0682u32.to_be_bytes());
        h[8..12].copy_from_slice(&page.to_be_bytes());
        h
    }

    #[test]
    fn a_wal_header_gives_the_page_size_and_anything_else_gives_none() {
        assert_eq!(page_size_of(&header(4096)), Some(4096));
        assert_eq!(page_size_of(&header(65_536)), Some(65_536));
        assert_eq!(page_size_of(&header(3000)), None);
        assert_eq!(page_size_of(&[0u8; 32]), None);
        assert_eq!(page_size_of(&[0x37, 0x7f]), None);
    }

    #[test]
    fn frame_headers_are_recognised_by_offset_not_by_length_alone() {
        let wal = WalBuffer {
            page_size: Some(4096),
            ..WalBuffer::default()
        };
        assert!(wal.is_frame_header(32, 24));
        assert!(wal.is_frame_header(32 + 4120 * 7, 24));
        // The last 24 bytes of a page split around a sync point are not a header.
        assert!(!wal.is_frame_header(32 + 4096, 24));
        assert!(!wal.is_frame_header(32 + 24, 4096));
        assert!(!WalBuffer::default().is_frame_header(32, 24));
    }

    /// A transaction that spills frames into the log and then rolls back leaves them buffered;
    /// they must not land later on top of what another connection committed at the same
    /// offsets after the rollback.
    #[test]
    fn frames_of_a_rolled_back_transaction_never_overwrite_later_commits() -> rusqlite::Result<()> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("spill.db");
        let a = open(&path)?;
        let b = open(&path)?;
        for conn in [&a, &b] {
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
        }
        a.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")?;
        // An empty log: the rollback then reloads its pages from the database file and never
        // reads the log (a read would write the buffer out while the lock is still held).
        a.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        // A tiny cache makes the big transaction spill pages into the log before its end.
        a.pragma_update(None, "cache_size", 10)?;
        a.execute_batch(
            "BEGIN;
             WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 300)
             INSERT INTO t SELECT x, randomblob(2000) FROM s;",
        )?;
        a.execute_batch("ROLLBACK")?;
        b.execute_batch(
            "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 200)
             INSERT INTO t SELECT x, zeroblob(1500) FROM s",
        )?;
        // Anything `a` still held would be written out by its next read.
        let n: i64 = a.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        assert_eq!(n, 200);
        let plain = rusqlite::Connection::open(&path)?;
        let check: String = plain.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(check, "ok");
        let zeros: i64 =
            plain.query_row("SELECT count(*) FROM t WHERE v = zeroblob(1500)", [], |r| {
                r.get(0)
            })?;
        assert_eq!(zeros, 200);
        Ok(())
    }

    /// What a process killed right now would leave: the database and its log, without the
    /// shared-memory index (SQLite rebuilds it from the log on open).
    fn killed_copy(path: &std::path::Path, dir: &std::path::Path) -> std::path::PathBuf {
        let copy = dir.join("killed.db");
        std::fs::copy(path, &copy).expect("copy the database");
        let wal = std::path::PathBuf::from(format!("{}-wal", path.display()));
        std::fs::copy(wal, dir.join("killed.db-wal")).expect("copy the log");
        copy
    }

    fn wal_connection(path: &std::path::Path, exclusive: bool) -> rusqlite::Result<Connection> {
        let conn = open(path)?;
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        if exclusive {
            conn.pragma_update_and_check(None, "locking_mode", "EXCLUSIVE", |_| Ok(()))?;
        }
        Ok(conn)
    }

    /// A transaction larger than the page cache spills pages and changes some of them again;
    /// SQLite then rewrites its frames' checksums and publishes the commit at once, so the
    /// rewritten headers must be in the file when COMMIT returns, in either locking mode.
    #[test]
    fn a_commit_whose_checksums_were_rewritten_survives_a_kill() -> rusqlite::Result<()> {
        for exclusive in [false, true] {
            let dir = tempfile::tempdir().expect("temp dir");
            let path = dir.path().join("recksum.db");
            let conn = wal_connection(&path, exclusive)?;
            conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")?;
            conn.pragma_update(None, "cache_size", 10)?;
            conn.execute_batch(
                "BEGIN;
                 WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 200)
                 INSERT INTO t SELECT x, randomblob(1000) FROM s;
                 UPDATE t SET v = randomblob(1000) WHERE k % 5 = 0;
                 COMMIT;",
            )?;
            let copy = killed_copy(&path, dir.path());
            let after = Connection::open(&copy)?;
            let n: i64 = after.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
            assert_eq!(n, 200, "exclusive locking: {exclusive}");
            let check: String = after.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
            assert_eq!(check, "ok");
        }
        Ok(())
    }

    /// As above for a rolled-back transaction's frames, with the writer in
    /// `locking_mode=EXCLUSIVE` (no shared-memory locks) going back to normal locking.
    #[test]
    fn frames_rolled_back_in_exclusive_mode_never_overwrite_later_commits() -> rusqlite::Result<()>
    {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("exclusive.db");
        let a = wal_connection(&path, false)?;
        a.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")?;
        a.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        a.pragma_update_and_check(None, "locking_mode", "EXCLUSIVE", |_| Ok(()))?;
        a.pragma_update(None, "cache_size", 10)?;
        a.execute_batch(
            "BEGIN;
             WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 300)
             INSERT INTO t SELECT x, randomblob(1000) FROM s;
             ROLLBACK;",
        )?;
        a.pragma_update_and_check(None, "locking_mode", "NORMAL", |_| Ok(()))?;
        // Leaving exclusive mode takes effect at the next access.
        a.query_row("SELECT count(*) FROM sqlite_schema", [], |_| Ok(()))?;
        let b = Connection::open(&path)?;
        for i in 0..60i64 {
            b.execute("INSERT INTO t VALUES (?1, zeroblob(1000))", [i])?;
        }
        let n: i64 = a.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        assert_eq!(n, 60);
        let check: String = b.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(check, "ok");
        let zeros: i64 =
            b.query_row("SELECT count(*) FROM t WHERE v = zeroblob(1000)", [], |r| {
                r.get(0)
            })?;
        assert_eq!(zeros, 60);
        Ok(())
    }

    /// Many connections writing and reading one file through the VFS see every commit at
    /// once, and a log appended to by another connection is read correctly.
    #[test]
    fn commits_are_visible_to_other_connections_at_once() -> rusqlite::Result<()> {
        let name = register().expect("the default VFS can be wrapped");
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("wal.db");
        let open = |vfs: Option<&str>| -> rusqlite::Result<rusqlite::Connection> {
            let flags = rusqlite::OpenFlags::default();
            let conn = match vfs {
                Some(vfs) => rusqlite::Connection::open_with_flags_and_vfs(&path, flags, vfs)?,
                None => rusqlite::Connection::open_with_flags(&path, flags)?,
            };
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))?;
            conn.pragma_update(None, "synchronous", "NORMAL")?;
            Ok(conn)
        };
        let a = open(Some(name))?;
        let b = open(Some(name))?;
        let plain = open(None)?;
        a.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")?;
        for i in 0..200i64 {
            let writer = if i % 3 == 0 { &b } else { &a };
            writer.execute(
                "INSERT INTO t VALUES (?1, randomblob(?2))",
                [i, 100 + (i * 97) % 9000],
            )?;
            for reader in [&a, &b, &plain] {
                let n: i64 = reader.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
                assert_eq!(n, i + 1);
            }
            if i % 50 == 49 {
                plain.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))?;
            }
        }
        // A transaction larger than the buffer limit.
        a.execute_batch(
            "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 3000)
             INSERT INTO t SELECT 1000 + x, randomblob(3000) FROM s",
        )?;
        let n: i64 = plain.query_row("SELECT count(*) FROM t", [], |r| r.get(0))?;
        assert_eq!(n, 3200);
        let check: String = plain.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
        assert_eq!(check, "ok");
        Ok(())
    }
}
