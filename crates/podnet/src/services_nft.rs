//! Service forwarding with nftables in the holder's namespace (issue 17): being written.
