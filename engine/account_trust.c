/* account_trust.c: the index files a table trusts.
 *
 * FAISS's reader believes every size and count a file states; a damaged or
 * crafted file can make it allocate without bound or divide by zero, inside
 * the host process.  So the engine reads an index file for a table only
 * when the file's SHA-256 is one it recorded when it saved a file for that
 * table, in the side table
 *     "<table>__vekterdb_index_files"
 *         (file TEXT, sha256 TEXT, bytes BIGINT, ntotal BIGINT, seq BIGINT,
 *          PRIMARY KEY (file, sha256))
 * Any digest recorded for the table is accepted, whatever the file's name:
 * a database and its index files can move to other paths together.
 *
 * Saving: the temporary file is written and synced, its digest recorded and
 * committed, and only then renamed over the old file; rows for the same
 * file name older than the new one are removed after the rename.  A crash
 * at any point leaves the file on disk with its digest recorded.  Savers of
 * one file name take turns for the rename and the removal (the table's
 * writer lock, in a second transaction), and a saver whose digest is no
 * longer the newest recorded for the name does not rename at all: two
 * processes saving at once can never leave on disk the file whose digest the
 * other removed.
 *
 * Reading: the file is opened once, hashed, checked, and FAISS reads that
 * open file (vk_index_read_fd), so a file renamed over it in between is not
 * the one read.  A file changed in place after the check, or under an mmap,
 * is beyond this: write access to the index file is write access to the
 * index.
 */
#include "vk_account.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILES_SUFFIX "__vekterdb_index_files"

static vk_value text(const char *s) { return (vk_value){.type = VK_TEXT, .s = s, .len = strlen(s)}; }

/* records (file, hex) with a new seq, in its own transaction; with fd (a
 * save), the same transaction keeps the file in the database when the
 * table asks for it (account_follow.c) */
static int record(vk_db *db, const char *file, const char *hex, i64 bytes, i64 ntotal, i64 *seq, int fd)
{
    if (db->in_txn)
        return vk_fail(VK_ESTATE, "an index file cannot be recorded inside a transaction");
    int rc = vk_db_begin(db);
    if (rc)
        return rc;
    char *q = vk_side_ident(db, FILES_SUFFIX, 1);
    vk_buf sql = {0};
    const char *ph = db->drv->placeholder;
    const char *kt = db->drv->key_text_type;
    rc = q ? vk_buf_printf(&sql, "CREATE TABLE IF NOT EXISTS %s (file %s NOT NULL, sha256 %s NOT NULL, "
                           "bytes BIGINT NOT NULL, ntotal BIGINT NOT NULL, seq BIGINT NOT NULL, "
                           "PRIMARY KEY (file, sha256))", q, kt, kt)
           : VK_ENOMEM;
    if (rc == VK_OK)
        rc = db->drv->exec(db, sql.p);
    sql.len = 0;
    if (rc == VK_OK)
        rc = vk_side_next_seq(db, q, seq);
    vk_value p[5] = {text(file), text(hex), {.type = VK_INT, .i = bytes},
                     {.type = VK_INT, .i = ntotal}, {.type = VK_INT, .i = *seq}};
    if (rc == VK_OK &&
        (rc = vk_buf_printf(&sql, "INSERT INTO %s (file, sha256, bytes, ntotal, seq) VALUES "
                            "(%s1, %s2, %s3, %s4, %s5)", q, ph, ph, ph, ph, ph)) == VK_OK &&
        (rc = vk_db_upsert(db, &sql, "file, sha256", "seq,ntotal", NULL)) == VK_OK)
        rc = vk_db_run(db, sql.p, p, 5);
    if (rc == VK_OK && fd >= 0)
        rc = vk_db_store_index_object(db, fd, *seq, hex, bytes, ntotal);
    free(q);
    vk_buf_free(&sql);
    if (rc == VK_OK)
        return vk_db_commit(db);
    vk_db_rollback(db);
    return vk_fail_context("cannot record index file %s for table %s", file, db->table);
}

/* after the rename: older digests of the same file name are not on disk */
static int forget_older(vk_db *db, const char *file, i64 seq)
{
    char *q = vk_side_ident(db, FILES_SUFFIX, 1);
    vk_buf sql = {0};
    const char *ph = db->drv->placeholder;
    int rc = q ? vk_buf_printf(&sql, "DELETE FROM %s WHERE file = %s1 AND seq < %s2", q, ph, ph) : VK_ENOMEM;
    vk_value p[2] = {text(file), {.type = VK_INT, .i = seq}};
    if (rc == VK_OK)
        rc = vk_db_run(db, sql.p, p, 2);
    free(q);
    vk_buf_free(&sql);
    return rc;
}

typedef struct seal_ctx {
    vk_db *db;
    const char *file;
    i64 seq;
    int locked;   /* inside the transaction that renames and forgets */
    int renamed;  /* ours is the newest: renamed over the old file */
} seal_ctx;

static int seal(void *ud, int fd)
{
    seal_ctx *c = ud;
    vk_db *db = c->db;
    unsigned char d[32];
    char hex[65];
    i64 bytes;
    int rc = vk_sha256_fd(fd, d, &bytes);
    if (rc)
        return rc;
    vk_sha256_hex(d, hex);
    if ((rc = record(db, c->file, hex, bytes, vk_index_ntotal(db->index), &c->seq, fd)))
        return rc;
    /* the rename, and forgetting the digests it makes stale, in turn with
     * the other savers of this name */
    if ((rc = vk_db_begin(db)))
        return rc;
    c->locked = 1;
    char *q = vk_side_ident(db, FILES_SUFFIX, 1);
    vk_buf sql = {0};
    i64 newest = 0;
    rc = q ? vk_buf_printf(&sql, "SELECT MAX(seq) FROM %s WHERE file = %s1", q, db->drv->placeholder)
           : VK_ENOMEM;
    vk_value p = text(c->file);
    if (rc == VK_OK)
        rc = vk_db_query_int(db, sql.p, &p, 1, &newest, NULL);
    free(q);
    vk_buf_free(&sql);
    if (rc)
        return rc;
    /* another saver recorded a newer file after ours: it renames, not us
     * (and forgets what its file replaces: the file on disk until then
     * may be older than ours) */
    c->renamed = newest <= c->seq;
    return c->renamed ? VK_OK : VK_INDEX_NO_RENAME;
}

int vk_db_write_index(vk_db *db, const char *path)
{
    int rc = vk_db_need_table(db);
    if (rc == VK_OK)
        rc = vk_db_need_index(db);
    if (rc)
        return rc;
    if (!path || !*path)
        return vk_fail(VK_EINVAL, "empty index file name");
    /* FAISS would write a mapped index's lists as a reference to the file
     * being replaced; on-disk lists are written as a reference to their
     * lists file, which stays (a new generation writes a new one) */
    if (!vk_index_is_ondisk(db->index) && (rc = vk_index_check_writable(db->index)))
        return rc;
    seal_ctx c = {db, path, 0, 0, 0};
    rc = vk_index_write_sealed(db->index, path, seal, &c);
    if (rc) {
        if (c.locked)
            vk_db_rollback(db);
        return rc;
    }
    if (!db->index_path || strcmp(db->index_path, path) == 0) {
        db->dirty = 0;
        db->index_gen = c.seq;
    }
    /* the new file (or a newer one) is in place and recorded; a failure to
     * forget older digests leaves extra trusted rows, not a lost file */
    rc = c.renamed ? forget_older(db, path, c.seq) : VK_OK;
    /* the lists files older generations of this file name referred to,
     * still in turn with the other savers (docs/ondisk.md) */
    if (rc == VK_OK && c.renamed)
        vk_index_clean_lists(path, vk_faiss_ondisk_file(vk_index_faiss(db->index)));
    if (rc == VK_OK)
        rc = vk_db_commit(db);
    else
        vk_db_rollback(db);
    if (rc)
        return vk_fail_context("index file %s was saved, but older digests of it could not be "
                               "removed from %s%s", path, db->table, FILES_SUFFIX);
    return VK_OK;
}

/* *gen: seq of the row recording hex, 0 when none; *any: some digest is
 * recorded for the table */
/* *q: the quoted name of the table's index-file side table, NULL (and
 * VK_OK) while it does not exist */
static int files_table(vk_db *db, char **q)
{
    *q = NULL;
    int exists = 0;
    int rc = vk_side_exists(db, FILES_SUFFIX, &exists);
    if (rc || !exists)
        return rc;
    return (*q = vk_side_ident(db, FILES_SUFFIX, 1)) ? VK_OK : VK_ENOMEM;
}

static int lookup(vk_db *db, const char *hex, i64 *gen, int *any)
{
    *gen = 0;
    *any = 0;
    char *q;
    int rc = files_table(db, &q);
    if (rc || !q)
        return rc;
    vk_buf sql = {0};
    rc = vk_buf_printf(&sql, "SELECT COUNT(*), MAX(CASE WHEN sha256 = %s1 THEN seq END) FROM %s",
                       db->drv->placeholder, q);
    free(q);
    vk_value p = text(hex);
    vk_rows *r = NULL;
    if (rc == VK_OK)
        rc = vk_db_execute(db, sql.p, &p, 1, &r);
    vk_buf_free(&sql);
    if (rc == VK_OK && vk_rows_count(r) == 1) {
        const vk_value *n = vk_rows_get(r, 0, 0), *m = vk_rows_get(r, 0, 1);
        *any = n->type == VK_INT && n->i > 0;
        *gen = m->type == VK_INT && m->i > 0 ? m->i : 0;
    }
    vk_rows_free(r);
    return rc;
}

int vk_db_index_file_gen(vk_db *db, const char *path, i64 *gen)
{
    *gen = 0;
    char *q;
    int rc = files_table(db, &q);
    if (rc || !q)
        return rc;
    vk_buf sql = {0};
    rc = vk_buf_printf(&sql, "SELECT MAX(seq) FROM %s WHERE file = %s1", q, db->drv->placeholder);
    free(q);
    vk_value p = text(path);
    if (rc == VK_OK)
        rc = vk_db_query_int(db, sql.p, &p, 1, gen, NULL);
    vk_buf_free(&sql);
    return rc;
}

/* the file at path is no longer the one open as fd: another handle renamed
 * a newer save over it (and may have forgotten the digest of fd's) */
static int replaced(const char *path, int fd)
{
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && (a.st_ino != b.st_ino || a.st_dev != b.st_dev);
}

static int read_once(vk_db *db, const char *path, int mmap, int trust, vk_index **out, i64 *gen,
                     int *again);

int vk_db_read_index_gen(vk_db *db, const char *path, int mmap, int trust, vk_index **out, i64 *gen)
{
    *out = NULL;
    *gen = 0;
    int rc = vk_db_need_table(db), again = 0;
    if (rc)
        return rc;
    vk_index_clean_temps(path);
    for (int tries = 0; tries < 5; tries++)
        if ((rc = read_once(db, path, mmap, trust, out, gen, &again)) == VK_OK || !again)
            break;
    return rc;
}

static int read_once(vk_db *db, const char *path, int mmap, int trust, vk_index **out, i64 *gen,
                     int *again)
{
    *again = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vk_fail(errno == ENOENT ? VK_ENOTFOUND : VK_EIO, "cannot read index file %s: %s", path,
                       strerror(errno));
    struct stat stb;
    if (fstat(fd, &stb) != 0 || !S_ISREG(stb.st_mode)) {
        close(fd);
        return vk_fail(VK_EIO, "cannot read index file %s: not a regular file", path);
    }
    unsigned char d[32];
    char hex[65];
    i64 bytes = 0;
    int any = 0;
    int rc = vk_sha256_fd(fd, d, &bytes);
    if (rc == VK_OK) {
        vk_sha256_hex(d, hex);
        rc = lookup(db, hex, gen, &any);
    }
    int known = *gen > 0;
    if (rc == VK_OK && !known && !trust && replaced(path, fd)) {
        close(fd);
        *again = 1;
        return vk_fail(VK_EINVAL, "index file %s kept changing while it was read", path);
    }
    if (rc == VK_OK && !known && !trust) {
        if (any)
            rc = vk_fail(VK_EINVAL, "index file %s is not one VekterDB saved for table %s: its SHA-256 "
                         "(%.16s...) matches none recorded, so it was changed, damaged or belongs to "
                         "another table; rebuild it, or open it with trust_index_file if you trust it",
                         path, db->table, hex);
        else
            rc = vk_fail(VK_EINVAL, "index file %s was not saved by VekterDB for table %s (the table "
                         "records no index file); if you trust the file, open it with "
                         "trust_index_file to record it", path, db->table);
    }
    if (rc == VK_OK) {
        rc = vk_index_read_fd(out, fd, path, mmap);
        /* an on-disk index's lists file goes once a newer generation is in
         * place: read that one */
        if (rc && replaced(path, fd))
            *again = 1;
    }
    close(fd);
    if (rc == VK_OK && trust && !known) {
        if ((rc = record(db, path, hex, bytes, vk_index_ntotal(*out), gen, -1))) {
            vk_index_release(*out);
            *out = NULL;
        }
    }
    return rc;
}

int vk_db_read_index(vk_db *db, const char *path, int mmap, int trust, vk_index **out)
{
    i64 gen;
    return vk_db_read_index_gen(db, path, mmap, trust, out, &gen);
}
