/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */
/*
 * The /dev/tsm_sim protocol between the tsm_sim kernel module and the simulator daemon in
 * the guest. All integers are little-endian (the module only builds for x86_64).
 *
 * The daemon opens /dev/tsm_sim (one opener at a time), then loops:
 *
 *   read()  blocks until a request is pending and returns one struct tsm_sim_req
 *           (the read buffer must hold at least TSM_SIM_REQ_LEN bytes);
 *   write() answers it with one struct tsm_sim_resp header immediately followed by
 *           outblob_len bytes of outblob and auxblob_len bytes of auxblob, in ONE write().
 *
 * A response must carry the id of the request it answers; a response to a request that has
 * already timed out, or a malformed one, fails the write() with EINVAL/ESTALE and is dropped.
 * A non-zero status (a positive errno, e.g. EIO) fails the request with -status. If the daemon
 * closes the device with a request outstanding, that request fails with -EIO.
 */
#ifndef _TSM_SIM_H
#define _TSM_SIM_H

#include <linux/types.h>

#define TSM_SIM_REQ_MAGIC	0x51534d54	/* "TMSQ" on the wire */
#define TSM_SIM_RESP_MAGIC	0x52534d54	/* "TMSR" on the wire */
#define TSM_SIM_VERSION		1

/* What is asked for. */
enum tsm_sim_kind {
	/*
	 * SEV-SNP: outblob = the 1184-byte ATTESTATION_REPORT with REPORT_DATA = inblob and
	 * VMPL = privlevel; auxblob = the GHCB certificate table (may be empty).
	 */
	TSM_SIM_KIND_SNP_REPORT = 1,
	/*
	 * TDX: outblob = a TD quote with REPORTDATA = inblob and the TD's current
	 * measurement registers; auxblob must be empty.
	 */
	TSM_SIM_KIND_TDX_QUOTE = 2,
	/*
	 * TDX (TDG.MR.REPORT): outblob = the 1024-byte TDREPORT with REPORTDATA = inblob and
	 * the current MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG and RTMR0..3; no auxblob.
	 */
	TSM_SIM_KIND_TDX_REPORT = 3,
	/*
	 * TDX (TDG.MR.RTMR.EXTEND): extend RTMR[index] by the 48-byte digest in inblob[0..48]
	 * (inblob[48..64] zero): RTMR = SHA-384(RTMR || digest). outblob = the new 48-byte
	 * value; no auxblob. The daemon keeps the registers: later quotes and reports carry
	 * the new value.
	 */
	TSM_SIM_KIND_TDX_EXTEND = 4,
};

/* Request, read by the daemon (96 bytes). */
struct tsm_sim_req {
	__le32 magic;		/* TSM_SIM_REQ_MAGIC */
	__le32 version;		/* TSM_SIM_VERSION */
	__le64 id;		/* echoed in the response */
	__le32 kind;		/* enum tsm_sim_kind */
	__le32 privlevel;	/* SNP: requested VMPL (0..3); TDX extend: the RTMR index
				 * (0..3); other TDX requests: 0 */
	__le32 source;		/* 0 = configfs-tsm, 1 = /dev/sev-guest ioctl, 2 = the tdx_guest
				 * device (ioctl or measurements/ sysfs; informational) */
	__le32 reserved;	/* 0 */
	__u8 inblob[64];	/* REPORT_DATA */
};

#define TSM_SIM_REQ_LEN		96

/* Request sources (informational: the daemon logs them). */
#define TSM_SIM_SOURCE_CONFIGFS_TSM	0
#define TSM_SIM_SOURCE_SEV_GUEST	1
#define TSM_SIM_SOURCE_TDX_GUEST	2

/* Response header, written by the daemon (32 bytes), followed by the blobs. */
struct tsm_sim_resp {
	__le32 magic;		/* TSM_SIM_RESP_MAGIC */
	__le32 version;		/* TSM_SIM_VERSION */
	__le64 id;		/* the request's id */
	__le32 status;		/* 0 = success, else a positive errno for the requester */
	__le32 outblob_len;	/* > 0 on success, <= TSM_SIM_OUTBLOB_MAX */
	__le32 auxblob_len;	/* <= TSM_SIM_AUXBLOB_MAX */
	__le32 reserved;	/* 0 */
};

#define TSM_SIM_RESP_LEN	32
#define TSM_SIM_OUTBLOB_MAX	(32 * 1024)	/* TSM_OUTBLOB_MAX */
#define TSM_SIM_AUXBLOB_MAX	(16 * 1024)	/* SEV_FW_BLOB_MAX_SIZE */
#define TSM_SIM_TDREPORT_LEN	1024		/* TDX_REPORT_LEN */
#define TSM_SIM_MR_LEN		48		/* SHA-384 */

#endif /* _TSM_SIM_H */
