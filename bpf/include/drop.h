/* Verdicts: a drop is counted per DropReason code, a hand-over to the userspace core (the slow
 * path: TC_ACT_OK, the frame untouched) per SlowPath code; nothing is dropped uncounted. */
#ifndef ONM_DROP_H
#define ONM_DROP_H

#include <linux/pkt_cls.h>
#include "generated/defs.h"

static __always_inline void onm_count(void *map, __u32 index)
{
	struct onm_index_key key = { .index = index };
	struct onm_counter_value *counter = bpf_map_lookup_elem(map, &key);

	if (counter)
		counter->count++;
}

static __always_inline int onm_drop(enum onm_drop reason)
{
	onm_count(&onm_drops, reason);
	return TC_ACT_SHOT;
}

static __always_inline int onm_slow(enum onm_slow reason)
{
	onm_count(&onm_slowpath, reason);
	return TC_ACT_OK;
}

#endif
