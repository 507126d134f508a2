// SPDX-License-Identifier: GPL-2.0
/* tc ingress on the substrate interface: IPv6 for a local node -> IPv4, delivered to it; IPv6
 * for a gateway this host runs -> IPv4 into the served network's TUN, where the kernel's
 * nftables SNATs it (include/gateway.h).
 *
 * The checks of onm.agent.receive, in its order: the destination must be a local node's
 * substrate address, the source must carry the same network id and be an allowed sender of
 * that (network, IPv4) (anti-spoofing: onm_sources holds exactly the residents' sources that
 * are not local nodes), else the packet is dropped and counted, unless it may be a gateway's
 * (the core judges those). A TCP, UDP or ICMPv6 echo packet is translated (RFC 7915 section 5)
 * and redirected to the node's port with the sender's MAC (a veth: bpf_redirect_peer, into the
 * node's namespace). A member's pool address is in `onm_locals` with the pool IP (as
 * `Tables.by_substrate`): delivered as the pool IP, each delivery counted per address
 * (`onm_pool_deliveries`, read into the core's `CoreState.delivered`); a steered variant of a
 * node's own address (a gateway's reply in anycast mode) is the node's. A packet from an
 * external address (a reply, an inbound connection to a public IP) is taken from a gateway of
 * the network's edge pools (`onm_gateways`) for an address no resident has and outside the
 * network (`onm_residents`, the routes' inside entries), from the router MAC. A gateway's packet
 * passes the checks of onm.agent.gateway (`onm_gateway_admit`) and the same translation, then
 * enters the TUN's ingress as if the core had written it there; a sender may use a steered
 * variant of its own address (`ONM_SOURCE_F_STEERED`), and a gateway of an anycast pool takes
 * the pool's shared /64 as its own (`onm_duties` has it). Traffic not for a node or a
 * gateway (the host's own), extension headers, ICMPv6 errors and what needs an ICMP error go
 * to the stack and the userspace core untouched. An encap network's packet is opened instead
 * of translated (include/encap.h), once the outer addresses are where the inner ones live. */
#include "include/drop.h"
#include "include/encap.h"
#include "include/gateway.h"
#include "include/maps.h"
#include "include/siit.h"

/* The rewritten frame to the node: its MAC and the sender's, then into its port (a veth's peer
 * is the node's own interface: straight into its namespace's ingress). */
static __always_inline int onm_deliver(struct __sk_buff *skb, const __u8 *node_mac,
				       const __u8 *sender_mac, __u32 ifindex, __u32 veth)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > end)
		return onm_drop(ONM_DROP_TRANSMIT_FAILED);
	onm_mac_copy(eth->h_dest, node_mac);
	onm_mac_copy(eth->h_source, sender_mac);
	return veth ? bpf_redirect_peer(ifindex, 0) : bpf_redirect(ifindex, 0);
}

/* An encapsulated network's packet for a local node from a resident (the checks above passed):
 * opened and delivered as the core's _encap_to_node, or the core's to judge. A gateway's (to
 * or from one) is the core's too. */
static __always_inline int onm_encap_receive(struct __sk_buff *skb, struct ipv6hdr *ip6,
					     const struct onm_local_value *local,
					     const struct onm_source_value *source, __u32 vni,
					     __u32 payload)
{
	__u8 node_mac[ETH_ALEN], sender_mac[ETH_ALEN], daddr[16];
	__u32 ifindex, veth, pooled;
	__be32 sender_ip, node_ip;
	int why;

	if (!local || !source)
		return onm_slow(ONM_SLOW_ENCAP);
	__builtin_memcpy(&sender_ip, &ip6->saddr.in6_u.u6_addr8[12], 4);
	__builtin_memcpy(&node_ip, local->ip, 4);
	why = onm_encap_open_admit(skb, ip6->nexthdr, payload, sender_ip, node_ip);
	if (why)
		return onm_slow(why);
	__builtin_memcpy(daddr, &ip6->daddr, 16);
	onm_mac_copy(node_mac, local->mac);
	onm_mac_copy(sender_mac, source->mac);
	ifindex = local->ifindex;
	veth = local->flags & ONM_PORT_F_VETH;
	pooled = local->flags & ONM_PORT_F_POOL_ADDRESS;
	if (pooled) /* delivered from here on, as the core counts it before opening */
		onm_count_delivery(daddr, skb->gso_segs ? skb->gso_segs : 1);
	why = onm_encap_pop(skb);
	if (why > 0)
		return onm_slow(ONM_SLOW_ENCAP);
	if (why < 0)
		return onm_drop(ONM_DROP_TRANSMIT_FAILED);
	return onm_deliver(skb, node_mac, sender_mac, ifindex, veth);
}

SEC("tc")
int onm_substrate_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct ipv6hdr *ip6 = data + ETH_HLEN;
	struct onm_source_key source_key = {};
	struct onm_gateway_key gateway_key = {};
	struct onm_source_value *source;
	struct onm_network_value *network;
	struct onm_local_value *local;
	struct onm_duty_value *duty = 0;
	struct onm_v6 v6;
	__u32 vni, at, total, segment;
	__u64 icmp_rest = 0;
	__u8 node_mac[ETH_ALEN], sender_mac[ETH_ALEN], unsteered[16];
	__be32 sender_ip, node_ip;
	__u32 node_ifindex, node_veth, pooled, segments;
	__u8 ttl;
	int rewritten;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IPV6))
		return onm_slow(ONM_SLOW_NOT_IPV6);
	if ((void *)(ip6 + 1) > end)
		return onm_slow(ONM_SLOW_TRUNCATED);
	if (ip6->version != 6)
		return onm_slow(ONM_SLOW_HEADER_UNUSUAL);
	v6.payload = bpf_ntohs(ip6->payload_len);
	if (v6.payload != skb->len - ETH_HLEN - sizeof(*ip6))
		return onm_slow(ONM_SLOW_HEADER_UNUSUAL);
	vni = onm_vni_of(ip6->saddr.in6_u.u6_addr8);
	local = bpf_map_lookup_elem(&onm_locals, &ip6->daddr);
	if (!local && onm_unsteer(unsteered, ip6->daddr.in6_u.u6_addr8)) {
		/* a steered variant of a node's own address (Tables.port_at): an anycast reply */
		local = bpf_map_lookup_elem(&onm_locals, unsteered);
		if (local && (local->flags & ONM_PORT_F_POOL_ADDRESS))
			local = 0; /* a pool address is never steered: the core's to refuse */
	}
	if (!local) { /* a gateway's, or the host's own */
		int why = onm_gateway_admit(&duty, ip6, vni);

		if (why)
			return why > 0 ? onm_slow(why) : onm_drop(-why);
	} else if (vni != local->vni) {
		return onm_drop(ONM_DROP_NETWORK_MISMATCH);
	}
	source_key.vni = vni;
	__builtin_memcpy(source_key.ip, &ip6->saddr.in6_u.u6_addr8[12], 4);
	__builtin_memcpy(source_key.source, &ip6->saddr, 16);
	source = bpf_map_lookup_elem(&onm_sources, &source_key);
	if (!source && duty) { /* a steered variant of a resident's own address (_sent_by)? */
		if (onm_unsteer(source_key.source, ip6->saddr.in6_u.u6_addr8))
			source = bpf_map_lookup_elem(&onm_sources, &source_key);
		if (!source || !(source->flags & ONM_SOURCE_F_STEERED))
			return onm_slow(ONM_SLOW_GATEWAY_SENDER); /* the core judges (and counts) it */
	}
	if (!source) {
		gateway_key.vni = vni;
		__builtin_memcpy(gateway_key.prefix, &ip6->saddr, 8);
		if (!bpf_map_lookup_elem(&onm_gateways, &gateway_key))
			return onm_drop(ONM_DROP_SPOOFED_SUBSTRATE_SOURCE);
		if (!onm_external(vni, &ip6->saddr.in6_u.u6_addr8[12]))
			return onm_slow(ONM_SLOW_FROM_GATEWAY); /* the core judges (and counts) it */
	}
	/* a node's network is in its local value (vni checked equal above): one cold lookup fewer;
	 * a served network's in onm_networks */
	network = local ? &local->network : onm_network(vni);
	if (!network)
		return onm_slow(ONM_SLOW_NOT_LOCAL);
	if (network->flags & ONM_NET_F_ENCAP)
		return onm_encap_receive(skb, ip6, local, source, vni, v6.payload);
	v6.next_header = ip6->nexthdr;
	at = onm_check_at(v6.next_header);
	if (!at && v6.next_header != ONM_IPPROTO_ICMPV6)
		return onm_slow(ONM_SLOW_EXTENSION_HEADER);
	ttl = ip6->hop_limit;
	if (ttl == 0 || (ttl == 1 && (network->flags & ONM_NET_F_DECREMENT_TTL)))
		return onm_slow(ONM_SLOW_HEADER_UNUSUAL);
	if (network->flags & ONM_NET_F_DECREMENT_TTL)
		ttl--;
	segment = at ? onm_segment(skb, data + ETH_HLEN + sizeof(*ip6), end, v6.next_header,
				   v6.payload)
		     : v6.payload;
	total = sizeof(struct iphdr) + segment; /* a GSO packet's segments count */
	if (total > network->ipv4_mtu)
		return onm_slow(ONM_SLOW_TOO_BIG); /* Packet Too Big is the core's to build */
	__builtin_memcpy(v6.saddr, &ip6->saddr, 16);
	__builtin_memcpy(v6.daddr, &ip6->daddr, 16);
	v6.hop_limit = ip6->hop_limit;
	v6.traffic_class = ip6->priority << 4 | ip6->flow_lbl[0] >> 4;
	__builtin_memcpy(&sender_ip, &ip6->saddr.in6_u.u6_addr8[12], 4);
	if (local) {
		__builtin_memcpy(&node_ip, local->ip, 4);
		onm_mac_copy(node_mac, local->mac);
		node_ifindex = local->ifindex;
		node_veth = local->flags & ONM_PORT_F_VETH;
		pooled = local->flags & ONM_PORT_F_POOL_ADDRESS;
	} else if (duty) { /* to the external address the sender embedded, into the TUN */
		__builtin_memcpy(&node_ip, &ip6->daddr.in6_u.u6_addr8[12], 4);
		node_ifindex = duty->ifindex;
		node_veth = 0;
		pooled = 0;
	} else {
		return onm_slow(ONM_SLOW_NOT_LOCAL);
	}
	if (source)
		onm_mac_copy(sender_mac, source->mac);
	else /* from outside, through the router */
		onm_mac_copy(sender_mac, network->router_mac);
	segments = skb->gso_segs ? skb->gso_segs : 1;
	if (at) {
		enum onm_slow why = onm_transport_slow(data + ETH_HLEN + sizeof(*ip6), end, v6.next_header,
						       v6.payload);

		if (why)
			return onm_slow(why);
	} else {
		__u8 *icmp = data + ETH_HLEN + sizeof(*ip6);
		__s64 rest;

		if (v6.payload < 8 || (void *)(icmp + 8) > end)
			return onm_slow(ONM_SLOW_TRUNCATED);
		if (icmp[0] != ONM_ICMPV6_ECHO_REQUEST && icmp[0] != ONM_ICMPV6_ECHO_REPLY)
			return onm_slow(ONM_SLOW_ICMP_NOT_ECHO);
		rest = onm_icmp_verify(
			skb, ETH_HLEN + sizeof(*ip6), v6.payload,
			onm_pseudo6_sum(v6.saddr, v6.daddr, v6.payload, ONM_IPPROTO_ICMPV6));
		if (rest == ONM_ICMP_BAD_CHECKSUM) {
			if (pooled) /* the core counts it before its translator drops it */
				onm_count_delivery(v6.daddr, segments);
			return onm_drop(ONM_DROP_ICMP_BAD_CHECKSUM);
		}
		if (rest < 0)
			return onm_slow(ONM_SLOW_TOO_BIG);
		icmp_rest = rest;
	}
	v6.segment = segment;
	if (pooled) /* from here it is delivered (or a failed rewrite, which the core counts too) */
		onm_count_delivery(v6.daddr, segments);

	rewritten = onm_siit_6to4(skb, &v6, sender_ip, node_ip, ttl,
				  (network->flags & ONM_NET_F_COPY_TOS) ? v6.traffic_class : 0,
				  onm_next_ident(), icmp_rest);
	if (rewritten > 0)
		return onm_slow(ONM_SLOW_TOO_BIG);
	if (rewritten < 0)
		return onm_drop(ONM_DROP_TRANSMIT_FAILED);
	if (!local) { /* the TUN is an L3 device: the redirect drops the Ethernet header */
		onm_count_tenant(vni, segments, skb->len - ETH_HLEN, 0);
		return bpf_redirect(node_ifindex, BPF_F_INGRESS);
	}
	return onm_deliver(skb, node_mac, sender_mac, node_ifindex, node_veth);
}

char LICENSE[] SEC("license") = "GPL";
