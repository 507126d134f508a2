/* SIIT (RFC 7915) on an skb: swap the IP header for the other family's, move TCP/UDP checksums
 * to the new pseudo-header incrementally (RFC 1624, bpf_l4_csum_replace with BPF_F_PSEUDO_HDR,
 * so CHECKSUM_PARTIAL packets stay right) and rewrite ICMP echo as the other family's echo.
 * The callers have checked everything else; these only rewrite (0, or -1 when a helper failed
 * after the packet changed). */
#ifndef ONM_SIIT_H
#define ONM_SIIT_H

#include "csum.h"
#include "parse.h"

#define ONM_L3 ETH_HLEN

/* What the 4->6 rewrite needs of the IPv4 header it replaces. */
struct onm_v4 {
	__be32 saddr;
	__be32 daddr;
	__u16 payload; /* octets after the header */
	__u8 protocol;
	__u8 ttl;
	__u8 tos;
	__u8 df; /* Don't Fragment set */
	__u64 icmp_rest; /* onm_4to6_admit's result for ICMP: the sum after the checksum field */
};

struct onm_pseudo6 {
	__u8 src[16];
	__u8 dst[16];
	__be32 length;
	__be32 next_header;
};

static __always_inline __u32 onm_pseudo6_sum(const __u8 *src, const __u8 *dst, __u32 length,
					      __u8 next_header)
{
	struct onm_pseudo6 ph;

	__builtin_memcpy(ph.src, src, 16);
	__builtin_memcpy(ph.dst, dst, 16);
	ph.length = bpf_htonl(length);
	ph.next_header = bpf_htonl(next_header);
	return (__u32)bpf_csum_diff(0, 0, (__be32 *)&ph, sizeof(ph), 0);
}

/* An IPv6 fixed header (RFC 8200 section 3), flow label 0, both encodings' (SIIT RFC 7915 5.1
 * and RFC 2473 6.3 leave it zero). */
static __always_inline void onm_ipv6_header(struct ipv6hdr *ip6, __u8 traffic_class,
					    __u16 payload, __u8 next_header, __u8 hop_limit,
					    const __u8 *src6, const __u8 *dst6)
{
	ip6->version = 6;
	ip6->priority = traffic_class >> 4;
	ip6->flow_lbl[0] = (traffic_class & 0x0f) << 4;
	ip6->flow_lbl[1] = 0;
	ip6->flow_lbl[2] = 0;
	ip6->payload_len = bpf_htons(payload);
	ip6->nexthdr = next_header;
	ip6->hop_limit = hop_limit;
	__builtin_memcpy(&ip6->saddr, src6, 16);
	__builtin_memcpy(&ip6->daddr, dst6, 16);
}

/* A TCP/UDP checksum at `offset` moved by `diff` (the old addresses out, the new in). */
static __always_inline int onm_move_l4_csum(struct __sk_buff *skb, __u32 offset, __s64 diff,
					    __u8 protocol)
{
	__u64 flags = BPF_F_PSEUDO_HDR;

	if (protocol == IPPROTO_UDP)
		flags |= BPF_F_MARK_MANGLED_0; /* a result of zero is sent as all ones */
	return bpf_l4_csum_replace(skb, offset, 0, diff, flags) ? -1 : 0;
}

/* IPv4 -> IPv6 (RFC 7915 section 4). `icmp_rest` is the sum of the ICMP message after its
 * checksum field (an echo's identifier, sequence and data), for ICMP only. */
static __always_inline int onm_siit_4to6(struct __sk_buff *skb, const struct onm_v4 *v4,
					 const __u8 *src6, const __u8 *dst6, __u8 hop_limit,
					 __u8 traffic_class, __u64 icmp_rest)
{
	__u8 protocol = v4->protocol == IPPROTO_ICMP ? ONM_IPPROTO_ICMPV6 : v4->protocol;
	__u32 l4 = ONM_L3 + sizeof(struct ipv6hdr);
	__be32 old[2] = { v4->saddr, v4->daddr };
	__u8 new[32];
	void *data, *end;
	struct ipv6hdr *ip6;
	struct ethhdr *eth;
	__u32 at = onm_check_at(protocol);
	__s64 diff = 0;

	__builtin_memcpy(new, src6, 16);
	__builtin_memcpy(new + 16, dst6, 16);
	if (at)
		diff = bpf_csum_diff(old, sizeof(old), (__be32 *)new, sizeof(new), 0);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IPV6), 0))
		return 1; /* unchanged: the slow path's */
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	ip6 = data + ONM_L3;
	if ((void *)(ip6 + 1) > end)
		return -1;
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	onm_ipv6_header(ip6, traffic_class, v4->payload, protocol, hop_limit, new, new + 16);
	if (protocol == ONM_IPPROTO_ICMPV6) {
		__u8 *icmp = data + l4;
		__u64 sum;

		if ((void *)(icmp + 4) > end)
			return -1;
		icmp[0] = icmp[0] == ONM_ICMP_ECHO_REQUEST ? ONM_ICMPV6_ECHO_REQUEST
							   : ONM_ICMPV6_ECHO_REPLY;
		sum = icmp_rest + onm_word(icmp[0], icmp[1]) +
		      onm_pseudo6_sum(new, new + 16, v4->payload, ONM_IPPROTO_ICMPV6);
		*(__u16 *)(icmp + 2) = (__u16)~onm_fold(sum);
		return 0;
	}
	return at ? onm_move_l4_csum(skb, l4 + at, diff, protocol) : 0;
}

/* admission's checks of an IPv4 header (`check_ipv4`, to the options) at `ip`, of a datagram
 * the skb holds `length` octets of: 0 with `*total` set, a SlowPath reason (> 0: options,
 * fragments, odd lengths or version, for the core to judge), or a DropReason negated. */
static __always_inline int onm_ipv4_admit(const struct iphdr *ip, void *end, __u32 length,
					  __u32 *total)
{
	if ((void *)(ip + 1) > end)
		return ONM_SLOW_TRUNCATED;
	if (ip->version != 4 || ip->ihl < 5)
		return ONM_SLOW_HEADER_UNUSUAL;
	if (ip->ihl != 5)
		return ONM_SLOW_IPV4_OPTIONS;
	*total = bpf_ntohs(ip->tot_len);
	if (*total != length || *total < sizeof(*ip))
		return ONM_SLOW_HEADER_UNUSUAL; /* short, or Ethernet padding to trim */
	if (onm_fold((__u32)bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0)) != 0xffff)
		return -ONM_DROP_IPV4_BAD_CHECKSUM;
	if (ip->frag_off & bpf_htons(ONM_IPV4_MF | ONM_IPV4_OFFSET))
		return ONM_SLOW_FRAGMENT;
	return 0;
}

/* The 4->6 path's checks of a datagram after its IPv4 header (`l4` octets into the skb's data),
 * as the core's admission and translator judge it: TCP and UDP headers, ICMP echo and its
 * checksum, then RFC 7915 4.1's limit (DF set and too big wants Fragmentation Needed, DF clear
 * and over the lowest IPv6 MTU wants fragments: both the core's; a GSO packet's largest
 * segment counts). 0 with `v4->icmp_rest` set for ICMP, a SlowPath reason (> 0), or a DropReason
 * negated (< 0). `refuse`: a drop the core makes after the transport checks and before the
 * ICMP checksum (0: none). */
static __always_inline int onm_4to6_admit_at(struct __sk_buff *skb, const __u32 l4,
					     struct onm_v4 *v4,
					     const struct onm_network_value *network, int refuse)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 at, segment, limit;

	if (!v4 || !network)
		return ONM_SLOW_HEADER_UNUSUAL;
	at = onm_check_at(v4->protocol);
	segment = v4->payload;

	if (at) {
		enum onm_slow why = onm_transport_slow(data + l4, end, v4->protocol, v4->payload);

		if (why)
			return why;
		if (refuse)
			return -refuse;
		segment = onm_segment(skb, data + l4, end, v4->protocol, v4->payload);
	} else if (v4->protocol == IPPROTO_ICMP) {
		__u8 *icmp = data + l4;
		__s64 rest;

		if (v4->payload < 8 || (void *)(icmp + 8) > end)
			return ONM_SLOW_TRUNCATED;
		if (icmp[0] != ONM_ICMP_ECHO_REQUEST && icmp[0] != ONM_ICMP_ECHO_REPLY)
			return ONM_SLOW_ICMP_NOT_ECHO;
		if (refuse) /* before the translator's ICMP checksum check, as the core */
			return -refuse;
		rest = onm_icmp_verify(skb, l4, v4->payload, 0);
		if (rest == ONM_ICMP_BAD_CHECKSUM)
			return -ONM_DROP_ICMP_BAD_CHECKSUM;
		if (rest < 0)
			return ONM_SLOW_TOO_BIG;
		v4->icmp_rest = rest;
	} else {
		return ONM_SLOW_PROTOCOL;
	}
	limit = network->ipv6_mtu;
	if (!v4->df && network->lowest_ipv6_mtu < limit)
		limit = network->lowest_ipv6_mtu;
	if (sizeof(struct ipv6hdr) + segment > limit)
		return ONM_SLOW_TOO_BIG;
	return 0;
}

/* onm_4to6_admit_at behind an Ethernet header (node_ingress) and at offset 0 (a TUN's egress,
 * gateway_egress): global functions, each proved once, not once per way of its caller (the
 * offset a constant in each, so the packet bounds stay known). */
__attribute__((noinline)) int onm_4to6_admit(struct __sk_buff *skb, struct onm_v4 *v4,
					     const struct onm_network_value *network, int refuse)
{
	return onm_4to6_admit_at(skb, ETH_HLEN + sizeof(struct iphdr), v4, network, refuse);
}

__attribute__((noinline)) int onm_4to6_admit_l3(struct __sk_buff *skb, struct onm_v4 *v4,
						const struct onm_network_value *network, int refuse)
{
	return onm_4to6_admit_at(skb, sizeof(struct iphdr), v4, network, refuse);
}

/* What the 6->4 rewrite needs of the IPv6 header it replaces. */
struct onm_v6 {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 payload;
	__u16 segment; /* the payload of the largest segment, a GSO packet's (else `payload`) */
	__u8 next_header;
	__u8 hop_limit;
	__u8 traffic_class;
};

/* IPv6 -> IPv4 (RFC 7915 section 5) to (src4, dst4). `icmp_rest` as for onm_siit_4to6. */
static __always_inline int onm_siit_6to4(struct __sk_buff *skb, const struct onm_v6 *v6,
					 __be32 src4, __be32 dst4, __u8 ttl, __u8 tos,
					 __u16 identification, __u64 icmp_rest)
{
	__u8 protocol = v6->next_header == ONM_IPPROTO_ICMPV6 ? IPPROTO_ICMP : v6->next_header;
	__u32 l4 = ONM_L3 + sizeof(struct iphdr);
	__u32 total = sizeof(struct iphdr) + v6->payload;
	__be32 new[2] = { src4, dst4 };
	__u32 at = onm_check_at(protocol);
	struct iphdr *ip;
	struct ethhdr *eth;
	void *data, *end;
	__s64 diff = 0;

	if (at)
		diff = bpf_csum_diff((__be32 *)v6->saddr, 32, new, sizeof(new), 0);
	if (bpf_skb_change_proto(skb, bpf_htons(ETH_P_IP), 0))
		return 1;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	ip = data + ONM_L3;
	if ((void *)(ip + 1) > end)
		return -1;
	eth->h_proto = bpf_htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->tos = tos;
	ip->tot_len = bpf_htons(total);
	ip->id = bpf_htons(identification);
	/* by the segment's size: GSO copies this header to every segment (the last one, shorter,
	 * may get DF where its own translation would not) */
	ip->frag_off = sizeof(struct iphdr) + v6->segment > ONM_DF_THRESHOLD ? bpf_htons(ONM_IPV4_DF)
									     : 0;
	ip->ttl = ttl;
	ip->protocol = protocol;
	ip->check = 0;
	ip->saddr = src4;
	ip->daddr = dst4;
	ip->check = ~onm_fold((__u32)bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0));
	if (protocol == IPPROTO_ICMP) {
		__u8 *icmp = data + l4;

		if ((void *)(icmp + 4) > end)
			return -1;
		icmp[0] = icmp[0] == ONM_ICMPV6_ECHO_REQUEST ? ONM_ICMP_ECHO_REQUEST
							    : ONM_ICMP_ECHO_REPLY;
		*(__u16 *)(icmp + 2) = (__u16)~onm_fold(icmp_rest + onm_word(icmp[0], icmp[1]));
		return 0;
	}
	return at ? onm_move_l4_csum(skb, l4 + at, diff, protocol) : 0;
}

#endif
