/* IPv4-in-IPv6 encapsulation (RFC 2473), the second encoding (onm.packet.encap): the node's
 * datagram travels untouched behind an IPv6 header with the substrate addresses SIIT would use.
 *
 * Entry (node_ingress): admission's checks for what encapsulation carries (any IPv4 protocol
 * but the IPv6-only numbers and 255; TCP, UDP and ICMP lengths), the TTL, then the 40 octets
 * pushed with bpf_skb_adjust_room (ENCAP_L3_IPV6 sets skb->protocol and, for a GSO packet,
 * SKB_GSO_IPXIP6: the kernel segments the inner TCP and rebuilds each outer header; FIXED_GSO,
 * as the node's MTU already leaves the 40 octets). Exit (substrate_ingress): the inner datagram
 * is opened only when the outer addresses are where its addresses live (no way around the
 * anti-spoofing check) and it passes admission; anything else the core judges and counts. */
#ifndef ONM_ENCAP_H
#define ONM_ENCAP_H

#include "siit.h" /* onm_ipv4_admit, the IPv4 header checks both encodings share */

#define ONM_IPPROTO_IPIP 4	       /* RFC 2473: next header 4, an IPv4 datagram */
#define ONM_TUNNEL_HOP_LIMIT 64	       /* RFC 2473 section 6.3, onm.packet.encap.TUNNEL_HOP_LIMIT */
#define ONM_ENCAP_OVERHEAD 40	       /* the IPv6 header, onm.packet.encap.OVERHEAD */
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4 /* Linux 6.3; older uapi headers lack it */
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#endif

/* Not carried by encapsulation (admission.IPV6_ONLY, RFC 8200 section 4; 255 IANA reserved). */
static __always_inline int onm_encap_refused_protocol(__u8 protocol)
{
	switch (protocol) {
	case 0: /* Hop-by-Hop Options */
	case 43: /* Routing */
	case 44: /* Fragment */
	case ONM_IPPROTO_ICMPV6:
	case 59: /* No Next Header */
	case 60: /* Destination Options */
	case 255:
		return 1;
	}
	return 0;
}

/* admission._check_transport for a whole datagram of `length` octets at `l4` under
 * encapsulation (a zero UDP checksum is carried as it is): 0, or why the core should judge. */
static __always_inline int onm_encap_transport(struct __sk_buff *skb, __u8 *l4, void *end,
					       __u8 protocol, __u32 length, __u32 *segment)
{
	enum onm_slow why;

	*segment = length;
	if (onm_encap_refused_protocol(protocol))
		return ONM_SLOW_PROTOCOL;
	if (protocol == IPPROTO_ICMP)
		return length < 8 ? ONM_SLOW_TRUNCATED : 0;
	if (protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
		return 0; /* other protocols pass as data */
	why = onm_transport_slow(l4, end, protocol, length);
	if (why && why != ONM_SLOW_UDP_ZERO_CHECKSUM) /* carried as it is, untranslated */
		return why;
	*segment = onm_segment(skb, l4, end, protocol, length);
	return 0;
}

/* The entry point's checks (onm.packet.encap.encapsulate after admission) of a datagram whose
 * IPv4 header (20 octets, checked) is at ETH_HLEN: 0, a SlowPath reason (> 0: Time Exceeded,
 * Fragmentation Needed or fragments are the core's to build), or a DropReason negated. */
static __always_inline int onm_encap_admit(struct __sk_buff *skb, const struct iphdr *ip,
					   __u32 total, const struct onm_network_value *network,
					   int refuse)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	__u32 segment;
	int why = onm_encap_transport(skb, data + ETH_HLEN + sizeof(*ip), end, ip->protocol,
				      total - sizeof(*ip), &segment);

	if (why)
		return why;
	if (refuse)
		return -refuse;
	if (ip->ttl == 0 || (ip->ttl == 1 && (network->flags & ONM_NET_F_DECREMENT_TTL)))
		return ONM_SLOW_HEADER_UNUSUAL; /* Time Exceeded is the core's to build */
	if (ONM_ENCAP_OVERHEAD + sizeof(*ip) + segment > network->ipv6_mtu)
		return ONM_SLOW_TOO_BIG;
	return 0;
}

/* The datagram at ETH_HLEN behind an IPv6 header from src6 to dst6 (its TTL one less first
 * when the network decrements, RFC 1624 section 3 eqn. 3 on the header checksum, as
 * onm.packet.ipv4.decrement_ttl): 0, 1 when the skb is unchanged (the slow path's), -1 when it
 * changed and cannot be finished. */
static __always_inline int onm_encap_push(struct __sk_buff *skb, __u32 total, const __u8 *src6,
					  const __u8 *dst6, __u8 traffic_class, int decrement)
{
	void *data, *end;
	struct ipv6hdr *ip6;
	struct ethhdr *eth;
	struct iphdr *ip;

	if (bpf_skb_adjust_room(skb, ONM_ENCAP_OVERHEAD, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV6 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return 1;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	ip6 = data + ETH_HLEN;
	ip = (void *)(ip6 + 1);
	if ((void *)(ip + 1) > end)
		return -1;
	eth->h_proto = bpf_htons(ETH_P_IPV6);
	onm_ipv6_header(ip6, traffic_class, total, ONM_IPPROTO_IPIP, ONM_TUNNEL_HOP_LIMIT, src6,
			dst6);
	if (decrement) {
		__u16 old = *(__u16 *)&ip->ttl, new;

		ip->ttl--;
		new = *(__u16 *)&ip->ttl;
		ip->check = (__u16)~onm_fold((__u64)(__u16)~ip->check + (__u16)~old + new);
	}
	return 0;
}

/* The exit point's checks (onm.packet.encap.decapsulate, then admission of the inner datagram)
 * of a packet whose IPv6 header (`payload` octets after it, checked) is at ETH_HLEN, for the
 * node `node_ip` from `sender_ip`: 0, or a SlowPath reason (the core drops it with its own
 * reason: no verdict is the kernel's here). */
static __always_inline int onm_encap_open_admit(struct __sk_buff *skb, __u8 next_header,
						__u32 payload, __be32 sender_ip, __be32 node_ip)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct iphdr *ip = data + ETH_HLEN + sizeof(struct ipv6hdr);
	__u32 total, segment;
	int why;

	if (next_header != ONM_IPPROTO_IPIP)
		return ONM_SLOW_ENCAP;
	why = onm_ipv4_admit(ip, end, payload, &total);
	if (why)
		return why > 0 ? why : ONM_SLOW_ENCAP; /* a bad checksum: the core's order */
	if (ip->ttl == 0 || ip->saddr != sender_ip || ip->daddr != node_ip)
		return ONM_SLOW_ENCAP;
	return onm_encap_transport(skb, (__u8 *)(ip + 1), end, ip->protocol, total - sizeof(*ip),
				   &segment);
}

/* The outer header off: the inner datagram at ETH_HLEN, skb->protocol IPv4 again. 0, or -1. */
static __always_inline int onm_encap_pop(struct __sk_buff *skb)
{
	void *data, *end;
	struct ethhdr *eth;

	if (bpf_skb_adjust_room(skb, -ONM_ENCAP_OVERHEAD, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_DECAP_L3_IPV4 | BPF_F_ADJ_ROOM_FIXED_GSO))
		return 1;
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	eth = data;
	if ((void *)(eth + 1) > end)
		return -1;
	eth->h_proto = bpf_htons(ETH_P_IP);
	return 0;
}

#endif
