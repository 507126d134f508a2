// SPDX-License-Identifier: GPL-2.0
/* tc egress on a served network's TUN (an edge host's gateway): the kernel's IPv4 datagram to
 * a node of the network (a reply after conntrack undid the SNAT, or an inbound connection to a
 * public IP after its DNAT) -> IPv6 from `gateway /64 | network id | external source` to the
 * node's own substrate address, onto the substrate (onm.agent.gateway's from_tenant).
 *
 * A TUN is an L3 device: the program sees the IPv4 header at offset 0; an Ethernet header is
 * pushed (bpf_skb_change_head) before the translation, which works on Ethernet frames, and the
 * frame leaves by the substrate interface with its MACs from the neighbour table
 * (bpf_redirect_neigh). In anycast mode the reply goes to the steered variant of the node's
 * address its sender computed for the flow (onm.agent.gateway._reply_to: the flow seen from
 * the node's side). What the program does not carry (options, fragments, ICMP errors, no
 * resident, more CIDRs than a duty holds, what needs an ICMP error) is passed on (TC_ACT_OK)
 * into the TUN, where the agent reads it as before; drops are counted per reason. */
#include "include/drop.h"
#include "include/edge.h"
#include "include/gateway.h"
#include "include/maps.h"
#include "include/siit.h"

/* steering_slot of the reply's flow seen from the node's side (addresses and ports swapped),
 * over the pool's hash fields; the datagram was admitted (no options, no fragment). */
static __always_inline __u8 onm_reply_slot(const struct iphdr *ip, void *end, __u16 fields)
{
	const __u8 *l4 = (const __u8 *)(ip + 1);
	struct onm_pin_key flow = { .proto = ip->protocol };

	__builtin_memcpy(flow.src, &ip->daddr, 4);
	__builtin_memcpy(flow.dst, &ip->saddr, 4);
	if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) &&
	    (void *)(l4 + 4) <= end) {
		flow.sport = ((__u16)l4[2] << 8) | l4[3];
		flow.dport = ((__u16)l4[0] << 8) | l4[1];
	}
	return onm_flow_hash(&flow, fields) >> ONM_STEERING_SHIFT;
}

SEC("tc")
int onm_gateway_egress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct onm_port_key tun = { .ifindex = skb->ifindex };
	struct onm_duty_value *duty = bpf_map_lookup_elem(&onm_tuns, &tun);
	struct onm_resident_key resident_key = {};
	struct onm_resident_value *resident;
	struct onm_network_value *network;
	struct onm_config_value *config;
	struct iphdr *ip = data;
	struct onm_v4 v4 = {};
	__u8 src6[16], dst6[16];
	__be32 vni_be;
	__u32 total, segments, vni;
	__u64 icmp_rest = 0;
	__u8 hop_limit;
	int rewritten, why;

	if (!duty)
		return onm_slow(ONM_SLOW_NOT_LOCAL);
	if (duty->flags & ONM_DUTY_F_SLOW)
		return onm_slow(ONM_SLOW_GATEWAY_CIDRS);
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return onm_slow(ONM_SLOW_NOT_IPV4);
	why = onm_ipv4_admit(ip, end, skb->len, &total); /* a bad checksum: the core's drop */
	if (why)
		return why > 0 ? onm_slow(why) : onm_drop(-why);
	vni = duty->vni;
	resident_key.vni = vni;
	__builtin_memcpy(resident_key.ip, &ip->daddr, 4);
	resident = bpf_map_lookup_elem(&onm_residents, &resident_key);
	if (!resident || !*(__u64 *)resident->substrate)
		return onm_slow(ONM_SLOW_NO_RESIDENT);
	if (onm_inside(duty, ip->saddr)) /* the kernel routes no tenant address back in */
		return onm_drop(ONM_DROP_SPOOFED_SOURCE_IP);
	network = onm_network(vni);
	if (!network)
		return onm_slow(ONM_SLOW_NOT_LOCAL);
	if (network->flags & ONM_NET_F_ENCAP)
		return onm_slow(ONM_SLOW_ENCAP);
	hop_limit = ip->ttl;
	if (hop_limit == 0 || (hop_limit == 1 && (network->flags & ONM_NET_F_DECREMENT_TTL)))
		return onm_slow(ONM_SLOW_HEADER_UNUSUAL);
	if (network->flags & ONM_NET_F_DECREMENT_TTL)
		hop_limit--;

	v4.saddr = ip->saddr;
	v4.daddr = ip->daddr;
	v4.payload = total - sizeof(*ip);
	v4.protocol = ip->protocol;
	v4.ttl = ip->ttl;
	v4.tos = ip->tos;
	v4.df = (ip->frag_off & bpf_htons(ONM_IPV4_DF)) != 0;
	why = onm_4to6_admit_l3(skb, &v4, network, 0);
	icmp_rest = v4.icmp_rest;
	if (why)
		return why > 0 ? onm_slow(why) : onm_drop(-why);
	config = onm_config();
	if (!config || !config->substrate_ifindex)
		return onm_slow(ONM_SLOW_NOT_LOCAL);

	/* embed_ipv4(gateway /64, vni, external source) -> the node's own address */
	vni_be = bpf_htonl(vni);
	__builtin_memcpy(src6, duty->prefix, 8);
	__builtin_memcpy(src6 + 8, &vni_be, 4);
	__builtin_memcpy(src6 + 12, &v4.saddr, 4);
	if (duty->flags & ONM_DUTY_F_ANYCAST) { /* to the variant the flow's sender used */
		if (onm_steer(dst6, resident->substrate, onm_reply_slot(ip, end, duty->fields)))
			return onm_slow(ONM_SLOW_NO_RESIDENT); /* U/L set: no node's, the core's */
	} else {
		__builtin_memcpy(dst6, resident->substrate, 16);
	}
	segments = skb->gso_segs ? skb->gso_segs : 1;
	if (bpf_skb_change_head(skb, ETH_HLEN, 0))
		return onm_drop(ONM_DROP_TRANSMIT_FAILED);
	data = (void *)(long)skb->data;
	end = (void *)(long)skb->data_end;
	if (data + ETH_HLEN > end)
		return onm_drop(ONM_DROP_TRANSMIT_FAILED);
	((struct ethhdr *)data)->h_proto = bpf_htons(ETH_P_IP);
	rewritten = onm_siit_4to6(skb, &v4, src6, dst6, hop_limit,
				  (network->flags & ONM_NET_F_COPY_TOS) ? v4.tos : 0, icmp_rest);
	if (rewritten)
		return onm_drop(ONM_DROP_TRANSMIT_FAILED); /* the Ethernet header is there now */
	onm_count_tenant(vni, segments, total, 1);
	return bpf_redirect_neigh(config->substrate_ifindex, 0, 0, 0);
}

char LICENSE[] SEC("license") = "GPL";
