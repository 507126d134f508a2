/* Edge pools in node_ingress (onm.agent.egress, onm.agent.flows): a node's datagram to an
 * address outside its network goes to the gateway of its flow, re-headered straight to it.
 *
 * Python decides, BPF looks up: the agent writes each network's routes (an LPM trie keyed by
 * (vni, IPv4)), each pool's settings, its Maglev table (built by onm.selection.maglev over the
 * alive active gateways, as flows.PoolRoute.of does) and its gateways; the program hashes the
 * flow with the same jhash2 as onm.selection.flow.flow_hash, keeps a pinned flow on its gateway
 * while that gateway is alive (onm_pins, an LRU map), and pins a new one to the table's
 * choice (choice: random, the entry for bpf_get_prandom_u32(), as the core's `pick`). In
 * anycast mode a flow not pinned goes to the pool's shared /64 from the node's address
 * steered to the flow's slot (the top bits of its hash, onm.selection.flow.steering_slot),
 * and the host's multipath route to that /64 picks the gateway (bpf_redirect_neigh routes by
 * both addresses); while a gateway of the pool is dead or draining (`ONM_EDGE_F_DIRECT`, the
 * agent's), as in direct mode. Least-loaded choice, splitting and "no live gateway" are the
 * core's (the slow path, counted per reason). */
#ifndef ONM_EDGE_H
#define ONM_EDGE_H

#include "addressing.h"
#include "parse.h"

#define ONM_JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 onm_rol32(__u32 word, __u32 shift)
{
	return (word << shift) | (word >> (32 - shift));
}

/* jhash2(words, 4, 0) (include/linux/jhash.h; onm.selection.hashing.jhash_words). */
static __always_inline __u32 onm_jhash_4words(__u32 w0, __u32 w1, __u32 w2, __u32 w3)
{
	__u32 a, b, c;

	a = b = c = ONM_JHASH_INITVAL + (4 << 2);
	a += w0;
	b += w1;
	c += w2;
	/* __jhash_mix */
	a -= c; a ^= onm_rol32(c, 4); c += b;
	b -= a; b ^= onm_rol32(a, 6); a += c;
	c -= b; c ^= onm_rol32(b, 8); b += a;
	a -= c; a ^= onm_rol32(c, 16); c += b;
	b -= a; b ^= onm_rol32(a, 19); a += c;
	c -= b; c ^= onm_rol32(b, 4); b += a;
	a += w3;
	/* __jhash_final */
	c ^= b; c -= onm_rol32(b, 14);
	a ^= c; a -= onm_rol32(c, 11);
	b ^= a; b -= onm_rol32(a, 25);
	c ^= b; c -= onm_rol32(b, 16);
	a ^= c; a -= onm_rol32(c, 4);
	b ^= a; b -= onm_rol32(a, 14);
	c ^= b; c -= onm_rol32(b, 24);
	return c;
}

/* flow_hash(flow, fields): the fields not chosen count as zero. */
static __always_inline __u32 onm_flow_hash(const struct onm_pin_key *flow, __u16 fields)
{
	__u32 src = (fields & ONM_HASH_F_SRC) ? bpf_ntohl(*(__be32 *)flow->src) : 0;
	__u32 dst = (fields & ONM_HASH_F_DST) ? bpf_ntohl(*(__be32 *)flow->dst) : 0;
	__u32 proto = (fields & ONM_HASH_F_PROTO) ? flow->proto : 0;
	__u32 sport = (fields & ONM_HASH_F_SPORT) ? flow->sport : 0;
	__u32 dport = (fields & ONM_HASH_F_DPORT) ? flow->dport : 0;

	return onm_jhash_4words(src, dst, proto, (sport << 16) | dport);
}

static __always_inline __u64 onm_pin_idle(__u8 protocol)
{
	if (protocol == IPPROTO_TCP)
		return ONM_IDLE_TCP_NS;
	if (protocol == IPPROTO_UDP)
		return ONM_IDLE_UDP_NS;
	return ONM_IDLE_OTHER_NS;
}

/* What node_ingress needs of an edge pool's choice: the pin to write once the packet is sure
 * to be sent, and the destination. */
struct onm_edge {
	struct onm_pin_key key;
	struct onm_pin_value pin;
	__u8 dst6[16];
	__u8 fresh; /* a new pin (or one moved): a new flow for the gateway's counts */
	__u8 held;  /* to the holder of the node's public IP: no pin (as the core's held_by) */
	__u8 anycast; /* to the pool's shared /64: no pin, counted per pool */
	__u8 steer;   /* then the slot the source is steered to (onm_steer) */
};

#define ONM_EDGE_NO_ROUTE -1

static __always_inline struct onm_edge_gateway_value *onm_edge_gateway(__u32 slot)
{
	struct onm_index_key key = { .index = slot };

	return bpf_map_lookup_elem(&onm_edge_gateways, &key);
}

/* The gateway for the IPv4 datagram at ETH_HLEN (already checked: no options, no fragment)
 * from `port` to outside its network: 0 with `edge` filled, ONM_EDGE_NO_ROUTE (the core drops
 * it as NO_ROUTE), or the slow path's reason. Looks up only: `onm_edge_commit` pins. A global
 * function, so the verifier proves its many ways once, not once per way of its caller. */
__attribute__((noinline)) int onm_edge_choose(struct __sk_buff *skb, struct onm_edge *edge,
					      const struct onm_port_value *port, __u64 now)
{
	void *end = (void *)(long)skb->data_end;
	const struct iphdr *ip = (void *)(long)skb->data + ETH_HLEN;

	struct onm_route_key route_key = { .prefixlen = 64 };
	struct onm_edge_gateway_value *gateway;
	struct onm_pool_value *pool;
	struct onm_route_value *route;
	struct onm_maglev_value *entry;
	struct onm_pin_value *pin;
	struct onm_index_key key = {};
	__be32 vni = bpf_htonl(port->vni);
	__u8 *l4 = (__u8 *)(ip + 1);
	__u32 slot, index, hashed;
	int anycast;

	if (!edge || !port || (void *)(ip + 1) > end)
		return ONM_SLOW_ROUTED;
	__builtin_memcpy(route_key.vni, &vni, 4);
	__builtin_memcpy(route_key.ip, &ip->daddr, 4);
	route = bpf_map_lookup_elem(&onm_routes, &route_key);
	if (!route || route->pool == ONM_ROUTE_INSIDE)
		return ONM_SLOW_ROUTED; /* a network not written (each has a 0/0 entry), or inside */
	if (route->pool == ONM_ROUTE_NO_POOL)
		return ONM_EDGE_NO_ROUTE;
	if (route->pool >= ONM_POOL_SLOTS)
		return ONM_SLOW_EDGE_OVERFLOW;
	key.index = route->pool;
	pool = bpf_map_lookup_elem(&onm_edge_pools, &key);
	if (!pool || (pool->flags & ONM_EDGE_F_OVERFLOW) || pool->table_size > ONM_MAGLEV_STRIDE)
		return ONM_SLOW_EDGE_OVERFLOW;
	if (port->flags & ONM_PORT_F_PUBLIC_IP) { /* onm.agent.egress.held_by, before all else */
		struct onm_holder_key holder_key = { .vni = port->vni, .pool = route->pool };
		struct onm_holder_value *holder;

		__builtin_memcpy(holder_key.ip, port->ip, 4);
		holder = bpf_map_lookup_elem(&onm_holders, &holder_key);
		if (holder) {
			gateway = onm_edge_gateway(holder->gateway);
			if (!gateway || gateway->serial != holder->serial ||
			    gateway->pool != route->pool)
				return ONM_SLOW_EDGE_PUBLIC_IP; /* written in between: the core's */
			if (gateway->flags & ONM_GW_F_ALIVE) {
				slot = holder->gateway;
				edge->held = 1;
				goto chosen;
			}
		} /* none on this pool, or its holder dead: as any node's flow */
	}
	anycast = (pool->flags & (ONM_EDGE_F_ANYCAST | ONM_EDGE_F_DIRECT)) == ONM_EDGE_F_ANYCAST;
	if (!anycast && (pool->flags & ONM_EDGE_F_LEAST_LOADED))
		return ONM_SLOW_EDGE_CHOICE;
	if (!anycast && (pool->flags & ONM_EDGE_F_SPLIT))
		return ONM_SLOW_EDGE_SPLIT;

	/* flow_of: TCP and UDP carry their ports in their first four octets */
	edge->key.pool = route->pool;
	__builtin_memcpy(edge->key.src, &ip->saddr, 4);
	__builtin_memcpy(edge->key.dst, &ip->daddr, 4);
	edge->key.proto = ip->protocol;
	if ((ip->protocol == IPPROTO_TCP || ip->protocol == IPPROTO_UDP) &&
	    (void *)(l4 + 4) <= end) {
		edge->key.sport = ((__u16)l4[0] << 8) | l4[1];
		edge->key.dport = ((__u16)l4[2] << 8) | l4[3];
	}

	pin = bpf_map_lookup_elem(&onm_pins, &edge->key);
	if (pin && pin->generation == pool->generation &&
	    now - pin->last_seen < onm_pin_idle(ip->protocol)) {
		gateway = onm_edge_gateway(pin->gateway);
		if (gateway && gateway->serial == pin->serial && gateway->pool == route->pool &&
		    (gateway->flags & ONM_GW_F_ALIVE)) {
			slot = pin->gateway;
			edge->fresh = 0;
			goto chosen;
		}
	}
	if (anycast) { /* a flow pinned (while a gateway was down) keeps its gateway's NAT state */
		edge->anycast = 1;
		edge->steer = onm_flow_hash(&edge->key, pool->fields) >> ONM_STEERING_SHIFT;
		edge->pin.gateway = route->pool; /* the counts' index: the pool's */
		/* embed_ipv4(anycast /64, vni, external IPv4) */
		__builtin_memcpy(edge->dst6, pool->anycast, 8);
		__builtin_memcpy(edge->dst6 + 8, &vni, 4);
		__builtin_memcpy(edge->dst6 + 12, &ip->daddr, 4);
		return 0;
	}
	if (!pool->table_size)
		return ONM_SLOW_EDGE_NO_GATEWAY;
	/* choice: random takes the entry for a random number, as the core's `pick` */
	hashed = (pool->flags & ONM_EDGE_F_RANDOM) ? bpf_get_prandom_u32()
						   : onm_flow_hash(&edge->key, pool->fields);
	index = route->pool * ONM_MAGLEV_STRIDE + hashed % pool->table_size;
	key.index = index;
	entry = bpf_map_lookup_elem(&onm_maglev, &key);
	if (!entry)
		return ONM_SLOW_EDGE_NO_GATEWAY;
	slot = entry->gateway;
	gateway = onm_edge_gateway(slot);
	if (!gateway || gateway->pool != route->pool ||
	    (gateway->flags & (ONM_GW_F_ALIVE | ONM_GW_F_ACTIVE)) !=
		    (ONM_GW_F_ALIVE | ONM_GW_F_ACTIVE))
		return ONM_SLOW_EDGE_NO_GATEWAY; /* the table is stale: the core decides */
	edge->fresh = 1;
chosen:
	edge->pin.gateway = slot;
	edge->pin.serial = gateway->serial;
	edge->pin.generation = pool->generation;
	edge->pin.last_seen = now;
	/* embed_ipv4(gateway /64, vni, external IPv4) */
	__builtin_memcpy(edge->dst6, gateway->prefix, 8);
	__builtin_memcpy(edge->dst6 + 8, &vni, 4);
	__builtin_memcpy(edge->dst6 + 12, &ip->daddr, 4);
	return 0;
}

/* The flow pinned (or its last packet noted), once the packet is sure to be sent, and the
 * datagram (`octets` long) counted for its gateway (this CPU's share of onm_edge_sent), or in
 * anycast mode for its pool (onm_anycast_sent, as the core's `anycast_sent`). */
static __always_inline void onm_edge_commit(const struct onm_edge *edge, __u32 octets)
{
	struct onm_index_key key = { .index = edge->pin.gateway };
	struct onm_edge_sent_value *sent;

	if (!edge->held && !edge->anycast)
		bpf_map_update_elem(&onm_pins, &edge->key, &edge->pin, BPF_ANY);
	sent = bpf_map_lookup_elem(edge->anycast ? (void *)&onm_anycast_sent : (void *)&onm_edge_sent,
				   &key);
	if (!sent)
		return;
	sent->packets++;
	sent->bytes += octets;
	sent->flows += edge->fresh;
}

#endif
