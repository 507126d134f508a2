// SPDX-License-Identifier: GPL-2.0
/* tc ingress on a node's host-side interface: the node's IPv4 -> IPv6 onto the substrate.
 *
 * The checks of onm.agent.forwarding, in its order, against the maps the agent wrote: the port
 * must be known (else nothing is forwarded), the frame must carry the node's MAC and IP, the
 * destination MAC must be the one the node was told for the target. To the router MAC and
 * outside the network, the route's edge pool names the gateway (include/edge.h). A unicast
 * TCP, UDP or ICMP echo datagram to a remote node or a gateway is translated (RFC 7915 section
 * 4) and redirected to the substrate interface, its MACs from the neighbour table. One to a
 * node on this host (`onm_locals`) passes the same checks (as the core judges it by the
 * translation it would get elsewhere) and is delivered as sent, to the target's MAC, into its
 * namespace (bpf_redirect_peer, a veth) or to its port. Pools: a member may send from its
 * pools' IPs (`onm_pool_sources`: from its pool address); a requester's frames to a pool IP go
 * to the member its mapping names like any node's, a member's pool address on this host
 * counting its deliveries (`onm_pool_deliveries`); what a member's port sends is counted for
 * the core's passive liveness (`onm_member_sent`). Anything else (ARP, options, fragments,
 * ICMP errors, misses, routed traffic, rotating pools, a foreign source, what needs an ICMP
 * error) goes to the userspace core untouched; drops are counted per reason. An anycast edge
 * pool's flow leaves from the steered source its slot names, to the pool's shared /64
 * (include/edge.h). An encap network's datagram goes to a remote node behind an IPv6 header
 * instead (include/encap.h). */
#include "include/drop.h"
#include "include/edge.h"
#include "include/encap.h"
#include "include/maps.h"
#include "include/siit.h"

SEC("tc")
int onm_node_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct onm_port_key port_key = { .ifindex = skb->ifindex };
	struct onm_port_value *port = bpf_map_lookup_elem(&onm_ports, &port_key);
	struct onm_mapping_key mapping_key = {};
	struct onm_mapping_value *mapping;
	struct onm_local_value *local = 0;
	struct onm_pool_source_key pool_key = {};
	struct onm_pool_source_value *pooled;
	const __u8 *src6;
	__u8 steered[16];
	__u32 member, pool_target = 0;
	__u32 used;
	struct onm_edge edge = {};
	const __u8 *dst6;
	int routed, why, refuse = 0; /* a drop reason due after admission's checks, as the core's */
	struct onm_network_value *network;
	struct onm_config_value *config;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + ETH_HLEN;
	struct onm_v4 v4 = {};
	__u32 total;
	__u64 icmp_rest = 0;
	__u8 hop_limit;
	int rewritten, encap;

	if (!port)
		return onm_drop(ONM_DROP_UNKNOWN_PORT);
	if ((void *)(eth + 1) > end)
		return onm_drop(ONM_DROP_ETHERNET_TRUNCATED);
	if (!onm_mac_eq(eth->h_source, port->mac))
		return onm_drop(ONM_DROP_SPOOFED_SOURCE_MAC);
	if (eth->h_proto == bpf_htons(ETH_P_ARP))
		return onm_slow(ONM_SLOW_ARP);
	if (eth->h_proto != bpf_htons(ETH_P_IP))
		return onm_drop(ONM_DROP_ETHERTYPE_UNSUPPORTED);
	why = onm_ipv4_admit(ip, end, skb->len - ETH_HLEN, &total);
	if (why)
		return why > 0 ? onm_slow(why) : onm_drop(-why);
	src6 = port->substrate;
	member = port->flags & ONM_PORT_F_POOL_MEMBER;
	if (ip->saddr != *(__be32 *)port->ip) { /* a member may send from its pools' IPs */
		pool_key.ifindex = skb->ifindex;
		__builtin_memcpy(pool_key.ip, &ip->saddr, 4);
		pooled = bpf_map_lookup_elem(&onm_pool_sources, &pool_key);
		if (!pooled) /* spoofed: the core drops it and notes the claim (detection) */
			return onm_slow(ONM_SLOW_FOREIGN_SOURCE);
		src6 = pooled->substrate; /* from its pool address, as onm.agent.forwarding */
	}
	if (!onm_unicast_v4(ip->saddr))
		return onm_slow(ONM_SLOW_HEADER_UNUSUAL);
	network = &port->network; /* a copy of onm_networks[vni]: one cold lookup fewer */
	encap = network->flags & ONM_NET_F_ENCAP;
	hop_limit = ip->ttl;
	if (hop_limit == 0 || (hop_limit == 1 && (network->flags & ONM_NET_F_DECREMENT_TTL)))
		return onm_slow(ONM_SLOW_HEADER_UNUSUAL); /* Time Exceeded is the core's to build */
	if (network->flags & ONM_NET_F_DECREMENT_TTL)
		hop_limit--;
	routed = onm_mac_eq(eth->h_dest, network->router_mac);
	if (routed && encap) /* out of an encapsulated network: the core's gateways */
		return onm_slow(ONM_SLOW_ENCAP);
	if (routed) { /* outside the network: an edge pool's (inside: routed, the core's) */
		why = onm_edge_choose(skb, &edge, port, bpf_ktime_get_ns());
		if (why > 0)
			return onm_slow(why);
		if (why == ONM_EDGE_NO_ROUTE)
			refuse = ONM_DROP_NO_ROUTE;
		dst6 = edge.dst6;
		if (edge.anycast) { /* from the node's address steered to the flow's slot */
			if (onm_steer(steered, src6, edge.steer))
				return onm_slow(ONM_SLOW_EDGE_ANYCAST);
			src6 = steered;
		}
	} else {
		mapping_key.ifindex = skb->ifindex;
		__builtin_memcpy(mapping_key.target, &ip->daddr, 4);
		mapping = bpf_map_lookup_elem(&onm_mappings, &mapping_key);
		if (!mapping)
			return onm_slow(ONM_SLOW_NO_MAPPING);
		if (!onm_mac_eq(eth->h_dest, mapping->mac))
			return onm_slow(ONM_SLOW_MAC_MISMATCH);
		if (mapping->flags & ONM_MAP_F_POOL)
			return onm_slow(ONM_SLOW_POOL); /* a rotating pool: the core counts its packets */
		if (mapping->flags & ONM_MAP_F_LOCAL) { /* a node next door: delivered as sent */
			local = bpf_map_lookup_elem(&onm_locals, mapping->substrate);
			if (!local)
				return onm_slow(ONM_SLOW_LOCAL_TARGET);
			if (local->vni != port->vni)
				refuse = ONM_DROP_NETWORK_MISMATCH;
			else /* a member's pool address here: its deliveries are counted, as the core's */
				pool_target = local->flags & ONM_PORT_F_POOL_ADDRESS;
		}
		used = bpf_ktime_get_ns() >> ONM_USED_SHIFT;
		if (mapping->used != used) /* in use: the agent's timer refreshes it (refresh.py) */
			mapping->used = used;
		dst6 = mapping->substrate;
	}

	v4.saddr = ip->saddr;
	v4.daddr = ip->daddr;
	v4.payload = total - sizeof(*ip);
	v4.protocol = ip->protocol;
	v4.ttl = ip->ttl;
	v4.tos = ip->tos;
	v4.df = (ip->frag_off & bpf_htons(ONM_IPV4_DF)) != 0;
	if (encap)
		why = onm_encap_admit(skb, ip, total, network, refuse);
	else
		why = onm_4to6_admit(skb, &v4, network, refuse);
	icmp_rest = v4.icmp_rest;
	if (why == -ONM_DROP_ICMP_BAD_CHECKSUM && pool_target)
		onm_count_delivery(dst6, 1); /* the core counts it before its translator drops it */
	if (why)
		return why > 0 ? onm_slow(why) : onm_drop(-why);
	config = onm_config();
	if (!config || !config->substrate_ifindex)
		return onm_slow(ONM_SLOW_NOT_LOCAL);

	if (member) /* the core's passive liveness sees what the member sent */
		onm_count_member_sent(skb->ifindex);
	if (local) { /* the checks passed as for a remote node: the frame to the target's MAC */
		if (pool_target) /* one per frame, a GSO one too, as the core's to_local */
			onm_count_delivery(dst6, 1);
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		eth = data;
		if ((void *)(eth + 1) > end)
			return onm_drop(ONM_DROP_TRANSMIT_FAILED);
		onm_mac_copy(eth->h_dest, local->mac); /* the source is the port's MAC, checked */
		if (local->flags & ONM_PORT_F_VETH)
			return bpf_redirect_peer(local->ifindex, 0);
		return bpf_redirect(local->ifindex, 0);
	}
	if (routed)
		onm_edge_commit(&edge, total);
	if (encap)
		rewritten = onm_encap_push(skb, total, src6, dst6,
					   (network->flags & ONM_NET_F_COPY_TOS) ? v4.tos : 0,
					   (network->flags & ONM_NET_F_DECREMENT_TTL) != 0);
	else
		rewritten = onm_siit_4to6(skb, &v4, src6, dst6, hop_limit,
				  (network->flags & ONM_NET_F_COPY_TOS) ? v4.tos : 0, icmp_rest);
	if (rewritten > 0)
		return onm_slow(ONM_SLOW_TOO_BIG);
	if (rewritten < 0)
		return onm_drop(ONM_DROP_TRANSMIT_FAILED);
	return bpf_redirect_neigh(config->substrate_ifindex, 0, 0, 0);
}

char LICENSE[] SEC("license") = "GPL";
