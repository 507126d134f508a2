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

#endif
