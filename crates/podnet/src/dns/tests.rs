//! Every name form `respond` answers, through real DNS messages encoded and decoded.

use std::net::Ipv4Addr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};
use podrun_network::Protocol;

use super::*;
use crate::cluster::test_support::{self, named_port, service};
use crate::cluster::{PodRecord, ServicePort, TargetPort};

fn port(name: Option<&str>, port: u16, target: TargetPort) -> ServicePort {
    ServicePort {
        name: name.map(str::to_string),
        ..test_support::port(port, Protocol::Tcp, target)
    }
}

/// A pod with the named port `pg` (5432), in `subdomain` if any.
fn pod(name: &str, last: u8, app: &str, subdomain: Option<&str>, ready: bool) -> PodRecord {
    PodRecord {
        subdomain: subdomain.map(str::to_string),
        named_ports: vec![named_port("pg", 5432)],
        ..test_support::pod(name, last, app, ready)
    }
}

/// `api` (ClusterIP, named port http), `db` (headless: db-0 with subdomain db, db-1
/// without, db-2 not ready), `empty` (headless, no pod), and `web-0`, a ready pod with
/// subdomain `db` that `db` does not select.
fn records() -> Records {
    let services = [
        service(
            "api",
            Some([10, 96, 0, 10]),
            vec![port(Some("http"), 80, TargetPort::Number(8080))],
        ),
        service(
            "db",
            None,
            vec![port(Some("pg"), 5432, TargetPort::Name("pg".into()))],
        ),
        service("empty", None, vec![port(None, 80, TargetPort::Number(80))]),
    ];
    let pods = [
        pod("db-0", 2, "db", Some("db"), true),
        pod("db-1", 3, "db", None, true),
        pod("db-2", 4, "db", Some("db"), false),
        pod("web-0", 5, "web", Some("db"), true),
    ];
    Records::build(&services, &pods)
}

fn query_message(name: &str, kind: RecordType) -> Message {
    let mut message = Message::new(0xbeef, MessageType::Query, OpCode::Query);
    message.metadata.recursion_desired = true;
    let name = Name::from_ascii(name).expect("a name");
    message.add_query(Query::query(name, kind));
    message
}

fn ask_message(message: &Message) -> Message {
    match respond(&message.to_vec().expect("encodes"), &records()) {
        Reply::Answer(bytes) => {
            let answer = Message::from_vec(&bytes).expect("decodes");
            assert_eq!(answer.metadata.id, 0xbeef);
            assert_eq!(answer.metadata.message_type, MessageType::Response);
            assert_eq!(answer.queries, message.queries, "the question is echoed");
            answer
        }
        other => panic!("expected an answer, got {other:?}"),
    }
}

fn ask(name: &str, kind: RecordType) -> Message {
    ask_message(&query_message(name, kind))
}

fn addresses(answer: &Message) -> Vec<Ipv4Addr> {
    answer
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect()
}

fn assert_found(answer: &Message, want: &[[u8; 4]]) {
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
    assert!(answer.metadata.authoritative, "AA");
    let want: Vec<Ipv4Addr> = want.iter().map(|&octets| octets.into()).collect();
    assert_eq!(addresses(answer), want);
    for record in &answer.answers {
        assert_eq!(record.ttl, TTL);
        assert_eq!(&record.name, answer.queries[0].name(), "answered as asked");
    }
}

fn assert_nxdomain(name: &str) {
    let answer = ask(name, RecordType::A);
    assert_eq!(
        answer.metadata.response_code,
        ResponseCode::NXDomain,
        "{name}"
    );
    assert!(answer.metadata.authoritative, "AA for {name}");
    assert!(answer.answers.is_empty());
    assert!(matches!(answer.authorities[0].data, RData::SOA(_)), "SOA");
}

fn assert_nodata(name: &str, kind: RecordType) {
    let answer = ask(name, kind);
    assert_eq!(
        answer.metadata.response_code,
        ResponseCode::NoError,
        "{name}"
    );
    assert!(answer.metadata.authoritative);
    assert!(answer.answers.is_empty(), "{name} {kind}: no answers");
}

#[test]
fn a_cluster_ip_service_answers_its_cluster_ip() {
    assert_found(
        &ask("api.default.svc.cluster.local.", RecordType::A),
        &[[10, 96, 0, 10]],
    );
}

#[test]
fn names_match_case_insensitively_and_are_answered_as_asked() {
    let answer = ask("API.Default.SVC.cluster.LOCAL.", RecordType::A);
    assert_found(&answer, &[[10, 96, 0, 10]]);
    assert_eq!(
        answer.answers[0].name.to_ascii(),
        "API.Default.SVC.cluster.LOCAL."
    );
}

#[test]
fn a_headless_service_answers_its_ready_selected_pods() {
    assert_found(
        &ask("db.default.svc.cluster.local.", RecordType::A),
        &[[10, 89, 0, 2], [10, 89, 0, 3]],
    );
}

#[test]
fn a_headless_service_without_ready_pods_does_not_exist() {
    assert_nxdomain("empty.default.svc.cluster.local.");
}

#[test]
fn a_ready_pod_answers_at_its_hostname_under_its_subdomain() {
    let db0 = ask("db-0.db.default.svc.cluster.local.", RecordType::A);
    assert_found(&db0, &[[10, 89, 0, 2]]);
    // Not selected by db, but its subdomain names the headless Service.
    let web0 = ask("web-0.db.default.svc.cluster.local.", RecordType::A);
    assert_found(&web0, &[[10, 89, 0, 5]]);
    assert_nxdomain("db-2.db.default.svc.cluster.local.");
    assert_nxdomain("db-1.db.default.svc.cluster.local.");
}

#[test]
fn an_endpoint_without_hostname_answers_at_its_dashed_address() {
    let answer = ask("10-89-0-3.db.default.svc.cluster.local.", RecordType::A);
    assert_found(&answer, &[[10, 89, 0, 3]]);
}

#[test]
fn known_names_asked_for_other_types_are_nodata() {
    assert_nodata("api.default.svc.cluster.local.", RecordType::AAAA);
    assert_nodata("db.default.svc.cluster.local.", RecordType::AAAA);
    assert_nodata("db-0.db.default.svc.cluster.local.", RecordType::TXT);
    assert_nodata("api.default.svc.cluster.local.", RecordType::SRV);
    // Names with names below them exist too (RFC 8020).
    assert_nodata("default.svc.cluster.local.", RecordType::A);
    assert_nodata("svc.cluster.local.", RecordType::A);
    assert_nodata("cluster.local.", RecordType::A);
    assert_nodata("_tcp.api.default.svc.cluster.local.", RecordType::A);
}

#[test]
fn a_nodata_answer_carries_the_zone_soa() {
    let answer = ask("api.default.svc.cluster.local.", RecordType::AAAA);
    let [soa] = answer.authorities.as_slice() else {
        panic!("one SOA: {:?}", answer.authorities);
    };
    assert_eq!(soa.name.to_ascii(), "cluster.local.");
    let RData::SOA(data) = &soa.data else {
        panic!("not a SOA: {soa:?}");
    };
    assert_eq!(data.minimum, TTL);
}

#[test]
fn other_cluster_names_are_authoritative_nxdomain() {
    for name in [
        "nope.default.svc.cluster.local.",
        "api.prod.svc.cluster.local.",
        "api.default.default.svc.cluster.local.",
        "example.org.default.svc.cluster.local.",
        "api.default.svc.cluster.local.cluster.local.",
        "prod.svc.cluster.local.",
        "pod.cluster.local.",
    ] {
        assert_nxdomain(name);
    }
}

#[test]
fn the_zone_apex_answers_its_soa() {
    let answer = ask("cluster.local.", RecordType::SOA);
    assert_eq!(answer.answers.len(), 1);
    assert!(matches!(answer.answers[0].data, RData::SOA(_)));
}

#[test]
fn a_named_port_of_a_cluster_ip_service_has_an_srv_record() {
    let answer = ask("_http._tcp.api.default.svc.cluster.local.", RecordType::SRV);
    let [srv] = answer.answers.as_slice() else {
        panic!("one SRV: {:?}", answer.answers);
    };
    let RData::SRV(data) = &srv.data else {
        panic!("not an SRV: {srv:?}");
    };
    assert_eq!(data.port, 80);
    assert_eq!(data.target.to_ascii(), "api.default.svc.cluster.local.");
    let extra: Vec<_> = answer.additionals.iter().map(|r| &r.data).collect();
    assert_eq!(extra, [&RData::A(A(Ipv4Addr::new(10, 96, 0, 10)))]);
    assert_nxdomain("_http._udp.api.default.svc.cluster.local.");
}

#[test]
fn a_named_port_of_a_headless_service_has_an_srv_record_per_endpoint() {
    let answer = ask("_pg._tcp.db.default.svc.cluster.local.", RecordType::SRV);
    let mut got: Vec<(u16, String)> = answer
        .answers
        .iter()
        .filter_map(|record| match &record.data {
            RData::SRV(srv) => Some((srv.port, srv.target.to_ascii())),
            _ => None,
        })
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            (5432, "10-89-0-3.db.default.svc.cluster.local.".to_string()),
            (5432, "db-0.db.default.svc.cluster.local.".to_string()),
        ]
    );
    assert_eq!(answer.additionals.len(), 2, "each target's address");
}

#[test]
fn cluster_ips_and_endpoint_pods_have_ptr_records() {
    for (name, want) in [
        ("10.0.96.10.in-addr.arpa.", "api.default.svc.cluster.local."),
        (
            "2.0.89.10.in-addr.arpa.",
            "db-0.db.default.svc.cluster.local.",
        ),
        (
            "3.0.89.10.in-addr.arpa.",
            "10-89-0-3.db.default.svc.cluster.local.",
        ),
    ] {
        let answer = ask(name, RecordType::PTR);
        let [ptr] = answer.answers.as_slice() else {
            panic!("one PTR for {name}: {:?}", answer.answers);
        };
        let RData::PTR(target) = &ptr.data else {
            panic!("not a PTR: {ptr:?}");
        };
        assert_eq!(target.0.to_ascii(), want);
        assert!(answer.metadata.authoritative);
    }
}

#[test]
fn other_names_are_forwarded() {
    let records = records();
    for (name, kind) in [
        ("example.org.", RecordType::A),
        ("example.org.", RecordType::AAAA),
        ("local.", RecordType::A),
        ("notcluster.local.", RecordType::A),
        ("9.0.89.10.in-addr.arpa.", RecordType::PTR),
        ("2.0.89.10.in-addr.arpa.", RecordType::A),
    ] {
        let query = query_message(name, kind).to_vec().expect("encodes");
        assert_eq!(respond(&query, &records), Reply::Forward, "{name} {kind}");
    }
}

#[test]
fn other_classes_get_no_records() {
    let mut message = query_message("api.default.svc.cluster.local.", RecordType::A);
    message.queries[0].set_query_class(DNSClass::CH);
    let answer = ask_message(&message);
    assert!(answer.answers.is_empty());
    assert_eq!(answer.metadata.response_code, ResponseCode::NoError);
}

#[test]
fn an_edns_query_gets_an_edns_answer() {
    let mut message = query_message("api.default.svc.cluster.local.", RecordType::A);
    message.edns = Some(Edns::new());
    let answer = ask_message(&message);
    assert_found(&answer, &[[10, 96, 0, 10]]);
    let edns = answer.edns.expect("an OPT record");
    assert_eq!(edns.max_payload(), EDNS_UDP_SIZE);
    assert!(ask("api.default.svc.cluster.local.", RecordType::A)
        .edns
        .is_none());
}

#[test]
fn a_large_answer_loses_records_to_fit_512_bytes() {
    let service = service("many", None, Vec::new());
    let pods: Vec<PodRecord> = (2..=250)
        .map(|last| pod(&format!("p{last}"), last, "many", None, true))
        .collect();
    let records = Records::build(&[service], &pods);
    let query = query_message("many.default.svc.cluster.local.", RecordType::A);
    let Reply::Answer(bytes) = respond(&query.to_vec().expect("encodes"), &records) else {
        panic!("an answer");
    };
    assert!(bytes.len() <= PLAIN_UDP_SIZE, "{} bytes", bytes.len());
    let answer = Message::from_vec(&bytes).expect("decodes");
    assert!(!answer.metadata.truncation, "not TC: no TCP to retry over");
    assert!(
        answer.answers.len() > 20,
        "{} answers",
        answer.answers.len()
    );
}

#[test]
fn malformed_queries_get_formerr_or_nothing() {
    let records = records();
    assert_eq!(respond(&[], &records), Reply::Drop);
    assert_eq!(respond(&[1, 2, 3], &records), Reply::Drop);
    // A header that announces a question that is not there.
    let header = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    let Reply::Answer(bytes) = respond(&header, &records) else {
        panic!("FORMERR expected");
    };
    let answer = Message::from_vec(&bytes).expect("decodes");
    assert_eq!(answer.metadata.id, 0x1234);
    assert_eq!(answer.metadata.response_code, ResponseCode::FormErr);
    // The same from a response: never answered.
    let mut response = header;
    response[2] |= 0x80;
    assert_eq!(respond(&response, &records), Reply::Drop);
}

#[test]
fn responses_questionless_queries_and_other_opcodes_are_handled() {
    let records = records();
    let mut response = query_message("example.org.", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    let bytes = response.to_vec().expect("encodes");
    assert_eq!(respond(&bytes, &records), Reply::Drop);

    let empty = Message::new(0xbeef, MessageType::Query, OpCode::Query);
    let answer = ask_message(&empty);
    assert_eq!(answer.metadata.response_code, ResponseCode::FormErr);

    let mut notify = query_message("cluster.local.", RecordType::SOA);
    notify.metadata.op_code = OpCode::Notify;
    let answer = ask_message(&notify);
    assert_eq!(answer.metadata.response_code, ResponseCode::NotImp);
}

#[test]
fn reverse_names_parse_to_addresses() {
    assert_eq!(
        reverse_address("2.0.89.10.in-addr.arpa"),
        Some(Ipv4Addr::new(10, 89, 0, 2))
    );
    assert_eq!(reverse_address("0.89.10.in-addr.arpa"), None);
    assert_eq!(reverse_address("x.0.89.10.in-addr.arpa"), None);
    assert_eq!(reverse_address("2.0.89.10.in-addr.arpa.com"), None);
}
