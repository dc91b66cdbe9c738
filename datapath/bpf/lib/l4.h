// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
//go:build ignore

/* TCP, UDP and ICMP headers and port rewrites. */
#ifndef __HOPLAB_L4_H
#define __HOPLAB_L4_H

#include "common.h"
#include "csum.h"
#include "drop.h"

#define TCP_FLAG_FIN 0x01
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_RST 0x04
#define TCP_FLAG_ACK 0x10

#define TCP_FLAGS_REPORT (TCP_FLAG_SYN | TCP_FLAG_FIN | TCP_FLAG_RST)

#define ICMP_ECHOREPLY 0
#define ICMP_ECHO 8
#define ICMP_DEST_UNREACH 3
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

#define TCP_HLEN 20
#define UDP_HLEN 8
#define ICMP_HLEN 8

/* The first 14 bytes of a TCP header: ports, sequence numbers, flags. */
struct tcp_head {
	__be16 sport;
	__be16 dport;
	__be32 seq;
	__be32 ack_seq;
	__u8 doff;
	__u8 flags;
};

/* The first 8 bytes of a UDP header. */
struct udp_head {
	__be16 sport;
	__be16 dport;
	__be16 len;
	__sum16 check;
};

/* The first 8 bytes of an ICMP echo request or reply. */
struct icmp_head {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be16 id;
	__be16 sequence;
};

#endif /* __HOPLAB_L4_H */
