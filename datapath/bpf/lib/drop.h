// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Drop reasons and drop notifications.
 *
 * The numbers and descriptions are Cilium's (bpf/lib/common.h and
 * pkg/monitor/api/drop.go), so "hubble observe" users read the same names.
 * This list is the single source of truth: datapath/internal/hdrgen turns
 * every "#define DROP_X N / * description * /" line into the Go constants in
 * datapath/reasons_gen.go, and a test fails if the two disagree.
 * Functions return the negative code (-DROP_X) on a drop.
 */
#ifndef __HOPLAB_DROP_H
#define __HOPLAB_DROP_H

#include "maps.h"
#include "metrics.h"
#include "trace.h"

#define DROP_INVALID_SIP 132        /* Invalid source ip */
#define DROP_POLICY 133             /* Policy denied */
#define DROP_INVALID 134            /* Invalid packet */
#define DROP_CT_INVALID_HDR 135     /* CT: Truncated or invalid header */
#define DROP_CT_UNKNOWN_PROTO 137   /* CT: Unknown L4 protocol */
#define DROP_MISSED_TAIL_CALL 140   /* Missed tail call */
#define DROP_WRITE_ERROR 141        /* Error writing to packet */
#define DROP_NO_TUNNEL_KEY 147      /* Error retrieving tunnel key */
#define DROP_UNKNOWN_TARGET 150     /* Unknown L3 target address */
#define DROP_CSUM_L3 153            /* Error while correcting L3 checksum */
#define DROP_CSUM_L4 154            /* Error while correcting L4 checksum */
#define DROP_CT_CREATE_FAILED 155   /* CT: Map insertion failed */
#define DROP_FRAG_NOSUPPORT 157     /* IP fragmentation not supported */
#define DROP_NO_SERVICE 158         /* Service backend not found */
#define DROP_NAT_NO_MAPPING 167     /* No mapping for NAT masquerade */
#define DROP_INVALID_IDENTITY 171   /* Invalid identity */
#define DROP_POLICY_DENY 181        /* Policy deny */
#define DROP_TTL_EXCEEDED 196       /* TTL exceeded */

/* Drop notification, followed by len_cap packet bytes. */
struct drop_notify {
	NOTIFY_CAPTURE_HDR
	__u32 src_label;
	__u32 dst_label;
	__u32 dst_id;
	__u16 line;
	__u8 file;
	__s8 ext_error;
	__u32 ifindex;
};

/* __send_drop_notify counts the drop, emits a drop event and returns
 * TC_ACT_SHOT. reason is the positive DROP_* code.
 */
static __always_inline int __send_drop_notify(struct __sk_buff *skb, __u32 src, __u32 dst,
					      __u32 dst_id, __u8 reason, __u8 dir, __u8 file,
					      __u16 line)
{
	__u32 cap;
	struct drop_notify msg;

	update_metrics(skb->len, dir, reason);
	if (events_muted())
		return TC_ACT_SHOT;
	cap = notify_cap_len(skb);
	msg = (struct drop_notify){
		.type = NOTIFY_DROP,
		.subtype = reason,
		.source = 0,
		.hash = skb->hash,
		.len_orig = skb->len,
		.len_cap = cap,
		.version = NOTIFY_VERSION,
		.src_label = src,
		.dst_label = dst,
		.dst_id = dst_id,
		.line = line,
		.file = file,
		.ifindex = skb->ifindex,
	};
	notify_output(skb, cap, &msg, sizeof(msg));
	return TC_ACT_SHOT;
}

/* send_drop_notify takes the negative code returned by a datapath function. */
#define send_drop_notify(skb, src, dst, dst_id, err, dir) \
	__send_drop_notify(skb, src, dst, dst_id, (__u8)(-(err)), dir, __MAGIC_FILE__, __LINE__)

#endif /* __HOPLAB_DROP_H */
