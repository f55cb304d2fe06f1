/* store_sqlite.c: the SQLite storage driver */
#include "vk_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STMT_CACHE 16
#define BUSY_TIMEOUT_MS 5000

typedef struct cached {
    char *sql;
    sqlite3_stmt *st;
    int busy;
} cached;

typedef struct sq_conn {
    sqlite3 *h;
    int timeout_ms;   /* how long a writer waits for another (busy timeout) */
    cached cache[STMT_CACHE];
    int next_slot;
} sq_conn;

struct vk_stmt {
    sq_conn *c;
    sqlite3_stmt *st;
    cached *slot;     /* NULL: finalize when done */
};

#define CONN(db) ((sq_conn *)(db)->conn)

static int sq_fail(const sq_conn *c, int rc, const char *what)
{
    sqlite3 *h = c ? c->h : NULL;
    int ext = h ? sqlite3_extended_errcode(h) : rc;
    const char *msg = h ? sqlite3_errmsg(h) : sqlite3_errstr(rc);
    if ((ext & 0xff) == SQLITE_BUSY || (ext & 0xff) == SQLITE_LOCKED) {
        /* the busy handler waited the whole timeout for another writer */
        int ms = c ? c->timeout_ms : 0;
        return vk_fail(VK_ELOCKED, "%s: database is locked: another writer held it longer than the "
                       "busy timeout (%g s, the connection option timeout)", what, ms / 1000.0);
    }
    int code = (ext & 0xff) == SQLITE_CONSTRAINT ? VK_ECONSTRAINT : VK_ESQL;
    return vk_fail(code, "%s: %s", what, msg);
}

static int sq_connect(vk_db *db, const vk_url *u, const char *const *opts, int nopts)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int timeout = BUSY_TIMEOUT_MS;
    /* options from the URL's query and from the caller, "key=value" */
    for (int i = 0; i < u->nopts + nopts; i++) {
        char key[64];
        const char *val;
        if (i < u->nopts) {
            snprintf(key, sizeof key, "%s", u->keys[i]);
            val = u->values[i];
        } else {
            const char *eq = strchr(opts[i - u->nopts], '=');
            if (!eq)
                return vk_fail(VK_EINVAL, "connection option '%s' is not key=value", opts[i - u->nopts]);
            snprintf(key, sizeof key, "%.*s", (int)(eq - opts[i - u->nopts]), opts[i - u->nopts]);
            val = eq + 1;
        }
        if (strcmp(key, "mode") == 0 && strcmp(val, "ro") == 0)
            flags = (flags & ~(SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE)) | SQLITE_OPEN_READONLY;
        else if (strcmp(key, "mode") == 0 && strcmp(val, "rw") == 0)
            flags &= ~SQLITE_OPEN_CREATE;
        else if (strcmp(key, "mode") == 0 && strcmp(val, "rwc") == 0)
            ;
        else if (strcmp(key, "timeout") == 0)
            timeout = (int)(atof(val) * 1000);
        else
            return vk_fail(VK_EINVAL, "unknown SQLite connection option '%s' (known: mode, timeout)", key);
    }
    sq_conn *c = vk_calloc(1, sizeof *c);
    if (!c)
        return VK_ENOMEM;
    const char *path = u->path ? u->path : ":memory:";
    int rc = sqlite3_open_v2(path, &c->h, flags, NULL);
    if (rc != SQLITE_OK) {
        char what[600];
        snprintf(what, sizeof what, "cannot open SQLite database %s", path);
        sq_fail(c, rc, what);
        sqlite3_close(c->h);
        free(c);
        return VK_ESQL;
    }
    sqlite3_extended_result_codes(c->h, 1);
    sqlite3_busy_timeout(c->h, timeout);
    c->timeout_ms = timeout;
    db->conn = c;
    if (u->path && !(flags & SQLITE_OPEN_READONLY)) {
        /* WAL: readers in other processes keep working while we write;
         * FULL: a committed batch survives a power cut, not only a crash */
        if (sqlite3_exec(c->h, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL", NULL, NULL, NULL)) {
            sq_fail(c, 0, "cannot set up the SQLite database");
            sqlite3_close(c->h);
            free(c);
            db->conn = NULL;
            return VK_ESQL;
        }
    }
    return VK_OK;
}

static void sq_disconnect(vk_db *db)
{
    sq_conn *c = CONN(db);
    for (int i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(c->cache[i].st);
        free(c->cache[i].sql);
    }
    sqlite3_close_v2(c->h);
    free(c);
    db->conn = NULL;
}

static int sq_exec(vk_db *db, const char *sql)
{
    int rc = sqlite3_exec(CONN(db)->h, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? VK_OK : sq_fail(CONN(db), rc, "SQLite error");
}

/* a prepared statement for sql, from the cache when it is free there */
static int prepare(sq_conn *c, const char *sql, sqlite3_stmt **st, cached **slot)
{
    *slot = NULL;
    for (int i = 0; i < STMT_CACHE; i++) {
        cached *e = &c->cache[i];
        if (e->sql && !e->busy && strcmp(e->sql, sql) == 0) {
            e->busy = 1;
            *st = e->st;
            *slot = e;
            return VK_OK;
        }
    }
    int rc = sqlite3_prepare_v2(c->h, sql, -1, st, NULL);
    if (rc != SQLITE_OK)
        return sq_fail(c, rc, "SQLite error");
    /* keep it for next time in a slot nobody is using */
    for (int tries = 0; tries < STMT_CACHE; tries++) {
        cached *e = &c->cache[c->next_slot];
        c->next_slot = (c->next_slot + 1) % STMT_CACHE;
        if (e->busy)
            continue;
        sqlite3_finalize(e->st);
        free(e->sql);
        e->sql = vk_strdup(sql);
        e->st = e->sql ? *st : NULL;
        if (e->sql) {
            e->busy = 1;
            *slot = e;
        }
        break;
    }
    return VK_OK;
}

static void release(sqlite3_stmt *st, cached *slot)
{
    if (slot) {
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        slot->busy = 0;
    } else {
        sqlite3_finalize(st);
    }
}

static int bind_value(sqlite3_stmt *st, int i, const vk_value *v)
{
    switch (v->type) {
    case VK_NULL: return sqlite3_bind_null(st, i);
    case VK_INT:
    case VK_BOOL: return sqlite3_bind_int64(st, i, v->i);
    case VK_REAL: return sqlite3_bind_double(st, i, v->r);
    case VK_TEXT: return sqlite3_bind_text64(st, i, v->s, v->len, SQLITE_TRANSIENT, SQLITE_UTF8);
    case VK_BLOB: return sqlite3_bind_blob64(st, i, v->s, v->len, SQLITE_TRANSIENT);
    }
    return SQLITE_MISUSE;
}

static int sq_query(vk_db *db, const char *sql, const vk_value *params, int nparams, vk_stmt **out)
{
    sq_conn *c = CONN(db);
    vk_stmt *s = vk_calloc(1, sizeof *s);
    if (!s)
        return VK_ENOMEM;
    int rc = prepare(c, sql, &s->st, &s->slot);
    if (rc) {
        free(s);
        return rc;
    }
    s->c = c;
    if (sqlite3_bind_parameter_count(s->st) != nparams) {
        rc = vk_fail(VK_EINVAL, "query has %d placeholders but %d values were given",
                     sqlite3_bind_parameter_count(s->st), nparams);
    }
    for (int i = 0; i < nparams && rc == VK_OK; i++)
        if (bind_value(s->st, i + 1, &params[i]) != SQLITE_OK)
            rc = sq_fail(c, 0, "cannot bind a query value");
    if (rc) {
        release(s->st, s->slot);
        free(s);
        return rc;
    }
    *out = s;
    return VK_OK;
}

static void read_cell(sqlite3_stmt *st, int i, vk_value *v)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        *v = (vk_value){.type = VK_INT, .i = sqlite3_column_int64(st, i)};
        break;
    case SQLITE_FLOAT:
        *v = (vk_value){.type = VK_REAL, .r = sqlite3_column_double(st, i)};
        break;
    case SQLITE_TEXT:
        v->type = VK_TEXT;
        v->s = (const char *)sqlite3_column_text(st, i);
        v->len = (size_t)sqlite3_column_bytes(st, i);
        break;
    case SQLITE_BLOB:
        v->type = VK_BLOB;
        v->s = sqlite3_column_blob(st, i);
        v->len = (size_t)sqlite3_column_bytes(st, i);
        if (!v->s)
            v->s = "";
        break;
    default:
        *v = (vk_value){.type = VK_NULL};
    }
}

static int sq_next(vk_stmt *s, vk_value *row, int ncols)
{
    int rc = sqlite3_step(s->st);
    if (rc == SQLITE_DONE)
        return 0;
    if (rc != SQLITE_ROW)
        return sq_fail(s->c, rc, "SQLite error");
    int n = sqlite3_column_count(s->st);
    for (int i = 0; i < ncols; i++) {
        if (i < n)
            read_cell(s->st, i, &row[i]);
        else
            row[i] = (vk_value){.type = VK_NULL};
    }
    return 1;
}

static void sq_finish(vk_stmt *s)
{
    if (!s)
        return;
    release(s->st, s->slot);
    free(s);
}

static int sq_ncols(vk_stmt *s) { return sqlite3_column_count(s->st); }

/* ---------- catalog ---------- */

/* "PRAGMA [schema.]what("arg")" */
static char *pragma(const vk_db *db, const char *what, const char *arg)
{
    vk_buf b = {0};
    int rc = vk_buf_adds(&b, "PRAGMA ");
    if (db->schema) {
        rc |= vk_buf_ident(&b, db->schema);
        rc |= vk_buf_adds(&b, ".");
    }
    rc |= vk_buf_printf(&b, "%s(", what);
    rc |= vk_buf_ident(&b, arg);
    rc |= vk_buf_adds(&b, ")");
    if (rc) {
        vk_buf_free(&b);
        return NULL;
    }
    return b.p;
}

static int run_pragma(vk_db *db, const char *what, const char *arg, sqlite3_stmt **st)
{
    char *sql = pragma(db, what, arg);
    if (!sql)
        return VK_ENOMEM;
    int rc = sqlite3_prepare_v2(CONN(db)->h, sql, -1, st, NULL);
    free(sql);
    return rc == SQLITE_OK ? VK_OK : sq_fail(CONN(db), rc, "cannot read the table's schema");
}

/* marks unique/indexed columns from the table's single-column indexes */
static int read_indexes(vk_db *db, vk_column *cols, int ncols)
{
    sqlite3_stmt *list;
    int rc = run_pragma(db, "index_list", db->table, &list);
    while (rc == VK_OK && sqlite3_step(list) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(list, 1);
        int unique = sqlite3_column_int(list, 2);
        const char *origin = (const char *)sqlite3_column_text(list, 3);
        sqlite3_stmt *info;
        if ((rc = run_pragma(db, "index_info", name, &info)))
            break;
        int nparts = 0, col = -1;
        while (sqlite3_step(info) == SQLITE_ROW) {
            nparts++;
            const char *cname = (const char *)sqlite3_column_text(info, 2);
            for (int i = 0; cname && i < ncols; i++)
                if (strcmp(cols[i].name, cname) == 0)
                    col = i;
        }
        sqlite3_finalize(info);
        if (nparts == 1 && col >= 0) {
            if (unique)
                cols[col].unique = 1;
            if (origin && strcmp(origin, "c") == 0)
                cols[col].index = 1;
        }
    }
    sqlite3_finalize(list);
    return rc;
}

static int sq_describe(vk_db *db, int *exists, vk_column **out, int *nout)
{
    *exists = 0;
    *out = NULL;
    *nout = 0;
    sqlite3_stmt *st;
    int rc = run_pragma(db, "table_info", db->table, &st);
    if (rc)
        return rc;
    int n = 0, cap = 8;
    vk_column *cols = vk_calloc((size_t)cap, sizeof *cols);
    while (cols && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            vk_column *p = vk_realloc(cols, sizeof *cols * (size_t)(cap *= 2));
            if (!p)
                break;
            cols = p;
        }
        vk_column *c = &cols[n];
        memset(c, 0, sizeof *c);
        if (!(c->name = vk_strdup((const char *)sqlite3_column_text(st, 1))))
            break;
        n++;
        vk_column_from_decl(c, (const char *)sqlite3_column_text(st, 2));
        c->nullable = !sqlite3_column_int(st, 3);
        c->primary = sqlite3_column_int(st, 5) > 0;
    }
    int step_rc = rc;
    sqlite3_finalize(st);
    if (!cols || (step_rc != SQLITE_DONE && step_rc != SQLITE_ROW)) {
        vk_columns_free(cols, n);
        return cols ? sq_fail(CONN(db), step_rc, "cannot read the table's schema") : VK_ENOMEM;
    }
    if (step_rc == SQLITE_ROW) {   /* allocation failed mid-way */
        vk_columns_free(cols, n);
        return VK_ENOMEM;
    }
    if (n == 0) {
        free(cols);
        return VK_OK;
    }
    if ((rc = read_indexes(db, cols, n))) {
        vk_columns_free(cols, n);
        return rc;
    }
    *exists = 1;
    *out = cols;
    *nout = n;
    return VK_OK;
}

/* ---------- writing and reading rows ---------- */

static char *insert_sql(const vk_db *db)
{
    vk_buf b = {0};
    int rc = vk_buf_printf(&b, "INSERT INTO %s (", db->qtable);
    for (int i = 0; i < db->ncols; i++) {
        if (i)
            rc |= vk_buf_adds(&b, ", ");
        rc |= vk_buf_ident(&b, db->cols[i].name);
    }
    rc |= vk_buf_adds(&b, ") VALUES (");
    for (int i = 0; i < db->ncols; i++)
        rc |= vk_buf_printf(&b, "%s?%d", i ? ", " : "", i + 1);
    rc |= vk_buf_adds(&b, ")");
    if (rc) {
        vk_buf_free(&b);
        return NULL;
    }
    return b.p;
}

static int sq_table_exists(vk_db *db, const char *schema, const char *name, int *exists)
{
    vk_buf sql = {0};
    int rc = vk_buf_adds(&sql, "SELECT COUNT(*) FROM ");
    if (schema) {
        rc |= vk_buf_ident(&sql, schema);
        rc |= vk_buf_adds(&sql, ".");
    }
    rc |= vk_buf_adds(&sql, "sqlite_master WHERE type IN ('table', 'view') AND name = ?1");
    i64 n = 0;
    vk_value p = {.type = VK_TEXT, .s = name, .len = strlen(name)};
    rc = rc ? VK_ENOMEM : vk_db_query_int(db, sql.p, &p, 1, &n, NULL);
    vk_buf_free(&sql);
    *exists = rc == VK_OK && n > 0;
    return rc;
}

/* total_changes counts this connection's changes, data_version moves with
 * every other connection's commit (of the main database only) */
static const char *sq_change_stamp_sql(const vk_db *db)
{
    return db->schema ? NULL : "SELECT total_changes() || '/' || data_version FROM pragma_data_version";
}

static int sq_insert(vk_db *db, const vk_rows *rows)
{
    sq_conn *c = CONN(db);
    char *sql = insert_sql(db);
    if (!sql)
        return VK_ENOMEM;
    sqlite3_stmt *st;
    cached *slot;
    int rc = prepare(c, sql, &st, &slot);
    free(sql);
    if (rc)
        return rc;
    for (i64 r = 0; r < rows->nrows && rc == VK_OK; r++) {
        if ((rc = vk_rows_wait(rows, r + 1)))
            break;
        for (int i = 0; i < db->ncols; i++)
            if (bind_value(st, i + 1, vk_rows_get(rows, r, i)) != SQLITE_OK) {
                rc = sq_fail(c, 0, "cannot bind a record value");
                break;
            }
        if (rc == VK_OK) {
            int s = sqlite3_step(st);
            if (s != SQLITE_DONE) {
                char what[128];
                snprintf(what, sizeof what, "cannot insert the record with idx %lld",
                         (long long)vk_rows_get(rows, r, db->idx_col)->i);
                rc = sq_fail(c, s, what);
            }
        }
        sqlite3_reset(st);
    }
    release(st, slot);
    return rc;
}

static int sq_fetch(vk_db *db, const i64 *ids, i64 n, const int *cols, int ncols, vk_rows **out)
{
    sq_conn *c = CONN(db);
    vk_buf sql = {0};
    int rc = vk_buf_adds(&sql, "SELECT ");
    rc |= vk_buf_ident(&sql, db->idx_name);
    for (int i = 0; i < ncols; i++) {
        rc |= vk_buf_adds(&sql, ", ");
        rc |= vk_buf_ident(&sql, db->cols[cols[i]].name);
    }
    rc |= vk_buf_printf(&sql, " FROM %s WHERE ", db->qtable);
    rc |= vk_buf_ident(&sql, db->idx_name);
    rc |= vk_buf_adds(&sql, " = ?1");
    if (rc) {
        vk_buf_free(&sql);
        return VK_ENOMEM;
    }
    sqlite3_stmt *st;
    cached *slot;
    rc = prepare(c, sql.p, &st, &slot);
    vk_buf_free(&sql);
    if (rc)
        return rc;
    vk_rows *r = vk_rows_new(ncols + 1);
    vk_value *row = vk_calloc((size_t)ncols + 1, sizeof(vk_value));
    if (!r || !row)
        rc = VK_ENOMEM;
    /* one read transaction around the lookups: the file lock is taken once,
     * not once per statement */
    int own_txn = rc == VK_OK && n > 1 && sqlite3_get_autocommit(c->h);
    if (own_txn && sqlite3_exec(c->h, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        own_txn = 0;
    /* one B-tree lookup per id: no round trips to pay in an embedded database */
    for (i64 i = 0; i < n && rc == VK_OK; i++) {
        sqlite3_bind_int64(st, 1, ids[i]);
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            for (int j = 0; j <= ncols; j++)
                read_cell(st, j, &row[j]);
            rc = vk_rows_append(r, row);
        } else if (s != SQLITE_DONE) {
            rc = sq_fail(c, s, "SQLite error");
        }
        sqlite3_reset(st);
    }
    release(st, slot);
    if (own_txn)
        sqlite3_exec(c->h, "COMMIT", NULL, NULL, NULL);
    free(row);
    if (rc) {
        vk_rows_free(r);
        return rc;
    }
    vk_rows_seal(r);
    *out = r;
    return VK_OK;
}

static const char *sq_sql_type(vk_type t)
{
    switch (t) {
    case VK_INT: return "BIGINT";
    case VK_REAL: return "FLOAT";
    case VK_TEXT: return "TEXT";
    case VK_BOOL: return "BOOLEAN";
    default: return "BLOB";
    }
}

/* as SQLAlchemy declares them: SQLite keeps the text SQLAlchemy writes */
static const char *sq_kind_sql_type(vk_kind k)
{
    switch (k) {
    case VK_KIND_DATETIME: return "DATETIME";
    case VK_KIND_DATE: return "DATE";
    case VK_KIND_JSON: return "JSON";
    default: return NULL;
    }
}

const vk_driver vk_sqlite_driver = {
    .name = "sqlite",
    .placeholder = "?",
    .quote = '"',
    .key_text_type = "TEXT",
    .update_returning = 1,
    .begin_sql = "BEGIN IMMEDIATE",
    .index_name_qualified = 1,
    .connect = sq_connect,
    .disconnect = sq_disconnect,
    .exec = sq_exec,
    .query = sq_query,
    .next = sq_next,
    .finish = sq_finish,
    .ncols = sq_ncols,
    .describe = sq_describe,
    .table_exists = sq_table_exists,
    .change_stamp_sql = sq_change_stamp_sql,
    .insert = sq_insert,
    .fetch = sq_fetch,
    .sql_type = sq_sql_type,
    .kind_sql_type = sq_kind_sql_type,
};
