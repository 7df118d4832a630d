//! The supervisor's memory once its pod runs.
//!
//! The supervisor is the whole podrun binary (about 24 MB of code, most of it for pulls:
//! tokio, TLS, the registry client), and starting a pod touches much of it: measured on a
//! running pod, its PSS was 8.9 MB, of which 5.1 MB were the binary's code and 3.2 MB its
//! read-only data, all clean file pages mapped by this process only (fault-around maps 64 KiB
//! around every page the start-up touched); the heap was 0.3 MB. What the pod needs from then
//! on is the main loop: signals, logs, restarts. So once the pod has started, the supervisor
//! drops its pages of the binary's read-only parts ([`page_out_file_mappings`]); the few the
//! main loop uses are mapped again from the page cache on their next use.

/// Drops this process's pages of read-only, file-backed mappings (code, read-only data)
/// that hold nothing but the file's contents. Best effort: on an error the memory stays.
///
/// `MADV_DONTNEED`, not `MADV_PAGEOUT`: the kernel pages out file pages only for a process
/// that could write the file (measured: no effect on a root-owned binary), while dropping a
/// private mapping's pages only unmaps them (the page cache keeps them for other processes,
/// and the next use maps them again). A mapping with anonymous (copied-on-write) pages, such
/// as relocated data made read-only after relocation, is left alone: dropping those pages
/// would bring back the file's unrelocated bytes.
pub fn page_out_file_mappings() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut bytes = 0usize;
    for (start, end) in clean_read_only_file_ranges(&smaps) {
        // SAFETY: a private, read-only mapping of a file with no anonymous page: dropping its
        // pages loses nothing, they are mapped from the file again on their next use.
        let result =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if result == 0 {
            bytes += end - start;
        }
    }
    tracing::debug!(bytes, "read-only file mappings dropped");
}

/// The `(start, end)` of every mapping in `smaps` (the text of /proc/self/smaps) that maps a
/// file privately without write permission and has no anonymous page.
fn clean_read_only_file_ranges(smaps: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    // The current mapping, while its fields are read: its range, and whether it qualifies.
    let mut current: Option<(usize, usize, bool)> = None;
    let mut finish = |current: &mut Option<(usize, usize, bool)>| {
        if let Some((start, end, true)) = current.take() {
            ranges.push((start, end));
        }
    };
    for line in smaps.lines() {
        if let Some((range, qualifies)) = mapping_header(line) {
            finish(&mut current);
            current = Some((range.0, range.1, qualifies));
        } else if let Some(kb) = line.strip_prefix("Anonymous:") {
            let anonymous = kb.trim().trim_end_matches("kB").trim() != "0";
            if let Some(mapping) = current.as_mut() {
                mapping.2 &= !anonymous;
            }
        }
    }
    finish(&mut current);
    ranges
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_clean_read_only_private_file_mappings() {
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
        assert_eq!(
            clean_read_only_file_ranges(smaps),
            vec![
                (0x55a184fe2000, 0x55a185000000),
                (0x55a185000000, 0x55a186000000)
            ]
        );
    }

    #[test]
    fn the_process_works_on_after_dropping_its_file_pages() {
        let text = String::from("still here");
        page_out_file_mappings();
        // Code, read-only data and relocated data are all usable.
        assert_eq!(format!("{text}!"), "still here!");
        assert!(!clean_read_only_file_ranges(
            &std::fs::read_to_string("/proc/self/smaps").unwrap()
        )
        .is_empty());
    }
}
