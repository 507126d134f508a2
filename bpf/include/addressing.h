/* The substrate address layout as the programs read it (onm.addressing, DESIGN.md section 2):
 * the network id, and the slot a sender steers an ECMP router's choice with (anycast edge
 * pools). The slot octet's layout is generated (ONM_SLOT_BYTE, ONM_SLOT_LOW, ONM_UL_BIT). */
#ifndef ONM_ADDRESSING_H
#define ONM_ADDRESSING_H

#include "generated/defs.h"

/* The network id of an onm address (bits 72..95, onm.addressing.network_id_of). */
static __always_inline __u32 onm_vni_of(const __u8 *address)
{
	return (__u32)address[9] << 16 | (__u32)address[10] << 8 | address[11];
}

/* onm.addressing.steer: `address` with `slot` in its slot bits, into `out`; -1 if its U/L bit
 * is set (the slot names a node and is never steered). */
static __always_inline int onm_steer(__u8 *out, const __u8 *address, __u8 slot)
{
	__builtin_memcpy(out, address, 16);
	if (out[ONM_SLOT_BYTE] & ONM_UL_BIT)
		return -1;
	out[ONM_SLOT_BYTE] = (slot << ONM_SLOT_LOW) | (out[ONM_SLOT_BYTE] & ((1 << ONM_SLOT_LOW) - 1));
	return 0;
}

/* onm.addressing.unsteered, into `out`: 1 if `address` is a steered variant (U/L clear, a
 * slot not zero), else 0 (`out` untouched: the address is its own). */
static __always_inline int onm_unsteer(__u8 *out, const __u8 *address)
{
	__u8 byte = address[ONM_SLOT_BYTE];

	if ((byte & ONM_UL_BIT) || !(byte >> ONM_SLOT_LOW))
		return 0;
	__builtin_memcpy(out, address, 16);
	out[ONM_SLOT_BYTE] = byte & ((1 << ONM_SLOT_LOW) - 1);
	return 1;
}

#endif
