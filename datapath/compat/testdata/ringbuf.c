//go:build ignore
/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* ringbuf: events through a BPF ring buffer (5.8) instead of a perf event
 * array: the map type and bpf_ringbuf_output both break 4.19. */
#include "compat.h"

struct {
	__uint(type, MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} ring SEC(".maps");

SEC("tc")
int ringbuf(struct __sk_buff *skb)
{
	__u64 ev = 1;

	bpf_ringbuf_output(&ring, &ev, sizeof(ev), 0);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
