/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * compat.h: the little each test object needs, so the objects build with
 * nothing but clang (no kernel or libbpf headers, whose versions vary).
 * Helper IDs and map type numbers are those of include/uapi/linux/bpf.h.
 */
#ifndef HOPLAB_COMPAT_TESTDATA_H
#define HOPLAB_COMPAT_TESTDATA_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __noinline __attribute__((noinline))

/* BTF-style map definitions, as libbpf and cilium/ebpf read them. */
#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name

enum {
	MAP_TYPE_ARRAY = 2,
	MAP_TYPE_PROG_ARRAY = 3,
	MAP_TYPE_PERF_EVENT_ARRAY = 4,
	MAP_TYPE_QUEUE = 22,   /* Linux 4.20 */
	MAP_TYPE_RINGBUF = 27, /* Linux 5.8 */
};

#define PERF_F_CURRENT_CPU 0xffffffffULL

/* The context is only passed on, never read, so it stays opaque. */
struct __sk_buff;
struct bpf_sock_addr;
struct bpf_sk_lookup;

/* Helpers, by their number in the kernel's helper enum. */
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_tail_call)(void *ctx, void *prog_array, __u32 index) = (void *)12;
static long (*bpf_perf_event_output)(void *ctx, void *map, __u64 flags,
				     void *data, __u64 size) = (void *)25;
static long (*bpf_ringbuf_output)(void *ringbuf, void *data, __u64 size,
				  __u64 flags) = (void *)130; /* Linux 5.8 */
static long (*bpf_redirect_peer)(__u32 ifindex, __u64 flags) = (void *)155; /* Linux 5.10 */

/* A one-slot array the programs read a runtime value from, so clang cannot
 * fold the code the test depends on. */
#define CONFIG_MAP(name)                         \
	struct {                                 \
		__uint(type, MAP_TYPE_ARRAY);    \
		__uint(max_entries, 1);          \
		__type(key, __u32);              \
		__type(value, __u32);            \
	} name SEC(".maps")

static inline __u32 config_value(void *map)
{
	__u32 key = 0;
	__u32 *v = bpf_map_lookup_elem(map, &key);

	return v ? *v : 0;
}

#endif
