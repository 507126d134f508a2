/* The Internet checksum in BPF (RFC 1071), kept as 32-bit partial sums in memory order until
 * the end (ones' complement sums do not care about byte order, RFC 1071 section 2 (B)). */
#ifndef ONM_CSUM_H
#define ONM_CSUM_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "generated/defs.h"

static __always_inline __u16 onm_fold(__u64 sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

/* Sum of `len` packet octets from `at` (an odd last octet padded with zero); -1 when the
 * message is longer than ONM_ICMP_SUM_WORDS words or runs past the data. */
static __always_inline __s64 onm_sum_packet(struct __sk_buff *skb, __u32 at, __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u64 sum = 0;
	__u32 i;

	if (len > ONM_ICMP_SUM_WORDS * 2 || at > 128)
		return -1;
	for (i = 0; i < ONM_ICMP_SUM_WORDS; i++) {
		__u8 *p = data + at + i * 2;

		if (i * 2 + 1 >= len) {
			if (i * 2 + 1 == len) {
				if ((void *)(p + 1) > end)
					return -1;
				sum += *p; /* little-endian host: the octet is the word's low half */
			}
			break;
		}
		if ((void *)(p + 2) > end)
			return -1;
		sum += *(__u16 *)p;
	}
	return sum;
}

/* A 16-bit word of two octets as memory holds them. */
static __always_inline __u32 onm_word(__u8 first, __u8 second)
{
	__u16 w;
	__u8 *b = (__u8 *)&w;

	b[0] = first;
	b[1] = second;
	return w;
}

#define ONM_ICMP_TOO_LONG -1
#define ONM_ICMP_BAD_CHECKSUM -2

/* An echo's checksum verified (RFC 792, RFC 4443 2.3: `pseudo` is ICMPv6's pseudo-header sum,
 * 0 for ICMPv4): the sum of the message after its checksum field (what a rewrite needs), or
 * ONM_ICMP_TOO_LONG (the slow path's) or ONM_ICMP_BAD_CHECKSUM. */
static __always_inline __s64 onm_icmp_verify(struct __sk_buff *skb, __u32 at, __u32 length,
					     __u64 pseudo)
{
	__s64 rest = onm_sum_packet(skb, at + 4, length - 4);
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u8 *icmp = data + at;

	if (rest < 0 || (void *)(icmp + 4) > end)
		return ONM_ICMP_TOO_LONG;
	if (onm_fold(rest + onm_word(icmp[0], icmp[1]) + *(__u16 *)(icmp + 2) + pseudo) != 0xffff)
		return ONM_ICMP_BAD_CHECKSUM;
	return rest;
}

#endif
