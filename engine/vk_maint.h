/*
 * vk_maint.h: the maint layer: training and syncing the index from the
 * table (maint_sync.c), reclaiming deleted records' vectors
 * (maint_rebuild.c).  Its entry points are public (vekterdb.h); nothing
 * below calls it.  Uses every layer up to account.
 */
#ifndef VK_MAINT_H
#define VK_MAINT_H

#include "vk_account.h"

#endif
