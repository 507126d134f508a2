/* The maps (declared in generated/defs.h from onm.agent.datapath.ebpf.layout) and their
 * lookups. Userspace decides, BPF looks up: every entry is written by the agent's adapter from
 * the tables its core compiled (onm.agent.tables). */
#ifndef ONM_MAPS_H
#define ONM_MAPS_H

#include "generated/defs.h"

static __always_inline struct onm_network_value *onm_network(__u32 vni)
{
	struct onm_network_key key = { .vni = vni };

	return bpf_map_lookup_elem(&onm_networks, &key);
}

static __always_inline struct onm_config_value *onm_config(void)
{
	struct onm_index_key key = { .index = 0 };

	return bpf_map_lookup_elem(&onm_settings, &key);
}

/* The next IPv4 Identification of this CPU (RFC 7915 5.1 "Fragment Identification generator"). */
static __always_inline __u16 onm_next_ident(void)
{
	struct onm_index_key key = { .index = 0 };
	struct onm_ident_value *ident = bpf_map_lookup_elem(&onm_ident, &key);

	if (!ident)
		return 0;
	return (__u16)ident->next++;
}

/* `packets` more under `key` in a per-CPU hash of counts, this CPU's; the first one creates
 * the entry (another CPU's racing creation is taken then). */
static __always_inline void onm_count_keyed(void *counts, const void *key, __u32 packets)
{
	struct onm_counter_value one = { .count = packets };
	struct onm_counter_value *count = bpf_map_lookup_elem(counts, key);

	if (count) {
		count->count += packets;
		return;
	}
	if (bpf_map_update_elem(counts, key, &one, BPF_NOEXIST) == 0)
		return;
	count = bpf_map_lookup_elem(counts, key);
	if (count)
		count->count += packets;
}

/* Packets delivered to a member's pool address, as the core's `CoreState.count_delivery` (the
 * agent reads the sums into its delivery counts). */
static __always_inline void onm_count_delivery(const __u8 *address, __u32 packets)
{
	struct onm_local_key key;

	__builtin_memcpy(key.substrate, address, 16);
	onm_count_keyed(&onm_pool_deliveries, &key, packets);
}

/* A frame of a member's port forwarded here: the core's passive liveness counts it seen. */
static __always_inline void onm_count_member_sent(__u32 ifindex)
{
	struct onm_port_key key = { .ifindex = ifindex };

	onm_count_keyed(&onm_member_sent, &key, 1);
}

#endif
