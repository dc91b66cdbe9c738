// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* bpf_sock.c: socket-level load balancing, the programs of a cgroup v2
 * directory (lib/sock.h). They act on the sockets its processes create.
 *
 *   cgroup/connect4     connect() of TCP and UDP sockets: a Service VIP:port
 *     hoplab_sock4_connect   becomes a backend (sock4_xlate_fwd); the
 *                            connection's packets carry the backend from
 *                            the first SYN on
 *   cgroup/sendmsg4     sendmsg() with an address, on unconnected UDP
 *     hoplab_sock4_sendmsg   sockets: the same translation per datagram
 *   cgroup/recvmsg4     (5.2; 4.19.57) recvmsg() on UDP sockets: a reply
 *     hoplab_sock4_recvmsg   from a backend appears to come from the VIP
 *                            (sock4_xlate_rev)
 *   cgroup_skb/egress   only where recvmsg4 is missing: records the UDP
 *     hoplab_sock4_udp_egress flows sendmsg4 translated for the tc path's
 *                            reverse NAT (sock4_udp_egress)
 *
 * Maps are shared with bpf_lxc.c: the loader replaces this object's maps
 * with the ones of the lxc object.
 */

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/lb.h"
#include "lib/sock.h"

SEC("cgroup/connect4")
int hoplab_sock4_connect(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_fwd(ctx, SOCK_HOOK_CONNECT4);
}

SEC("cgroup/sendmsg4")
int hoplab_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	return sock4_xlate_fwd(ctx, SOCK_HOOK_SENDMSG4);
}

__probed("cgroup/recvmsg4")
SEC("cgroup/recvmsg4")
int hoplab_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	sock4_xlate_rev(ctx);
	/* The verifier accepts nothing but 1 from recvmsg4. */
	return SYS_PROCEED;
}

SEC("cgroup_skb/egress")
int hoplab_sock4_udp_egress(struct __sk_buff *skb)
{
	sock4_udp_egress(skb);
	return 1; /* let the packet go */
}

char __license[] SEC("license") = "Dual BSD/GPL";
