//! The shared network's DNS server (issue 17): what lets a pod reach a Service by name.
//!
//! The network holder runs it on the bridge's gateway address (10.89.0.1:53), and pods get a
//! kubelet-style resolv.conf (`nameserver 10.89.0.1`, `search <ns>.svc.cluster.local
//! svc.cluster.local cluster.local`, `options ndots:5`), so the resolver asks it fully
//! qualified names. It answers the `cluster.local` zone as CoreDNS' kubernetes plugin does:
//!
//! * `<svc>.<ns>.svc.cluster.local` A: the Service's cluster IP; for a headless Service, the
//!   addresses of its ready endpoints (none ready: NXDOMAIN);
//! * `<hostname>.<subdomain>.<ns>.svc.cluster.local` A: a ready pod whose subdomain names a
//!   headless Service of its namespace; each endpoint of a headless Service also answers at
//!   its hostname (when its subdomain is that Service) or dashed address
//!   (`10-89-0-2.<svc>.<ns>.svc.cluster.local`);
//! * `_<port>._<tcp|udp>.<svc>.<ns>.svc.cluster.local` SRV, for named Service ports: the
//!   Service's port at its name, or for a headless Service each endpoint's target port at the
//!   endpoint's name;
//! * PTR (`2.0.89.10.in-addr.arpa`) for cluster IPs and endpoint pods.
//!
//! Names are matched case-insensitively and answered as asked, with a TTL of 5 s (answers
//! change as pods become ready). A name that exists with no record of the type asked (AAAA,
//! or a name with only names below it, such as `default.svc.cluster.local`) is NODATA;
//! any other name of the zone is an authoritative NXDOMAIN, so a resolver's search-path walk
//! (`example.org.default.svc.cluster.local`, …) moves on at once. Negative answers carry the
//! zone's SOA (minimum 5 s). Everything else is forwarded to the holder's upstream
//! (slirp4netns' 10.0.2.3) by [`DnsServer`]; a query that cannot be decoded is answered
//! FORMERR (or dropped, if not even its header can be read or it is itself a response).
//! Answers are UDP only: one too large for the client's buffer (512 bytes, or its EDNS size)
//! loses records from its end rather than being truncated (no TCP server to retry over).
//!
//! DNS messages are read and written with `hickory-proto` (no default features): it is the
//! widely used, fuzzed and actively maintained core of Hickory DNS, and its dependencies
//! (url, idna, rand) are already in the workspace, so it costs one crate's build more than
//! `simple-dns`, a smaller single-maintainer crate.

mod records;
mod server;

use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR, SOA, SRV};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use crate::cluster::CLUSTER_DOMAIN;

pub use records::Records;
pub use server::DnsServer;

/// The TTL of every record answered: pods become ready or go at any time.
pub const TTL: u32 = 5;
/// The reverse zone suffix of IPv4 addresses.
const REVERSE_SUFFIX: &str = ".in-addr.arpa";
/// The largest UDP answer to a client without EDNS (RFC 1035).
const PLAIN_UDP_SIZE: usize = 512;
/// The UDP size this server offers in its EDNS answers (the DNS flag day 2020 default).
const EDNS_UDP_SIZE: u16 = 1232;

/// What to do with one query datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Send these bytes back to the client.
    Answer(Vec<u8>),
    /// Not a name of the cluster: forward the query upstream.
    Forward,
    /// Send nothing (not a query, or not even a DNS header).
    Drop,
}

/// Pure: the reply to one query datagram.
pub fn respond(query: &[u8], records: &Records) -> Reply {
    let Ok(message) = Message::from_vec(query) else {
        return format_error(query);
    };
    if message.metadata.message_type != MessageType::Query {
        return Reply::Drop;
    }
    if message.metadata.op_code != OpCode::Query {
        return error(&message, ResponseCode::NotImp);
    }
    let [question] = message.queries.as_slice() else {
        return error(&message, ResponseCode::FormErr);
    };
    let key = lookup_key(question.name());
    let limit = client_limit(&message);
    if in_zone(&key) {
        return encode(cluster_answer(&message, question, &key, records), limit);
    }
    match reverse_answer(&message, question, &key, records) {
        Some(answer) => encode(answer, limit),
        None => Reply::Forward,
    }
}

/// The answer to a question about a name of `cluster.local`.
fn cluster_answer(message: &Message, question: &Query, key: &str, records: &Records) -> Message {
    let mut response = response_to(message);
    response.metadata.authoritative = true;
    let (answers, additionals) = if question.query_class() == DNSClass::IN {
        cluster_records(question, key, records)
    } else {
        (Vec::new(), Vec::new())
    };
    if answers.is_empty() {
        if !records.exists(key) {
            response.metadata.response_code = ResponseCode::NXDomain;
        }
        response.authorities.push(soa_record());
    }
    response.answers = answers;
    response.additionals = additionals;
    response
}

/// The answer records to `question` and their additional records (an SRV target's A).
fn cluster_records(question: &Query, key: &str, records: &Records) -> (Vec<Record>, Vec<Record>) {
    let asked = question.name();
    match question.query_type() {
        RecordType::A => (address_records(asked, records.addresses(key)), Vec::new()),
        RecordType::SRV => srv_records(asked, key, records),
        RecordType::SOA if key == CLUSTER_DOMAIN => (vec![soa_record()], Vec::new()),
        _ => (Vec::new(), Vec::new()),
    }
}

fn address_records(name: &Name, addresses: &[Ipv4Addr]) -> Vec<Record> {
    addresses
        .iter()
        .map(|&address| Record::from_rdata(name.clone(), TTL, RData::A(A(address))))
        .collect()
}

/// The SRV records of `key`, and the addresses of their targets as additional records.
fn srv_records(asked: &Name, key: &str, records: &Records) -> (Vec<Record>, Vec<Record>) {
    let srvs = records.srv(key);
    let weight = u16::try_from(100 / srvs.len().max(1)).unwrap_or(1);
    let mut answers = Vec::new();
    let mut additionals = Vec::new();
    for srv in srvs {
        let Ok(target) = fqdn(&srv.target) else {
            continue;
        };
        let data = SRV::new(0, weight, srv.port, target.clone());
        answers.push(Record::from_rdata(asked.clone(), TTL, RData::SRV(data)));
        additionals.extend(address_records(&target, records.addresses(&srv.target)));
    }
    additionals.dedup();
    (answers, additionals)
}

/// The PTR answer for a known address; `None` for anything else (forwarded).
fn reverse_answer(
    message: &Message,
    question: &Query,
    key: &str,
    records: &Records,
) -> Option<Message> {
    if question.query_type() != RecordType::PTR || question.query_class() != DNSClass::IN {
        return None;
    }
    let target = records.pointer(reverse_address(key)?)?;
    let data = RData::PTR(PTR(fqdn(target).ok()?));
    let mut response = response_to(message);
    response.metadata.authoritative = true;
    let record = Record::from_rdata(question.name().clone(), TTL, data);
    response.answers.push(record);
    Some(response)
}

/// The address of a reverse name (`2.0.89.10.in-addr.arpa` → 10.89.0.2).
fn reverse_address(key: &str) -> Option<Ipv4Addr> {
    let reversed = key.strip_suffix(REVERSE_SUFFIX)?;
    let octets: Vec<&str> = reversed.split('.').rev().collect();
    if octets.len() != 4 {
        return None;
    }
    octets.join(".").parse().ok()
}

/// The zone's SOA, as CoreDNS gives it, with a 5 s negative-caching minimum.
fn soa_record() -> Record {
    let name = |text: &str| fqdn(text).unwrap_or_else(|_| Name::root());
    let soa = SOA::new(
        name(&format!("ns.dns.{CLUSTER_DOMAIN}")),
        name(&format!("hostmaster.{CLUSTER_DOMAIN}")),
        1,
        7200,
        1800,
        86400,
        TTL,
    );
    Record::from_rdata(name(CLUSTER_DOMAIN), TTL, RData::SOA(soa))
}

/// A response to `message`: its id, question, recursion flags and (if asked) EDNS.
fn response_to(message: &Message) -> Message {
    let mut response = Message::response(message.metadata.id, message.metadata.op_code);
    response.metadata.recursion_desired = message.metadata.recursion_desired;
    // Names outside the zone are forwarded to a recursive resolver.
    response.metadata.recursion_available = true;
    response.metadata.checking_disabled = message.metadata.checking_disabled;
    response.queries = message.queries.clone();
    if message.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_UDP_SIZE);
        response.edns = Some(edns);
    }
    response
}

/// An answer with `code` and nothing else.
fn error(message: &Message, code: ResponseCode) -> Reply {
    let mut response = response_to(message);
    response.metadata.response_code = code;
    encode(response, PLAIN_UDP_SIZE)
}

/// FORMERR for a datagram with a query's header that does not decode; nothing for less.
fn format_error(query: &[u8]) -> Reply {
    let &[id_high, id_low, flags, ..] = query else {
        return Reply::Drop;
    };
    let is_query = flags & 0x80 == 0;
    if query.len() < 12 || !is_query {
        return Reply::Drop;
    }
    let id = u16::from_be_bytes([id_high, id_low]);
    let response = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
    encode(response, PLAIN_UDP_SIZE)
}

/// The response's bytes, records dropped from its end until it fits the client's buffer.
fn encode(mut response: Message, limit: usize) -> Reply {
    loop {
        let Ok(bytes) = response.to_vec() else {
            return Reply::Drop;
        };
        if bytes.len() <= limit {
            return Reply::Answer(bytes);
        }
        if !response.additionals.is_empty() {
            response.additionals.clear();
        } else if response.answers.pop().is_none() {
            return Reply::Drop;
        }
    }
}

/// The largest answer to send the client over UDP: the size its EDNS offers, at most the
/// 1232 bytes that pass unfragmented; 512 bytes without EDNS.
fn client_limit(query: &Message) -> usize {
    let offered = query.edns.as_ref().map_or(0, Edns::max_payload);
    usize::from(offered.min(EDNS_UDP_SIZE)).max(PLAIN_UDP_SIZE)
}

/// A name as the records key it: lowercase, without the trailing dot.
fn lookup_key(name: &Name) -> String {
    let mut key = name.to_lowercase().to_ascii();
    if key.ends_with('.') {
        key.pop();
    }
    key
}

fn in_zone(key: &str) -> bool {
    key == CLUSTER_DOMAIN
        || key
            .strip_suffix(CLUSTER_DOMAIN)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// A records key as an absolute name.
fn fqdn(key: &str) -> Result<Name, hickory_proto::ProtoError> {
    Name::from_ascii(format!("{key}."))
}

#[cfg(test)]
mod tests;
