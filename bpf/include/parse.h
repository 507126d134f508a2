/* Parsing: the headers the programs read, and the few tests on them (RFC 791, RFC 8200). */
#ifndef ONM_PARSE_H
#define ONM_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include "generated/defs.h"

#define ONM_IPV4_DF 0x4000
#define ONM_IPV4_MF 0x2000
#define ONM_IPV4_OFFSET 0x1fff
#define ONM_IPPROTO_ICMPV6 58
#define ONM_ICMP_ECHO_REPLY 0
#define ONM_ICMP_ECHO_REQUEST 8
#define ONM_ICMPV6_ECHO_REQUEST 128
#define ONM_ICMPV6_ECHO_REPLY 129
#define ONM_TCP_CHECK 16 /* offset of the checksum in the TCP header */
#define ONM_UDP_CHECK 6
#define ONM_DF_THRESHOLD 1260 /* RFC 7915 5.1: larger unfragmented results get DF set */

static __always_inline int onm_mac_eq(const __u8 *a, const __u8 *b)
{
	return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]) | (a[4] ^ b[4]) |
		(a[5] ^ b[5])) == 0;
}

static __always_inline void onm_mac_copy(__u8 *to, const __u8 *from)
{
	__builtin_memcpy(to, from, ETH_ALEN);
}

/* RFC 7915 4.1 drops illegal sources (0/8, 127/8, class D and E): the slow path answers. */
static __always_inline int onm_unicast_v4(__u32 address_be)
{
	__u8 first = bpf_ntohl(address_be) >> 24;
	return first != 0 && first != 127 && first < 224;
}

/* The L4 checksum offset of TCP and UDP, 0 for anything else. */
static __always_inline __u32 onm_check_at(__u8 protocol)
{
	if (protocol == IPPROTO_TCP)
		return ONM_TCP_CHECK;
	if (protocol == IPPROTO_UDP)
		return ONM_UDP_CHECK;
	return 0;
}

/* admission's transport checks (onm.packet.admission._check_transport) on a whole TCP or UDP
 * datagram of `length` octets at `l4`, and RFC 7915 4.5's zero UDP checksum: 0 when the fast
 * path may take it, else why not. */
static __always_inline enum onm_slow onm_transport_slow(__u8 *l4, void *end, __u8 protocol,
							 __u32 length)
{
	if (protocol == IPPROTO_TCP) {
		if (length < 20 || (void *)(l4 + 20) > end)
			return ONM_SLOW_TRUNCATED;
		if (l4[12] >> 4 < 5 || (l4[12] >> 4) * 4 > length)
			return ONM_SLOW_HEADER_UNUSUAL; /* Data Offset outside the datagram */
		return 0;
	}
	if (length < 8 || (void *)(l4 + 8) > end)
		return ONM_SLOW_TRUNCATED;
	if (bpf_ntohs(*(__be16 *)(l4 + 4)) != length)
		return ONM_SLOW_HEADER_UNUSUAL; /* UDP Length disagrees */
	if (*(__u16 *)(l4 + ONM_UDP_CHECK) == 0)
		return ONM_SLOW_UDP_ZERO_CHECKSUM;
	return 0;
}

/* The largest datagram (transport header and data, of `length` octets at `l4`) the packet
 * stands for on the wire. A GSO super-packet (a node's TSO, GRO on the way) is cut into
 * segments of its transport header and `gso_size` octets of data (the last one shorter), so
 * the MTU applies to that, not to the super-packet. bpf_skb_change_proto leaves gso_size as it
 * is since Linux 5.14 (364745fbe981, "Do not change gso_size during bpf_skb_change_proto()")
 * and switches SKB_GSO_TCPV4 and SKB_GSO_TCPV6: the segments keep their data and each grows
 * (4->6) or shrinks (6->4) by the 20 octets of the header, which the callers' limits count.
 * The caller has checked the transport header (onm_transport_slow). */
static __always_inline __u32 onm_segment(struct __sk_buff *skb, __u8 *l4, void *end,
					 __u8 protocol, __u32 length)
{
	__u32 gso = skb->gso_size, header;

	if (!gso)
		return length;
	if (protocol == IPPROTO_TCP) {
		if ((void *)(l4 + 20) > end)
			return length;
		header = (l4[12] >> 4) * 4;
	} else if (protocol == IPPROTO_UDP) {
		header = 8; /* UDP GSO (SKB_GSO_UDP_L4): a UDP header on every segment */
	} else {
		return length;
	}
	return header + gso < length ? header + gso : length;
}

#endif
