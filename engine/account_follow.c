/* account_follow.c: search nodes that follow a table from its database
 * alone (README "Search nodes", docs/concurrency.md "Search nodes").
 *
 * Index files kept in the database.  A per-table setting, in the side table
 *     "<table>__vekterdb_settings" (name TEXT PRIMARY KEY, value BIGINT)
 * so that every writer of the table agrees, makes each index save also
 * store the file's bytes as a large object, in the transaction that records
 * its digest (account_trust.c's record), listed in
 *     "<table>__vekterdb_index_objects"
 *         (seq BIGINT PRIMARY KEY, object BIGINT, sha256 TEXT, bytes BIGINT,
 *          ntotal BIGINT)
 * under the generation (seq) of the save.  The same transaction removes the
 * objects beyond the newest `keep` generations.  A node reads the newest row
 * and its object in one snapshot (the driver's snapshot_sql): an object
 * unlinked by a writer meanwhile stays readable by that snapshot, since the
 * unlink is an ordinary MVCC delete of the object's rows.
 *
 * A node checks the downloaded bytes against the recorded SHA-256, on the
 * open file FAISS then reads, and keeps the file in its cache directory as
 * "<table>.<seq>.faiss" (reused by the next start when it still matches).
 *
 * Change notices.  Every write transaction of the table announces itself
 * (the driver's lock_writers), delivered at COMMIT.  A node listens before
 * it reads anything, so a commit it does not see in its first catch-up is
 * announced to it.  Before a search it reads the notices that arrived,
 * without waiting: with none (and a connection that stayed up) it skips the
 * catch-up (the table's next idx).  Deleted records are read by every
 * search all the same, so a delete is never returned once it committed,
 * while a new record is found once its notice arrived.
 */
#include "vk_account.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SETTINGS_SUFFIX "__vekterdb_settings"
#define OBJECTS_SUFFIX "__vekterdb_index_objects"
#define KEEP_SETTING "index_objects"

static int no_objects(const vk_db *db, const char *what)
{
    return vk_fail(VK_EINVAL, "%s: table %s is kept by %s, which has no large objects: index files "
                   "can be kept in the database, and followed by search nodes, on PostgreSQL",
                   what, db->table, db->drv->name);
}

static vk_value int_value(i64 v) { return (vk_value){.type = VK_INT, .i = v}; }
static vk_value text_value(const char *s)
{
    return (vk_value){.type = VK_TEXT, .s = s, .len = strlen(s)};
}

/* the generations to keep, 0 when the setting is absent */
static int keep_setting(vk_db *db, i64 *keep)
{
    *keep = 0;
    int exists = 0;
    int rc = vk_side_exists(db, SETTINGS_SUFFIX, &exists);
    if (rc || !exists)
        return rc;
    char *q = vk_side_ident(db, SETTINGS_SUFFIX, 1);
    vk_buf sql = {0};
    rc = q ? vk_buf_printf(&sql, "SELECT value FROM %s WHERE name = %s1", q, db->drv->placeholder)
           : VK_ENOMEM;
    vk_value p = text_value(KEEP_SETTING);
    if (rc == VK_OK)
        rc = vk_db_query_int(db, sql.p, &p, 1, keep, NULL);
    free(q);
    vk_buf_free(&sql);
    return rc;
}

/* inside a write transaction: removes the objects beyond the newest keep */
static int prune(vk_db *db, const char *q, i64 keep)
{
    vk_buf sql = {0};
    vk_rows *r = NULL;
    int rc = vk_buf_printf(&sql, "SELECT seq, object FROM %s ORDER BY seq DESC", q);
    if (rc == VK_OK)
        rc = vk_db_execute(db, sql.p, NULL, 0, &r);
    sql.len = 0;
    if (rc == VK_OK)
        rc = vk_buf_printf(&sql, "DELETE FROM %s WHERE seq = %s1", q, db->drv->placeholder);
    for (i64 i = keep; rc == VK_OK && i < vk_rows_count(r); i++) {
        const vk_value *seq = vk_rows_get(r, i, 0), *obj = vk_rows_get(r, i, 1);
        if (seq->type != VK_INT || obj->type != VK_INT) {
            rc = vk_fail(VK_ESQL, "table %s%s holds a row that is not integers", db->table,
                         OBJECTS_SUFFIX);
            break;
        }
        vk_value p = int_value(seq->i);
        if ((rc = vk_db_run(db, sql.p, &p, 1)) == VK_OK)
            rc = db->drv->object_drop(db, obj->i);
    }
    vk_rows_free(r);
    vk_buf_free(&sql);
    return rc;
}

static int objects_table(vk_db *db, const char *q)
{
    vk_buf sql = {0};
    int rc = vk_buf_printf(&sql, "CREATE TABLE IF NOT EXISTS %s (seq BIGINT PRIMARY KEY, object BIGINT "
                           "NOT NULL, sha256 %s NOT NULL, bytes BIGINT NOT NULL, ntotal BIGINT NOT NULL)",
                           q, db->drv->key_text_type);
    if (rc == VK_OK)
        rc = db->drv->exec(db, sql.p);
    vk_buf_free(&sql);
    return rc;
}

int vk_db_keep_index_objects(vk_db *db, int64_t keep)
{
    int rc = vk_db_need_table(db);
    if (rc)
        return rc;
    if (!db->drv->object_put)
        return no_objects(db, "keep_index_in_database");
    if (keep < 0)
        return vk_fail(VK_EINVAL, "keep_index_in_database: the generations to keep must be 0 or more, "
                       "got %lld", (long long)keep);
    if (db->in_txn)
        return vk_fail(VK_ESTATE, "keep_index_in_database: not inside a transaction");
    if (keep > 0 && db->index && vk_index_is_ondisk(db->index))
        return vk_fail(VK_EINVAL, "keep_index_in_database: the index's inverted lists are on disk, in a "
                       "file of their own that the database would not hold: nodes need an index in memory");
    if ((rc = vk_db_begin(db)))
        return rc;
    char *s = vk_side_ident(db, SETTINGS_SUFFIX, 1), *o = vk_side_ident(db, OBJECTS_SUFFIX, 1);
    vk_buf sql = {0};
    const char *ph = db->drv->placeholder;
    rc = s && o ? vk_buf_printf(&sql, "CREATE TABLE IF NOT EXISTS %s (name %s PRIMARY KEY, value BIGINT "
                                "NOT NULL)", s, db->drv->key_text_type)
                : VK_ENOMEM;
    if (rc == VK_OK)
        rc = db->drv->exec(db, sql.p);
    sql.len = 0;
    vk_value p[2] = {text_value(KEEP_SETTING), int_value(keep)};
    if (rc == VK_OK &&
        (rc = vk_buf_printf(&sql, "INSERT INTO %s (name, value) VALUES (%s1, %s2)", s, ph, ph)) == VK_OK &&
        (rc = vk_db_upsert(db, &sql, "name", "value", NULL)) == VK_OK)
        rc = vk_db_run(db, sql.p, p, 2);
    /* fewer generations (none: the setting is off) take effect now */
    if (rc == VK_OK && (rc = objects_table(db, o)) == VK_OK)
        rc = prune(db, o, keep);
    free(s);
    free(o);
    vk_buf_free(&sql);
    if (rc == VK_OK)
        return vk_db_commit(db);
    vk_db_rollback(db);
    return vk_fail_context("cannot set where table %s keeps its index files", db->table);
}

int vk_db_store_index_object(vk_db *db, int fd, i64 seq, const char *hex, i64 bytes, i64 ntotal)
{
    /* (a file whose lists are in another file is no use to a node; the
     * setting refuses such an index, and another handle's save of one is
     * not stored: nodes keep the newest generation they can read) */
    if (!db->drv->object_put || (db->index && vk_index_is_ondisk(db->index)))
        return VK_OK;
    i64 keep = 0;
    int rc = keep_setting(db, &keep);
    if (rc || keep <= 0)
        return rc;
    char *q = vk_side_ident(db, OBJECTS_SUFFIX, 1);
    if (!q)
        return VK_ENOMEM;
    i64 oid = 0;
    vk_buf sql = {0};
    const char *ph = db->drv->placeholder;
    if ((rc = objects_table(db, q)) == VK_OK)
        rc = db->drv->object_put(db, fd, &oid);
    vk_value p[5] = {int_value(seq), int_value(oid), text_value(hex), int_value(bytes), int_value(ntotal)};
    if (rc == VK_OK &&
        (rc = vk_buf_printf(&sql, "INSERT INTO %s (seq, object, sha256, bytes, ntotal) VALUES "
                            "(%s1, %s2, %s3, %s4, %s5)", q, ph, ph, ph, ph, ph)) == VK_OK)
        rc = vk_db_run(db, sql.p, p, 5);
    if (rc == VK_OK)
        rc = prune(db, q, keep);
    free(q);
    vk_buf_free(&sql);
    return rc;
}

/* ---------- following ---------- */

/* "<cache>/<schema.table>." with anything but [A-Za-z0-9_.-] as "_" */
static int cache_prefix(const vk_db *db, const char *dir, vk_buf *b)
{
    int rc = vk_buf_printf(b, "%s/", dir);
    size_t from = b->len;
    if (rc == VK_OK && db->schema)
        rc = vk_buf_printf(b, "%s.", db->schema);
    if (rc == VK_OK)
        rc = vk_buf_printf(b, "%s.", db->table);
    for (size_t i = from; rc == VK_OK && i < b->len; i++) {
        char c = b->p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-'))
            b->p[i] = '_';
    }
    return rc;
}

/* the newest generation kept in the database */
typedef struct kept {
    i64 seq, oid, bytes;
    char hex[65];
} kept;

static int newest_kept(vk_db *db, kept *k)
{
    char *q = vk_side_ident(db, OBJECTS_SUFFIX, 1);
    vk_buf sql = {0};
    vk_rows *r = NULL;
    int rc = q ? vk_buf_printf(&sql, "SELECT seq, object, bytes, sha256 FROM %s ORDER BY seq DESC LIMIT 1",
                               q)
               : VK_ENOMEM;
    if (rc == VK_OK)
        rc = vk_db_execute(db, sql.p, NULL, 0, &r);
    if (rc == VK_OK && vk_rows_count(r) == 0)
        rc = vk_fail(VK_ENOTFOUND, "table %s keeps no index file in the database: on a writer, call "
                     "keep_index_in_database and save the index", db->table);
    if (rc == VK_OK) {
        const vk_value *v[4];
        for (int i = 0; i < 4; i++)
            v[i] = vk_rows_get(r, 0, i);
        if (v[0]->type != VK_INT || v[1]->type != VK_INT || v[2]->type != VK_INT ||
            v[3]->type != VK_TEXT || v[3]->len != 64)
            rc = vk_fail(VK_ESQL, "table %s%s holds a row of the wrong types", db->table, OBJECTS_SUFFIX);
        else {
            k->seq = v[0]->i;
            k->oid = v[1]->i;
            k->bytes = v[2]->i;
            memcpy(k->hex, v[3]->s, 64);
            k->hex[64] = 0;
        }
    }
    vk_rows_free(r);
    free(q);
    vk_buf_free(&sql);
    return rc;
}

/* fd holds the bytes recorded as k */
static int matches(int fd, const kept *k, int *ok)
{
    unsigned char d[32];
    char hex[65];
    i64 bytes = 0;
    int rc = vk_sha256_fd(fd, d, &bytes);
    vk_sha256_hex(d, hex);
    *ok = rc == VK_OK && bytes == k->bytes && strcmp(hex, k->hex) == 0;
    return rc;
}

/* removes the table's other cached generations (and their temporary files) */
static void drop_other_cached(const char *dir, const char *prefix, const char *keep)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    size_t plen = strlen(prefix);
    struct dirent *e;
    vk_buf path = {0};
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, prefix, plen) != 0 || strcmp(e->d_name, keep) == 0)
            continue;
        /* "<seq>.faiss", or a download of another process: "<seq>.faiss.tmp.<pid>" */
        const char *rest = e->d_name + plen;
        char *end;
        strtoll(rest, &end, 10);
        if (end == rest || strncmp(end, ".faiss", 6) != 0)
            continue;
        if (strncmp(end + 6, ".tmp.", 5) == 0) {
            long pid = strtol(end + 11, NULL, 10);
            if (pid > 0 && kill((pid_t)pid, 0) == 0)
                continue;   /* still being written */
        } else if (end[6]) {
            continue;
        }
        path.len = 0;
        if (vk_buf_printf(&path, "%s/%s", dir, e->d_name) == VK_OK)
            unlink(path.p);
    }
    vk_buf_free(&path);
    closedir(d);
}

/* the newest kept generation in the cache as an open, checked fd */
static int fetch_newest(vk_db *db, const char *dir, int *fd_out, kept *k, vk_buf *path)
{
    *fd_out = -1;
    int rc = vk_db_begin_snapshot(db);
    if (rc)
        return rc;
    if ((rc = newest_kept(db, k))) {
        vk_db_rollback(db);
        return rc;
    }
    vk_buf tmp = {0};
    path->len = 0;
    rc = cache_prefix(db, dir, path);
    if (rc == VK_OK)
        rc = vk_buf_printf(path, "%lld.faiss", (long long)k->seq);
    /* a copy of this generation from an earlier start */
    int fd = rc ? -1 : open(path->p, O_RDONLY | O_CLOEXEC);
    int ok = 0;
    if (fd >= 0 && (matches(fd, k, &ok) || !ok)) {
        close(fd);
        fd = -1;
    }
    if (fd < 0 && rc == VK_OK) {
        rc = vk_buf_printf(&tmp, "%s.tmp.%ld", path->p, (long)getpid());
        fd = rc ? -1 : open(tmp.p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (rc == VK_OK && fd < 0)
            rc = vk_fail(VK_EIO, "cannot write %s: %s", tmp.p, strerror(errno));
        i64 got = 0;
        if (rc == VK_OK)
            rc = db->drv->object_get(db, k->oid, fd, &got);
        if (rc == VK_OK && (rc = matches(fd, k, &ok)) == VK_OK && !ok)
            rc = vk_fail(VK_ECODEC, "the index file of table %s kept in the database (generation %lld) "
                         "does not match the SHA-256 recorded when it was saved (%.16s...): it was "
                         "changed or damaged there, so it is refused; save the index again from a "
                         "writer", db->table, (long long)k->seq, k->hex);
        if (rc == VK_OK && rename(tmp.p, path->p) != 0)
            rc = vk_fail(VK_EIO, "cannot rename %s: %s", tmp.p, strerror(errno));
        if (rc && tmp.p)
            unlink(tmp.p);
    }
    if (rc == VK_OK)
        rc = vk_db_commit(db);
    else
        vk_db_rollback(db);
    vk_buf_free(&tmp);
    if (rc && fd >= 0)
        close(fd);
    if (rc == VK_OK)
        *fd_out = fd;
    return rc;
}

int vk_db_follow(vk_db *db, const char *cache_dir)
{
    int rc = vk_db_need_table(db);
    if (rc)
        return rc;
    if (!db->drv->object_get || !db->drv->listen)
        return no_objects(db, "follow");
    if (!cache_dir || !*cache_dir)
        return vk_fail(VK_EINVAL, "follow: no cache directory");
    if (db->in_txn)
        return vk_fail(VK_ESTATE, "follow: not inside a transaction");
    if (mkdir(cache_dir, 0777) != 0 && errno != EEXIST)
        return vk_fail(VK_EIO, "cannot create the cache directory %s: %s", cache_dir, strerror(errno));
    /* listening first: what commits after this is announced, what
     * committed before it is read by the first catch-up */
    if ((rc = db->drv->listen(db)))
        return rc;
    int exists = 0;
    if ((rc = vk_side_exists(db, OBJECTS_SUFFIX, &exists)))
        return rc;
    if (!exists)
        return vk_fail(VK_ENOTFOUND, "table %s keeps no index file in the database: on a writer, call "
                       "keep_index_in_database and save the index", db->table);
    kept k;
    vk_buf path = {0}, prefix = {0};
    int fd = -1;
    rc = fetch_newest(db, cache_dir, &fd, &k, &path);
    vk_index *ix = NULL;
    if (rc == VK_OK)
        rc = vk_index_read_fd(&ix, fd, path.p, 0);
    if (fd >= 0)
        close(fd);
    /* the node never writes the file: its copy is caught up from the table */
    if (rc == VK_OK)
        rc = vk_db_attach(db, ix, NULL);
    vk_index_release(ix);
    if (rc == VK_OK) {
        db->index_gen = k.seq;
        db->following = 1;
        db->behind = 1;
        if (cache_prefix(db, cache_dir, &prefix) == VK_OK) {
            const char *base = strrchr(path.p, '/') + 1;
            drop_other_cached(cache_dir, strrchr(prefix.p, '/') + 1, base);
        }
    }
    vk_buf_free(&path);
    vk_buf_free(&prefix);
    return rc;
}

int vk_db_following(const vk_db *db) { return db->following; }

int64_t vk_db_index_generation(const vk_db *db) { return db->index ? db->index_gen : 0; }

int vk_db_refresh(vk_db *db)
{
    if (db->following && !db->in_txn) {
        int changed = 1;
        if (db->drv->changes(db, 0, &changed) || changed)
            db->behind = 1;
        if (!db->behind)
            return VK_OK;
    }
    i64 added;
    int rc = vk_db_catch_up(db, 0, NULL, NULL, 1, &added);
    if (rc == VK_OK)
        db->behind = 0;
    return rc;
}

int vk_db_wait_for_changes(vk_db *db, int timeout_ms, int *changed)
{
    *changed = 0;
    if (!db->following)
        return vk_fail(VK_ESTATE, "wait_for_changes: the handle does not follow table %s: open it "
                       "with vekterdb.follow", db->table ? db->table : "-");
    if (db->in_txn)
        return vk_fail(VK_ESTATE, "wait_for_changes: not inside a transaction");
    int rc = db->drv->changes(db, timeout_ms, changed);
    if (rc)
        return rc;
    if (*changed)
        db->behind = 1;
    if (!db->behind)
        return VK_OK;
    i64 added;
    if ((rc = vk_db_catch_up(db, 0, NULL, NULL, 1, &added)) == VK_OK &&
        (rc = vk_tomb_refresh(db)) == VK_OK)
        db->behind = 0;
    return rc;
}
