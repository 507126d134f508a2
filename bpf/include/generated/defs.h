/* Generated from onm.agent.datapath.ebpf.layout and onm.packet.drop: do not edit.
 * make regenerates it; tests/unit/agent/ebpf/test_cheader.py checks it is current. */
#ifndef ONM_GENERATED_DEFS_H
#define ONM_GENERATED_DEFS_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

enum onm_drop {
	ONM_DROP_ETHERNET_TRUNCATED = 1,
	ONM_DROP_ETHERTYPE_UNSUPPORTED = 2,
	ONM_DROP_ARP_MALFORMED = 3,
	ONM_DROP_ARP_UNSUPPORTED = 4,
	ONM_DROP_IPV4_TRUNCATED = 10,
	ONM_DROP_IPV4_BAD_VERSION = 11,
	ONM_DROP_IPV4_BAD_HEADER_LENGTH = 12,
	ONM_DROP_IPV4_BAD_TOTAL_LENGTH = 13,
	ONM_DROP_IPV4_BAD_CHECKSUM = 14,
	ONM_DROP_IPV4_BAD_OPTIONS = 15,
	ONM_DROP_IPV4_SOURCE_ROUTE = 16,
	ONM_DROP_IPV4_BAD_FRAGMENT = 17,
	ONM_DROP_IPV4_ILLEGAL_SOURCE = 18,
	ONM_DROP_IPV6_TRUNCATED = 20,
	ONM_DROP_IPV6_BAD_VERSION = 21,
	ONM_DROP_IPV6_BAD_PAYLOAD_LENGTH = 22,
	ONM_DROP_IPV6_BAD_EXTENSION_HEADER = 23,
	ONM_DROP_IPV6_ROUTING_HEADER = 24,
	ONM_DROP_IPV6_BAD_FRAGMENT = 25,
	ONM_DROP_IPV6_EXTENSION_NOT_CARRIED = 26,
	ONM_DROP_L4_TRUNCATED = 30,
	ONM_DROP_ICMP_TRUNCATED = 31,
	ONM_DROP_ICMP_BAD_CHECKSUM = 32,
	ONM_DROP_ICMP_UNTRANSLATABLE = 33,
	ONM_DROP_ICMP_ERROR_NESTED = 34,
	ONM_DROP_ICMP_FRAGMENTED = 35,
	ONM_DROP_UDP_ZERO_CHECKSUM = 36,
	ONM_DROP_UDP_BAD_LENGTH = 37,
	ONM_DROP_ADDRESS_UNMAPPABLE = 40,
	ONM_DROP_TTL_EXPIRED = 41,
	ONM_DROP_PACKET_TOO_BIG = 42,
	ONM_DROP_PROTOCOL_UNTRANSLATABLE = 43,
	ONM_DROP_PROTOCOL_NOT_CARRIED = 44,
	ONM_DROP_ENCAP_BAD_INNER = 50,
	ONM_DROP_ENCAP_ADDRESS_MISMATCH = 51,
	ONM_DROP_UNKNOWN_PORT = 60,
	ONM_DROP_SPOOFED_SOURCE_MAC = 61,
	ONM_DROP_SPOOFED_SOURCE_IP = 62,
	ONM_DROP_ARP_SPOOFED = 63,
	ONM_DROP_NO_MAPPING = 64,
	ONM_DROP_DESTINATION_MISMATCH = 65,
	ONM_DROP_NO_ROUTE = 66,
	ONM_DROP_POOL_ALL_DOWN = 67,
	ONM_DROP_EDGE_NO_GATEWAY = 68,
	ONM_DROP_NOT_LOCAL_DESTINATION = 70,
	ONM_DROP_SPOOFED_SUBSTRATE_SOURCE = 71,
	ONM_DROP_NETWORK_MISMATCH = 72,
	ONM_DROP_GATEWAY_NOT_SERVING = 73,
	ONM_DROP_GATEWAY_INTERNAL_DESTINATION = 74,
	ONM_DROP_GATEWAY_NO_RESIDENT = 75,
	ONM_DROP_TRANSMIT_FAILED = 80,
};

enum onm_slow {
	ONM_SLOW_NOT_IPV4 = 1,
	ONM_SLOW_ARP = 2,
	ONM_SLOW_IPV4_OPTIONS = 3,
	ONM_SLOW_FRAGMENT = 4,
	ONM_SLOW_HEADER_UNUSUAL = 5,
	ONM_SLOW_PROTOCOL = 6,
	ONM_SLOW_ICMP_NOT_ECHO = 7,
	ONM_SLOW_FOREIGN_SOURCE = 8,
	ONM_SLOW_ROUTED = 9,
	ONM_SLOW_NO_MAPPING = 10,
	ONM_SLOW_MAC_MISMATCH = 11,
	ONM_SLOW_LOCAL_TARGET = 12,
	ONM_SLOW_POOL = 13,
	ONM_SLOW_TOO_BIG = 14,
	ONM_SLOW_UDP_ZERO_CHECKSUM = 15,
	ONM_SLOW_ENCAP = 16,
	ONM_SLOW_NOT_IPV6 = 17,
	ONM_SLOW_EXTENSION_HEADER = 18,
	ONM_SLOW_NOT_LOCAL = 19,
	ONM_SLOW_FROM_GATEWAY = 20,
	ONM_SLOW_TRUNCATED = 21,
	ONM_SLOW_EDGE_CHOICE = 22,
	ONM_SLOW_EDGE_SPLIT = 23,
	ONM_SLOW_EDGE_ANYCAST = 24,
	ONM_SLOW_EDGE_PUBLIC_IP = 25,
	ONM_SLOW_EDGE_NO_GATEWAY = 26,
	ONM_SLOW_EDGE_OVERFLOW = 27,
	ONM_SLOW_GATEWAY_CIDRS = 28,
	ONM_SLOW_GATEWAY_SENDER = 29,
	ONM_SLOW_NO_RESIDENT = 30,
};

enum onm_port_f {
	ONM_PORT_F_POOL_MEMBER = 1,
	ONM_PORT_F_PUBLIC_IP = 2,
	ONM_PORT_F_VETH = 4,
	ONM_PORT_F_POOL_ADDRESS = 8,
};

enum onm_net_f {
	ONM_NET_F_DECREMENT_TTL = 1,
	ONM_NET_F_COPY_TOS = 2,
	ONM_NET_F_ENCAP = 4,
};

enum onm_map_f {
	ONM_MAP_F_LOCAL = 1,
	ONM_MAP_F_POOL = 2,
};

enum onm_edge_f {
	ONM_EDGE_F_LEAST_LOADED = 1,
	ONM_EDGE_F_SPLIT = 2,
	ONM_EDGE_F_ANYCAST = 4,
	ONM_EDGE_F_OVERFLOW = 8,
	ONM_EDGE_F_RANDOM = 16,
	ONM_EDGE_F_DIRECT = 32,
};

enum onm_hash_f {
	ONM_HASH_F_SRC = 1,
	ONM_HASH_F_DST = 2,
	ONM_HASH_F_PROTO = 4,
	ONM_HASH_F_SPORT = 8,
	ONM_HASH_F_DPORT = 16,
};

enum onm_gw_f {
	ONM_GW_F_ALIVE = 1,
	ONM_GW_F_ACTIVE = 2,
};

enum onm_duty_f {
	ONM_DUTY_F_SLOW = 1,
	ONM_DUTY_F_ANYCAST = 2,
};

enum onm_source_f {
	ONM_SOURCE_F_STEERED = 1,
};

#define ONM_DROP_SLOTS 81
#define ONM_SLOW_SLOTS 31
#define ONM_ICMP_SUM_WORDS 1024
#define ONM_DUTY_CIDRS 8
#define ONM_POOL_SLOTS 64
#define ONM_GATEWAY_SLOTS 4096
#define ONM_MAGLEV_STRIDE 16381
#define ONM_ROUTE_INSIDE 0xffffffffu
#define ONM_ROUTE_NO_POOL 0xfffffffeu
#define ONM_ROUTE_SLOW 0xfffffffdu
#define ONM_USED_SHIFT 30
#define ONM_SLOT_BYTE 8
#define ONM_SLOT_LOW 2
#define ONM_UL_BIT 0x2
#define ONM_STEERING_SHIFT 26
#define ONM_IDLE_TCP_NS 350000000000ull
#define ONM_IDLE_UDP_NS 120000000000ull
#define ONM_IDLE_OTHER_NS 60000000000ull

struct onm_network_key {
	__u32 vni;
};
_Static_assert(sizeof(struct onm_network_key) == 4, "onm_network_key: size differs from layout.NetworkKey");
_Static_assert(__builtin_offsetof(struct onm_network_key, vni) == 0, "onm_network_key.vni: offset differs from layout.NetworkKey");

struct onm_network_value {
	__u16 lowest_ipv6_mtu;
	__u16 ipv6_mtu;
	__u16 ipv4_mtu;
	__u8 router_mac[6];
	__u32 flags;
};
_Static_assert(sizeof(struct onm_network_value) == 16, "onm_network_value: size differs from layout.NetworkValue");
_Static_assert(__builtin_offsetof(struct onm_network_value, lowest_ipv6_mtu) == 0, "onm_network_value.lowest_ipv6_mtu: offset differs from layout.NetworkValue");
_Static_assert(__builtin_offsetof(struct onm_network_value, ipv6_mtu) == 2, "onm_network_value.ipv6_mtu: offset differs from layout.NetworkValue");
_Static_assert(__builtin_offsetof(struct onm_network_value, ipv4_mtu) == 4, "onm_network_value.ipv4_mtu: offset differs from layout.NetworkValue");
_Static_assert(__builtin_offsetof(struct onm_network_value, router_mac) == 6, "onm_network_value.router_mac: offset differs from layout.NetworkValue");
_Static_assert(__builtin_offsetof(struct onm_network_value, flags) == 12, "onm_network_value.flags: offset differs from layout.NetworkValue");

struct onm_port_key {
	__u32 ifindex;
};
_Static_assert(sizeof(struct onm_port_key) == 4, "onm_port_key: size differs from layout.PortKey");
_Static_assert(__builtin_offsetof(struct onm_port_key, ifindex) == 0, "onm_port_key.ifindex: offset differs from layout.PortKey");

struct onm_port_value {
	__u32 vni;
	__u8 ip[4];
	__u8 substrate[16];
	__u8 mac[6];
	__u16 flags;
	struct onm_network_value network;
};
_Static_assert(sizeof(struct onm_port_value) == 48, "onm_port_value: size differs from layout.PortValue");
_Static_assert(__builtin_offsetof(struct onm_port_value, vni) == 0, "onm_port_value.vni: offset differs from layout.PortValue");
_Static_assert(__builtin_offsetof(struct onm_port_value, ip) == 4, "onm_port_value.ip: offset differs from layout.PortValue");
_Static_assert(__builtin_offsetof(struct onm_port_value, substrate) == 8, "onm_port_value.substrate: offset differs from layout.PortValue");
_Static_assert(__builtin_offsetof(struct onm_port_value, mac) == 24, "onm_port_value.mac: offset differs from layout.PortValue");
_Static_assert(__builtin_offsetof(struct onm_port_value, flags) == 30, "onm_port_value.flags: offset differs from layout.PortValue");
_Static_assert(__builtin_offsetof(struct onm_port_value, network) == 32, "onm_port_value.network: offset differs from layout.PortValue");

struct onm_mapping_key {
	__u32 ifindex;
	__u8 target[4];
};
_Static_assert(sizeof(struct onm_mapping_key) == 8, "onm_mapping_key: size differs from layout.MappingKey");
_Static_assert(__builtin_offsetof(struct onm_mapping_key, ifindex) == 0, "onm_mapping_key.ifindex: offset differs from layout.MappingKey");
_Static_assert(__builtin_offsetof(struct onm_mapping_key, target) == 4, "onm_mapping_key.target: offset differs from layout.MappingKey");

struct onm_mapping_value {
	__u8 substrate[16];
	__u8 mac[6];
	__u16 flags;
	__u32 used;
};
_Static_assert(sizeof(struct onm_mapping_value) == 28, "onm_mapping_value: size differs from layout.MappingValue");
_Static_assert(__builtin_offsetof(struct onm_mapping_value, substrate) == 0, "onm_mapping_value.substrate: offset differs from layout.MappingValue");
_Static_assert(__builtin_offsetof(struct onm_mapping_value, mac) == 16, "onm_mapping_value.mac: offset differs from layout.MappingValue");
_Static_assert(__builtin_offsetof(struct onm_mapping_value, flags) == 22, "onm_mapping_value.flags: offset differs from layout.MappingValue");
_Static_assert(__builtin_offsetof(struct onm_mapping_value, used) == 24, "onm_mapping_value.used: offset differs from layout.MappingValue");

struct onm_local_key {
	__u8 substrate[16];
};
_Static_assert(sizeof(struct onm_local_key) == 16, "onm_local_key: size differs from layout.LocalKey");
_Static_assert(__builtin_offsetof(struct onm_local_key, substrate) == 0, "onm_local_key.substrate: offset differs from layout.LocalKey");

struct onm_local_value {
	__u32 ifindex;
	__u32 vni;
	__u8 ip[4];
	__u8 mac[6];
	__u16 flags;
	struct onm_network_value network;
};
_Static_assert(sizeof(struct onm_local_value) == 36, "onm_local_value: size differs from layout.LocalValue");
_Static_assert(__builtin_offsetof(struct onm_local_value, ifindex) == 0, "onm_local_value.ifindex: offset differs from layout.LocalValue");
_Static_assert(__builtin_offsetof(struct onm_local_value, vni) == 4, "onm_local_value.vni: offset differs from layout.LocalValue");
_Static_assert(__builtin_offsetof(struct onm_local_value, ip) == 8, "onm_local_value.ip: offset differs from layout.LocalValue");
_Static_assert(__builtin_offsetof(struct onm_local_value, mac) == 12, "onm_local_value.mac: offset differs from layout.LocalValue");
_Static_assert(__builtin_offsetof(struct onm_local_value, flags) == 18, "onm_local_value.flags: offset differs from layout.LocalValue");
_Static_assert(__builtin_offsetof(struct onm_local_value, network) == 20, "onm_local_value.network: offset differs from layout.LocalValue");

struct onm_pool_source_key {
	__u32 ifindex;
	__u8 ip[4];
};
_Static_assert(sizeof(struct onm_pool_source_key) == 8, "onm_pool_source_key: size differs from layout.PoolSourceKey");
_Static_assert(__builtin_offsetof(struct onm_pool_source_key, ifindex) == 0, "onm_pool_source_key.ifindex: offset differs from layout.PoolSourceKey");
_Static_assert(__builtin_offsetof(struct onm_pool_source_key, ip) == 4, "onm_pool_source_key.ip: offset differs from layout.PoolSourceKey");

struct onm_pool_source_value {
	__u8 substrate[16];
};
_Static_assert(sizeof(struct onm_pool_source_value) == 16, "onm_pool_source_value: size differs from layout.PoolSourceValue");
_Static_assert(__builtin_offsetof(struct onm_pool_source_value, substrate) == 0, "onm_pool_source_value.substrate: offset differs from layout.PoolSourceValue");

struct onm_source_key {
	__u32 vni;
	__u8 ip[4];
	__u8 source[16];
};
_Static_assert(sizeof(struct onm_source_key) == 24, "onm_source_key: size differs from layout.SourceKey");
_Static_assert(__builtin_offsetof(struct onm_source_key, vni) == 0, "onm_source_key.vni: offset differs from layout.SourceKey");
_Static_assert(__builtin_offsetof(struct onm_source_key, ip) == 4, "onm_source_key.ip: offset differs from layout.SourceKey");
_Static_assert(__builtin_offsetof(struct onm_source_key, source) == 8, "onm_source_key.source: offset differs from layout.SourceKey");

struct onm_source_value {
	__u8 mac[6];
	__u16 flags;
};
_Static_assert(sizeof(struct onm_source_value) == 8, "onm_source_value: size differs from layout.SourceValue");
_Static_assert(__builtin_offsetof(struct onm_source_value, mac) == 0, "onm_source_value.mac: offset differs from layout.SourceValue");
_Static_assert(__builtin_offsetof(struct onm_source_value, flags) == 6, "onm_source_value.flags: offset differs from layout.SourceValue");

struct onm_gateway_key {
	__u32 vni;
	__u8 prefix[8];
};
_Static_assert(sizeof(struct onm_gateway_key) == 12, "onm_gateway_key: size differs from layout.GatewayKey");
_Static_assert(__builtin_offsetof(struct onm_gateway_key, vni) == 0, "onm_gateway_key.vni: offset differs from layout.GatewayKey");
_Static_assert(__builtin_offsetof(struct onm_gateway_key, prefix) == 4, "onm_gateway_key.prefix: offset differs from layout.GatewayKey");

struct onm_gateway_value {
	__u32 present;
};
_Static_assert(sizeof(struct onm_gateway_value) == 4, "onm_gateway_value: size differs from layout.GatewayValue");
_Static_assert(__builtin_offsetof(struct onm_gateway_value, present) == 0, "onm_gateway_value.present: offset differs from layout.GatewayValue");

struct onm_config_value {
	__u32 substrate_ifindex;
	__u32 flags;
};
_Static_assert(sizeof(struct onm_config_value) == 8, "onm_config_value: size differs from layout.ConfigValue");
_Static_assert(__builtin_offsetof(struct onm_config_value, substrate_ifindex) == 0, "onm_config_value.substrate_ifindex: offset differs from layout.ConfigValue");
_Static_assert(__builtin_offsetof(struct onm_config_value, flags) == 4, "onm_config_value.flags: offset differs from layout.ConfigValue");

struct onm_index_key {
	__u32 index;
};
_Static_assert(sizeof(struct onm_index_key) == 4, "onm_index_key: size differs from layout.IndexKey");
_Static_assert(__builtin_offsetof(struct onm_index_key, index) == 0, "onm_index_key.index: offset differs from layout.IndexKey");

struct onm_counter_value {
	__u64 count;
};
_Static_assert(sizeof(struct onm_counter_value) == 8, "onm_counter_value: size differs from layout.CounterValue");
_Static_assert(__builtin_offsetof(struct onm_counter_value, count) == 0, "onm_counter_value.count: offset differs from layout.CounterValue");

struct onm_ident_value {
	__u32 next;
};
_Static_assert(sizeof(struct onm_ident_value) == 4, "onm_ident_value: size differs from layout.IdentValue");
_Static_assert(__builtin_offsetof(struct onm_ident_value, next) == 0, "onm_ident_value.next: offset differs from layout.IdentValue");

struct onm_route_key {
	__u32 prefixlen;
	__u8 vni[4];
	__u8 ip[4];
};
_Static_assert(sizeof(struct onm_route_key) == 12, "onm_route_key: size differs from layout.RouteKey");
_Static_assert(__builtin_offsetof(struct onm_route_key, prefixlen) == 0, "onm_route_key.prefixlen: offset differs from layout.RouteKey");
_Static_assert(__builtin_offsetof(struct onm_route_key, vni) == 4, "onm_route_key.vni: offset differs from layout.RouteKey");
_Static_assert(__builtin_offsetof(struct onm_route_key, ip) == 8, "onm_route_key.ip: offset differs from layout.RouteKey");

struct onm_route_value {
	__u32 pool;
};
_Static_assert(sizeof(struct onm_route_value) == 4, "onm_route_value: size differs from layout.RouteValue");
_Static_assert(__builtin_offsetof(struct onm_route_value, pool) == 0, "onm_route_value.pool: offset differs from layout.RouteValue");

struct onm_pool_value {
	__u32 table_size;
	__u32 generation;
	__u16 fields;
	__u16 flags;
	__u8 nat;
	__u8 mode;
	__u8 choice;
	__u8 pad;
	__u8 anycast[8];
};
_Static_assert(sizeof(struct onm_pool_value) == 24, "onm_pool_value: size differs from layout.PoolValue");
_Static_assert(__builtin_offsetof(struct onm_pool_value, table_size) == 0, "onm_pool_value.table_size: offset differs from layout.PoolValue");
_Static_assert(__builtin_offsetof(struct onm_pool_value, generation) == 4, "onm_pool_value.generation: offset differs from layout.PoolValue");
_Static_assert(__builtin_offsetof(struct onm_pool_value, fields) == 8, "onm_pool_value.fields: offset differs from layout.PoolValue");
_Static_assert(__builtin_offsetof(struct onm_pool_value, flags) == 10, "onm_pool_value.flags: offset differs from layout.PoolValue");
_Static_assert(__builtin_offsetof(struct onm_pool_value, nat) == 12, "onm_pool_value.nat: offset differs from layout.PoolValue");
_Static_assert(__builtin_offsetof(struct onm_pool_value, mode) == 13, "onm_pool_value.mode: offset differs from layout.PoolValue");
_Static_assert(__builtin_offsetof(struct onm_pool_value, choice) == 14, "onm_pool_value.choice: offset differs from layout.PoolValue");
_Static_assert(__builtin_offsetof(struct onm_pool_value, pad) == 15, "onm_pool_value.pad: offset differs from layout.PoolValue");
_Static_assert(__builtin_offsetof(struct onm_pool_value, anycast) == 16, "onm_pool_value.anycast: offset differs from layout.PoolValue");

struct onm_maglev_value {
	__u32 gateway;
};
_Static_assert(sizeof(struct onm_maglev_value) == 4, "onm_maglev_value: size differs from layout.MaglevValue");
_Static_assert(__builtin_offsetof(struct onm_maglev_value, gateway) == 0, "onm_maglev_value.gateway: offset differs from layout.MaglevValue");

struct onm_edge_gateway_value {
	__u8 prefix[8];
	__u32 pool;
	__u32 serial;
	__u32 flags;
};
_Static_assert(sizeof(struct onm_edge_gateway_value) == 20, "onm_edge_gateway_value: size differs from layout.EdgeGatewayValue");
_Static_assert(__builtin_offsetof(struct onm_edge_gateway_value, prefix) == 0, "onm_edge_gateway_value.prefix: offset differs from layout.EdgeGatewayValue");
_Static_assert(__builtin_offsetof(struct onm_edge_gateway_value, pool) == 8, "onm_edge_gateway_value.pool: offset differs from layout.EdgeGatewayValue");
_Static_assert(__builtin_offsetof(struct onm_edge_gateway_value, serial) == 12, "onm_edge_gateway_value.serial: offset differs from layout.EdgeGatewayValue");
_Static_assert(__builtin_offsetof(struct onm_edge_gateway_value, flags) == 16, "onm_edge_gateway_value.flags: offset differs from layout.EdgeGatewayValue");

struct onm_pin_key {
	__u32 pool;
	__u8 src[4];
	__u8 dst[4];
	__u16 sport;
	__u16 dport;
	__u8 proto;
	__u8 pad[3];
};
_Static_assert(sizeof(struct onm_pin_key) == 20, "onm_pin_key: size differs from layout.PinKey");
_Static_assert(__builtin_offsetof(struct onm_pin_key, pool) == 0, "onm_pin_key.pool: offset differs from layout.PinKey");
_Static_assert(__builtin_offsetof(struct onm_pin_key, src) == 4, "onm_pin_key.src: offset differs from layout.PinKey");
_Static_assert(__builtin_offsetof(struct onm_pin_key, dst) == 8, "onm_pin_key.dst: offset differs from layout.PinKey");
_Static_assert(__builtin_offsetof(struct onm_pin_key, sport) == 12, "onm_pin_key.sport: offset differs from layout.PinKey");
_Static_assert(__builtin_offsetof(struct onm_pin_key, dport) == 14, "onm_pin_key.dport: offset differs from layout.PinKey");
_Static_assert(__builtin_offsetof(struct onm_pin_key, proto) == 16, "onm_pin_key.proto: offset differs from layout.PinKey");
_Static_assert(__builtin_offsetof(struct onm_pin_key, pad) == 17, "onm_pin_key.pad: offset differs from layout.PinKey");

struct onm_pin_value {
	__u32 gateway;
	__u32 serial;
	__u32 generation;
	__u32 pad;
	__u64 last_seen;
};
_Static_assert(sizeof(struct onm_pin_value) == 24, "onm_pin_value: size differs from layout.PinValue");
_Static_assert(__builtin_offsetof(struct onm_pin_value, gateway) == 0, "onm_pin_value.gateway: offset differs from layout.PinValue");
_Static_assert(__builtin_offsetof(struct onm_pin_value, serial) == 4, "onm_pin_value.serial: offset differs from layout.PinValue");
_Static_assert(__builtin_offsetof(struct onm_pin_value, generation) == 8, "onm_pin_value.generation: offset differs from layout.PinValue");
_Static_assert(__builtin_offsetof(struct onm_pin_value, pad) == 12, "onm_pin_value.pad: offset differs from layout.PinValue");
_Static_assert(__builtin_offsetof(struct onm_pin_value, last_seen) == 16, "onm_pin_value.last_seen: offset differs from layout.PinValue");

struct onm_edge_sent_value {
	__u64 packets;
	__u64 bytes;
	__u64 flows;
};
_Static_assert(sizeof(struct onm_edge_sent_value) == 24, "onm_edge_sent_value: size differs from layout.EdgeSentValue");
_Static_assert(__builtin_offsetof(struct onm_edge_sent_value, packets) == 0, "onm_edge_sent_value.packets: offset differs from layout.EdgeSentValue");
_Static_assert(__builtin_offsetof(struct onm_edge_sent_value, bytes) == 8, "onm_edge_sent_value.bytes: offset differs from layout.EdgeSentValue");
_Static_assert(__builtin_offsetof(struct onm_edge_sent_value, flows) == 16, "onm_edge_sent_value.flows: offset differs from layout.EdgeSentValue");

struct onm_holder_key {
	__u32 vni;
	__u8 ip[4];
	__u32 pool;
};
_Static_assert(sizeof(struct onm_holder_key) == 12, "onm_holder_key: size differs from layout.HolderKey");
_Static_assert(__builtin_offsetof(struct onm_holder_key, vni) == 0, "onm_holder_key.vni: offset differs from layout.HolderKey");
_Static_assert(__builtin_offsetof(struct onm_holder_key, ip) == 4, "onm_holder_key.ip: offset differs from layout.HolderKey");
_Static_assert(__builtin_offsetof(struct onm_holder_key, pool) == 8, "onm_holder_key.pool: offset differs from layout.HolderKey");

struct onm_holder_value {
	__u32 gateway;
	__u32 serial;
};
_Static_assert(sizeof(struct onm_holder_value) == 8, "onm_holder_value: size differs from layout.HolderValue");
_Static_assert(__builtin_offsetof(struct onm_holder_value, gateway) == 0, "onm_holder_value.gateway: offset differs from layout.HolderValue");
_Static_assert(__builtin_offsetof(struct onm_holder_value, serial) == 4, "onm_holder_value.serial: offset differs from layout.HolderValue");

struct onm_duty_value {
	__u32 ifindex;
	__u32 vni;
	__u8 prefix[8];
	__u16 flags;
	__u16 cidrs;
	__u32 cidr_ips[8];
	__u32 cidr_masks[8];
	__u16 fields;
	__u16 pad;
};
_Static_assert(sizeof(struct onm_duty_value) == 88, "onm_duty_value: size differs from layout.DutyValue");
_Static_assert(__builtin_offsetof(struct onm_duty_value, ifindex) == 0, "onm_duty_value.ifindex: offset differs from layout.DutyValue");
_Static_assert(__builtin_offsetof(struct onm_duty_value, vni) == 4, "onm_duty_value.vni: offset differs from layout.DutyValue");
_Static_assert(__builtin_offsetof(struct onm_duty_value, prefix) == 8, "onm_duty_value.prefix: offset differs from layout.DutyValue");
_Static_assert(__builtin_offsetof(struct onm_duty_value, flags) == 16, "onm_duty_value.flags: offset differs from layout.DutyValue");
_Static_assert(__builtin_offsetof(struct onm_duty_value, cidrs) == 18, "onm_duty_value.cidrs: offset differs from layout.DutyValue");
_Static_assert(__builtin_offsetof(struct onm_duty_value, cidr_ips) == 20, "onm_duty_value.cidr_ips: offset differs from layout.DutyValue");
_Static_assert(__builtin_offsetof(struct onm_duty_value, cidr_masks) == 52, "onm_duty_value.cidr_masks: offset differs from layout.DutyValue");
_Static_assert(__builtin_offsetof(struct onm_duty_value, fields) == 84, "onm_duty_value.fields: offset differs from layout.DutyValue");
_Static_assert(__builtin_offsetof(struct onm_duty_value, pad) == 86, "onm_duty_value.pad: offset differs from layout.DutyValue");

struct onm_resident_key {
	__u32 vni;
	__u8 ip[4];
};
_Static_assert(sizeof(struct onm_resident_key) == 8, "onm_resident_key: size differs from layout.ResidentKey");
_Static_assert(__builtin_offsetof(struct onm_resident_key, vni) == 0, "onm_resident_key.vni: offset differs from layout.ResidentKey");
_Static_assert(__builtin_offsetof(struct onm_resident_key, ip) == 4, "onm_resident_key.ip: offset differs from layout.ResidentKey");

struct onm_resident_value {
	__u8 substrate[16];
};
_Static_assert(sizeof(struct onm_resident_value) == 16, "onm_resident_value: size differs from layout.ResidentValue");
_Static_assert(__builtin_offsetof(struct onm_resident_value, substrate) == 0, "onm_resident_value.substrate: offset differs from layout.ResidentValue");

struct onm_tenant_counts_value {
	__u64 egress_packets;
	__u64 egress_bytes;
	__u64 ingress_packets;
	__u64 ingress_bytes;
};
_Static_assert(sizeof(struct onm_tenant_counts_value) == 32, "onm_tenant_counts_value: size differs from layout.TenantCountsValue");
_Static_assert(__builtin_offsetof(struct onm_tenant_counts_value, egress_packets) == 0, "onm_tenant_counts_value.egress_packets: offset differs from layout.TenantCountsValue");
_Static_assert(__builtin_offsetof(struct onm_tenant_counts_value, egress_bytes) == 8, "onm_tenant_counts_value.egress_bytes: offset differs from layout.TenantCountsValue");
_Static_assert(__builtin_offsetof(struct onm_tenant_counts_value, ingress_packets) == 16, "onm_tenant_counts_value.ingress_packets: offset differs from layout.TenantCountsValue");
_Static_assert(__builtin_offsetof(struct onm_tenant_counts_value, ingress_bytes) == 24, "onm_tenant_counts_value.ingress_bytes: offset differs from layout.TenantCountsValue");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct onm_port_key);
	__type(value, struct onm_port_value);
} onm_ports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct onm_network_key);
	__type(value, struct onm_network_value);
} onm_networks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct onm_mapping_key);
	__type(value, struct onm_mapping_value);
} onm_mappings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct onm_local_key);
	__type(value, struct onm_local_value);
} onm_locals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct onm_source_key);
	__type(value, struct onm_source_value);
} onm_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct onm_gateway_key);
	__type(value, struct onm_gateway_value);
} onm_gateways SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct onm_config_value);
} onm_settings SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 81);
	__type(key, __u32);
	__type(value, struct onm_counter_value);
} onm_drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 31);
	__type(key, __u32);
	__type(value, struct onm_counter_value);
} onm_slowpath SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct onm_ident_value);
} onm_ident SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct onm_route_key);
	__type(value, struct onm_route_value);
} onm_routes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct onm_pool_value);
} onm_edge_pools SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1048384);
	__type(key, __u32);
	__type(value, struct onm_maglev_value);
} onm_maglev SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct onm_edge_gateway_value);
} onm_edge_gateways SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct onm_pin_key);
	__type(value, struct onm_pin_value);
} onm_pins SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct onm_edge_sent_value);
} onm_edge_sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, struct onm_edge_sent_value);
} onm_anycast_sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct onm_holder_key);
	__type(value, struct onm_holder_value);
} onm_holders SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct onm_local_key);
	__type(value, struct onm_counter_value);
} onm_pool_deliveries SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct onm_pool_source_key);
	__type(value, struct onm_pool_source_value);
} onm_pool_sources SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct onm_port_key);
	__type(value, struct onm_counter_value);
} onm_member_sent SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct onm_gateway_key);
	__type(value, struct onm_duty_value);
} onm_duties SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct onm_port_key);
	__type(value, struct onm_duty_value);
} onm_tuns SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, struct onm_resident_key);
	__type(value, struct onm_resident_value);
} onm_residents SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct onm_network_key);
	__type(value, struct onm_tenant_counts_value);
} onm_tenant_counts SEC(".maps");

#endif
