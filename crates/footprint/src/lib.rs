//! The memory of podrun's long-lived processes once they only wait: a pod's supervisor
//! (and its watchdog) and the shared network's holder. Written for the supervisor, whose
//! figures follow; the holder is the same binary and drops its pages the same way.
//!
//! The supervisor is the whole podrun binary (about 24 MB of code, most of it for pulls:
//! tokio, TLS, the registry client), and starting a pod touches much of it: measured on a
//! running pod, its PSS was 8.9 MB, of which 5.1 MB were the binary's code and 3.2 MB its
//! read-only data, all clean file pages mapped by this process only (fault-around maps 64 KiB
//! or more around every page the start-up touched). What the pod needs from then on is the
//! main loop: signals, logs, restarts. So once the pod has started, the supervisor drops its
//! pages of the binary's read-only parts, the stack start-up left below its main loop and
//! the heap's free pages ([`Droppable`]); what the main loop uses is mapped again from the
//! page cache on its next use.
//!
//! Each round of the main loop maps its code again (about 2 MB for a round that writes a
//! log line and the pod's state), so the loop drops it again once it has been quiet for a
//! moment ([`Shrinker`]), right before it sleeps. The watchdog drops its pages once, before
//! it sleeps until the supervisor dies (issue 18: supervisor and watchdog 2.9 MB PSS idle
//! before, 0.8 MB after; docs/benchmarks.md).

use std::time::{Duration, Instant};

/// At most this many ranges are dropped in [`Droppable::drop_now`]'s loop (more are dropped
/// at once by [`Droppable::find`]).
const MAX_RANGES: usize = 128;

/// This process's pages of read-only, file-backed mappings (code, read-only data) that hold
/// nothing but the file's contents, and of its stack below the caller's frame: found first
/// ([`Droppable::find`]: it reads /proc and allocates), then dropped with the heap's free
/// pages in a tight loop inlined into the caller ([`Droppable::drop_now`]), right before it
/// sleeps: whatever runs after the code is dropped maps its pages again, 64 KiB or more
/// around each page it runs.
///
/// `MADV_DONTNEED`, not `MADV_PAGEOUT`: the kernel pages out file pages only for a process
/// that could write the file (measured: no effect on a root-owned binary), while dropping a
/// private mapping's pages only unmaps them (the page cache keeps them for other processes,
/// and the next use maps them again). A mapping with anonymous (copied-on-write) pages, such
/// as the relocated data made read-only after relocation (the GOT), keeps those: dropping
/// them would bring back the file's unrelocated bytes. Its other pages go, one run of file
/// pages at a time ([`file_page_runs`], from `/proc/self/pagemap`). The main thread's stack
/// below the caller's frame goes too: start-up's deep calls (the container runtime) left
/// pages there that only a call as deep would use again.
pub struct Droppable {
    ranges: [(usize, usize); MAX_RANGES],
    len: usize,
}

impl Droppable {
    /// Reads this process's mappings.
    #[inline(never)]
    pub fn find() -> Droppable {
        let mut droppable = Droppable {
            ranges: [(0, 0); MAX_RANGES],
            len: 0,
        };
        let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
            return droppable;
        };
        let pagemap = std::fs::File::open("/proc/self/pagemap").ok();
        let mut ranges = Vec::new();
        for mapping in read_only_file_mappings(&smaps) {
            if !mapping.anonymous {
                ranges.push((mapping.start, mapping.end));
            } else if let Some(pagemap) = &pagemap {
                ranges.extend(file_page_runs(pagemap, mapping.start, mapping.end));
            }
        }
        // This frame is below the caller's: the caller's, and the calls drop_now makes from
        // it, are above the stack range.
        let here = 0u8;
        let sp = std::hint::black_box(&here) as *const u8 as usize;
        ranges.extend(stack_range(&smaps).and_then(|stack| unused_stack(stack, sp)));
        let keep = ranges.len().min(MAX_RANGES);
        for &(start, end) in &ranges[keep..] {
            drop_range(start, end);
        }
        droppable.ranges[..keep].copy_from_slice(&ranges[..keep]);
        droppable.len = keep;
        droppable
    }

    /// Drops the pages, then the heap's free pages; inlined, so that nothing of the binary
    /// but the caller's code runs after.
    #[inline(always)]
    pub fn drop_now(&self) {
        for &(start, end) in &self.ranges[..self.len] {
            drop_range(start, end);
        }
        // Free heap memory (start-up's, find's) goes back too; glibc keeps it otherwise.
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only releases free memory of the allocator.
        unsafe {
            libc::malloc_trim(0);
        }
    }
}

/// `MADV_DONTNEED` on a range [`Droppable::find`] found.
#[inline(always)]
fn drop_range(start: usize, end: usize) {
    // SAFETY: pages of a private, read-only file mapping that are the file's own (not copied
    // on write): dropping them loses nothing, they are mapped from the file again on their
    // next use. Stack pages below the frame of `find` (and a margin) hold nothing live:
    // every caller is single-threaded, so there is no signal handler's frame either; they
    // come back as zero pages.
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
}

/// When the main loop drops its file pages again: once it has been quiet for
/// [`Shrinker::QUIET`] (no round since), so that it never sleeps long with the pages of its
/// last rounds mapped. The main loop wakes up for that ([`Shrinker::due`]). A loop that
/// keeps running (a container that logs without pause) keeps its pages; one that wakes up
/// now and then (a line of output every few seconds) pays for a drop and the page faults
/// that map its code again per wake-up, well under a millisecond.
#[derive(Debug, Default)]
pub struct Shrinker {
    /// When the next drop is due; `None` right after one (nothing was mapped again since).
    due: Option<Instant>,
}

impl Shrinker {
    pub const QUIET: Duration = Duration::from_millis(250);
    /// The main loop's poll timeout is in whole milliseconds, rounded down: it may wake up
    /// that much before the drop is due.
    const EARLY: Duration = Duration::from_millis(2);

    /// Called at the end of each round of the main loop once the pod has started, before
    /// it sleeps. True: the loop has been quiet long enough, drop the pages now (right
    /// before sleeping, [`Droppable`]); else the drop's timer is (re)set.
    pub fn round_ends(&mut self) -> bool {
        let now = Instant::now();
        if self.due.is_some_and(|due| now + Self::EARLY >= due) {
            self.due = None;
            true
        } else {
            self.due = Some(now + Self::QUIET);
            false
        }
    }

    /// When the main loop must wake up to drop its pages, if it must.
    pub fn due(&self) -> Option<Instant> {
        self.due
    }
}

/// A private, read-only file mapping of smaps: its range, and whether it has anonymous
/// (copied-on-write) pages.
#[derive(Debug, PartialEq, Eq)]
struct Mapping {
    start: usize,
    end: usize,
    anonymous: bool,
}

/// Every mapping in `smaps` (the text of /proc/self/smaps) that maps a file privately
/// without write permission.
fn read_only_file_mappings(smaps: &str) -> Vec<Mapping> {
    let mut mappings = Vec::new();
    // The current mapping, while its fields are read, if it qualifies.
    let mut current: Option<Mapping> = None;
    for line in smaps.lines() {
        if let Some((range, qualifies)) = mapping_header(line) {
            mappings.extend(current.take());
            current = qualifies.then_some(Mapping {
                start: range.0,
                end: range.1,
                anonymous: false,
            });
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            let anonymous = kb.trim().trim_end_matches("kB").trim() != "0";
            if let Some(mapping) = current.as_mut() {
                mapping.anonymous |= anonymous;
            }
        }
    }
    mappings.extend(current);
    mappings
}

/// A mapping's header line of smaps: its range, and whether it is a private read-only file
/// mapping. `None` for the other (field) lines.
fn mapping_header(line: &str) -> Option<((usize, usize), bool)> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let range = (
        usize::from_str_radix(start, 16).ok()?,
        usize::from_str_radix(end, 16).ok()?,
    );
    let perms = fields.next()?;
    if perms.len() != 4 {
        return None;
    }
    let path = fields.nth(3).unwrap_or("");
    let qualifies = path.starts_with('/') && !perms.contains('w') && perms.ends_with('p');
    Some((range, qualifies))
}

/// The `(start, end)` of the main thread's stack in `smaps`.
fn stack_range(smaps: &str) -> Option<(usize, usize)> {
    let line = smaps.lines().find(|l| l.ends_with(" [stack]"))?;
    mapping_header(line).map(|(range, _)| range)
}

/// The pages of `stack` more than [`STACK_MARGIN`] below `sp` (an address in the current
/// frame); `None` when `sp` is not on that stack (another thread) or nothing is below.
fn unused_stack(stack: (usize, usize), sp: usize) -> Option<(usize, usize)> {
    if !(stack.0..stack.1).contains(&sp) {
        return None;
    }
    let end = (sp & !(PAGE - 1)).checked_sub(STACK_MARGIN)?;
    (end > stack.0).then_some((stack.0, end))
}

const PAGE: usize = 4096;
/// What is kept of the stack below the current frame: what the calls between the drop and
/// the sleep use (madvise, free, malloc_trim).
const STACK_MARGIN: usize = 2 * PAGE;
/// /proc/PID/pagemap's bits (readable without privileges; the frame numbers are not).
const PRESENT: u64 = 1 << 63;
const FILE_PAGE: u64 = 1 << 61;

/// The runs of pages in `start..end` that are mapped and still the file's (not anonymous
/// copies), from `pagemap` (/proc/self/pagemap).
fn file_page_runs(pagemap: &std::fs::File, start: usize, end: usize) -> Vec<(usize, usize)> {
    use std::os::unix::fs::FileExt;
    let pages = (end - start) / PAGE;
    let mut entries = vec![0u8; pages * 8];
    if pagemap
        .read_exact_at(&mut entries, (start / PAGE * 8) as u64)
        .is_err()
    {
        return Vec::new();
    }
    let flags = entries
        .chunks_exact(8)
        .map(|e| u64::from_le_bytes(e.try_into().unwrap_or_default()));
    runs(start, flags)
}

/// The runs of consecutive pages, from `start`, whose pagemap entry says present and file.
fn runs(start: usize, entries: impl Iterator<Item = u64>) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for (i, entry) in entries.enumerate() {
        if entry & (PRESENT | FILE_PAGE) != PRESENT | FILE_PAGE {
            continue;
        }
        let page = start + i * PAGE;
        match runs.last_mut() {
            Some(run) if run.1 == page => run.1 = page + PAGE,
            _ => runs.push((page, page + PAGE)),
        }
    }
    runs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_only_private_file_mappings() {
        let smaps = "\
55a184fe2000-55a185000000 r--p 00000000 08:01 1234 /usr/bin/podrun
Rss:                 120 kB
Anonymous:             0 kB
55a185000000-55a186000000 r-xp 0001e000 08:01 1234 /usr/bin/podrun
Anonymous:             0 kB
55a186000000-55a186010000 r--p 0101e000 08:01 1234 /usr/bin/podrun
Anonymous:           784 kB
55a186010000-55a186020000 rw-p 0102e000 08:01 1234 /usr/bin/podrun
Anonymous:            20 kB
55a187000000-55a187100000 rw-p 00000000 00:00 0 [heap]
Anonymous:           300 kB
7f0000000000-7f0000001000 r--s 00000000 08:01 99 /dev/shm/x
Anonymous:             0 kB
7fff00000000-7fff00001000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
";
        let mapping = |start, end, anonymous| Mapping {
            start,
            end,
            anonymous,
        };
        assert_eq!(
            read_only_file_mappings(smaps),
            vec![
                mapping(0x55a184fe2000, 0x55a185000000, false),
                mapping(0x55a185000000, 0x55a186000000, false),
                mapping(0x55a186000000, 0x55a186010000, true),
            ]
        );
    }

    #[test]
    fn drops_once_the_loop_is_quiet() {
        let mut shrinker = Shrinker::default();
        assert!(!shrinker.round_ends());
        let due = shrinker.due().expect("a round ran: a drop is due");
        assert!(due > Instant::now());
        assert!(!shrinker.round_ends());
        assert!(shrinker.due().unwrap() >= due, "another round: later");
        shrinker.due = Some(Instant::now() + Duration::from_millis(1));
        assert!(shrinker.round_ends(), "woken up by the timeout: drop");
        assert_eq!(shrinker.due(), None);
    }

    #[test]
    fn the_stack_below_the_frame() {
        let smaps = "\
55a187000000-55a187100000 rw-p 00000000 00:00 0 [heap]
Anonymous:           300 kB
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]
Anonymous:            60 kB
";
        let stack = stack_range(smaps).unwrap();
        assert_eq!(stack, (0x7ffc00000000, 0x7ffc00021000));
        assert_eq!(
            unused_stack(stack, 0x7ffc0001f123),
            Some((0x7ffc00000000, 0x7ffc0001d000))
        );
        assert_eq!(unused_stack(stack, 0x7ffc00001123), None, "nothing below");
        assert_eq!(unused_stack(stack, 0x7f0000001000), None, "another stack");
    }

    #[test]
    fn runs_of_present_file_pages() {
        let file = PRESENT | FILE_PAGE;
        let anonymous = PRESENT;
        let swapped = 1 << 62;
        let entries = [file, file, anonymous, file, 0, swapped, file, file, file];
        assert_eq!(
            runs(0x1000, entries.into_iter()),
            vec![(0x1000, 0x3000), (0x4000, 0x5000), (0x7000, 0xa000)]
        );
    }

    /// A page copied on write in a read-only private file mapping (as the GOT after
    /// relocation) keeps its contents; the file's pages beside it are dropped.
    #[test]
    fn copied_pages_survive_a_drop() {
        use std::os::fd::AsRawFd;
        let file = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut &file, &[b'a'; 4 * PAGE]).unwrap();
        // SAFETY: a fresh private mapping of our own file, unmapped below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        let bytes = base as *mut u8;
        // SAFETY: within the mapping.
        let read = |page: usize| unsafe { *bytes.add(page * PAGE) };
        unsafe { *bytes.add(PAGE) = b'b' };
        // SAFETY: our mapping.
        assert_eq!(
            unsafe { libc::mprotect(base, 4 * PAGE, libc::PROT_READ) },
            0
        );
        assert_eq!((0..4).map(read).collect::<Vec<_>>(), b"abaa");
        let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
        let start = base as usize;
        let file_pages = file_page_runs(&pagemap, start, start + 4 * PAGE);
        assert_eq!(
            file_pages,
            vec![(start, start + PAGE), (start + 2 * PAGE, start + 4 * PAGE)]
        );
        Droppable::find().drop_now();
        assert!(file_page_runs(&pagemap, start, start + 4 * PAGE).is_empty());
        assert_eq!((0..4).map(read).collect::<Vec<_>>(), b"abaa");
        // SAFETY: our mapping, no longer used.
        unsafe { libc::munmap(base, 4 * PAGE) };
    }

    #[test]
    fn the_process_works_on_after_dropping_its_file_pages() {
        let text = String::from("still here");
        Droppable::find().drop_now();
        // Code, read-only data and relocated data are all usable.
        assert_eq!(format!("{text}!"), "still here!");
        assert!(
            !read_only_file_mappings(&std::fs::read_to_string("/proc/self/smaps").unwrap())
                .is_empty()
        );
    }
}
