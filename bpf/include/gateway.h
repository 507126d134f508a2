/* An edge gateway's side in the kernel (onm.agent.gateway): what a sending agent addressed to
 * this host's gateway /64 (`gateway /64 | network id | external IPv4`, DESIGN.md section 2)
 * enters the served network's TUN, where nftables SNATs it (substrate_ingress); what the
 * kernel sends out of that TUN goes back to the node's substrate address from `gateway /64 |
 * network id | external source` (gateway_egress). `onm_duties` and `onm_tuns` hold each duty
 * (`Tables.duties`) by its /64s and by its TUN; `onm_residents` where each node lives (zero:
 * a pool IP with no member). */
#ifndef ONM_GATEWAY_H
#define ONM_GATEWAY_H

#include "addressing.h"
#include "parse.h"

/* Is `address` (network order) inside one of the duty's network CIDRs? */
static __always_inline int onm_inside(const struct onm_duty_value *duty, __be32 address)
{
	__u32 i;

	for (i = 0; i < ONM_DUTY_CIDRS; i++) {
		if (i >= duty->cidrs)
			break;
		if ((address & duty->cidr_masks[i]) == duty->cidr_ips[i])
			return 1;
	}
	return 0;
}

/* The gateway's checks of a substrate packet for one of its /64s (onm.agent.gateway's
 * from_substrate, in its order; the sender's own check is the caller's, onm_sources): 0 with
 * `*found` set, a SlowPath reason (> 0), or a DropReason negated. */
static __always_inline int onm_gateway_admit(struct onm_duty_value **found,
					     const struct ipv6hdr *ip6, __u32 source_vni)
{
	struct onm_gateway_key key = {};
	struct onm_duty_value *duty;
	__be32 external;

	key.vni = onm_vni_of(ip6->daddr.in6_u.u6_addr8);
	__builtin_memcpy(key.prefix, &ip6->daddr, 8);
	duty = bpf_map_lookup_elem(&onm_duties, &key);
	if (!duty)
		return ONM_SLOW_NOT_LOCAL; /* the host's own, a network not served */
	if (duty->flags & ONM_DUTY_F_SLOW)
		return ONM_SLOW_GATEWAY_CIDRS;
	__builtin_memcpy(&external, &ip6->daddr.in6_u.u6_addr8[12], 4);
	if (onm_inside(duty, external))
		return -ONM_DROP_GATEWAY_INTERNAL_DESTINATION;
	if (source_vni != key.vni)
		return ONM_SLOW_GATEWAY_SENDER;
	*found = duty;
	return 0;
}

/* Is `ip` of network `vni` an external address, as a gateway may send from (onm.agent.receive's
 * _from_gateway, with no resident of that address)? Only for a network with a local node (its
 * routes are written): else the core judges. */
static __always_inline int onm_external(__u32 vni, const __u8 *ip)
{
	struct onm_resident_key resident = { .vni = vni };
	struct onm_route_key route_key = { .prefixlen = 64 };
	struct onm_route_value *route;
	__be32 vni_be = bpf_htonl(vni);

	__builtin_memcpy(resident.ip, ip, 4);
	if (bpf_map_lookup_elem(&onm_residents, &resident))
		return 0;
	__builtin_memcpy(route_key.vni, &vni_be, 4);
	__builtin_memcpy(route_key.ip, ip, 4);
	route = bpf_map_lookup_elem(&onm_routes, &route_key);
	return route && route->pool != ONM_ROUTE_INSIDE;
}

/* What the gateway carried for network `vni` in the kernel, this CPU's share (the agent adds
 * the sums to the core's `Gateway.tenants`): `ingress` from the external side to a node. */
static __always_inline void onm_count_tenant(__u32 vni, __u32 packets, __u32 octets, int ingress)
{
	struct onm_network_key key = { .vni = vni };
	struct onm_tenant_counts_value zero = {};
	struct onm_tenant_counts_value *counts = bpf_map_lookup_elem(&onm_tenant_counts, &key);

	if (!counts) {
		bpf_map_update_elem(&onm_tenant_counts, &key, &zero, BPF_NOEXIST);
		counts = bpf_map_lookup_elem(&onm_tenant_counts, &key);
		if (!counts)
			return;
	}
	if (ingress) {
		counts->ingress_packets += packets;
		counts->ingress_bytes += octets;
	} else {
		counts->egress_packets += packets;
		counts->egress_bytes += octets;
	}
}

#endif
