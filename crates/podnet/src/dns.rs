//! The shared network's DNS server (issue 17): being written.
