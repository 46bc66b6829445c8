//! The resolver against fake DNS servers on loopback (UDP and TCP on an ephemeral port,
//! given to the resolver as a [`ResolvConf`] since the file syntax has no port).

use super::*;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// One query as a fake server received it.
#[derive(Clone, Debug)]
pub(crate) struct Asked {
    pub msg: Vec<u8>,
    pub from: SocketAddr,
    pub tcp: bool,
}

impl Asked {
    pub fn id(&self) -> u16 {
        u16::from_be_bytes([self.msg[0], self.msg[1]])
    }

    /// The question name, dotted (our queries are never compressed).
    pub fn name(&self) -> String {
        let mut labels = Vec::new();
        let mut pos = 12;
        while self.msg[pos] != 0 {
            let len = usize::from(self.msg[pos]);
            labels.push(String::from_utf8_lossy(&self.msg[pos + 1..pos + 1 + len]).into_owned());
            pos += 1 + len;
        }
        labels.join(".")
    }

    pub fn qtype(&self) -> RecordType {
        match &self.msg[self.msg.len() - 4..self.msg.len() - 2] {
            [0, 1] => RecordType::A,
            [0, 28] => RecordType::Aaaa,
            other => panic!("qtype {other:?}"),
        }
    }
}

type Respond = dyn Fn(&Asked) -> Vec<Vec<u8>> + Send + Sync;

/// A DNS server on 127.0.0.1 (UDP and TCP, same port) in two threads. `respond` gives
/// the messages to send back to each query (none: silence; over TCP: close).
pub(crate) struct FakeDns {
    pub addr: SocketAddr,
    asked: Arc<Mutex<Vec<Asked>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl FakeDns {
    pub fn start(respond: impl Fn(&Asked) -> Vec<Vec<u8>> + Send + Sync + 'static) -> FakeDns {
        let (udp, tcp) = (0..50)
            .find_map(|_| {
                let udp = UdpSocket::bind("127.0.0.1:0").ok()?;
                let tcp = TcpListener::bind(udp.local_addr().ok()?).ok()?;
                Some((udp, tcp))
            })
            .expect("no port free for both UDP and TCP");
        let addr = udp.local_addr().unwrap();
        let respond: Arc<Respond> = Arc::new(respond);
        let asked = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));

        udp.set_read_timeout(Some(Duration::from_millis(10)))
            .unwrap();
        let udp_thread = {
            let (respond, asked, stop) = (respond.clone(), asked.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = [0u8; 1024];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, from)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    let q = Asked {
                        msg: buf[..n].to_vec(),
                        from,
                        tcp: false,
                    };
                    asked.lock().unwrap().push(q.clone());
                    for reply in respond(&q) {
                        udp.send_to(&reply, from).unwrap();
                    }
                }
            })
        };

        tcp.set_nonblocking(true).unwrap();
        let tcp_thread = {
            let (respond, asked, stop) = (respond, asked.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut s, from)) = tcp.accept() else {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).is_err() {
                        continue;
                    }
                    let mut msg = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut msg).is_err() {
                        continue;
                    }
                    let q = Asked {
                        msg,
                        from,
                        tcp: true,
                    };
                    asked.lock().unwrap().push(q.clone());
                    for reply in respond(&q) {
                        s.write_all(&(reply.len() as u16).to_be_bytes()).unwrap();
                        s.write_all(&reply).unwrap();
                    }
                }
            })
        };
        FakeDns {
            addr,
            asked,
            stop,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    /// The queries received so far, in order.
    pub fn asked(&self) -> Vec<Asked> {
        self.asked.lock().unwrap().clone()
    }

    /// (name, type, over TCP) of each query received.
    fn log(&self) -> Vec<(String, RecordType, bool)> {
        self.asked()
            .iter()
            .map(|q| (q.name(), q.qtype(), q.tcp))
            .collect()
    }
}

impl Drop for FakeDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
    }
}

/// An answer to `q` with `flags` (QR, RD, RA and the RCODE) and these records, each owned
/// by the question name (a compression pointer to it).
pub(crate) fn reply(q: &Asked, flags: u16, records: &[(u16, Vec<u8>)]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&q.msg[..2]);
    m.extend_from_slice(&flags.to_be_bytes());
    m.extend_from_slice(&[0, 1]);
    m.extend_from_slice(&(records.len() as u16).to_be_bytes());
    m.extend_from_slice(&[0, 0, 0, 0]);
    m.extend_from_slice(&q.msg[12..]);
    for (rtype, rdata) in records {
        m.extend_from_slice(&[0xc0, 0x0c]);
        m.extend_from_slice(&rtype.to_be_bytes());
        m.extend_from_slice(&[0, 1, 0, 0, 0, 60]);
        m.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        m.extend_from_slice(rdata);
    }
    m
}

/// NOERROR with those of `ips` that match the question's type.
pub(crate) fn answer(q: &Asked, ips: &[&str]) -> Vec<u8> {
    let records: Vec<(u16, Vec<u8>)> = ips
        .iter()
        .map(|s| s.parse::<IpAddr>().unwrap())
        .filter_map(|ip| match (ip, q.qtype()) {
            (IpAddr::V4(v4), RecordType::A) => Some((1, v4.octets().to_vec())),
            (IpAddr::V6(v6), RecordType::Aaaa) => Some((28, v6.octets().to_vec())),
            _ => None,
        })
        .collect();
    reply(q, 0x8180, &records)
}

/// An answer with this RCODE and no record.
pub(crate) fn rcode(q: &Asked, rcode: u16) -> Vec<u8> {
    reply(q, 0x8180 | rcode, &[])
}

const NXDOMAIN: u16 = 3;
const SERVFAIL: u16 = 2;
const REFUSED: u16 = 5;

/// Settings for tests that must not time out, even on a loaded machine.
pub(crate) fn conf(servers: &[&FakeDns]) -> ResolvConf {
    ResolvConf {
        nameservers: servers.iter().map(|s| s.addr).collect(),
        timeout: Duration::from_secs(5),
        ..ResolvConf::default()
    }
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|s| s.parse().unwrap()).collect()
}

#[test]
fn a_then_aaaa_ipv4_first() {
    let dns = FakeDns::start(|q| {
        vec![answer(
            q,
            &["fd00::1", "10.1.1.1", "10.1.1.2", "fd00::2", "10.1.1.1"],
        )]
    });
    assert_eq!(
        lookup("kbs.test", &conf(&[&dns])),
        Ok(ips(&["10.1.1.1", "10.1.1.2", "fd00::1", "fd00::2"]))
    );
    let asked = dns.asked();
    assert_eq!(
        dns.log(),
        [
            ("kbs.test".into(), RecordType::A, false),
            ("kbs.test".into(), RecordType::Aaaa, false)
        ]
    );
    // Recursion desired, one question, nothing else.
    assert!(
        asked
            .iter()
            .all(|q| q.msg[2..12] == [1, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    );
}

#[test]
fn nxdomain_ends_the_name_without_aaaa() {
    let dns = FakeDns::start(|q| vec![rcode(q, NXDOMAIN)]);
    assert_eq!(
        lookup("kbs.test", &conf(&[&dns])),
        Err(format!("no address found (NXDOMAIN from {})", dns.addr))
    );
    assert_eq!(dns.asked().len(), 1);
}

#[test]
fn no_records_of_either_type() {
    let dns = FakeDns::start(|q| vec![answer(q, &[])]);
    assert_eq!(
        lookup("kbs.test", &conf(&[&dns])),
        Err(format!(
            "no address found (no A or AAAA record from {})",
            dns.addr
        ))
    );
    // Only IPv6 there.
    let dns6 = FakeDns::start(|q| vec![answer(q, &["fd00::7"])]);
    assert_eq!(lookup("kbs.test", &conf(&[&dns6])), Ok(ips(&["fd00::7"])));
}

#[test]
fn servfail_then_the_second_server_answers() {
    let bad = FakeDns::start(|q| vec![rcode(q, SERVFAIL)]);
    let good = FakeDns::start(|q| vec![answer(q, &["10.2.2.2"])]);
    assert_eq!(
        lookup("kbs.test", &conf(&[&bad, &good])),
        Ok(ips(&["10.2.2.2"]))
    );
    // Each question went to the first server once, then to the second.
    assert_eq!(bad.asked().len(), 2);
    assert_eq!(good.asked().len(), 2);
}

#[test]
fn every_server_fails() {
    let s1 = FakeDns::start(|q| vec![rcode(q, SERVFAIL)]);
    let s2 = FakeDns::start(|q| vec![rcode(q, REFUSED)]);
    let c = ResolvConf {
        attempts: 3,
        ..conf(&[&s1, &s2])
    };
    assert_eq!(
        lookup("kbs.test", &c),
        Err(format!(
            "no address found (SERVFAIL from {}, REFUSED from {})",
            s1.addr, s2.addr
        ))
    );
    // A server that answered with an error is not asked again in later rounds.
    assert_eq!(s1.asked().len(), 2);
    assert_eq!(s2.asked().len(), 2);
}

#[test]
fn truncated_answer_is_asked_again_over_tcp() {
    let many: Vec<String> = (1..=40).map(|i| format!("10.5.0.{i}")).collect();
    let dns = FakeDns::start(move |q| {
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        match (q.tcp, q.qtype()) {
            (false, RecordType::A) => vec![reply(q, 0x8380, &[])], // TC
            (true, _) => vec![answer(q, &refs)],
            (false, RecordType::Aaaa) => vec![answer(q, &[])],
        }
    });
    let got = lookup("kbs.test", &conf(&[&dns])).unwrap();
    assert_eq!(got.len(), 40);
    assert_eq!(got[39], "10.5.0.40".parse::<IpAddr>().unwrap());
    let asked = dns.asked();
    assert_eq!(
        dns.log(),
        [
            ("kbs.test".into(), RecordType::A, false),
            ("kbs.test".into(), RecordType::A, true),
            ("kbs.test".into(), RecordType::Aaaa, false),
        ]
    );
    // The same query: same ID.
    assert_eq!(asked[0].msg, asked[1].msg);
}

#[test]
fn tcp_closed_without_answer() {
    let dns = FakeDns::start(|q| {
        if q.tcp {
            vec![]
        } else {
            vec![reply(q, 0x8380, &[])]
        }
    });
    assert_eq!(
        lookup("kbs.test", &conf(&[&dns])),
        Err(format!(
            "no address found ({} closed the TCP connection before answering)",
            dns.addr
        ))
    );
}

#[test]
fn unrelated_datagrams_are_ignored() {
    let dns = FakeDns::start(|q| {
        if q.qtype() == RecordType::Aaaa {
            return vec![answer(q, &[])];
        }
        // A perfect forgery, but from another port: the connected socket drops it.
        let other = UdpSocket::bind("127.0.0.1:0").unwrap();
        other.send_to(&answer(q, &["6.6.6.1"]), q.from).unwrap();
        thread::sleep(Duration::from_millis(20));
        let mut wrong_id = answer(q, &["6.6.6.2"]);
        wrong_id[1] ^= 1;
        let mut not_a_response = answer(q, &["6.6.6.3"]);
        not_a_response[2] &= 0x7f;
        let mut other_question = answer(q, &["6.6.6.4"]);
        other_question[13] ^= 0x20; // upper case: still the same name...
        other_question[14] = b'x'; // ...but this is another one
        vec![
            wrong_id,
            not_a_response,
            other_question,
            vec![0xff; 3],
            answer(q, &["10.3.3.3"]),
        ]
    });
    assert_eq!(lookup("kbs.test", &conf(&[&dns])), Ok(ips(&["10.3.3.3"])));
    assert_eq!(dns.asked().len(), 2);
}

#[test]
fn silence_times_out_without_trying_the_search_list() {
    let dns = FakeDns::start(|_| vec![]);
    let c = ResolvConf {
        search: vec!["a.test".into(), "b.test".into()],
        timeout: Duration::from_millis(100),
        attempts: 2,
        ..conf(&[&dns])
    };
    let start = Instant::now();
    assert_eq!(
        lookup("kbs", &c),
        Err(format!("timed out asking {}", dns.addr))
    );
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(
        dns.log(),
        [
            ("kbs.a.test".into(), RecordType::A, false),
            ("kbs.a.test".into(), RecordType::A, false)
        ]
    );
}

#[test]
fn fresh_id_and_source_port_for_every_transmission() {
    let count = Arc::new(Mutex::new(0));
    let dns = {
        let count = count.clone();
        FakeDns::start(move |q| {
            let mut n = count.lock().unwrap();
            *n += 1;
            if *n < 5 {
                vec![] // silent: the client asks again
            } else {
                vec![answer(q, &["10.6.6.6"])]
            }
        })
    };
    let c = ResolvConf {
        timeout: Duration::from_millis(50),
        attempts: 5,
        ..conf(&[&dns])
    };
    assert_eq!(lookup("kbs.test", &c), Ok(ips(&["10.6.6.6"])));
    let asked = dns.asked();
    assert_eq!(asked.len(), 6); // 5 for A, 1 for AAAA
    let ids: HashSet<u16> = asked.iter().map(Asked::id).collect();
    let ports: HashSet<u16> = asked.iter().map(|q| q.from.port()).collect();
    assert!(ids.len() > 1, "{ids:?}");
    assert!(ports.len() > 1, "{ports:?}");
}

#[test]
fn silent_first_server_then_the_second() {
    let silent = FakeDns::start(|_| vec![]);
    let good = FakeDns::start(|q| vec![answer(q, &["10.7.7.7", "fd00::7"])]);
    let c = ResolvConf {
        timeout: Duration::from_millis(100),
        ..conf(&[&silent, &good])
    };
    let start = Instant::now();
    assert_eq!(lookup("kbs.test", &c), Ok(ips(&["10.7.7.7", "fd00::7"])));
    assert!(start.elapsed() >= Duration::from_millis(200));
    assert_eq!(silent.asked().len(), 2);
}

#[test]
fn icmp_port_unreachable_fails_fast() {
    let addr = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = ResolvConf {
        nameservers: vec![addr],
        ..ResolvConf::default()
    };
    let start = Instant::now();
    let err = lookup("kbs.test", &c).unwrap_err();
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(
        err.starts_with(&format!(
            "no address found (error asking {addr}: Connection refused"
        )),
        "{err}"
    );
}

#[test]
fn malformed_answer_moves_on_to_the_next_server() {
    let bad = FakeDns::start(|q| vec![reply(q, 0x8180, &[(q.qtype().code(), vec![1; 5])])]);
    let good = FakeDns::start(|q| vec![answer(q, &["10.8.8.8"])]);
    assert_eq!(
        lookup("kbs.test", &conf(&[&bad, &good])),
        Ok(ips(&["10.8.8.8"]))
    );
    assert_eq!(
        lookup("kbs.test", &conf(&[&bad])),
        Err(format!(
            "no address found (bad answer from {}: record data of the wrong length in response)",
            bad.addr
        ))
    );
}

#[test]
fn search_list_in_order() {
    let dns = FakeDns::start(|q| match q.name().as_str() {
        "kbs.svc.test" => vec![answer(q, &["10.4.4.4"])],
        _ => vec![rcode(q, NXDOMAIN)],
    });
    let c = ResolvConf {
        search: vec!["corp.test".into(), "svc.test".into()],
        ..conf(&[&dns])
    };
    assert_eq!(lookup("KBS", &c), Ok(ips(&["10.4.4.4"])));
    assert_eq!(
        dns.log(),
        [
            ("kbs.corp.test".into(), RecordType::A, false),
            ("kbs.svc.test".into(), RecordType::A, false),
            ("kbs.svc.test".into(), RecordType::Aaaa, false),
        ]
    );
    // Nowhere: every name tried is in the message.
    let s = dns.addr;
    assert_eq!(
        lookup("nope", &c),
        Err(format!(
            "no address found (nope.corp.test: NXDOMAIN from {s}; \
             nope.svc.test: NXDOMAIN from {s}; nope: NXDOMAIN from {s})"
        ))
    );
    // An absolute name is asked as is only.
    assert!(lookup("nope.", &c).is_err());
    assert_eq!(dns.asked().last().unwrap().name(), "nope");
    assert_eq!(dns.asked().len(), 7);
}

#[test]
fn no_nameserver() {
    assert_eq!(
        lookup("kbs.test", &ResolvConf::default()),
        Err("no nameserver configured".to_string())
    );
}

#[test]
fn nameserver_shown_without_port_53() {
    let v4: SocketAddr = "10.0.2.3:53".parse().unwrap();
    let v6: SocketAddr = "[fd00::3]:53".parse().unwrap();
    let other: SocketAddr = "[fd00::3]:5353".parse().unwrap();
    assert_eq!(show(v4), "10.0.2.3");
    assert_eq!(show(v6), "fd00::3");
    assert_eq!(show(other), "[fd00::3]:5353");
    assert_eq!(
        Failure::Rcode(Rcode::NXDOMAIN).describe(v4),
        "NXDOMAIN from 10.0.2.3"
    );
    assert_eq!(Failure::Timeout.describe(v4), "timed out asking 10.0.2.3");
}

#[test]
fn the_run_deadline_cuts_a_silent_nameserver_short() {
    let dns = FakeDns::start(|_| vec![]);
    let c = ResolvConf {
        timeout: Duration::from_secs(30),
        attempts: 5,
        ..conf(&[&dns])
    };
    let start = Instant::now();
    let end = start + Duration::from_millis(300);
    assert_eq!(
        lookup_until("kbs.test", &c, Some(end)),
        Err(LookupError::Deadline(format!("asking {}", dns.addr)))
    );
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    // Without the deadline: 5 attempts of 30 s.
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(dns.log().len(), 1, "asked once, then the deadline");
}

#[test]
fn a_passed_run_deadline_asks_nobody() {
    let dns = FakeDns::start(|q| vec![answer(q, &["10.1.1.1"])]);
    let past = Instant::now();
    assert!(matches!(
        lookup_until("kbs.test", &conf(&[&dns]), Some(past)),
        Err(LookupError::Deadline(_))
    ));
    assert!(dns.asked().is_empty());
}
