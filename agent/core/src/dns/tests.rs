use super::*;
use alloc::string::ToString;

const ID: u16 = 0xbeef;
/// QR, RD, RA, NOERROR.
const OK: u16 = 0x8180;
/// A pointer to the question name, which starts right after the header.
const PTR_Q: [u8; 2] = [0xc0, 0x0c];
const CNAME: u16 = 5;
const A: u16 = 1;
const AAAA: u16 = 28;

fn ptr(offset: usize) -> [u8; 2] {
    [0xc0 | (offset >> 8) as u8, offset as u8]
}

fn wire(name: &str) -> Vec<u8> {
    let mut w = Vec::new();
    for label in name.split('.').filter(|l| !l.is_empty()) {
        w.push(label.len() as u8);
        w.extend_from_slice(label.as_bytes());
    }
    w.push(0);
    w
}

fn v4(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// Builds DNS messages byte by byte.
#[derive(Clone)]
struct Msg(Vec<u8>);

impl Msg {
    fn new(id: u16, flags: u16, qd: u16, an: u16) -> Msg {
        Msg(Vec::new())
            .u16(id)
            .u16(flags)
            .u16(qd)
            .u16(an)
            .u16(0)
            .u16(0)
    }

    /// A response to `ID` with one question.
    fn answer(flags: u16, name: &str, qtype: u16, an: u16) -> Msg {
        Msg::new(ID, flags, 1, an).question(name, qtype)
    }

    fn len(&self) -> usize {
        self.0.len()
    }

    fn raw(mut self, b: &[u8]) -> Msg {
        self.0.extend_from_slice(b);
        self
    }

    fn u16(self, v: u16) -> Msg {
        self.raw(&v.to_be_bytes())
    }

    fn question(self, name: &str, qtype: u16) -> Msg {
        self.raw(&wire(name)).u16(qtype).u16(1)
    }

    /// A record of class IN; `owner` is raw wire bytes (labels and/or a pointer).
    fn rr(self, owner: &[u8], rtype: u16, rdata: &[u8]) -> Msg {
        self.rr_class(owner, rtype, 1, rdata)
    }

    fn rr_class(self, owner: &[u8], rtype: u16, class: u16, rdata: &[u8]) -> Msg {
        self.raw(owner)
            .u16(rtype)
            .u16(class)
            .raw(&300u32.to_be_bytes())
            .u16(rdata.len() as u16)
            .raw(rdata)
    }

    /// Where the data of the next record will start, for an owner of `owner_len` bytes.
    fn next_rdata(&self, owner_len: usize) -> usize {
        self.len() + owner_len + 10
    }
}

fn query_a() -> Query {
    Query::new(ID, "kbs.example", RecordType::A).unwrap()
}

fn query_aaaa() -> Query {
    Query::new(ID, "kbs.example", RecordType::Aaaa).unwrap()
}

fn addrs(list: &[&str]) -> Reply {
    Reply::Addresses(list.iter().map(|s| v4(s)).collect())
}

#[test]
fn query_encoding() {
    let q = Query::new(0x1234, "KBS.Example.", RecordType::A).unwrap();
    assert_eq!(q.id(), 0x1234);
    assert_eq!(q.record_type(), RecordType::A);
    let mut want = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    want.extend_from_slice(b"\x03kbs\x07example\x00\x00\x01\x00\x01");
    assert_eq!(q.encode(), want);
    let q = Query::new(7, "a_b-c.d", RecordType::Aaaa).unwrap();
    assert_eq!(&q.encode()[12..], b"\x05a_b-c\x01d\x00\x00\x1c\x00\x01");
    assert_eq!(RecordType::Aaaa.code(), 28);
    assert_eq!(RecordType::Aaaa.to_string(), "AAAA");
}

#[test]
fn query_name_validation() {
    let ok = |n: &str| Query::new(1, n, RecordType::A).map(|_| ());
    assert_eq!(ok("kbs"), Ok(()));
    assert_eq!(ok("_srv.kbs-1.example."), Ok(()));
    assert_eq!(ok(""), Err(NameError::Empty));
    assert_eq!(ok("."), Err(NameError::Empty));
    assert_eq!(ok("a..b"), Err(NameError::EmptyLabel));
    assert_eq!(ok(".a"), Err(NameError::EmptyLabel));
    assert_eq!(ok("a.."), Err(NameError::EmptyLabel));
    assert_eq!(ok("k\u{e9}s"), Err(NameError::InvalidCharacter));
    assert_eq!(ok("a b"), Err(NameError::InvalidCharacter));
    assert_eq!(ok("a\0"), Err(NameError::InvalidCharacter));
    let label63 = "a".repeat(63);
    assert_eq!(ok(&label63), Ok(()));
    assert_eq!(ok(&"a".repeat(64)), Err(NameError::LabelTooLong));
    // 4 × 63 + 3 dots = 255 > 253; 253 exactly is fine.
    let long = [label63.as_str(); 4].join(".");
    assert_eq!(ok(&long), Err(NameError::TooLong));
    assert_eq!(ok(&long[..253]), Ok(()));
    assert_eq!(ok(&alloc::format!("{}.", &long[..253])), Ok(()));
    assert!(NameError::TooLong.to_string().contains("253"));
}

#[test]
fn simple_answers() {
    // Two A records through pointers to the question, one uncompressed.
    let msg = Msg::answer(OK, "kbs.example", A, 3)
        .rr(&PTR_Q, A, &[10, 0, 2, 15])
        .rr(&wire("KBS.EXAMPLE"), A, &[10, 0, 2, 16])
        .rr(&PTR_Q, A, &[10, 0, 2, 15]); // duplicate
    assert_eq!(
        query_a().parse_response(&msg.0),
        Ok(addrs(&["10.0.2.15", "10.0.2.16"]))
    );

    let ip6: Ipv6Addr = "fd00::15".parse().unwrap();
    let msg = Msg::answer(OK, "kbs.example", AAAA, 1).rr(&PTR_Q, AAAA, &ip6.octets());
    assert_eq!(
        query_aaaa().parse_response(&msg.0),
        Ok(Reply::Addresses(vec![IpAddr::V6(ip6)]))
    );

    // NODATA: the name exists, nothing of this type.
    let msg = Msg::answer(OK, "kbs.example", AAAA, 0);
    assert_eq!(
        query_aaaa().parse_response(&msg.0),
        Ok(Reply::Addresses(vec![]))
    );
}

#[test]
fn question_echo_is_case_insensitive() {
    let msg = Msg::answer(OK, "KbS.eXaMpLe", A, 1).rr(&PTR_Q, A, &[1, 2, 3, 4]);
    assert_eq!(query_a().parse_response(&msg.0), Ok(addrs(&["1.2.3.4"])));
}

#[test]
fn other_records_are_skipped() {
    let ip6: Ipv6Addr = "fd00::1".parse().unwrap();
    let msg = Msg::answer(OK, "kbs.example", A, 5)
        .rr(&PTR_Q, 16, b"\x05hello") // TXT
        .rr(&PTR_Q, AAAA, &ip6.octets()) // not what was asked
        .rr_class(&PTR_Q, A, 3, &[6, 6, 6, 6]) // class CH
        .rr_class(&PTR_Q, A, 3, &[6, 6, 6]) // class CH: its length is not checked
        .rr(&PTR_Q, A, &[10, 0, 0, 1]);
    assert_eq!(query_a().parse_response(&msg.0), Ok(addrs(&["10.0.0.1"])));
}

/// kbs.example CNAME edge.example CNAME lb.edge.example A 10.0.0.1, 10.0.0.2, with
/// compressed targets, poison for other names, and the records out of order.
fn cname_chain_response() -> Vec<u8> {
    let example = 12 + 4; // "example" inside the question name
    let m = Msg::answer(OK, "kbs.example", A, 8);
    let edge = m.next_rdata(2);
    let m = m.rr(
        &PTR_Q,
        CNAME,
        &[b"\x04edge".as_slice(), &ptr(example)].concat(),
    );
    // The final records before the CNAME that leads to them.
    let lb_owner = m.len();
    let m = m
        .rr(
            &[b"\x02lb".as_slice(), &ptr(edge)].concat(),
            A,
            &[10, 0, 0, 1],
        )
        .rr(&ptr(lb_owner), A, &[10, 0, 0, 2])
        .rr(&ptr(edge), CNAME, &ptr(lb_owner))
        // Addresses for the names along the way and for unrelated names are not taken.
        .rr(&PTR_Q, A, &[6, 6, 6, 1])
        .rr(&ptr(edge), A, &[6, 6, 6, 2])
        .rr(&wire("evil.example"), A, &[6, 6, 6, 3])
        .rr(&ptr(lb_owner), A, &[10, 0, 0, 1]);
    m.0
}

#[test]
fn cname_chain_within_the_response() {
    let msg = cname_chain_response();
    assert_eq!(
        query_a().parse_response(&msg),
        Ok(addrs(&["10.0.0.1", "10.0.0.2"]))
    );
}

/// A chain of `n` CNAMEs: kbs.example → c1.example → ... → cN.example, which has an A.
fn chain_of(n: usize) -> Vec<u8> {
    let mut m = Msg::answer(OK, "kbs.example", A, n as u16 + 1);
    let mut owner = PTR_Q.to_vec();
    for i in 1..=n {
        let target = wire(&alloc::format!("c{i}.example"));
        let at = m.next_rdata(owner.len());
        m = m.rr(&owner, CNAME, &target);
        owner = ptr(at).to_vec();
    }
    m.rr(&owner, A, &[10, 9, 9, 9]).0
}

#[test]
fn cname_chain_bounds() {
    assert_eq!(
        query_a().parse_response(&chain_of(MAX_CNAME_CHAIN)),
        Ok(addrs(&["10.9.9.9"]))
    );
    assert_eq!(
        query_a().parse_response(&chain_of(MAX_CNAME_CHAIN + 1)),
        Err(ResponseError::CnameChain)
    );
    // A loop: kbs.example → x.example → kbs.example.
    let m = Msg::answer(OK, "kbs.example", A, 3);
    let x = m.next_rdata(2);
    let m = m
        .rr(&PTR_Q, CNAME, &wire("x.example"))
        .rr(&ptr(x), CNAME, &PTR_Q)
        .rr(&PTR_Q, A, &[6, 6, 6, 6]);
    assert_eq!(
        query_a().parse_response(&m.0),
        Err(ResponseError::CnameChain)
    );
    // A dangling CNAME (target not resolved in the answer): no address.
    let m = Msg::answer(OK, "kbs.example", A, 1).rr(&PTR_Q, CNAME, &wire("far.away"));
    assert_eq!(query_a().parse_response(&m.0), Ok(addrs(&[])));
}

#[test]
fn response_codes() {
    let q = query_a();
    let with = |flags: u16| Msg::answer(flags, "kbs.example", A, 0).0;
    assert_eq!(q.parse_response(&with(0x8183)), Ok(Reply::NxDomain));
    assert_eq!(
        q.parse_response(&with(0x8182)),
        Ok(Reply::ServerFailure(Rcode::SERVFAIL))
    );
    assert_eq!(
        q.parse_response(&with(0x8185)),
        Ok(Reply::ServerFailure(Rcode::REFUSED))
    );
    assert_eq!(
        q.parse_response(&with(0x8184)),
        Ok(Reply::ServerFailure(Rcode::NOTIMP))
    );
    assert_eq!(
        q.parse_response(&with(0x818b)),
        Ok(Reply::ServerFailure(Rcode(11)))
    );
    // Errors without the question are accepted; NOERROR and NXDOMAIN without it are not.
    let bare = |flags: u16| Msg::new(ID, flags, 0, 0).0;
    assert_eq!(
        q.parse_response(&bare(0x8181)),
        Ok(Reply::ServerFailure(Rcode::FORMERR))
    );
    assert_eq!(
        q.parse_response(&bare(0x8185)),
        Ok(Reply::ServerFailure(Rcode::REFUSED))
    );
    assert_eq!(
        q.parse_response(&bare(0x8180)),
        Err(ResponseError::QuestionMismatch)
    );
    assert_eq!(
        q.parse_response(&bare(0x8183)),
        Err(ResponseError::QuestionMismatch)
    );
    // NXDOMAIN after a CNAME: the target does not exist.
    let m = Msg::answer(0x8183, "kbs.example", A, 1).rr(&PTR_Q, CNAME, &wire("gone.example"));
    assert_eq!(q.parse_response(&m.0), Ok(Reply::NxDomain));
    assert_eq!(Rcode::NXDOMAIN.to_string(), "NXDOMAIN");
    assert_eq!(Rcode::SERVFAIL.to_string(), "SERVFAIL");
    assert_eq!(Rcode(11).to_string(), "RCODE 11");
}

#[test]
fn truncated_flag_asks_for_tcp() {
    // TC: whatever follows the question is not read (here: half a record).
    let m = Msg::answer(0x8380, "kbs.example", A, 5).raw(&[0xc0, 0x0c, 0, 1, 0]);
    assert_eq!(query_a().parse_response(&m.0), Ok(Reply::Truncated));
    // But the question must still be ours.
    let m = Msg::answer(0x8380, "kbs.other", A, 0);
    assert_eq!(
        query_a().parse_response(&m.0),
        Err(ResponseError::QuestionMismatch)
    );
}

#[test]
fn unrelated_messages() {
    let q = query_a();
    let good = Msg::answer(OK, "kbs.example", A, 1).rr(&PTR_Q, A, &[1, 1, 1, 1]);
    let check = |msg: &[u8], want: ResponseError| {
        let got = q.parse_response(msg);
        assert_eq!(got, Err(want));
        assert!(want.is_unrelated(), "{want:?}");
    };
    check(&[], ResponseError::TooShort);
    check(&good.0[..11], ResponseError::TooShort);
    let mut wrong_id = good.0.clone();
    wrong_id[1] ^= 1;
    check(&wrong_id, ResponseError::IdMismatch);
    // Our own query reflected back.
    check(&q.encode(), ResponseError::NotResponse);
    let mut status = good.0.clone();
    status[2] |= 2 << 3; // opcode STATUS
    check(&status, ResponseError::BadOpcode);
    let other = |name: &str, qtype: u16, class: u16| {
        Msg::new(ID, OK, 1, 1)
            .raw(&wire(name))
            .u16(qtype)
            .u16(class)
            .rr(&PTR_Q, A, &[6, 6, 6, 6])
            .0
    };
    check(
        &other("kbs.example.org", A, 1),
        ResponseError::QuestionMismatch,
    );
    check(&other("kbs", A, 1), ResponseError::QuestionMismatch);
    check(&other("kbs.exampla", A, 1), ResponseError::QuestionMismatch);
    check(
        &other("kbs.example", AAAA, 1),
        ResponseError::QuestionMismatch,
    );
    check(&other("kbs.example", A, 3), ResponseError::QuestionMismatch);
    // Two questions, the first one ours.
    let two = Msg::new(ID, OK, 2, 0)
        .question("kbs.example", A)
        .question("kbs.example", A);
    check(&two.0, ResponseError::QuestionMismatch);
    let many = Msg::new(ID, OK, 0xffff, 0).question("kbs.example", A);
    check(&many.0, ResponseError::QuestionMismatch);
    // A question name that loops.
    let looped = Msg::new(ID, OK, 1, 0).raw(&PTR_Q).u16(A).u16(1);
    check(&looped.0, ResponseError::QuestionMismatch);
}

#[test]
fn every_truncation_is_refused() {
    let q = query_a();
    let full = cname_chain_response();
    let question_end = 12 + 13 + 4;
    for len in 0..full.len() {
        let err = q.parse_response(&full[..len]).unwrap_err();
        assert_eq!(err.is_unrelated(), len < question_end, "{len}: {err:?}");
    }
    // Cut just before the rdata ends: the length field points past the end.
    let m = Msg::answer(OK, "kbs.example", A, 1).rr(&PTR_Q, A, &[1, 2, 3, 4]);
    assert_eq!(
        q.parse_response(&m.0[..m.len() - 1]),
        Err(ResponseError::Truncated)
    );
}

#[test]
fn huge_counts() {
    let q = query_a();
    // 65535 answers announced, one present.
    let m = Msg::answer(OK, "kbs.example", A, 0xffff).rr(&PTR_Q, A, &[1, 2, 3, 4]);
    assert_eq!(q.parse_response(&m.0), Err(ResponseError::Truncated));
    // Authority and additional counts are never trusted nor read.
    let mut m = Msg::answer(OK, "kbs.example", A, 1).rr(&PTR_Q, A, &[1, 2, 3, 4]);
    m.0[8..12].copy_from_slice(&[0xff; 4]);
    assert_eq!(q.parse_response(&m.0), Ok(addrs(&["1.2.3.4"])));
    // Additional records (glue) for our name are not taken either.
    let mut m = Msg::answer(OK, "kbs.example", A, 0).rr(&PTR_Q, A, &[6, 6, 6, 6]);
    m.0[11] = 1;
    assert_eq!(q.parse_response(&m.0), Ok(addrs(&[])));

    // The record bound (a large TCP answer).
    let many = |n: usize| {
        let mut m = Msg::answer(OK, "kbs.example", A, n as u16);
        for i in 0..n {
            m = m.rr(&PTR_Q, A, &[10, 1, (i >> 8) as u8, i as u8]);
        }
        m.0
    };
    match q.parse_response(&many(MAX_ANSWER_RECORDS)) {
        Ok(Reply::Addresses(a)) => assert_eq!(a.len(), MAX_ANSWER_RECORDS),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        q.parse_response(&many(MAX_ANSWER_RECORDS + 1)),
        Err(ResponseError::TooManyRecords)
    );
}

#[test]
fn bad_record_lengths() {
    let q = query_a();
    let m = Msg::answer(OK, "kbs.example", A, 1).rr(&PTR_Q, A, &[1, 2, 3, 4, 5]);
    assert_eq!(q.parse_response(&m.0), Err(ResponseError::BadRecord));
    let m = Msg::answer(OK, "kbs.example", A, 1).rr(&PTR_Q, A, &[1, 2, 3]);
    assert_eq!(q.parse_response(&m.0), Err(ResponseError::BadRecord));
    // A malformed AAAA in an A answer is still malformed.
    let m = Msg::answer(OK, "kbs.example", A, 2)
        .rr(&PTR_Q, A, &[1, 2, 3, 4])
        .rr(&PTR_Q, AAAA, &[1, 2, 3, 4]);
    assert_eq!(q.parse_response(&m.0), Err(ResponseError::BadRecord));
    let m = Msg::answer(OK, "kbs.example", AAAA, 1).rr(&PTR_Q, AAAA, &[0; 17]);
    assert_eq!(
        query_aaaa().parse_response(&m.0),
        Err(ResponseError::BadRecord)
    );
    // CNAME data must be exactly one name.
    let m = Msg::answer(OK, "kbs.example", A, 1).rr(
        &PTR_Q,
        CNAME,
        &[wire("x.example"), vec![0]].concat(),
    );
    assert_eq!(q.parse_response(&m.0), Err(ResponseError::BadRecord));
    // ... and may not run past its length into the next record.
    let m = Msg::answer(OK, "kbs.example", A, 2)
        .rr(&PTR_Q, CNAME, b"\x01x")
        .rr(&PTR_Q, A, &[1, 2, 3, 4]);
    assert_eq!(q.parse_response(&m.0), Err(ResponseError::BadRecord));
}

#[test]
fn hostile_names() {
    let q = query_a();
    let base = Msg::answer(OK, "kbs.example", A, 1);
    let with_owner = |owner: &[u8]| base.clone().rr(owner, A, &[1, 2, 3, 4]).0;
    let here = base.len();

    // A pointer to itself.
    assert_eq!(
        q.parse_response(&with_owner(&ptr(here))),
        Err(ResponseError::BadPointer)
    );
    // Two pointers pointing at each other, placed after the record.
    let m = base
        .clone()
        .rr(&ptr(here + 16), A, &[1, 2, 3, 4])
        .raw(&ptr(here + 18))
        .raw(&ptr(here + 16));
    assert_eq!(q.parse_response(&m.0), Err(ResponseError::BadPointer));
    // A label then a pointer back to it: the name grows until it is too long.
    let m = base
        .clone()
        .rr(&ptr(here + 16), A, &[1, 2, 3, 4])
        .raw(b"\x01a")
        .raw(&ptr(here + 16));
    assert_eq!(q.parse_response(&m.0), Err(ResponseError::BadName));
    // Forward pointers are fine when they lead somewhere valid.
    let m = base
        .clone()
        .rr(&ptr(here + 16), A, &[1, 2, 3, 4])
        .raw(b"\x03kbs")
        .raw(&ptr(16));
    assert_eq!(q.parse_response(&m.0), Ok(addrs(&["1.2.3.4"])));
    // Out of bounds, into the header, at the very end.
    assert_eq!(
        q.parse_response(&with_owner(&ptr(0x3fff))),
        Err(ResponseError::BadPointer)
    );
    assert_eq!(
        q.parse_response(&with_owner(&ptr(4))),
        Err(ResponseError::BadPointer)
    );
    let at_end = with_owner(&ptr(here + 16));
    assert_eq!(q.parse_response(&at_end), Err(ResponseError::BadPointer));
    // Half a pointer at the end of the message.
    let m = base.clone().raw(&[0xc0]).0;
    assert_eq!(q.parse_response(&m), Err(ResponseError::Truncated));
    // Reserved label types.
    for t in [0x40u8, 0x80] {
        assert_eq!(
            q.parse_response(&with_owner(&[t, 0])),
            Err(ResponseError::BadName)
        );
    }
    // Longer than 255 bytes without any pointer.
    let long = [[63u8; 1].as_slice(), &[b'a'; 63]].concat().repeat(5);
    assert_eq!(
        q.parse_response(&with_owner(&[long.as_slice(), &[0]].concat())),
        Err(ResponseError::BadName)
    );
    // A CNAME target with a pointer loop.
    let m = base.clone().rr(&PTR_Q, CNAME, &ptr(here + 12));
    assert_eq!(q.parse_response(&m.0), Err(ResponseError::BadPointer));
}

const QEMU: &str = "\
# Generated by the guest image builder
nameserver 10.0.2.3
search corp.example
";

fn ns(s: &str) -> SocketAddr {
    SocketAddr::new(s.parse().unwrap(), 53)
}

#[test]
fn resolv_conf_defaults_and_basics() {
    assert_eq!(
        ResolvConf::default(),
        ResolvConf {
            nameservers: vec![],
            search: vec![],
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    );
    assert_eq!(ResolvConf::parse(""), ResolvConf::default());
    assert_eq!(
        ResolvConf::parse("# nothing\n; here\n\n"),
        ResolvConf::default()
    );
    let c = ResolvConf::parse(QEMU);
    assert_eq!(c.nameservers, [ns("10.0.2.3")]);
    assert_eq!(c.search, ["corp.example"]);
    assert_eq!((c.ndots, c.timeout, c.attempts), (1, DEFAULT_TIMEOUT, 2));
}

#[test]
fn resolv_conf_nameservers() {
    let c = ResolvConf::parse(
        "nameserver 10.0.0.1\n\
         nameserver\tfd00::53   # v6\r\n\
         nameserver fe80::1%eth0\n\
         nameserver 10.0.0.1:5353\n\
         nameserver [fd00::1]\n\
         nameserver dns.example\n\
         nameserver 10.1\n\
         nameserver\n\
         Nameserver 10.9.9.9\n\
         nameserver10.9.9.9\n\
           nameserver 10.0.0.3 extra words\n\
         nameserver 10.0.0.4\n",
    );
    assert_eq!(
        c.nameservers,
        [ns("10.0.0.1"), ns("fd00::53"), ns("10.0.0.3")]
    );
}

#[test]
fn resolv_conf_search() {
    let c = ResolvConf::parse("search a.example B.Example. bad..x c_d -e\n");
    assert_eq!(c.search, ["a.example", "b.example", "c_d", "-e"]);
    // The last `search` or `domain` line wins; an empty one changes nothing.
    let c = ResolvConf::parse("search a.example b.example\ndomain corp.example\n");
    assert_eq!(c.search, ["corp.example"]);
    let c = ResolvConf::parse("domain corp.example\nsearch a.example\nsearch\n");
    assert_eq!(c.search, ["a.example"]);
    let c = ResolvConf::parse("domain corp.example other.example\n");
    assert_eq!(c.search, ["corp.example"]);
    let c = ResolvConf::parse("search a.example\ndomain bad..domain\n");
    assert!(c.search.is_empty());
    let c = ResolvConf::parse("search a b c d e f g h # comment\n");
    assert_eq!(c.search, ["a", "b", "c", "d", "e", "f"]);
    let c = ResolvConf::parse("search .\n");
    assert!(c.search.is_empty());
}

#[test]
fn resolv_conf_options() {
    let c = ResolvConf::parse("options ndots:3 timeout:2 attempts:4 rotate edns0\n");
    assert_eq!(
        (c.ndots, c.timeout, c.attempts),
        (3, Duration::from_secs(2), 4)
    );
    // Several lines accumulate; the last value wins.
    let c = ResolvConf::parse("options ndots:2\noptions attempts:1\noptions ndots:0\n");
    assert_eq!((c.ndots, c.attempts), (0, 1));
    // Clamped like glibc (timeout and attempts at least 1 here).
    let c = ResolvConf::parse("options ndots:99 timeout:99999999999999999999999 attempts:9\n");
    assert_eq!(
        (c.ndots, c.timeout, c.attempts),
        (15, Duration::from_secs(30), 5)
    );
    let c = ResolvConf::parse("options timeout:0 attempts:0\n");
    assert_eq!((c.timeout, c.attempts), (Duration::from_secs(1), 1));
    // Not numbers, not options: ignored.
    let c = ResolvConf::parse(
        "options ndots:x timeout: attempts:-1 ndots:+2 ndots timeout:3s\nopt ndots:4\n",
    );
    assert_eq!(
        (c.ndots, c.timeout, c.attempts),
        (1, DEFAULT_TIMEOUT, DEFAULT_ATTEMPTS)
    );
}

#[test]
fn search_names_follow_ndots() {
    let c = ResolvConf {
        search: vec!["corp.example".into(), "svc.example".into()],
        ..ResolvConf::default()
    };
    // Fewer dots than ndots (1): the search list first.
    assert_eq!(
        c.search_names("KBS"),
        ["kbs.corp.example", "kbs.svc.example", "kbs"]
    );
    // Enough dots: as is first.
    assert_eq!(
        c.search_names("kbs.internal"),
        [
            "kbs.internal",
            "kbs.internal.corp.example",
            "kbs.internal.svc.example"
        ]
    );
    // Absolute: as is, only.
    assert_eq!(c.search_names("kbs."), ["kbs"]);
    assert_eq!(c.search_names("kbs.internal."), ["kbs.internal"]);
    // ndots 0: always as is first; ndots 3: two dots are not enough.
    let c0 = ResolvConf {
        ndots: 0,
        ..c.clone()
    };
    assert_eq!(c0.search_names("kbs")[0], "kbs");
    let c3 = ResolvConf {
        ndots: 3,
        ..c.clone()
    };
    assert_eq!(c3.search_names("a.b.c")[2], "a.b.c");
    assert_eq!(c3.search_names("a.b.c.d")[0], "a.b.c.d");
    // No search list.
    assert_eq!(ResolvConf::default().search_names("kbs"), ["kbs"]);
    // Invalid names give nothing; too long combinations are left out; no duplicates.
    assert!(c.search_names("").is_empty());
    assert!(c.search_names(".").is_empty());
    assert!(c.search_names("a..b").is_empty());
    let long = alloc::format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(59)
    );
    assert_eq!(c.search_names(&long), [long]);
    let dup = ResolvConf {
        search: vec!["x".into(), "x".into()],
        ..ResolvConf::default()
    };
    assert_eq!(dup.search_names("kbs"), ["kbs.x", "kbs"]);
}

/// SplitMix64: a small deterministic generator for the fuzz tests.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }
}

/// Parses `msg`, checks what an accepted answer may contain, and counts the outcome.
fn check_no_panic(q: &Query, msg: &[u8], seen: &mut std::collections::BTreeMap<String, usize>) {
    let result = q.parse_response(msg);
    if let Ok(Reply::Addresses(a)) = &result {
        assert!(a.len() <= MAX_ANSWER_RECORDS);
        let v4 = q.record_type() == RecordType::A;
        assert!(a.iter().all(|ip| ip.is_ipv4() == v4));
    }
    let key = match result {
        Ok(Reply::Addresses(a)) if a.is_empty() => "Ok NoData".into(),
        Ok(Reply::Addresses(_)) => "Ok Addresses".into(),
        Ok(Reply::ServerFailure(_)) => "Ok ServerFailure".into(),
        Ok(other) => alloc::format!("Ok {other:?}"),
        Err(e) => alloc::format!("Err {e:?}"),
    };
    *seen.entry(key).or_default() += 1;
}

#[test]
fn fuzz_parser_with_random_and_mutated_messages() {
    let mut rng = Prng(0x5ea1_6a7e);
    let (qa, q6) = (query_a(), query_aaaa());
    let ip6: Ipv6Addr = "fd00::1".parse().unwrap();
    let seeds: Vec<(Vec<u8>, &Query)> = vec![
        (cname_chain_response(), &qa),
        (chain_of(3), &qa),
        (
            Msg::answer(OK, "kbs.example", AAAA, 2)
                .rr(&PTR_Q, AAAA, &ip6.octets())
                .rr(&wire("kbs.example"), AAAA, &[0; 16])
                .0,
            &q6,
        ),
        (Msg::answer(0x8183, "kbs.example", A, 0).0, &qa),
        (Msg::answer(0x8380, "kbs.example", A, 0).0, &qa),
        (Msg::new(ID, 0x8182, 0, 0).0, &qa),
    ];
    for (seed, q) in &seeds {
        assert!(q.parse_response(seed).is_ok());
    }

    let mut seen = std::collections::BTreeMap::new();
    // Pure noise, half of it behind a plausible header so the parser gets further.
    for _ in 0..20_000 {
        let len = rng.below(300);
        let mut msg: Vec<u8> = (0..len).map(|_| rng.byte()).collect();
        if rng.below(2) == 0 && msg.len() >= 12 {
            msg[..4].copy_from_slice(&[0xbe, 0xef, 0x81, 0x80]);
            msg[4..6].copy_from_slice(&[0, 1]);
        }
        check_no_panic(&qa, &msg, &mut seen);
        check_no_panic(&q6, &msg, &mut seen);
    }

    // Mutations of valid answers.
    for _ in 0..60_000 {
        let (seed, q) = &seeds[rng.below(seeds.len())];
        let mut msg = seed.clone();
        for _ in 0..1 + rng.below(4) {
            if msg.is_empty() {
                break;
            }
            let at = rng.below(msg.len());
            match rng.below(7) {
                0 => msg[at] ^= 1 << rng.below(8),
                1 => msg[at] = rng.byte(),
                2 => msg.truncate(at),
                3 => {
                    // A random compression pointer.
                    msg[at] = 0xc0 | (rng.byte() & 0x3f);
                    if at + 1 < msg.len() {
                        msg[at + 1] = rng.byte();
                    }
                }
                4 => {
                    // A pointer to somewhere in the message.
                    let to = rng.below(msg.len());
                    msg[at] = 0xc0 | (to >> 8) as u8;
                    if at + 1 < msg.len() {
                        msg[at + 1] = to as u8;
                    }
                }
                5 => {
                    let extra: Vec<u8> = (0..1 + rng.below(8)).map(|_| rng.byte()).collect();
                    msg.splice(at..at, extra);
                }
                _ => {
                    // Counts: the four 16-bit fields after the flags.
                    let field = 4 + 2 * rng.below(4);
                    if field + 1 < msg.len() {
                        msg[field] = rng.byte();
                        msg[field + 1] = rng.byte();
                    }
                }
            }
        }
        check_no_panic(q, &msg, &mut seen);
    }
    // The mutations reach every outcome, so the deep paths were exercised.
    for outcome in [
        "Ok Addresses",
        "Ok NoData",
        "Ok NxDomain",
        "Ok Truncated",
        "Ok ServerFailure",
        "Err TooShort",
        "Err NotResponse",
        "Err IdMismatch",
        "Err BadOpcode",
        "Err QuestionMismatch",
        "Err Truncated",
        "Err BadName",
        "Err BadPointer",
        "Err BadRecord",
        "Err CnameChain",
    ] {
        assert!(seen.contains_key(outcome), "{outcome} never seen: {seen:?}");
    }
}

#[test]
fn fuzz_resolv_conf() {
    let mut rng = Prng(42);
    let words = [
        "nameserver",
        "search",
        "domain",
        "options",
        "ndots:",
        "timeout:",
        "attempts:",
        "10.0.2.3",
        "::1",
        "fe80::1%lo",
        "a.example",
        "#",
        ";",
        " ",
        "\t",
        "\n",
        "\r\n",
        ":",
        ".",
        "..",
        "99999999999999999999",
        "0",
        "5",
        "\u{e9}",
        "\0",
    ];
    for _ in 0..5_000 {
        let mut text = String::new();
        for _ in 0..rng.below(40) {
            text.push_str(words[rng.below(words.len())]);
            if rng.below(3) == 0 {
                text.push(' ');
            }
        }
        let c = ResolvConf::parse(&text);
        assert!(c.nameservers.len() <= MAX_NAMESERVERS);
        assert!(c.search.len() <= MAX_SEARCH_DOMAINS);
        assert!(c.ndots <= MAX_NDOTS);
        assert!((1..=MAX_ATTEMPTS).contains(&c.attempts));
        assert!(c.timeout >= Duration::from_secs(1));
        assert!(c.timeout <= Duration::from_secs(MAX_TIMEOUT_SECS));
        for name in c.search_names(&text) {
            assert!(Query::new(1, &name, RecordType::A).is_ok());
        }
    }
}
