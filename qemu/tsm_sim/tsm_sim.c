// SPDX-License-Identifier: GPL-2.0-only
/*
 * tsm_sim: a stand-in configfs-tsm provider for hardware-free SEV-SNP and TDX tests.
 *
 * QEMU under TCG emulates neither SEV-SNP nor TDX, so the real sev-guest and tdx-guest
 * drivers refuse to load and /sys/kernel/config/tsm/report has no provider. This module
 * registers one under the real provider's name ("sev_guest" or "tdx_guest", module
 * parameter provider=) with the same visible attributes, the same privlevel floor and the
 * same inblob check, so the kernel's configfs-tsm code (drivers/virt/coco/tsm.c) and the
 * agent's configfs client run exactly as on hardware. Only the firmware is simulated: each
 * report request is handed to a simulator daemon in the guest through the misc device
 * /dev/tsm_sim (protocol in tsm_sim.h), which signs it with test keys.
 *
 * With provider=sev_guest sev_ioctl=1 it also registers /dev/sev-guest implementing
 * SNP_GET_REPORT and SNP_GET_EXT_REPORT (include/uapi/linux/sev-guest.h), including the
 * certificate buffer negotiation of the real driver, backed by the same daemon.
 *
 * With provider=tdx_guest (unless tdx_guest=0) it also registers the misc device tdx_guest
 * as tdx-guest.c does: /dev/tdx_guest with TDX_CMD_GET_REPORT0 (include/uapi/linux/
 * tdx-guest.h), and the measurement registers of Linux 6.16+ (tsm-mr,
 * Documentation/ABI/testing/sysfs-devices-virtual-misc-tdx_guest) under
 * /sys/devices/virtual/misc/tdx_guest/measurements/: mrconfigid, mrowner, mrownerconfig and
 * mrtd:sha384 read-only, rtmr0..3:sha384 read-write. A read returns the register from a
 * fresh TDREPORT; a write of exactly 48 bytes at offset 0 extends the RTMR
 * (SHA-384(RTMR || data), done by the simulated TDX module in the daemon, which keeps the
 * registers, so later quotes carry the new value); any other write is -EINVAL.
 *
 * This is test scaffolding: it proves nothing about the machine. Never load it in a
 * production guest.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/completion.h>
#include <linux/fs.h>
#include <linux/jiffies.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/slab.h>
#include <linux/string.h>
#include <linux/tsm.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <uapi/linux/sev-guest.h>
#include <uapi/linux/tdx-guest.h>

#include "tsm_sim.h"

static char *provider = "sev_guest";
module_param(provider, charp, 0444);
MODULE_PARM_DESC(provider, "configfs-tsm provider to impersonate: sev_guest or tdx_guest");

static unsigned int timeout_ms = 30000;
module_param(timeout_ms, uint, 0644);
MODULE_PARM_DESC(timeout_ms, "how long a report request waits for the daemon (ms)");

static bool sev_ioctl;
module_param(sev_ioctl, bool, 0444);
MODULE_PARM_DESC(sev_ioctl, "sev_guest only: also provide /dev/sev-guest (SNP_GET_[EXT_]REPORT)");

static bool tdx_guest = true;
module_param(tdx_guest, bool, 0444);
MODULE_PARM_DESC(tdx_guest, "tdx_guest only: also provide /dev/tdx_guest and measurements/");

/* SNP report and MSG_REPORT_RSP layout (SEV-SNP ABI, "MSG_REPORT_RSP"). */
#define SNP_REPORT_LEN		1184
#define SNP_RESP_HDR_LEN	32
#define SEV_RET_INVALID_PARAM	0x16
#define SNP_FW_BLOB_MAX		(16 * 1024)	/* SEV_FW_BLOB_MAX_SIZE */

/* TDREPORT offsets (TDX module ABI: REPORTMACSTRUCT, TEE_TCB_INFO, then TDINFO at 512). */
#define TDREPORT_MRTD		528
#define TDREPORT_MRCONFIGID	576
#define TDREPORT_MROWNER	624
#define TDREPORT_MROWNERCONFIG	672
#define TDREPORT_RTMR0		720

static_assert(sizeof(struct tsm_sim_req) == TSM_SIM_REQ_LEN);
static_assert(TSM_SIM_TDREPORT_LEN == TDX_REPORT_LEN);
static_assert(sizeof(struct tsm_sim_resp) == TSM_SIM_RESP_LEN);

/* One outstanding request, on the requester's stack. */
struct sim_request {
	struct tsm_sim_req wire;	/* what the daemon reads */
	bool delivered;			/* the daemon has read it */
	bool answered;			/* resp or status is set (under sim.lock) */
	struct completion done;		/* completed when answered is set */
	int status;			/* 0 or -errno */
	void *resp;			/* the daemon's whole write() (kvmalloc'd) */
	size_t resp_len;
};

static struct {
	struct mutex serial;		/* one request in flight at a time */
	struct mutex lock;		/* protects the fields below */
	wait_queue_head_t wq;		/* the daemon waits here for a request */
	struct sim_request *cur;	/* the request in flight, or NULL */
	bool attached;			/* /dev/tsm_sim is open */
	u64 next_id;
} sim;

static bool is_snp(void)
{
	return !strcmp(provider, "sev_guest");
}

/* A pending request the daemon has not read yet (checked again under sim.lock). */
static bool request_pending(void)
{
	struct sim_request *cur = READ_ONCE(sim.cur);

	return cur && !READ_ONCE(cur->delivered);
}

/*
 * Sends one request to the daemon and waits for its answer. On success *out and *aux
 * point into *resp (which the caller kvfree()s) and the lengths are set.
 */
static int sim_call(u32 kind, u32 privlevel, u32 source, const u8 *inblob, void **resp,
		    const u8 **out, size_t *out_len, const u8 **aux, size_t *aux_len)
{
	const struct tsm_sim_resp *hdr;
	struct sim_request req = {};
	long left;
	int rc;

	rc = mutex_lock_interruptible(&sim.serial);
	if (rc)
		return rc;

	init_completion(&req.done);
	req.wire.magic = cpu_to_le32(TSM_SIM_REQ_MAGIC);
	req.wire.version = cpu_to_le32(TSM_SIM_VERSION);
	req.wire.kind = cpu_to_le32(kind);
	req.wire.privlevel = cpu_to_le32(privlevel);
	req.wire.source = cpu_to_le32(source);
	memcpy(req.wire.inblob, inblob, sizeof(req.wire.inblob));

	mutex_lock(&sim.lock);
	if (!sim.attached) {
		mutex_unlock(&sim.lock);
		mutex_unlock(&sim.serial);
		pr_warn_ratelimited("no simulator daemon has /dev/tsm_sim open\n");
		return -EIO;
	}
	req.wire.id = cpu_to_le64(++sim.next_id);
	WRITE_ONCE(sim.cur, &req);
	mutex_unlock(&sim.lock);
	wake_up_interruptible(&sim.wq);

	left = wait_for_completion_interruptible_timeout(&req.done,
							 msecs_to_jiffies(timeout_ms));

	/* After this nobody else touches req. */
	mutex_lock(&sim.lock);
	WRITE_ONCE(sim.cur, NULL);
	mutex_unlock(&sim.lock);
	mutex_unlock(&sim.serial);

	/*
	 * Not completion_done(): a successful wait consumes the completion. An answer that
	 * arrived between the timeout and clearing sim.cur still counts.
	 */
	if (!req.answered) {
		if (left == 0)
			pr_warn_ratelimited("the simulator daemon did not answer in %u ms\n",
					    timeout_ms);
		return left < 0 ? -EINTR : -ETIMEDOUT;
	}
	if (req.status) {
		kvfree(req.resp);
		return req.status;
	}

	/* sim_write() has validated the header and lengths. */
	hdr = req.resp;
	*resp = req.resp;
	*out = req.resp + TSM_SIM_RESP_LEN;
	*out_len = le32_to_cpu(hdr->outblob_len);
	*aux = *out + *out_len;
	*aux_len = le32_to_cpu(hdr->auxblob_len);
	return 0;
}

/* --- configfs-tsm provider ------------------------------------------------------------ */

static int tsm_sim_report_new(struct tsm_report *report, void *data)
{
	struct tsm_desc *desc = &report->desc;
	const u8 *out, *aux;
	size_t out_len, aux_len;
	void *resp;
	int rc;

	/* Like sev_report_new() and tdx_report_new(): exactly 64 bytes of report data. */
	if (desc->inblob_len != 64)
		return -EINVAL;

	rc = sim_call(is_snp() ? TSM_SIM_KIND_SNP_REPORT : TSM_SIM_KIND_TDX_QUOTE,
		      is_snp() ? desc->privlevel : 0, TSM_SIM_SOURCE_CONFIGFS_TSM, desc->inblob,
		      &resp, &out, &out_len, &aux, &aux_len);
	if (rc)
		return rc;

	if (is_snp() && out_len != SNP_REPORT_LEN) {
		pr_warn_ratelimited("the daemon returned a %zu-byte SNP report\n", out_len);
		rc = -EIO;
		goto out;
	}

	/* The core kvfree()s the previous blobs before calling us and these ones later. */
	report->outblob = kvmemdup(out, out_len, GFP_KERNEL);
	if (!report->outblob) {
		rc = -ENOMEM;
		goto out;
	}
	report->outblob_len = out_len;

	/* SNP: the certificate table; an empty auxblob when the host has no certificates. */
	if (is_snp() && aux_len) {
		report->auxblob = kvmemdup(aux, aux_len, GFP_KERNEL);
		if (!report->auxblob) {
			kvfree(report->outblob);
			report->outblob = NULL;
			report->outblob_len = 0;
			rc = -ENOMEM;
			goto out;
		}
		report->auxblob_len = aux_len;
	}
out:
	kvfree(resp);
	return rc;
}

/* The attributes the real providers show (sev-guest.c without an SVSM, tdx-guest.c). */
static bool tsm_sim_attr_visible(int n)
{
	switch (n) {
	case TSM_REPORT_GENERATION:
	case TSM_REPORT_PROVIDER:
		return true;
	case TSM_REPORT_PRIVLEVEL:
	case TSM_REPORT_PRIVLEVEL_FLOOR:
		return is_snp();
	default:
		return false;
	}
}

static bool tsm_sim_bin_attr_visible(int n)
{
	switch (n) {
	case TSM_REPORT_INBLOB:
	case TSM_REPORT_OUTBLOB:
		return true;
	case TSM_REPORT_AUXBLOB:
		return is_snp();
	default:
		return false;
	}
}

static struct tsm_ops tsm_sim_ops = {
	/* .name is the provider parameter, set at init. */
	.privlevel_floor = 0,	/* sev-guest: vmpck_id, 0 by default; unused by TDX */
	.report_new = tsm_sim_report_new,
	.report_attr_visible = tsm_sim_attr_visible,
	.report_bin_attr_visible = tsm_sim_bin_attr_visible,
};

/* --- /dev/tsm_sim: the daemon's side -------------------------------------------------- */

static int sim_open(struct inode *inode, struct file *file)
{
	int rc = 0;

	mutex_lock(&sim.lock);
	if (sim.attached)
		rc = -EBUSY;	/* one daemon */
	else
		sim.attached = true;
	mutex_unlock(&sim.lock);
	return rc;
}

static int sim_release(struct inode *inode, struct file *file)
{
	mutex_lock(&sim.lock);
	sim.attached = false;
	/* Fail an outstanding request now instead of letting it time out. */
	if (sim.cur && !sim.cur->answered) {
		sim.cur->status = -EIO;
		sim.cur->answered = true;
		complete(&sim.cur->done);
	}
	mutex_unlock(&sim.lock);
	return 0;
}

static ssize_t sim_read(struct file *file, char __user *buf, size_t count, loff_t *ppos)
{
	struct tsm_sim_req wire;
	int rc;

	if (count < TSM_SIM_REQ_LEN)
		return -EINVAL;

	for (;;) {
		mutex_lock(&sim.lock);
		if (sim.cur && !sim.cur->delivered)
			break;
		mutex_unlock(&sim.lock);
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		rc = wait_event_interruptible(sim.wq, request_pending());
		if (rc)
			return rc;
	}
	wire = sim.cur->wire;
	if (copy_to_user(buf, &wire, sizeof(wire))) {
		mutex_unlock(&sim.lock);
		return -EFAULT;
	}
	WRITE_ONCE(sim.cur->delivered, true);
	mutex_unlock(&sim.lock);
	return TSM_SIM_REQ_LEN;
}

static ssize_t sim_write(struct file *file, const char __user *buf, size_t count,
			 loff_t *ppos)
{
	const struct tsm_sim_resp *hdr;
	u32 status, out_len, aux_len;
	void *resp;

	if (count < TSM_SIM_RESP_LEN ||
	    count > TSM_SIM_RESP_LEN + TSM_SIM_OUTBLOB_MAX + TSM_SIM_AUXBLOB_MAX)
		return -EINVAL;
	resp = vmemdup_user(buf, count);
	if (IS_ERR(resp))
		return PTR_ERR(resp);

	hdr = resp;
	status = le32_to_cpu(hdr->status);
	out_len = le32_to_cpu(hdr->outblob_len);
	aux_len = le32_to_cpu(hdr->auxblob_len);
	if (le32_to_cpu(hdr->magic) != TSM_SIM_RESP_MAGIC ||
	    le32_to_cpu(hdr->version) != TSM_SIM_VERSION || hdr->reserved ||
	    status > MAX_ERRNO || out_len > TSM_SIM_OUTBLOB_MAX ||
	    aux_len > TSM_SIM_AUXBLOB_MAX || (!status && !out_len) ||
	    count != TSM_SIM_RESP_LEN + (size_t)out_len + aux_len) {
		kvfree(resp);
		return -EINVAL;
	}

	mutex_lock(&sim.lock);
	if (!sim.cur || !sim.cur->delivered || sim.cur->answered ||
	    sim.cur->wire.id != hdr->id) {
		/* Not the request in flight: it timed out or was answered already. */
		mutex_unlock(&sim.lock);
		kvfree(resp);
		return -ESTALE;
	}
	if (status) {
		sim.cur->status = -(int)status;
		kvfree(resp);
	} else {
		sim.cur->resp = resp;
		sim.cur->resp_len = count;
	}
	sim.cur->answered = true;
	complete(&sim.cur->done);
	mutex_unlock(&sim.lock);
	return count;
}

static const struct file_operations sim_fops = {
	.owner = THIS_MODULE,
	.open = sim_open,
	.release = sim_release,
	.read = sim_read,
	.write = sim_write,
	.llseek = noop_llseek,
};

static struct miscdevice sim_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "tsm_sim",
	.fops = &sim_fops,
	.mode = 0600,
};

/* --- optional /dev/sev-guest ---------------------------------------------------------- */

/*
 * One report through the daemon, as the PSP's MSG_REPORT_RSP (status, report size,
 * reserved, report) in *rsp (zeroed, sizeof(struct snp_report_resp)). Returns the
 * certificate table through *aux (pointing into *blob, which the caller kvfree()s).
 */
static int sev_get_report(const struct snp_report_req *req, struct snp_report_resp *rsp,
			  void **blob, const u8 **aux, size_t *aux_len)
{
	const u8 *out;
	size_t out_len;
	int rc;

	*blob = NULL;
	*aux_len = 0;
	/* The firmware refuses a VMPL above 3 in the response status, not as an errno. */
	if (req->vmpl > 3) {
		*(__le32 *)&rsp->data[0] = cpu_to_le32(SEV_RET_INVALID_PARAM);
		return 0;
	}
	rc = sim_call(TSM_SIM_KIND_SNP_REPORT, req->vmpl, TSM_SIM_SOURCE_SEV_GUEST, req->user_data,
		      blob, &out, &out_len, aux, aux_len);
	if (rc)
		return rc;
	if (out_len != SNP_REPORT_LEN) {
		kvfree(*blob);
		*blob = NULL;
		return -EIO;
	}
	*(__le32 *)&rsp->data[4] = cpu_to_le32(SNP_REPORT_LEN);
	memcpy(&rsp->data[SNP_RESP_HDR_LEN], out, out_len);
	return 0;
}

static long sev_ioctl_report(struct snp_guest_request_ioctl *io)
{
	struct snp_report_resp *rsp;
	struct snp_report_req req;
	size_t aux_len;
	const u8 *aux;
	void *blob;
	long rc;

	if (!io->req_data || !io->resp_data)
		return -EINVAL;
	if (copy_from_user(&req, u64_to_user_ptr(io->req_data), sizeof(req)))
		return -EFAULT;
	rsp = kzalloc(sizeof(*rsp), GFP_KERNEL);
	if (!rsp)
		return -ENOMEM;
	rc = sev_get_report(&req, rsp, &blob, &aux, &aux_len);
	if (!rc && copy_to_user(u64_to_user_ptr(io->resp_data), rsp, sizeof(*rsp)))
		rc = -EFAULT;
	kvfree(blob);
	kfree(rsp);
	return rc;
}

/*
 * SNP_GET_EXT_REPORT as get_ext_report() in sev-guest.c: certs_len must be a page multiple
 * up to SEV_FW_BLOB_MAX_SIZE (or 0 / a NULL address: no certificates wanted). If the host's
 * table does not fit, the request fails with EIO, exitinfo2 = VMM error INVALID_LEN and
 * certs_len written back as the length needed. Otherwise the buffer receives the table
 * zero-padded to certs_len (all zeros when the host has no certificates).
 */
static long sev_ioctl_ext_report(struct snp_guest_request_ioctl *io)
{
	struct snp_ext_report_req req;
	struct snp_report_resp *rsp;
	size_t aux_len, needed;
	void __user *certs;
	u8 *certs_buf = NULL;
	const u8 *aux;
	void *blob;
	long rc;

	if (!io->req_data || !io->resp_data)
		return -EINVAL;
	if (copy_from_user(&req, u64_to_user_ptr(io->req_data), sizeof(req)))
		return -EFAULT;
	certs = u64_to_user_ptr(req.certs_address);
	if (req.certs_len && req.certs_address) {
		if (req.certs_len > SNP_FW_BLOB_MAX || !IS_ALIGNED(req.certs_len, PAGE_SIZE))
			return -EINVAL;
		if (!access_ok(certs, req.certs_len))
			return -EFAULT;
	} else {
		req.certs_len = 0;
	}

	rsp = kzalloc(sizeof(*rsp), GFP_KERNEL);
	if (!rsp)
		return -ENOMEM;
	rc = sev_get_report(&req.data, rsp, &blob, &aux, &aux_len);
	if (rc)
		goto out;

	needed = round_up(aux_len, PAGE_SIZE);
	if (needed > req.certs_len) {
		/* The host's answer to a too small buffer (the report is not returned). */
		io->exitinfo2 = SNP_GUEST_VMM_ERR(SNP_GUEST_VMM_ERR_INVALID_LEN);
		req.certs_len = needed;
		rc = -EIO;
		if (copy_to_user(u64_to_user_ptr(io->req_data), &req, sizeof(req)))
			rc = -EFAULT;
		goto out;
	}
	if (req.certs_len) {
		certs_buf = kvzalloc(req.certs_len, GFP_KERNEL);
		if (!certs_buf) {
			rc = -ENOMEM;
			goto out;
		}
		memcpy(certs_buf, aux, aux_len);
		if (copy_to_user(certs, certs_buf, req.certs_len)) {
			rc = -EFAULT;
			goto out;
		}
	}
	if (copy_to_user(u64_to_user_ptr(io->resp_data), rsp, sizeof(*rsp)))
		rc = -EFAULT;
out:
	kvfree(certs_buf);
	kvfree(blob);
	kfree(rsp);
	return rc;
}

static long sev_guest_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	void __user *argp = (void __user *)arg;
	struct snp_guest_request_ioctl io;
	long rc;

	if (copy_from_user(&io, argp, sizeof(io)))
		return -EFAULT;
	/* As snp_guest_ioctl(): a message version is required; 0xff means "not sent". */
	if (!io.msg_version)
		return -EINVAL;
	io.exitinfo2 = 0xff;

	switch (cmd) {
	case SNP_GET_REPORT:
		rc = sev_ioctl_report(&io);
		break;
	case SNP_GET_EXT_REPORT:
		rc = sev_ioctl_ext_report(&io);
		break;
	default:
		/* SNP_GET_DERIVED_KEY is not simulated; exitinfo2 stays 0xff ("not sent"). */
		rc = -ENOTTY;
		break;
	}
	/* The (simulated) firmware saw the request unless it was refused before sending. */
	if (io.exitinfo2 == 0xff && rc != -ENOTTY && rc != -EINVAL && rc != -EFAULT)
		io.exitinfo2 = 0;
	/* Like the real driver, write the header back only when exitinfo2 says something. */
	if (io.exitinfo2 && copy_to_user(argp, &io, sizeof(io)))
		return -EFAULT;
	return rc;
}

static const struct file_operations sev_guest_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = sev_guest_ioctl,
};

static struct miscdevice sev_guest_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "sev-guest",
	.fops = &sev_guest_fops,
};

/* --- the tdx_guest device: /dev/tdx_guest and measurements/ ---------------------------- */

/* A TDREPORT (TDG.MR.REPORT) for reportdata, into report (TSM_SIM_TDREPORT_LEN bytes). */
static int tdx_get_report(const u8 *reportdata, u8 *report)
{
	const u8 *out, *aux;
	size_t out_len, aux_len;
	void *resp;
	int rc;

	rc = sim_call(TSM_SIM_KIND_TDX_REPORT, 0, TSM_SIM_SOURCE_TDX_GUEST, reportdata, &resp,
		      &out, &out_len, &aux, &aux_len);
	if (rc)
		return rc;
	if (out_len != TSM_SIM_TDREPORT_LEN || aux_len) {
		pr_warn_ratelimited("the daemon returned a %zu-byte TDREPORT\n", out_len);
		rc = -EIO;
	} else {
		memcpy(report, out, out_len);
	}
	kvfree(resp);
	return rc;
}

/* TDG.MR.RTMR.EXTEND of RTMR index by a 48-byte digest. */
static int tdx_extend_rtmr(u32 index, const u8 *digest)
{
	u8 inblob[64] = {};
	const u8 *out, *aux;
	size_t out_len, aux_len;
	void *resp;
	int rc;

	memcpy(inblob, digest, TSM_SIM_MR_LEN);
	rc = sim_call(TSM_SIM_KIND_TDX_EXTEND, index, TSM_SIM_SOURCE_TDX_GUEST, inblob, &resp,
		      &out, &out_len, &aux, &aux_len);
	if (rc)
		return rc;
	if (out_len != TSM_SIM_MR_LEN || aux_len) {
		pr_warn_ratelimited("the daemon answered an extend with %zu bytes\n", out_len);
		rc = -EIO;
	}
	kvfree(resp);
	return rc;
}

static long tdx_guest_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct tdx_report_req __user *user = (void __user *)arg;
	u8 reportdata[TDX_REPORTDATA_LEN];
	u8 *report;
	int rc;

	if (cmd != TDX_CMD_GET_REPORT0)
		return -ENOTTY;
	if (copy_from_user(reportdata, user->reportdata, sizeof(reportdata)))
		return -EFAULT;
	report = kmalloc(TDX_REPORT_LEN, GFP_KERNEL);
	if (!report)
		return -ENOMEM;
	rc = tdx_get_report(reportdata, report);
	if (!rc && copy_to_user(user->tdreport, report, TDX_REPORT_LEN))
		rc = -EFAULT;
	kfree(report);
	return rc;
}

static const struct file_operations tdx_guest_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = tdx_guest_ioctl,
};

/* attr->private: the register's offset in the TDREPORT. */
static ssize_t tdx_mr_read(struct file *filp, struct kobject *kobj, struct bin_attribute *attr,
			   char *buf, loff_t off, size_t count)
{
	u8 reportdata[TDX_REPORTDATA_LEN] = {};
	size_t mr_off = (unsigned long)attr->private;
	u8 *report;
	int rc;

	if (off < 0 || off > TSM_SIM_MR_LEN)
		return -EINVAL;
	count = min_t(size_t, count, TSM_SIM_MR_LEN - off);
	if (!count)
		return 0;
	report = kmalloc(TSM_SIM_TDREPORT_LEN, GFP_KERNEL);
	if (!report)
		return -ENOMEM;
	rc = tdx_get_report(reportdata, report);
	if (!rc)
		memcpy(buf, report + mr_off + off, count);
	kfree(report);
	return rc ? rc : count;
}

/* As tsm-mr: one write of the whole register at offset 0, else -EINVAL. */
static ssize_t tdx_rtmr_write(struct file *filp, struct kobject *kobj,
			      struct bin_attribute *attr, char *buf, loff_t off, size_t count)
{
	size_t mr_off = (unsigned long)attr->private;
	int rc;

	if (off != 0 || count != TSM_SIM_MR_LEN)
		return -EINVAL;
	rc = tdx_extend_rtmr((mr_off - TDREPORT_RTMR0) / TSM_SIM_MR_LEN, buf);
	return rc ? rc : count;
}

#define TDX_MR_RO(_var, _name, _off)						\
	static struct bin_attribute _var = {					\
		.attr = { .name = _name, .mode = 0444 },			\
		.size = TSM_SIM_MR_LEN,						\
		.private = (void *)(unsigned long)(_off),					\
		.read = tdx_mr_read,						\
	}
#define TDX_RTMR(_var, _name, _index)						\
	static struct bin_attribute _var = {					\
		.attr = { .name = _name, .mode = 0644 },			\
		.size = TSM_SIM_MR_LEN,						\
		.private = (void *)(unsigned long)(TDREPORT_RTMR0 +		\
						   (_index) * TSM_SIM_MR_LEN),	\
		.read = tdx_mr_read,						\
		.write = tdx_rtmr_write,					\
	}

TDX_MR_RO(tdx_mrconfigid, "mrconfigid", TDREPORT_MRCONFIGID);
TDX_MR_RO(tdx_mrowner, "mrowner", TDREPORT_MROWNER);
TDX_MR_RO(tdx_mrownerconfig, "mrownerconfig", TDREPORT_MROWNERCONFIG);
TDX_MR_RO(tdx_mrtd, "mrtd:sha384", TDREPORT_MRTD);
TDX_RTMR(tdx_rtmr0, "rtmr0:sha384", 0);
TDX_RTMR(tdx_rtmr1, "rtmr1:sha384", 1);
TDX_RTMR(tdx_rtmr2, "rtmr2:sha384", 2);
TDX_RTMR(tdx_rtmr3, "rtmr3:sha384", 3);

static struct bin_attribute *tdx_mr_attrs[] = {
	&tdx_mrconfigid, &tdx_mrowner, &tdx_mrownerconfig, &tdx_mrtd,
	&tdx_rtmr0, &tdx_rtmr1, &tdx_rtmr2, &tdx_rtmr3,
	NULL,
};

static const struct attribute_group tdx_mr_group = {
	.name = "measurements",
	.bin_attrs = tdx_mr_attrs,
};

static const struct attribute_group *tdx_guest_groups[] = {
	&tdx_mr_group,
	NULL,
};

static struct miscdevice tdx_guest_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "tdx_guest",
	.fops = &tdx_guest_fops,
	.groups = tdx_guest_groups,
};

static bool has_tdx_guest(void)
{
	return !is_snp() && tdx_guest;
}

/* --- module ----------------------------------------------------------------------------- */

static int __init tsm_sim_init(void)
{
	int rc;

	if (strcmp(provider, "sev_guest") && strcmp(provider, "tdx_guest")) {
		pr_err("provider=%s: expected sev_guest or tdx_guest\n", provider);
		return -EINVAL;
	}
	if (sev_ioctl && !is_snp()) {
		pr_err("sev_ioctl=1 needs provider=sev_guest\n");
		return -EINVAL;
	}
	mutex_init(&sim.serial);
	mutex_init(&sim.lock);
	init_waitqueue_head(&sim.wq);

	rc = misc_register(&sim_dev);
	if (rc)
		return rc;
	if (sev_ioctl) {
		rc = misc_register(&sev_guest_dev);
		if (rc)
			goto err_sim;
	}
	if (has_tdx_guest()) {
		rc = misc_register(&tdx_guest_dev);
		if (rc)
			goto err_sev;
	}
	tsm_sim_ops.name = provider;
	rc = tsm_register(&tsm_sim_ops, NULL);
	if (rc)
		goto err_tdx;
	pr_info("simulating %s%s: test keys only, NOT a confidential VM\n", provider,
		sev_ioctl ? " (configfs-tsm and /dev/sev-guest)" :
		has_tdx_guest() ? " (configfs-tsm and tdx_guest: TDREPORT, measurements)" :
		" (configfs-tsm)");
	return 0;

err_tdx:
	if (has_tdx_guest())
		misc_deregister(&tdx_guest_dev);
err_sev:
	if (sev_ioctl)
		misc_deregister(&sev_guest_dev);
err_sim:
	misc_deregister(&sim_dev);
	return rc;
}

static void __exit tsm_sim_exit(void)
{
	tsm_unregister(&tsm_sim_ops);
	if (has_tdx_guest())
		misc_deregister(&tdx_guest_dev);
	if (sev_ioctl)
		misc_deregister(&sev_guest_dev);
	misc_deregister(&sim_dev);
}

module_init(tsm_sim_init);
module_exit(tsm_sim_exit);
MODULE_DESCRIPTION("Stand-in configfs-tsm provider (simulated SEV-SNP/TDX firmware, tests only)");
MODULE_LICENSE("GPL");
