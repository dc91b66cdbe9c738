// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Trace notifications: one per observation point a packet passes, with the
 * first TRACE_PAYLOAD_LEN bytes of the packet appended by the perf helper.
 *
 * The TRACE_* and CT reason numbers are Cilium's. The Go names are generated
 * from the "#define NAME value / * description * /" lines below
 * (datapath/internal/hdrgen), so this header is the one source of truth.
 */
#ifndef __HOPLAB_TRACE_H
#define __HOPLAB_TRACE_H

#include "maps.h"

/* Message types (Cilium's CILIUM_NOTIFY_*). */
#define NOTIFY_DROP 1  /* drop notification */
#define NOTIFY_TRACE 4 /* trace notification */

/* Observation points (trace subtypes). */
#define TRACE_TO_LXC 0       /* to-container */
#define TRACE_TO_PROXY 1     /* to-proxy */
#define TRACE_TO_HOST 2      /* to-host */
#define TRACE_TO_STACK 3     /* to-stack */
#define TRACE_TO_OVERLAY 4   /* to-overlay */
#define TRACE_FROM_LXC 5     /* from-container */
#define TRACE_FROM_PROXY 6   /* from-proxy */
#define TRACE_FROM_HOST 7    /* from-host */
#define TRACE_FROM_STACK 8   /* from-stack */
#define TRACE_FROM_OVERLAY 9 /* from-overlay */
#define TRACE_FROM_NETWORK 10 /* from-network */
#define TRACE_TO_NETWORK 11  /* to-network */

/* Trace reasons: the connection-tracking verdict of the packet. */
#define TRACE_REASON_POLICY 0         /* new */
#define TRACE_REASON_CT_ESTABLISHED 1 /* established */
#define TRACE_REASON_CT_REPLY 2       /* reply */
#define TRACE_REASON_CT_RELATED 3     /* related */
#define TRACE_REASON_UNKNOWN 255      /* unknown */

/* Monitor aggregation levels (Cilium's): with MEDIUM, FROM_* points are
 * not reported and TO_* points only for new connections and packets
 * carrying SYN, FIN or RST.
 */
#define MONITOR_AGGREGATION_NONE 0
#define MONITOR_AGGREGATION_MEDIUM 1

#define TRACE_PAYLOAD_LEN 128
#define NOTIFY_VERSION 1

/* Common header of every notification (Cilium's NOTIFY_CAPTURE_HDR). */
#define NOTIFY_CAPTURE_HDR \
	__u8 type;         \
	__u8 subtype;      \
	__u16 source;      \
	__u32 hash;        \
	__u32 len_orig;    \
	__u16 len_cap;     \
	__u16 version;

/* Trace notification, followed by len_cap packet bytes. */
struct trace_notify {
	NOTIFY_CAPTURE_HDR
	__u32 src_label;
	__u32 dst_label;
	__u16 dst_id;
	__u8 reason;
	__u8 flags;
	__u32 ifindex;
};

static __always_inline __u32 notify_cap_len(const struct __sk_buff *skb)
{
	__u32 len = skb->len;

	return len < TRACE_PAYLOAD_LEN ? len : TRACE_PAYLOAD_LEN;
}

#define ENOENT 2

/* events_muted reports whether this CPU's notifications have no reader. */
static __always_inline int events_muted(void)
{
	__u32 zero = 0;
	__u32 *muted = bpf_map_lookup_elem(&hoplab_events_muted, &zero);

	return muted && *muted;
}

/* notify_output sends a notification and cap packet bytes; without a
 * reader it mutes this CPU's notifications (see hoplab_events_muted).
 */
static __always_inline void notify_output(struct __sk_buff *skb, __u32 cap, void *msg, __u64 size)
{
	long ret = bpf_perf_event_output(skb, &hoplab_events, ((__u64)cap << 32) | BPF_F_CURRENT_CPU,
					 msg, size);

	if (ret == -ENOENT) {
		__u32 zero = 0;
		__u32 *muted = bpf_map_lookup_elem(&hoplab_events_muted, &zero);

		if (muted)
			*muted = 1;
	}
}

static __always_inline int monitor_aggregates(void)
{
	struct hoplab_config *cfg = config_get();

	return cfg && cfg->monitor_aggregation >= MONITOR_AGGREGATION_MEDIUM;
}

/* send_trace_notify emits a trace event for the packet at obs_point.
 * report marks packets that are reported even when the monitor aggregates
 * (new connections, SYN/FIN/RST).
 */
static __always_inline void send_trace_notify(struct __sk_buff *skb, __u8 obs_point, __u16 source,
					      __u32 src, __u32 dst, __u16 dst_id, __u32 ifindex,
					      __u8 reason, int report)
{
	__u32 cap;
	struct trace_notify msg;

	if ((!report && monitor_aggregates()) || events_muted())
		return;
	cap = notify_cap_len(skb);
	msg = (struct trace_notify){
		.type = NOTIFY_TRACE,
		.subtype = obs_point,
		.source = source,
		.hash = skb->hash,
		.len_orig = skb->len,
		.len_cap = cap,
		.version = NOTIFY_VERSION,
		.src_label = src,
		.dst_label = dst,
		.dst_id = dst_id,
		.reason = reason,
		.ifindex = ifindex,
	};

	notify_output(skb, cap, &msg, sizeof(msg));
}

#endif /* __HOPLAB_TRACE_H */
