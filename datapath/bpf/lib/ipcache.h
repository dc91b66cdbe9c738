// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* ipcache: the security identity (and tunnel endpoint) of any IP, by
 * longest-prefix match. Unknown addresses are WORLD.
 */
#ifndef __HOPLAB_IPCACHE_H
#define __HOPLAB_IPCACHE_H

#include "common.h"
#include "maps.h"

static __always_inline struct remote_endpoint_info *ipcache_lookup4(__be32 addr)
{
	struct ipcache_key key = {
		.prefixlen = 32,
		.ip = addr,
	};

	return bpf_map_lookup_elem(&hoplab_ipcache, &key);
}

/* resolve_identity4 returns the identity of addr, WORLD if unknown. */
static __always_inline __u32 resolve_identity4(__be32 addr)
{
	struct remote_endpoint_info *info = ipcache_lookup4(addr);

	if (info && info->sec_identity)
		return info->sec_identity;
	return IDENTITY_WORLD;
}

#endif /* __HOPLAB_IPCACHE_H */
