//! The `/dev/tsm_sim` wire format (the C side is `qemu/tsm_sim/tsm_sim.h`): a 96-byte request
//! read from the device, answered by one `write()` of a 32-byte header and the blobs.

/// `TSM_SIM_REQ_MAGIC`.
pub const REQ_MAGIC: u32 = 0x5153_4d54;
/// `TSM_SIM_RESP_MAGIC`.
pub const RESP_MAGIC: u32 = 0x5253_4d54;
/// `TSM_SIM_VERSION`.
pub const VERSION: u32 = 1;
/// `TSM_SIM_REQ_LEN`.
pub const REQ_LEN: usize = 96;
/// `TSM_SIM_RESP_LEN`.
pub const RESP_LEN: usize = 32;
/// `TSM_SIM_OUTBLOB_MAX`.
pub const OUTBLOB_MAX: usize = 32 * 1024;
/// `TSM_SIM_AUXBLOB_MAX`.
pub const AUXBLOB_MAX: usize = 16 * 1024;

/// What the kernel asks for (`enum tsm_sim_kind`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An SEV-SNP report (outblob) and certificate table (auxblob).
    SnpReport,
    /// A TDX quote (outblob) carrying the current registers.
    TdxQuote,
    /// A 1024-byte TDREPORT (outblob; TDG.MR.REPORT), for `/dev/tdx_guest` and the sysfs
    /// measurement files.
    TdxReport,
    /// Extend RTMR `privlevel` (0..=3) by `inblob[..48]` (TDG.MR.RTMR.EXTEND); outblob =
    /// the new value.
    TdxExtend,
}

/// Which kernel interface the request came through (informational).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `/sys/kernel/config/tsm/report`.
    ConfigfsTsm,
    /// `/dev/sev-guest`.
    SevGuestIoctl,
    /// The `tdx_guest` device: its ioctl or its sysfs `measurements/` files.
    TdxGuest,
}

/// One request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Echoed in the response.
    pub id: u64,
    /// What to produce.
    pub kind: Kind,
    /// SNP VMPL asked for; for [`Kind::TdxExtend`] the RTMR index.
    pub privlevel: u32,
    /// Where it came from.
    pub source: Source,
    /// REPORT_DATA.
    pub inblob: [u8; 64],
}

/// Why a request could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError(pub String);

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

impl Request {
    /// Decodes what `read()` returned.
    pub fn decode(b: &[u8]) -> Result<Request, DecodeError> {
        if b.len() != REQ_LEN {
            return Err(DecodeError(format!(
                "request is {} bytes, not {REQ_LEN}",
                b.len()
            )));
        }
        if u32_at(b, 0) != REQ_MAGIC || u32_at(b, 4) != VERSION {
            return Err(DecodeError(format!(
                "bad magic/version {:#x}/{}",
                u32_at(b, 0),
                u32_at(b, 4)
            )));
        }
        let kind = match u32_at(b, 16) {
            1 => Kind::SnpReport,
            2 => Kind::TdxQuote,
            3 => Kind::TdxReport,
            4 => Kind::TdxExtend,
            k => return Err(DecodeError(format!("unknown kind {k}"))),
        };
        let source = match u32_at(b, 24) {
            0 => Source::ConfigfsTsm,
            1 => Source::SevGuestIoctl,
            2 => Source::TdxGuest,
            s => return Err(DecodeError(format!("unknown source {s}"))),
        };
        Ok(Request {
            id: u64::from_le_bytes(b[8..16].try_into().expect("8 bytes")),
            kind,
            privlevel: u32_at(b, 20),
            source,
            inblob: b[32..96].try_into().expect("64 bytes"),
        })
    }

    /// Encodes a request as the kernel does (for tests).
    #[cfg(test)]
    pub fn encode(&self) -> [u8; REQ_LEN] {
        let mut b = [0u8; REQ_LEN];
        b[0..4].copy_from_slice(&REQ_MAGIC.to_le_bytes());
        b[4..8].copy_from_slice(&VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&self.id.to_le_bytes());
        let kind: u32 = match self.kind {
            Kind::SnpReport => 1,
            Kind::TdxQuote => 2,
            Kind::TdxReport => 3,
            Kind::TdxExtend => 4,
        };
        b[16..20].copy_from_slice(&kind.to_le_bytes());
        b[20..24].copy_from_slice(&self.privlevel.to_le_bytes());
        let source: u32 = match self.source {
            Source::ConfigfsTsm => 0,
            Source::SevGuestIoctl => 1,
            Source::TdxGuest => 2,
        };
        b[24..28].copy_from_slice(&source.to_le_bytes());
        b[32..96].copy_from_slice(&self.inblob);
        b
    }
}

/// The answer to request `id`: blobs, or a positive errno for the requester.
pub fn encode_response(id: u64, result: Result<(&[u8], &[u8]), u32>) -> Vec<u8> {
    let (status, out, aux) = match result {
        Ok((out, aux)) => (0, out, aux),
        Err(errno) => (errno, &[][..], &[][..]),
    };
    let mut b = Vec::with_capacity(RESP_LEN + out.len() + aux.len());
    b.extend_from_slice(&RESP_MAGIC.to_le_bytes());
    b.extend_from_slice(&VERSION.to_le_bytes());
    b.extend_from_slice(&id.to_le_bytes());
    b.extend_from_slice(&status.to_le_bytes());
    b.extend_from_slice(&(out.len() as u32).to_le_bytes());
    b.extend_from_slice(&(aux.len() as u32).to_le_bytes());
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(out);
    b.extend_from_slice(aux);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_layout_matches_the_c_header() {
        let req = Request {
            id: 0x0102_0304_0506_0708,
            kind: Kind::TdxQuote,
            privlevel: 3,
            source: Source::SevGuestIoctl,
            inblob: [0xab; 64],
        };
        let b = req.encode();
        // "TMSQ" in memory order, as the kernel writes TSM_SIM_REQ_MAGIC little-endian.
        assert_eq!(&b[0..4], b"TMSQ");
        assert_eq!(&b[8..16], &[8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(b[16], 2);
        assert_eq!(b[20], 3);
        assert_eq!(b[24], 1);
        assert_eq!(&b[28..32], &[0; 4]);
        assert_eq!(Request::decode(&b), Ok(req));
    }

    #[test]
    fn tdx_report_and_extend_requests_decode() {
        for (kind, code) in [(Kind::TdxReport, 3u8), (Kind::TdxExtend, 4)] {
            let req = Request {
                id: 9,
                kind,
                privlevel: 3,
                source: Source::TdxGuest,
                inblob: [0x5a; 64],
            };
            let b = req.encode();
            assert_eq!((b[16], b[20], b[24]), (code, 3, 2));
            assert_eq!(Request::decode(&b), Ok(req));
        }
    }

    #[test]
    fn rejects_bad_requests() {
        let good = Request {
            id: 1,
            kind: Kind::SnpReport,
            privlevel: 0,
            source: Source::ConfigfsTsm,
            inblob: [0; 64],
        }
        .encode();
        assert!(Request::decode(&good[..95]).is_err());
        let mut b = good;
        b[0] ^= 1;
        assert!(Request::decode(&b).is_err());
        let mut b = good;
        b[16] = 9;
        assert!(Request::decode(&b).is_err());
    }

    #[test]
    fn response_layout_matches_the_c_header() {
        let r = encode_response(7, Ok((b"report", b"certs")));
        assert_eq!(&r[0..4], b"TMSR");
        assert_eq!(u32_at(&r, 4), VERSION);
        assert_eq!(&r[8..16], &7u64.to_le_bytes());
        assert_eq!((u32_at(&r, 16), u32_at(&r, 20), u32_at(&r, 24)), (0, 6, 5));
        assert_eq!(&r[RESP_LEN..], b"reportcerts");
        let e = encode_response(8, Err(5));
        assert_eq!((e.len(), u32_at(&e, 16), u32_at(&e, 20)), (RESP_LEN, 5, 0));
    }
}
