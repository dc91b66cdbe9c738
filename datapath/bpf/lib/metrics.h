// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* Per-CPU packet and byte counters keyed by (reason, direction). */
#ifndef __HOPLAB_METRICS_H
#define __HOPLAB_METRICS_H

#include "maps.h"

/* Reason used for packets that were forwarded (Cilium's REASON_FORWARDED). */
#define REASON_FORWARDED 0

static __always_inline void update_metrics(__u32 bytes, __u8 dir, __u8 reason)
{
	__u32 idx = METRICS_INDEX(reason, dir);
	struct metrics_value *val = bpf_map_lookup_elem(&hoplab_metrics, &idx);

	if (val) {
		/* Per-CPU value: no other CPU writes it. */
		val->count += 1;
		val->bytes += bytes;
	}
}

#endif /* __HOPLAB_METRICS_H */
