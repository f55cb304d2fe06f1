/* store_pg.c: the PostgreSQL storage driver (libpq) */
#include "vk_internal.h"

static int pg_connect(vk_db *db, const vk_url *u, const char *const *opts, int nopts)
{
    (void)db; (void)u; (void)opts; (void)nopts;
    return vk_fail(VK_ESQL, "PostgreSQL driver not built yet");
}

const vk_driver vk_pg_driver = {
    .name = "postgresql",
    .placeholder = "$",
    .begin_sql = "BEGIN",
    .connect = pg_connect,
};
