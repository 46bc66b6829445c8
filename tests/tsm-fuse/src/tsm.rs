//! The configfs-tsm report model, independent of FUSE: report entries, their attributes,
//! the write/read generation protocol and the provider call. Mirrors the behaviour of Linux
//! `drivers/virt/coco/guest/report.c` (formerly `tsm.c`) as described in the crate docs.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustix::io::Errno;

use crate::{Provider, Report, ReportRequest, Stats};

/// `TSM_REPORT_INBLOB_MAX`.
pub(crate) const INBLOB_MAX: usize = 64;
/// `TSM_REPORT_OUTBLOB_MAX` (32 KiB), also the configfs limit of auxblob and manifestblob.
pub(crate) const OUTBLOB_MAX: usize = 32 * 1024;
/// `TSM_REPORT_PRIVLEVEL_MAX`.
pub(crate) const PRIVLEVEL_MAX: u32 = 3;
/// configfs copies at most `SIMPLE_ATTR_SIZE - 1` bytes of one write into a text attribute.
pub(crate) const TEXT_WRITE_MAX: usize = 4095;
/// `i_size` configfs reports for text attributes (bin attributes report 0).
pub(crate) const TEXT_ATTR_SIZE: u64 = 4096;

/// One attribute of a report entry, in the kernel's attribute order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Attribute {
    Generation,
    Provider,
    Privlevel,
    PrivlevelFloor,
    ServiceProvider,
    ServiceGuid,
    ServiceManifestVersion,
    Inblob,
    Outblob,
    Auxblob,
    Manifestblob,
}

impl Attribute {
    /// Every attribute, in listing order.
    pub(crate) const ALL: [Attribute; 11] = [
        Attribute::Generation,
        Attribute::Provider,
        Attribute::Privlevel,
        Attribute::PrivlevelFloor,
        Attribute::ServiceProvider,
        Attribute::ServiceGuid,
        Attribute::ServiceManifestVersion,
        Attribute::Inblob,
        Attribute::Outblob,
        Attribute::Auxblob,
        Attribute::Manifestblob,
    ];

    pub(crate) fn index(self) -> u64 {
        self as u64
    }

    pub(crate) fn from_index(i: u64) -> Option<Self> {
        usize::try_from(i)
            .ok()
            .and_then(|i| Self::ALL.get(i))
            .copied()
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Attribute::Generation => "generation",
            Attribute::Provider => "provider",
            Attribute::Privlevel => "privlevel",
            Attribute::PrivlevelFloor => "privlevel_floor",
            Attribute::ServiceProvider => "service_provider",
            Attribute::ServiceGuid => "service_guid",
            Attribute::ServiceManifestVersion => "service_manifest_version",
            Attribute::Inblob => "inblob",
            Attribute::Outblob => "outblob",
            Attribute::Auxblob => "auxblob",
            Attribute::Manifestblob => "manifestblob",
        }
    }

    pub(crate) fn from_name(name: &[u8]) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name().as_bytes() == name)
    }

    /// configfs *bin* attribute (buffered, committed on release) rather than a text one.
    pub(crate) fn is_bin(self) -> bool {
        matches!(
            self,
            Attribute::Inblob | Attribute::Outblob | Attribute::Auxblob | Attribute::Manifestblob
        )
    }

    /// Has a `store`/`write` method (`CONFIGFS_*ATTR_WO`, mode `S_IWUSR`).
    pub(crate) fn writable(self) -> bool {
        matches!(
            self,
            Attribute::Privlevel
                | Attribute::ServiceProvider
                | Attribute::ServiceGuid
                | Attribute::ServiceManifestVersion
                | Attribute::Inblob
        )
    }

    /// Has a `show`/`read` method (`CONFIGFS_*ATTR_RO`, mode `S_IRUGO`).
    pub(crate) fn readable(self) -> bool {
        !self.writable()
    }

    /// Permission bits as configfs shows them.
    pub(crate) fn perm(self) -> u32 {
        if self.writable() { 0o200 } else { 0o444 }
    }

    /// `cb_max_size` of a bin attribute.
    pub(crate) fn bin_max(self) -> usize {
        if self == Attribute::Inblob {
            INBLOB_MAX
        } else {
            OUTBLOB_MAX
        }
    }

    /// Which attributes a provider makes visible (`report_attr_visible` /
    /// `report_bin_attr_visible`); evaluated once, when the entry is created.
    fn visible_for(self, p: &dyn Provider) -> bool {
        match self {
            Attribute::Generation
            | Attribute::Provider
            | Attribute::Inblob
            | Attribute::Outblob => true,
            Attribute::Privlevel | Attribute::PrivlevelFloor => p.has_privlevel(),
            Attribute::Auxblob => p.has_auxblob(),
            Attribute::ServiceProvider
            | Attribute::ServiceGuid
            | Attribute::ServiceManifestVersion
            | Attribute::Manifestblob => p.has_service(),
        }
    }
}

/// State of one `report/<name>` instance (`struct tsm_report_state`).
pub(crate) struct Entry {
    pub(crate) name: Box<[u8]>,
    visible: u16,
    inblob: Vec<u8>,
    privlevel: u32,
    service_provider: Option<Vec<u8>>,
    service_guid: [u8; 16],
    service_manifest_version: u32,
    write_generation: u64,
    read_generation: u64,
    cached: Option<Report>,
    /// Creation time (seconds since the epoch), shown as atime/mtime/ctime.
    pub(crate) created: u64,
}

impl Entry {
    pub(crate) fn is_visible(&self, attr: Attribute) -> bool {
        self.visible & (1 << attr.index()) != 0
    }

    /// Visible attributes in listing order.
    pub(crate) fn attributes(&self) -> impl Iterator<Item = Attribute> + '_ {
        Attribute::ALL.into_iter().filter(|a| self.is_visible(*a))
    }

    /// `try_advance_write_generation()`: refuses to wrap onto `read_generation`.
    fn advance_write_generation(&mut self) -> Result<(), Errno> {
        if self.write_generation == self.read_generation.wrapping_sub(1) {
            return Err(Errno::BUSY);
        }
        self.write_generation = self.write_generation.wrapping_add(1);
        Ok(())
    }
}

/// The emulated `tsm/report` subsystem: registered provider plus all entries.
pub(crate) struct Tsm {
    provider: Option<Arc<dyn Provider>>,
    /// Entries by id; ids are never reused, so FUSE node ids derived from them are unique.
    entries: BTreeMap<u64, Entry>,
    next_id: u64,
    stats: Stats,
}

impl Tsm {
    pub(crate) fn new(provider: Option<Arc<dyn Provider>>) -> Self {
        Self {
            provider,
            entries: BTreeMap::new(),
            next_id: 1,
            stats: Stats::default(),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        Stats {
            live_entries: self.entries.len() as u64,
            ..self.stats
        }
    }

    /// `tsm_report_register()` / `tsm_report_unregister()`.
    pub(crate) fn set_provider(
        &mut self,
        provider: Option<Arc<dyn Provider>>,
    ) -> Result<(), Errno> {
        if provider.is_some() && (self.provider.is_some() || !self.entries.is_empty()) {
            return Err(Errno::BUSY);
        }
        self.provider = provider;
        Ok(())
    }

    /// The registered provider.
    pub(crate) fn provider(&self) -> Option<&Arc<dyn Provider>> {
        self.provider.as_ref()
    }

    pub(crate) fn entry(&self, id: u64) -> Option<&Entry> {
        self.entries.get(&id)
    }

    pub(crate) fn find(&self, name: &[u8]) -> Option<u64> {
        self.entries
            .iter()
            .find(|(_, e)| &*e.name == name)
            .map(|(id, _)| *id)
    }

    /// Entries in creation order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (u64, &Entry)> {
        self.entries.iter().map(|(id, e)| (*id, e))
    }

    /// `mkdir report/<name>` (`tsm_report_make_item`).
    pub(crate) fn mkdir(&mut self, name: &[u8], now: u64) -> Result<u64, Errno> {
        if self.find(name).is_some() {
            return Err(Errno::EXIST);
        }
        let provider = self.provider.as_deref().ok_or(Errno::NXIO)?;
        let visible = Attribute::ALL
            .into_iter()
            .filter(|a| a.visible_for(provider))
            .fold(0u16, |m, a| m | (1 << a.index()));
        let id = self.next_id;
        self.next_id += 1;
        self.entries.insert(
            id,
            Entry {
                name: name.into(),
                visible,
                inblob: Vec::new(),
                privlevel: 0,
                service_provider: None,
                service_guid: [0; 16],
                service_manifest_version: 0,
                write_generation: 0,
                read_generation: 0,
                cached: None,
                created: now,
            },
        );
        self.stats.entries_created += 1;
        Ok(id)
    }

    /// `rmdir report/<name>`: frees the entry whatever attribute files it has.
    pub(crate) fn rmdir(&mut self, name: &[u8]) -> Result<(), Errno> {
        let id = self.find(name).ok_or(Errno::NOENT)?;
        self.entries.remove(&id);
        self.stats.entries_removed += 1;
        Ok(())
    }

    fn entry_mut(&mut self, id: u64) -> Result<&mut Entry, Errno> {
        // configfs answers ENOENT once the item is gone (`frag_dead`).
        self.entries.get_mut(&id).ok_or(Errno::NOENT)
    }

    /// Fault injection: what a concurrent writer to the same entry does to the counter.
    pub(crate) fn bump_generation(&mut self, name: &[u8]) -> Result<u64, Errno> {
        let id = self.find(name).ok_or(Errno::NOENT)?;
        let e = self.entry_mut(id)?;
        e.advance_write_generation()?;
        Ok(e.write_generation)
    }

    /// `show()` of a readable text attribute: the whole text.
    pub(crate) fn show(&mut self, id: u64, attr: Attribute) -> Result<Vec<u8>, Errno> {
        let provider = self.provider.clone();
        let e = self.entry_mut(id)?;
        let text = match attr {
            Attribute::Generation => format!("{}\n", e.write_generation),
            Attribute::Provider => format!("{}\n", provider.ok_or(Errno::NXIO)?.name()),
            Attribute::PrivlevelFloor => {
                format!("{}\n", provider.ok_or(Errno::NXIO)?.privlevel_floor())
            }
            _ => return Err(Errno::IO),
        };
        Ok(text.into_bytes())
    }

    /// `store()` of a writable text attribute; `buf` is what one write(2) delivered
    /// (configfs hands the attribute a NUL-terminated copy). Returns the accepted length.
    pub(crate) fn store(&mut self, id: u64, attr: Attribute, buf: &[u8]) -> Result<usize, Errno> {
        let floor = self.provider.as_ref().map(|p| p.privlevel_floor());
        let e = self.entry_mut(id)?;
        match attr {
            Attribute::Privlevel => {
                let val = kstrtouint(buf)?;
                let floor = floor.ok_or(Errno::NXIO)?;
                if val < floor || val > PRIVLEVEL_MAX {
                    return Err(Errno::INVAL);
                }
                e.advance_write_generation()?;
                e.privlevel = val;
            }
            Attribute::ServiceProvider => {
                e.advance_write_generation()?;
                let mut sp = c_str(buf);
                if buf.last() == Some(&b'\n') && sp.len() == buf.len() {
                    sp = &sp[..sp.len() - 1];
                }
                e.service_provider = Some(sp.to_vec());
            }
            Attribute::ServiceGuid => {
                e.advance_write_generation()?;
                e.service_guid = [0; 16];
                e.service_guid = guid_parse(buf)?;
            }
            Attribute::ServiceManifestVersion => {
                let val = kstrtouint(buf)?;
                e.advance_write_generation()?;
                e.service_manifest_version = val;
            }
            _ => return Err(Errno::IO),
        }
        Ok(buf.len())
    }

    /// The bin attribute `write()` configfs runs when a file written to is released. Its
    /// result is ignored by configfs, so callers ignore it too.
    pub(crate) fn bin_write(&mut self, id: u64, attr: Attribute, buf: &[u8]) -> Result<(), Errno> {
        let e = self.entry_mut(id)?;
        if attr != Attribute::Inblob {
            return Err(Errno::IO);
        }
        e.advance_write_generation()?;
        e.inblob = buf.to_vec();
        self.stats.inblob_commits += 1;
        Ok(())
    }

    /// `tsm_report_read()`: the current blob of `attr`, regenerated through the provider if
    /// the configuration changed since the cached report was made.
    pub(crate) fn bin_read(&mut self, id: u64, attr: Attribute) -> Result<Vec<u8>, Errno> {
        let provider = self.provider.clone();
        let e = self.entries.get_mut(&id).ok_or(Errno::NOENT)?;
        if e.inblob.is_empty() {
            return Err(Errno::INVAL);
        }
        if e.cached.is_none() || e.read_generation != e.write_generation {
            let provider = provider.ok_or(Errno::NXIO)?;
            e.cached = None;
            let request = ReportRequest {
                inblob: &e.inblob,
                privlevel: e.privlevel,
                service_provider: e.service_provider.as_deref(),
                service_guid: e.service_guid,
                service_manifest_version: e.service_manifest_version,
                generation: e.write_generation,
            };
            match provider.report(&request) {
                Ok(report) => {
                    e.cached = Some(report);
                    e.read_generation = e.write_generation;
                    self.stats.reports_generated += 1;
                }
                Err(err) => {
                    self.stats.report_failures += 1;
                    let raw = err.raw_os_error();
                    return Err(if (1..4096).contains(&raw) {
                        err
                    } else {
                        Errno::IO
                    });
                }
            }
        }
        let Some(report) = e.cached.as_ref() else {
            return Err(Errno::IO);
        };
        let blob = match attr {
            Attribute::Outblob => Some(&report.outblob),
            Attribute::Auxblob => report.auxblob.as_ref(),
            Attribute::Manifestblob => report.manifestblob.as_ref(),
            _ => return Err(Errno::IO),
        };
        Ok(blob.cloned().unwrap_or_default())
    }
}

/// The C string configfs hands to an attribute: `buf` up to its first NUL.
fn c_str(buf: &[u8]) -> &[u8] {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    &buf[..end]
}

/// Linux `kstrtouint(s, 0, &val)`: optional `+`, base from the prefix (`0x` hex when a hex
/// digit follows, leading `0` octal, else decimal), at least one digit, then at most one
/// `\n` before the end of the string. Overflow is `ERANGE`, anything else malformed `EINVAL`.
pub(crate) fn kstrtouint(buf: &[u8]) -> Result<u32, Errno> {
    let mut s = c_str(buf);
    if let [b'+', rest @ ..] = s {
        s = rest;
    }
    let base: u64 = match s {
        [b'0', x, d, ..] if x.eq_ignore_ascii_case(&b'x') && d.is_ascii_hexdigit() => {
            s = &s[2..];
            16
        }
        [b'0', ..] => 8,
        _ => 10,
    };
    let mut value: u64 = 0;
    let mut overflow = false;
    let mut digits = 0;
    for &c in s {
        let Some(d) = (c as char).to_digit(16).map(u64::from) else {
            break;
        };
        if d >= base {
            break;
        }
        match value.checked_mul(base).and_then(|v| v.checked_add(d)) {
            Some(v) => value = v,
            None => overflow = true,
        }
        digits += 1;
    }
    if overflow {
        return Err(Errno::RANGE);
    }
    if digits == 0 {
        return Err(Errno::INVAL);
    }
    let tail = &s[digits..];
    if !(tail.is_empty() || tail == b"\n") {
        return Err(Errno::INVAL);
    }
    u32::try_from(value).map_err(|_| Errno::RANGE)
}

/// Linux `guid_parse()`: `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (anything may follow),
/// returned in `guid_t` byte order (first three fields little-endian).
pub(crate) fn guid_parse(buf: &[u8]) -> Result<[u8; 16], Errno> {
    let s = c_str(buf);
    if s.len() < 36 {
        return Err(Errno::INVAL);
    }
    for (i, c) in s[..36].iter().enumerate() {
        let ok = if matches!(i, 8 | 13 | 18 | 23) {
            *c == b'-'
        } else {
            c.is_ascii_hexdigit()
        };
        if !ok {
            return Err(Errno::INVAL);
        }
    }
    let hex: Vec<u8> = s[..36]
        .iter()
        .filter(|c| **c != b'-')
        .filter_map(|c| (*c as char).to_digit(16))
        .map(|d| d as u8)
        .collect();
    let mut text_order = [0u8; 16];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        text_order[i] = (pair[0] << 4) | pair[1];
    }
    let mut guid = text_order;
    guid[0..4].reverse();
    guid[4..6].reverse();
    guid[6..8].reverse();
    Ok(guid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kstrtouint_matches_kernel() {
        assert_eq!(kstrtouint(b"0"), Ok(0));
        assert_eq!(kstrtouint(b"3\n"), Ok(3));
        assert_eq!(kstrtouint(b"+2"), Ok(2));
        assert_eq!(kstrtouint(b"0x1f"), Ok(31));
        assert_eq!(kstrtouint(b"0X1F\n"), Ok(31));
        assert_eq!(kstrtouint(b"017"), Ok(15));
        assert_eq!(kstrtouint(b"1\0junk"), Ok(1));
        assert_eq!(kstrtouint(b"4294967295"), Ok(u32::MAX));
        assert_eq!(kstrtouint(b"4294967296"), Err(Errno::RANGE));
        assert_eq!(kstrtouint(b"99999999999999999999999"), Err(Errno::RANGE));
        for bad in [
            &b""[..],
            b"\n",
            b"-1",
            b" 1",
            b"1 ",
            b"1\n\n",
            b"08",
            b"0x",
            b"0xg",
            b"abc",
            b"++1",
            b"\x01",
        ] {
            assert_eq!(kstrtouint(bad), Err(Errno::INVAL), "{bad:?}");
        }
    }

    #[test]
    fn guid_parse_is_mixed_endian() {
        let g = guid_parse(b"63da758d-e664-4564-adc5-f4b93be8accd\n").unwrap();
        assert_eq!(
            g,
            [
                0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45, 0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8,
                0xac, 0xcd
            ]
        );
        assert_eq!(
            guid_parse(b"63da758d-e664-4564-adc5-f4b93be8acc"),
            Err(Errno::INVAL)
        );
        assert_eq!(
            guid_parse(b"63da758d_e664-4564-adc5-f4b93be8accd"),
            Err(Errno::INVAL)
        );
    }

    #[test]
    fn attribute_indices_round_trip() {
        for a in Attribute::ALL {
            assert_eq!(Attribute::from_index(a.index()), Some(a));
            assert_eq!(Attribute::from_name(a.name().as_bytes()), Some(a));
        }
        assert_eq!(Attribute::from_index(11), None);
    }

    #[test]
    fn generation_refuses_to_wrap() {
        let mut e = Entry {
            name: Box::new(*b"x"),
            visible: 0,
            inblob: Vec::new(),
            privlevel: 0,
            service_provider: None,
            service_guid: [0; 16],
            service_manifest_version: 0,
            write_generation: u64::MAX - 1,
            read_generation: 0,
            cached: None,
            created: 0,
        };
        assert_eq!(e.advance_write_generation(), Ok(()));
        assert_eq!(e.write_generation, u64::MAX);
        // One more would make write_generation == read_generation again.
        assert_eq!(e.advance_write_generation(), Err(Errno::BUSY));
        assert_eq!(e.write_generation, u64::MAX);
        e.read_generation = 2;
        assert_eq!(e.advance_write_generation(), Ok(()));
        assert_eq!(e.write_generation, 0);
        assert_eq!(e.advance_write_generation(), Ok(()));
        assert_eq!(e.advance_write_generation(), Err(Errno::BUSY));
    }
}
