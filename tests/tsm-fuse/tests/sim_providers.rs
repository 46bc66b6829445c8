//! End to end with real system calls: firmware-glue's configfs-tsm client (what the agent
//! runs) against the FUSE mount backed by the simulated SNP and TDX firmware, and what it gets
//! verified by the test KBS's verifiers. Needs root and `/dev/fuse`, like the other tests here.

use std::sync::Arc;

use firmware_glue::sim::DEFAULT_SEED;
use firmware_glue::sim::snp::{CertTableFault, SnpConfig, SnpSim};
use firmware_glue::sim::tdx::{TdxConfig, TdxSim};
use firmware_glue::snp::{self, SnpError};
use firmware_glue::tdx::{self, TdxError};
use firmware_glue::tsm::{Provider as TsmProvider, TsmClient, TsmError, TsmRequest};
use sha2::{Digest, Sha384};
use test_kbs::{Expected, SnpPolicy, SnpVerifier, TdxPolicy, TdxVerifier, Verifier};
use tsm_fuse::sim::{SnpProvider, TdxProvider};
use tsm_fuse::{Errno, TsmMount};

const INIT_DATA: &[u8] = b"version = \"0.1.0\"\nalgorithm = \"sha384\"\n\n[data]\n";

fn mount(provider: Arc<dyn tsm_fuse::Provider>) -> TsmMount {
    TsmMount::mount_temp(Some(provider))
        .unwrap_or_else(|e| panic!("cannot mount the configfs-tsm emulation: {e}"))
}

/// The report root as the `&str` path firmware-glue takes.
fn report_root(tsm: &TsmMount) -> String {
    tsm.report_dir()
        .into_os_string()
        .into_string()
        .expect("the temporary mount path is UTF-8")
}

/// A binding digest and the REPORT_DATA that carries it (digest ‖ 16 zeros).
fn binding(seed: u8) -> ([u8; 48], [u8; 64]) {
    let digest: [u8; 48] = Sha384::digest([seed]).into();
    let mut rd = [0u8; 64];
    rd[..48].copy_from_slice(&digest);
    (digest, rd)
}

#[test]
fn snp_evidence_through_configfs_tsm_verifies() {
    let init_digest: [u8; 48] = Sha384::digest(INIT_DATA).into();
    let mut config = SnpConfig::default();
    config.host_data.copy_from_slice(&init_digest[..32]);
    let provider = Arc::new(SnpProvider::new(SnpSim::new(config)));
    let tsm = mount(provider.clone());
    let client = TsmClient::new(report_root(&tsm));
    let verifier = SnpVerifier::from_sim_seed(DEFAULT_SEED, SnpPolicy::default());

    let (digest, rd) = binding(1);
    let ev = snp::get_evidence_tsm(&client, &rd).expect("SNP evidence over configfs-tsm");
    assert!(ev.cert_table().is_some(), "auxblob carried the VCEK");
    assert_eq!(
        snp::host_data(&snp::SnpSource::Tsm(report_root(&tsm))).unwrap()[..],
        init_digest[..32]
    );
    let json = ev.to_json();
    let expected = Expected {
        report_data: &digest,
        init_data_digest: Some(&init_digest),
    };
    let appraisal = verifier.verify(&json, &expected).expect("verifies");
    assert_eq!(appraisal.claims["report_data"], hex(&rd));

    // privlevel is the VMPL: a VMPL 2 report is real, and refused by the KBS
    let out = client
        .generate(&TsmRequest {
            provider: TsmProvider::SevGuest,
            inblob: rd,
            privlevel: Some(2),
            auxblob: true,
        })
        .unwrap();
    let ev = snp::SnpEvidence::new(out.outblob, out.auxblob).unwrap();
    assert_eq!(ev.report().vmpl(), 2);
    assert_eq!(
        verifier.verify(&ev.to_json(), &expected).unwrap_err(),
        "VMPL Check Failed (VMPL 2)"
    );

    // fault knobs pass through: a corrupted signature reaches the KBS, which refuses it
    provider.with_sim(|s| s.faults_mut().corrupt_signature = true);
    let ev = snp::get_evidence_tsm(&client, &rd).unwrap();
    let why = verifier.verify(&ev.to_json(), &expected).unwrap_err();
    assert!(why.starts_with("Report signature verification"), "{why}");
    provider.with_sim(|s| s.faults_mut().corrupt_signature = false);

    // no certificates from the host: evidence with cert_chain null, which this KBS cannot use
    provider.with_sim(|s| s.faults_mut().cert_table = CertTableFault::Missing);
    let ev = snp::get_evidence_tsm(&client, &rd).unwrap();
    assert_eq!(ev.cert_table(), None);
    let why = verifier.verify(&ev.to_json(), &expected).unwrap_err();
    assert!(why.contains("no KDS access"), "{why}");

    // a malformed table is caught by the agent side before any evidence exists
    provider.with_sim(|s| s.faults_mut().cert_table = CertTableFault::Malformed);
    assert!(matches!(
        snp::get_evidence_tsm(&client, &rd),
        Err(SnpError::Certs(_))
    ));

    // an oversized one cannot even be read from configfs (32 KiB blob limit)
    provider.with_sim(|s| s.faults_mut().cert_table = CertTableFault::Oversized);
    let err = snp::get_evidence_tsm(&client, &rd).unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::Tsm(
                TsmError::ReportFailed {
                    errno: Errno::FBIG,
                    ..
                } | TsmError::BlobTooLarge { .. }
            )
        ),
        "{err:?}"
    );
    provider.with_sim(|s| s.faults_mut().cert_table = CertTableFault::None);

    // the firmware failing: EIO as the kernel returns for a failed guest request
    provider.fail_with(Some(Errno::IO));
    let err = snp::get_evidence_tsm(&client, &rd).unwrap_err();
    assert!(
        matches!(
            err,
            SnpError::Tsm(TsmError::ReportFailed {
                errno: Errno::IO,
                ..
            })
        ),
        "{err:?}"
    );
    provider.fail_with(None);
    assert!(snp::get_evidence_tsm(&client, &rd).is_ok());
}

#[test]
fn snp_inblob_must_be_64_bytes_and_vmpl_above_the_floor() {
    let config = SnpConfig {
        vmpl_floor: 1,
        ..SnpConfig::default()
    };
    let provider = Arc::new(SnpProvider::new(SnpSim::new(config)));
    let tsm = mount(provider.clone());
    let entry = tsm.report_dir().join("e");
    std::fs::create_dir(&entry).unwrap();
    assert_eq!(
        std::fs::read_to_string(entry.join("privlevel_floor")).unwrap(),
        "1\n"
    );
    std::fs::write(entry.join("inblob"), [0u8; 63]).unwrap();
    let err = std::fs::read(entry.join("outblob")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(Errno::INVAL.raw_os_error()));
    std::fs::write(entry.join("inblob"), [0u8; 64]).unwrap();
    // privlevel 0 is below the floor: configfs refuses the write itself
    assert!(std::fs::write(entry.join("privlevel"), "0").is_err());
    std::fs::write(entry.join("privlevel"), "1").unwrap();
    let report = std::fs::read(entry.join("outblob")).unwrap();
    assert_eq!(snp::Report::new_checked(&report).unwrap().vmpl(), 1);
    std::fs::remove_dir(&entry).unwrap();
}

#[test]
fn tdx_quote_through_configfs_tsm_verifies() {
    let init_digest: [u8; 48] = Sha384::digest(INIT_DATA).into();
    let config = TdxConfig {
        mr_config_id: init_digest,
        ..TdxConfig::default()
    };
    let provider = Arc::new(TdxProvider::new(TdxSim::new(config)));
    let tsm = mount(provider.clone());
    let client = TsmClient::new(report_root(&tsm));
    let verifier = TdxVerifier::from_sim_seed(DEFAULT_SEED, TdxPolicy::default());

    let entry = tsm.report_dir().join("attrs");
    std::fs::create_dir(&entry).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&entry)
        .unwrap()
        .map(|d| d.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["generation", "inblob", "outblob", "provider"]);
    std::fs::remove_dir(&entry).unwrap();

    let (digest, rd) = binding(2);
    let quote = tdx::get_quote_tsm(&client, &rd).expect("TD quote over configfs-tsm");
    let json = tdx::evidence_json(quote.as_bytes(), None);
    let expected = Expected {
        report_data: &digest,
        init_data_digest: Some(&init_digest),
    };
    let appraisal = verifier.verify(&json, &expected).expect("verifies");
    assert_eq!(appraisal.claims["init_data"], hex(&init_digest));

    provider.with_sim(|s| s.faults_mut().unbound_attestation_key = true);
    let quote = tdx::get_quote_tsm(&client, &rd).unwrap();
    let why = verifier
        .verify(&tdx::evidence_json(quote.as_bytes(), None), &expected)
        .unwrap_err();
    assert!(why.contains("does not bind the attestation key"), "{why}");
    provider.with_sim(|s| s.faults_mut().unbound_attestation_key = false);

    provider.with_sim(|s| s.faults_mut().force_version = Some(3));
    assert!(matches!(
        tdx::get_quote_tsm(&client, &rd),
        Err(TdxError::Quote(_))
    ));
    provider.with_sim(|s| s.faults_mut().force_version = None);

    // EIO: the host's quote generation service failed
    provider.fail_with(Some(Errno::IO));
    assert!(matches!(
        tdx::get_quote_tsm(&client, &rd),
        Err(TdxError::Tsm(TsmError::ReportFailed {
            errno: Errno::IO,
            ..
        }))
    ));
    provider.fail_with(None);
    assert!(tdx::get_quote_tsm(&client, &rd).is_ok());
    assert!(provider.calls() >= 5);
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The TDX sysfs measurement files (`TdxProvider::with_measurements`): `mrconfigid` and the
/// RTMRs read as the simulator holds them; an RTMR write must be 48 bytes at offset 0
/// (`EINVAL` otherwise, as the kernel ABI), and extends the RTMR the next quote carries;
/// `mrconfigid` is read-only. Without the opt-in there is no `measurements/`.
#[test]
fn tdx_measurement_files_read_and_extend() {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::FileExt;
    let plain = mount(Arc::new(TdxProvider::new(TdxSim::new(
        TdxConfig::from_seed(DEFAULT_SEED),
    ))));
    assert!(!plain.path().join("measurements").exists());

    let config = TdxConfig::from_seed(DEFAULT_SEED);
    let provider = Arc::new(TdxProvider::new(TdxSim::new(config.clone())).with_measurements());
    let tsm = mount(provider.clone());
    let m = tsm.path().join("measurements");
    let mut names: Vec<String> = std::fs::read_dir(&m)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "mrconfigid",
            "rtmr0:sha384",
            "rtmr1:sha384",
            "rtmr2:sha384",
            "rtmr3:sha384"
        ]
    );
    assert_eq!(
        std::fs::read(m.join("mrconfigid")).unwrap(),
        config.mr_config_id
    );
    assert_eq!(
        std::fs::read(m.join("rtmr3:sha384")).unwrap(),
        config.rtmr[3]
    );
    let err = std::fs::OpenOptions::new()
        .write(true)
        .open(m.join("mrconfigid"))
        .unwrap_err();
    assert_eq!(err.raw_os_error(), Some(Errno::ACCESS.raw_os_error()));

    let rtmr3 = m.join("rtmr3:sha384");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(&rtmr3)
        .unwrap();
    let short = f.write(&[1u8; 47]).unwrap_err();
    assert_eq!(short.raw_os_error(), Some(Errno::INVAL.raw_os_error()));
    let at = f.write_at(&[1u8; 48], 1).unwrap_err();
    assert_eq!(at.raw_os_error(), Some(Errno::INVAL.raw_os_error()));
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(&[7u8; 48]).unwrap();
    let expected: [u8; 48] = Sha384::new()
        .chain_update(config.rtmr[3])
        .chain_update([7u8; 48])
        .finalize()
        .into();
    assert_eq!(std::fs::read(&rtmr3).unwrap(), expected);
    assert_eq!(provider.with_sim(|s| s.config().rtmr[3]), expected);
}
