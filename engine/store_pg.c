/* store_pg.c: the PostgreSQL storage driver (libpq)
 *
 * Reads run through server-side cursors (DECLARE ... NO SCROLL CURSOR WITH
 * HOLD, then FETCH blocks), so a select of any size holds one block in
 * memory and other statements can run on the connection between two blocks.
 * Outside a caller's transaction the driver opens a read transaction of its
 * own for the cursor and commits it when the cursor is done.  Any other
 * statement first commits that read transaction: the cursor is held (the
 * server keeps its remaining rows) and the statement runs on its own.
 * Fetches run inside it.  A cursor left open (a Lua loop broken off and not
 * yet collected) keeps the read transaction open until the next write.
 *
 * Writes use COPY ... FROM STDIN (FORMAT binary) inside the caller's
 * transaction; fetches by idx are one prepared query with an int8[] array.
 *
 * A broken connection is reset at the next call, unless it broke inside a
 * transaction of the caller's: then every call fails until ROLLBACK, so a
 * COMMIT can never succeed on a new connection that lost the work.
 */
#include "vk_store.h"

#include <errno.h>
#include <libpq-fe.h>
#include <libpq/libpq-fs.h>
#include <math.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* type OIDs (pg_type.h, stable across versions) */
enum {
    OID_BOOL = 16, OID_BYTEA = 17, OID_CHAR = 18, OID_NAME = 19, OID_INT8 = 20,
    OID_INT2 = 21, OID_INT4 = 23, OID_TEXT = 25, OID_OID = 26, OID_JSON = 114,
    OID_FLOAT4 = 700, OID_FLOAT8 = 701, OID_UNKNOWN = 705, OID_INT8_ARRAY = 1016,
    OID_BPCHAR = 1042, OID_VARCHAR = 1043, OID_DATE = 1082, OID_TIMESTAMP = 1114,
    OID_NUMERIC = 1700, OID_JSONB = 3802
};

/* timestamp and date count from 2000-01-01: days from 1970-01-01 to it */
#define PG_EPOCH_DAYS 10957
#define USEC_PER_DAY 86400000000LL

#define FIRST_ROWS 100      /* first block of a cursor, in text format */
#define BLOCK_ROWS 1000     /* later blocks, binary when the types allow */
#define PREP_CACHE 8        /* prepared fetch statements kept per connection */
#define COPY_CHUNK (1 << 20)
#define LO_CHUNK (256 << 10)   /* bytes of a large object moved at a time */

enum { ST_TXN, ST_HELD, ST_CLOSED };   /* cursor states */

typedef struct prepared {
    char *sql;
    char name[24];
} prepared;

typedef struct pg_conn {
    PGconn *pg;
    int own_txn;            /* a read transaction the driver opened */
    int lost;               /* the connection broke */
    int lost_in_txn;        /* ...while a transaction was open */
    vk_stmt *stmts;         /* open statements */
    unsigned serial;        /* for cursor and statement names */
    Oid *oids;              /* catalog type of each table column, or NULL */
    int noids;
    prepared prep[PREP_CACHE];
    int next_prep;
    char channel[40];       /* LISTENed to: the table's change notices, or "" */
    int missed;             /* notices may have been missed (a reconnect) */
} pg_conn;

struct vk_stmt {
    pg_conn *c;
    vk_stmt *next;
    char name[24];          /* cursor name; "" for a plain result */
    int state;
    PGresult *res;          /* current block */
    int row, nrows;
    int done;               /* no more blocks to fetch */
    int binary;             /* later blocks in binary format */
    int ncols;
    unsigned char **unesc;  /* bytea cells of the current row (text format) */
    char (*fmt)[VK_VALUE_BUF];   /* timestamp and date cells of the current row, as text */
};

/* bound parameters in libpq's form */
typedef struct pg_params {
    int n;
    Oid *types;
    const char **vals;
    int *lens, *fmts;
    vk_buf bytes;
} pg_params;

#define CONN(db) ((pg_conn *)(db)->conn)

/* ---------- big-endian wire values ---------- */

static void put_u16(char *p, unsigned v)
{
    p[0] = (char)(v >> 8);
    p[1] = (char)v;
}

static void put_u32(char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (char)(v >> (24 - 8 * i));
}

static void put_u64(char *p, u64 v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (char)(v >> (56 - 8 * i));
}

static void put_f64(char *p, double d)
{
    u64 u;
    memcpy(&u, &d, sizeof u);
    put_u64(p, u);
}

static unsigned get_u16(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (unsigned)(u[0] << 8 | u[1]);
}

static uint32_t get_u32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static u64 get_u64(const char *p) { return (u64)get_u32(p) << 32 | get_u32(p + 4); }

static double get_f64(const char *p)
{
    u64 u = get_u64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static float get_f32(const char *p)
{
    uint32_t u = get_u32(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* NUMERIC's binary form: ndigits, weight, sign, dscale, base-10000 digits */
static double numeric_value(const char *p, int len)
{
    if (len < 8)
        return NAN;
    int ndigits = (int)get_u16(p), weight = (int16_t)get_u16(p + 2);
    unsigned sign = get_u16(p + 4);
    if (sign == 0xC000)
        return NAN;
    if (sign == 0xD000 || sign == 0xF000)
        return sign == 0xD000 ? INFINITY : -INFINITY;
    double v = 0;
    for (int i = 0; i < ndigits && 8 + 2 * i + 2 <= len; i++)
        v = v * 10000 + get_u16(p + 8 + 2 * i);
    int shift = weight - ndigits + 1;
    v = shift >= 0 ? v * pow(10000, shift) : v / pow(10000, -shift);
    return sign == 0x4000 ? -v : v;
}

/* ---------- value types ---------- */

static vk_type type_of_oid(Oid t)
{
    switch (t) {
    case OID_INT8: case OID_INT4: case OID_INT2: case OID_OID: return VK_INT;
    case OID_FLOAT4: case OID_FLOAT8: case OID_NUMERIC: return VK_REAL;
    case OID_BOOL: return VK_BOOL;
    case OID_BYTEA: return VK_BLOB;
    default: return VK_TEXT;
    }
}

static int is_texty(Oid t)
{
    return t == OID_TEXT || t == OID_VARCHAR || t == OID_BPCHAR || t == OID_NAME ||
           t == OID_CHAR || t == OID_JSON || t == OID_UNKNOWN;
}

/* types whose binary form this file reads */
static int binary_readable(Oid t)
{
    return type_of_oid(t) != VK_TEXT || is_texty(t) || t == OID_JSONB || t == OID_TIMESTAMP ||
           t == OID_DATE;
}

/* types whose binary form this file writes (COPY) */
static int binary_writable(Oid t)
{
    return t != OID_NUMERIC && t != OID_OID && binary_readable(t);
}

static Oid oid_of_type(vk_type t)
{
    switch (t) {
    case VK_INT: return OID_INT8;
    case VK_REAL: return OID_FLOAT8;
    case VK_BOOL: return OID_BOOL;
    case VK_TEXT: return OID_TEXT;
    default: return OID_BYTEA;
    }
}

/* catalog type of table column i */
static Oid column_oid(const vk_db *db, int i)
{
    const pg_conn *c = CONN(db);
    if (c->oids && i < c->noids)
        return c->oids[i];
    const vk_column *col = &db->cols[i];
    if (col->primary)
        return OID_INT8;
    /* a table this handle created: the types create_table gave it */
    switch (col->kind) {
    case VK_KIND_DATETIME: return OID_TIMESTAMP;
    case VK_KIND_DATE: return OID_DATE;
    case VK_KIND_JSON: return OID_JSON;
    default: return oid_of_type(col->type);
    }
}

/* ---------- errors ---------- */

/* copies s into out with every run of white space made one space */
static void squeeze(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    int space = 0;
    for (; s && *s && n + 1 < cap; s++) {
        if (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r') {
            space = n > 0;
            continue;
        }
        if (space && n + 2 < cap)
            out[n++] = ' ';
        space = 0;
        out[n++] = *s;
    }
    out[n] = '\0';
}

/* libpq's own message without its severity and its advice lines */
static void first_line(char *out, size_t cap, const char *s)
{
    static const char *const prefixes[] = {"FATAL:", "ERROR:", "PANIC:"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (strncmp(s, prefixes[i], strlen(prefixes[i])) == 0)
            s += strlen(prefixes[i]);
    while (*s == ' ')
        s++;
    int n = (int)strcspn(s, "\n");
    snprintf(out, cap, "%.*s", n, s);
}

/* in_txn: a transaction was open; the driver's own read transaction does
 * not count, its loss costs nothing but the cursor */
static void mark_lost(pg_conn *c, int in_txn)
{
    if (!c->lost)
        c->lost_in_txn = in_txn && !c->own_txn;
    c->lost = 1;
    c->own_txn = 0;
    for (vk_stmt *s = c->stmts; s; s = s->next)
        s->state = ST_CLOSED;
}

/* "what: PostgreSQL's message (detail)"; SQLSTATE class 23 is a constraint */
static int pg_fail(pg_conn *c, const PGresult *res, const char *what)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    char msg[1024], det[512];
    if (primary)
        squeeze(msg, sizeof msg, primary);
    else
        first_line(msg, sizeof msg, PQerrorMessage(c->pg));
    squeeze(det, sizeof det, detail);
    int code = state && strncmp(state, "23", 2) == 0 ? VK_ECONSTRAINT : VK_ESQL;
    /* lock_not_available: a lock wait ran past the session's lock_timeout */
    if (state && strcmp(state, "55P03") == 0) {
        code = VK_ELOCKED;
        return vk_fail(code, "%s: database is locked: another writer held the table longer than "
                       "the lock_timeout (%s)", what, msg);
    }
    const char *lost = "";
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        lost = "the connection was lost: ";
        code = VK_ECONN;
        mark_lost(c, 1);
    }
    if (*det)
        return vk_fail(code, "%s: %s%s (%s)", what, lost, msg, det);
    return vk_fail(code, "%s: %s%s", what, lost, msg);
}

/* ---------- running commands ---------- */

static void closed_by_txn_end(pg_conn *c, int committed)
{
    for (vk_stmt *s = c->stmts; s; s = s->next)
        if (s->state == ST_TXN)
            s->state = committed ? ST_HELD : ST_CLOSED;
    c->own_txn = 0;
}

/* follows transaction ends: cursors of a committed one are held, others gone */
static void track(pg_conn *c, PGTransactionStatusType before, const PGresult *res)
{
    if (PQstatus(c->pg) == CONNECTION_BAD) {
        mark_lost(c, before != PQTRANS_IDLE);
        return;
    }
    if (before != PQTRANS_IDLE && PQtransactionStatus(c->pg) == PQTRANS_IDLE)
        closed_by_txn_end(c, res && strcmp(PQcmdStatus((PGresult *)res), "COMMIT") == 0);
}

/* LISTEN again on a new session; c->missed until changes() reports it */
static int relisten(pg_conn *c)
{
    char sql[64];
    snprintf(sql, sizeof sql, "LISTEN %s", c->channel);
    PGresult *res = PQexec(c->pg, sql);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    c->missed = 1;
    if (!ok)
        mark_lost(c, 0);
    return ok ? VK_OK : VK_ECONN;
}

/* before a command: a broken connection is reset when no transaction was lost */
static int usable(pg_conn *c, const char *what)
{
    if (!c->lost)
        return VK_OK;
    if (!c->lost_in_txn) {
        PQreset(c->pg);
        if (PQstatus(c->pg) == CONNECTION_OK) {
            c->lost = 0;
            for (int i = 0; i < PREP_CACHE; i++) {
                free(c->prep[i].sql);
                c->prep[i].sql = NULL;
            }
            /* a new session hears nothing until it listens again, and
             * what was committed meanwhile was announced to the old one */
            if (!*c->channel || relisten(c) == VK_OK)
                return VK_OK;
        }
    }
    char msg[512];
    first_line(msg, sizeof msg, PQerrorMessage(c->pg));
    if (c->lost_in_txn)
        return vk_fail(VK_ECONN, "%s: the connection was lost during a transaction (%s): "
                       "ROLLBACK to reconnect", what, msg);
    return vk_fail(VK_ECONN, "%s: the connection was lost: %s", what, msg);
}

/* ROLLBACK after the connection broke in a transaction: nothing left to undo */
static int rollback_of_lost_txn(pg_conn *c, const char *sql)
{
    while (*sql == ' ' || *sql == '\n' || *sql == '\t')
        sql++;
    if (!c->lost || !c->lost_in_txn || strncasecmp(sql, "ROLLBACK", 8) != 0)
        return 0;
    c->lost_in_txn = 0;
    return 1;
}

/* runs sql (with p, or as a simple query); NULL with the error set on failure */
static PGresult *run(pg_conn *c, const char *sql, const pg_params *p, int binary, const char *what)
{
    if (usable(c, what))
        return NULL;
    PGTransactionStatusType before = PQtransactionStatus(c->pg);
    PGresult *res;
    if (p && p->n)
        res = PQexecParams(c->pg, sql, p->n, p->types, p->vals, p->lens, p->fmts, binary);
    else if (binary)
        res = PQexecParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 1);
    else
        res = PQexec(c->pg, sql);
    track(c, before, res);
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN)
        return res;
    pg_fail(c, res, what);
    PQclear(res);
    return NULL;
}

static int run_ok(pg_conn *c, const char *sql, const char *what)
{
    PGresult *res = run(c, sql, NULL, 0, what);
    PQclear(res);
    return res ? VK_OK : vk_errcode();
}

/* commits the driver's read transaction: its cursors become held */
static int end_own_txn(pg_conn *c)
{
    if (!c->own_txn)
        return VK_OK;
    int rc = run_ok(c, "COMMIT", "cannot end a read transaction");
    c->own_txn = 0;
    return rc;
}

/* after a failed statement: the driver's aborted read transaction is undone */
static void recover_own_txn(pg_conn *c)
{
    if (c->own_txn && !c->lost && PQtransactionStatus(c->pg) == PQTRANS_INERROR) {
        char saved[1024];
        int code = vk_errcode();
        snprintf(saved, sizeof saved, "%s", vk_errmsg());
        run_ok(c, "ROLLBACK", "PostgreSQL error");
        vk_fail(code, "%s", saved);
    }
}

/* ---------- connecting ---------- */

static void quiet_notices(void *arg, const char *message)
{
    (void)arg;
    (void)message;   /* "there is no transaction in progress" and the like */
}

/* every occurrence of pw in msg becomes "***" */
static void redact(char *msg, size_t cap, const char *pw)
{
    size_t pn = pw ? strlen(pw) : 0;
    char *from = msg, *hit;
    while (pn && (hit = strstr(from, pw))) {
        size_t tail = strlen(hit + pn);
        if ((size_t)(hit - msg) + 3 + tail + 1 > cap)
            tail = cap - (size_t)(hit - msg) - 4;
        memmove(hit + 3, hit + pn, tail);
        memcpy(hit, "***", 3);
        hit[3 + tail] = '\0';
        from = hit + 3;
    }
}

typedef struct conninfo {
    const char **keys, **vals;
    int n;
} conninfo;

static void ci_add(conninfo *ci, const char *k, const char *v)
{
    if (v) {
        ci->keys[ci->n] = k;
        ci->vals[ci->n] = v;
        ci->n++;
    }
}

/* URL parts, then URL options, then caller options: later ones win in libpq */
static int ci_build(conninfo *ci, const vk_url *u, const char *const *opts, int nopts, char **owned)
{
    int cap = 9 + u->nopts + nopts;
    ci->keys = vk_calloc((size_t)cap, sizeof(char *));
    ci->vals = vk_calloc((size_t)cap, sizeof(char *));
    if (!ci->keys || !ci->vals)
        return VK_ENOMEM;
    ci_add(ci, "fallback_application_name", "vekterdb");
    ci_add(ci, "client_encoding", "UTF8");
    /* times read as text in one form (vk_value_read); an "options" of the
     * caller's replaces this one */
    ci_add(ci, "options", "-c DateStyle=ISO");
    ci_add(ci, "host", u->host);
    ci_add(ci, "port", u->port);
    ci_add(ci, "dbname", u->dbname);
    ci_add(ci, "user", u->user);
    ci_add(ci, "password", u->password);
    for (int i = 0; i < u->nopts; i++)
        ci_add(ci, u->keys[i], u->values[i]);
    for (int i = 0; i < nopts; i++) {
        const char *eq = strchr(opts[i], '=');
        if (!eq)
            return vk_fail(VK_EINVAL, "connection option %d is not key=value", i + 1);   /* may be a secret */
        if (!(owned[i] = vk_strndup(opts[i], (size_t)(eq - opts[i]))))
            return VK_ENOMEM;
        ci_add(ci, owned[i], eq + 1);
    }
    ci->keys[ci->n] = ci->vals[ci->n] = NULL;
    return VK_OK;
}

static int connect_failed(PGconn *pg, const conninfo *ci)
{
    char msg[1024];
    squeeze(msg, sizeof msg, pg ? PQerrorMessage(pg) : "out of memory");
    for (int i = 0; i < ci->n; i++)
        if (strcmp(ci->keys[i], "password") == 0)
            redact(msg, sizeof msg, ci->vals[i]);
    return vk_fail(VK_ECONN, "cannot connect to PostgreSQL: %s", msg);
}

static int pg_connect(vk_db *db, const vk_url *u, const char *const *opts, int nopts)
{
    conninfo ci = {0};
    char **owned = vk_calloc((size_t)nopts + 1, sizeof(char *));
    int rc = owned ? ci_build(&ci, u, opts, nopts, owned) : VK_ENOMEM;
    PGconn *pg = NULL;
    if (rc == VK_OK) {
        pg = PQconnectdbParams(ci.keys, ci.vals, 0);
        if (PQstatus(pg) != CONNECTION_OK)
            rc = connect_failed(pg, &ci);
    }
    for (int i = 0; owned && i < nopts; i++)
        free(owned[i]);
    free(owned);
    free(ci.keys);
    free(ci.vals);
    pg_conn *c = rc ? NULL : vk_calloc(1, sizeof *c);
    if (!c) {
        PQfinish(pg);
        return rc ? rc : VK_ENOMEM;
    }
    PQsetNoticeProcessor(pg, quiet_notices, NULL);
    c->pg = pg;
    db->conn = c;
    return VK_OK;
}

static void pg_disconnect(vk_db *db)
{
    pg_conn *c = CONN(db);
    for (vk_stmt *s = c->stmts; s; s = s->next)
        s->c = NULL;   /* statements still open fail from now on */
    for (int i = 0; i < PREP_CACHE; i++)
        free(c->prep[i].sql);
    free(c->oids);
    PQfinish(c->pg);
    free(c);
    db->conn = NULL;
}

/* Writers of one table take turns through a transaction-level advisory
 * lock keyed by the table's qualified name: it spans every process and
 * machine on the server, is released by COMMIT or ROLLBACK, and waits as
 * long as the session's lock_timeout allows (PostgreSQL's default: no
 * limit). */
static u64 table_key(const vk_db *db)
{
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)db->qtable; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

/* the table's notice channel: "vekterdb_<key in hex>" */
static void channel_of(const vk_db *db, char out[40])
{
    snprintf(out, 40, "vekterdb_%016llx", (unsigned long long)table_key(db));
}

/* The same statement announces the write transaction to the table's
 * search nodes (pg_listen): PostgreSQL delivers a NOTIFY at COMMIT, never
 * on ROLLBACK, and only after the rows are visible. */
static int pg_lock_writers(vk_db *db)
{
    char sql[160], ch[40];
    channel_of(db, ch);
    snprintf(sql, sizeof sql, "SELECT pg_advisory_xact_lock(%lld), pg_notify('%s', '')",
             (long long)table_key(db), ch);
    PGresult *res = run(CONN(db), sql, NULL, 0, "cannot wait for the other writers");
    PQclear(res);
    return res ? VK_OK : vk_errcode();
}

static int pg_exec(vk_db *db, const char *sql)
{
    pg_conn *c = CONN(db);
    if (rollback_of_lost_txn(c, sql))
        return VK_OK;
    int rc = end_own_txn(c);
    return rc ? rc : run_ok(c, sql, "PostgreSQL error");
}

/* ---------- parameters ---------- */

static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char b = s[i];
        size_t len = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        if (b == 0 || len == 0 || i + len > n || (len == 2 && b < 0xC2))
            return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

static void params_free(pg_params *p)
{
    free(p->types);
    free(p->vals);
    free(p->lens);
    free(p->fmts);
    vk_buf_free(&p->bytes);
}

/* one value: its type, format and bytes (offset into p->bytes for now) */
static int param_value(pg_params *p, int i, const vk_value *v)
{
    char w[8];
    size_t off = p->bytes.len;
    int rc = VK_OK;
    p->fmts[i] = 1;
    switch (v->type) {
    case VK_NULL:
        p->lens[i] = -1;
        return VK_OK;
    case VK_INT:
        /* typed as a literal would be: integer when it fits, else bigint */
        if (v->i >= INT32_MIN && v->i <= INT32_MAX) {
            p->types[i] = OID_INT4;
            put_u32(w, (uint32_t)v->i);
            p->lens[i] = 4;
        } else {
            p->types[i] = OID_INT8;
            put_u64(w, (u64)v->i);
            p->lens[i] = 8;
        }
        rc = vk_buf_add(&p->bytes, w, (size_t)p->lens[i]);
        break;
    case VK_REAL:
        p->types[i] = OID_FLOAT8;
        put_f64(w, v->r);
        rc = vk_buf_add(&p->bytes, w, 8);
        p->lens[i] = 8;
        break;
    case VK_BOOL:
        p->types[i] = OID_BOOL;
        rc = vk_buf_add(&p->bytes, v->i ? "\1" : "\0", 1);
        p->lens[i] = 1;
        break;
    case VK_TEXT:
    case VK_BLOB:
        if (v->type == VK_TEXT && valid_utf8((const unsigned char *)v->s, v->len)) {
            /* text of unknown type: the server infers it, as for a literal */
            p->fmts[i] = 0;
            rc = vk_buf_add(&p->bytes, v->s, v->len) || vk_buf_add(&p->bytes, "", 1);
        } else {
            p->types[i] = OID_BYTEA;
            rc = vk_buf_add(&p->bytes, v->len ? v->s : "", v->len);
        }
        p->lens[i] = (int)v->len;
        break;
    }
    p->vals[i] = (const char *)(uintptr_t)(off + 1);   /* 0 stays NULL */
    return rc ? VK_ENOMEM : VK_OK;
}

static int params_build(pg_params *p, const vk_value *v, int n)
{
    memset(p, 0, sizeof *p);
    p->n = n;
    size_t m = (size_t)(n ? n : 1);
    p->types = vk_calloc(m, sizeof(Oid));
    p->vals = vk_calloc(m, sizeof(char *));
    p->lens = vk_calloc(m, sizeof(int));
    p->fmts = vk_calloc(m, sizeof(int));
    /* a first byte: an empty value's pointer is never NULL (NULL is SQL NULL) */
    if (!p->types || !p->vals || !p->lens || !p->fmts || vk_buf_add(&p->bytes, "", 1))
        return VK_ENOMEM;
    for (int i = 0; i < n; i++)
        if (param_value(p, i, &v[i]))
            return VK_ENOMEM;
    for (int i = 0; i < n; i++)
        if (p->vals[i])
            p->vals[i] = p->bytes.p + ((uintptr_t)p->vals[i] - 1);
    return VK_OK;
}

/* ---------- reading cells ---------- */

/* a timestamp (microseconds) or a date (days) from 2000-01-01 as text, the
 * way PostgreSQL's ISO DateStyle shows it */
static void time_text(i64 v, int is_date, char *buf, vk_value *out)
{
    int n;
    if (v == INT64_MAX || v == INT64_MIN || (is_date && (v == INT32_MAX || v == INT32_MIN))) {
        n = snprintf(buf, VK_VALUE_BUF, "%s", v > 0 ? "infinity" : "-infinity");
    } else {
        vk_time t = {0};
        i64 days = is_date ? v : (v >= 0 ? v / USEC_PER_DAY : -((-v + USEC_PER_DAY - 1) / USEC_PER_DAY));
        i64 usec = is_date ? 0 : v - days * USEC_PER_DAY;
        vk_civil_from_days(days + PG_EPOCH_DAYS, &t.year, &t.month, &t.day);
        t.hour = (int)(usec / 3600000000LL);
        t.min = (int)(usec / 60000000 % 60);
        t.sec = (int)(usec / 1000000 % 60);
        t.usec = (int)(usec % 1000000);
        n = vk_time_format(&t, !is_date, 0, buf, VK_VALUE_BUF);
    }
    *out = (vk_value){.type = VK_TEXT, .s = buf, .len = (size_t)n};
}

static void read_binary(Oid t, const char *p, int len, vk_value *v, char *fmt)
{
    switch (t) {
    case OID_TIMESTAMP: time_text((i64)get_u64(p), 0, fmt, v); return;
    case OID_DATE: time_text((int32_t)get_u32(p), 1, fmt, v); return;
    case OID_BOOL: *v = (vk_value){.type = VK_BOOL, .i = len > 0 && p[0]}; return;
    case OID_INT8: *v = (vk_value){.type = VK_INT, .i = (i64)get_u64(p)}; return;
    case OID_INT4: *v = (vk_value){.type = VK_INT, .i = (int32_t)get_u32(p)}; return;
    case OID_INT2: *v = (vk_value){.type = VK_INT, .i = (int16_t)get_u16(p)}; return;
    case OID_OID: *v = (vk_value){.type = VK_INT, .i = get_u32(p)}; return;
    case OID_FLOAT4: *v = (vk_value){.type = VK_REAL, .r = get_f32(p)}; return;
    case OID_FLOAT8: *v = (vk_value){.type = VK_REAL, .r = get_f64(p)}; return;
    case OID_NUMERIC: *v = (vk_value){.type = VK_REAL, .r = numeric_value(p, len)}; return;
    case OID_BYTEA: *v = (vk_value){.type = VK_BLOB, .s = p, .len = (size_t)len}; return;
    case OID_JSONB:   /* a version byte, then the text */
        *v = (vk_value){.type = VK_TEXT, .s = len ? p + 1 : p, .len = len ? (size_t)len - 1 : 0};
        return;
    default: *v = (vk_value){.type = VK_TEXT, .s = p, .len = (size_t)len};
    }
}

/* text format; bytea is unescaped into *slot (freed by the caller) */
static int read_text(Oid t, const char *p, int len, vk_value *v, unsigned char **slot)
{
    switch (type_of_oid(t)) {
    case VK_INT: *v = (vk_value){.type = VK_INT, .i = strtoll(p, NULL, 10)}; return VK_OK;
    case VK_REAL: *v = (vk_value){.type = VK_REAL, .r = strtod(p, NULL)}; return VK_OK;
    case VK_BOOL: *v = (vk_value){.type = VK_BOOL, .i = p[0] == 't'}; return VK_OK;
    case VK_BLOB: {
        size_t n = 0;
        PQfreemem(*slot);
        if (!(*slot = PQunescapeBytea((const unsigned char *)p, &n)))
            return vk_fail(VK_ENOMEM, "out of memory");
        *v = (vk_value){.type = VK_BLOB, .s = (const char *)*slot, .len = n};
        return VK_OK;
    }
    default: *v = (vk_value){.type = VK_TEXT, .s = p, .len = (size_t)len}; return VK_OK;
    }
}

/* row r of res into out[0..n); columns past the result are NULL */
static int read_row(const PGresult *res, int r, vk_value *out, int n, unsigned char **unesc,
                    char (*fmt)[VK_VALUE_BUF])
{
    int have = PQnfields(res);
    for (int i = 0; i < n; i++) {
        if (i >= have || PQgetisnull(res, r, i)) {
            out[i] = (vk_value){.type = VK_NULL};
            continue;
        }
        const char *p = PQgetvalue(res, r, i);
        int len = PQgetlength(res, r, i);
        if (PQfformat(res, i) == 1)
            read_binary(PQftype(res, i), p, len, &out[i], fmt[i]);
        else if (read_text(PQftype(res, i), p, len, &out[i], &unesc[i]))
            return VK_ENOMEM;
    }
    return VK_OK;
}

static int all_binary_readable(const PGresult *res)
{
    for (int i = 0; i < PQnfields(res); i++)
        if (!binary_readable(PQftype(res, i)))
            return 0;
    return 1;
}

/* ---------- statements and cursors ---------- */

static void stmt_unlink(vk_stmt *s)
{
    if (!s->c)
        return;
    for (vk_stmt **p = &s->c->stmts; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            break;
        }
}

static void free_unesc(vk_stmt *s)
{
    for (int i = 0; s->unesc && i < s->ncols; i++) {
        PQfreemem(s->unesc[i]);
        s->unesc[i] = NULL;
    }
}

/* a cursor of the driver's read transaction that is still open */
static int open_txn_cursor(const pg_conn *c)
{
    for (const vk_stmt *s = c->stmts; s; s = s->next)
        if (s->state == ST_TXN && s->name[0])
            return 1;
    return 0;
}

/* closes the cursor, and the driver's read transaction once it holds no more */
static int close_cursor(vk_stmt *s)
{
    pg_conn *c = s->c;
    int was_txn = s->state == ST_TXN;
    if (!s->name[0] || s->state == ST_CLOSED || !c) {
        s->state = ST_CLOSED;
        return VK_OK;
    }
    s->state = ST_CLOSED;
    /* an aborted transaction refuses CLOSE: the rollback closes it, or the
     * session's end for a held one */
    if (c->lost || PQtransactionStatus(c->pg) == PQTRANS_INERROR)
        return VK_OK;
    char sql[64];
    int commit = c->own_txn && was_txn && !open_txn_cursor(c);
    snprintf(sql, sizeof sql, "CLOSE %s%s", s->name, commit ? "; COMMIT" : "");
    int rc = run_ok(c, sql, "PostgreSQL error");
    if (rc)
        recover_own_txn(c);
    return rc;
}

/* res becomes the current block of rows; fewer than asked for: the end */
static int take_block(vk_stmt *s, PGresult *res, int rows)
{
    s->res = res;
    s->row = 0;
    s->nrows = PQntuples(res);
    if (!s->unesc) {
        s->ncols = PQnfields(res);
        s->fmt = vk_calloc((size_t)s->ncols + 1, VK_VALUE_BUF);
        if (!(s->unesc = vk_calloc((size_t)s->ncols + 1, sizeof(unsigned char *))) || !s->fmt)
            return VK_ENOMEM;
    }
    if (s->nrows < rows) {
        s->done = 1;
        return close_cursor(s);
    }
    return VK_OK;
}

static int fetch_block(vk_stmt *s, int rows, int binary)
{
    pg_conn *c = s->c;
    if (!c)
        return vk_fail(VK_ESTATE, "the database connection was closed under an open query");
    if (s->state == ST_CLOSED)
        return vk_fail(VK_ESQL, "PostgreSQL cursor closed before all rows were read: its transaction "
                       "was rolled back or the connection was lost");
    PQclear(s->res);
    s->res = NULL;
    s->row = s->nrows = 0;
    char sql[64];
    snprintf(sql, sizeof sql, "FETCH FORWARD %d FROM %s", rows, s->name);
    PGresult *res = run(c, sql, NULL, binary, "PostgreSQL error");
    if (!res) {
        recover_own_txn(c);
        return vk_errcode();
    }
    return take_block(s, res, rows);
}

static int is_select(const char *sql)
{
    while (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r' || *sql == '(')
        sql++;
    if (strncasecmp(sql, "SELECT", 6) && strncasecmp(sql, "VALUES", 6))
        return 0;
    char next = sql[6];
    return !(next == '_' || (next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') ||
             (next >= '0' && next <= '9'));
}

/* "[BEGIN; ]DECLARE ...": without parameters the first FETCH goes along,
 * all in one round trip (after a newline: sql may end in a -- comment) */
static char *declare_sql(const vk_stmt *s, const char *sql, int begin, int with_fetch)
{
    vk_buf q = {0};
    int rc = vk_buf_printf(&q, "%sDECLARE %s NO SCROLL CURSOR WITH HOLD FOR %s", begin ? "BEGIN; " : "",
                           s->name, sql);
    if (rc == VK_OK && with_fetch)
        rc = vk_buf_printf(&q, "\n; FETCH FORWARD %d FROM %s", FIRST_ROWS, s->name);
    if (rc) {
        vk_buf_free(&q);
        return NULL;
    }
    return q.p;
}

/* keeps the first failure, else the last command's result */
static PGresult *keep_result(PGresult *keep, PGresult *r, int last)
{
    ExecStatusType st = PQresultStatus(r);
    int failed = st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR;
    int keep_failed = keep && PQresultStatus(keep) == PGRES_FATAL_ERROR;
    if (!keep_failed && (failed || (last && st == PGRES_TUPLES_OK))) {
        PQclear(keep);
        return r;
    }
    PQclear(r);
    return keep;
}

/* [BEGIN,] the DECLARE with its parameters and the first FETCH, sent as one
 * pipeline: one round trip; the FETCH's rows or the first failure */
static PGresult *declare_pipelined(pg_conn *c, const char *declare, const pg_params *p, int begin,
                                   const char *fetch)
{
    PGTransactionStatusType before = PQtransactionStatus(c->pg);
    PGresult *keep = NULL, *r;
    int nq = 1 + begin + 1;
    int ok = PQenterPipelineMode(c->pg) &&
             (!begin || PQsendQueryParams(c->pg, "BEGIN", 0, NULL, NULL, NULL, NULL, 0)) &&
             PQsendQueryParams(c->pg, declare, p->n, p->types, p->vals, p->lens, p->fmts, 0) &&
             PQsendQueryParams(c->pg, fetch, 0, NULL, NULL, NULL, NULL, 0) && PQpipelineSync(c->pg);
    for (int i = 0; ok && i < nq && PQstatus(c->pg) == CONNECTION_OK; i++)
        while ((r = PQgetResult(c->pg)))
            keep = keep_result(keep, r, i == nq - 1);
    if (ok && PQstatus(c->pg) == CONNECTION_OK && (r = PQgetResult(c->pg)))
        PQclear(r);   /* the Sync */
    PQexitPipelineMode(c->pg);
    track(c, before, keep);
    if (PQresultStatus(keep) == PGRES_TUPLES_OK)
        return keep;
    pg_fail(c, keep, "PostgreSQL error");
    PQclear(keep);
    return NULL;
}

/* sends the DECLARE (and BEGIN, and the first FETCH when it can go along) */
static PGresult *declare(pg_conn *c, vk_stmt *s, const char *sql, const pg_params *p, int begin)
{
    char *q = declare_sql(s, sql, begin && !p->n, !p->n);
    if (!q) {
        vk_fail(VK_ENOMEM, "out of memory");
        return NULL;
    }
    c->own_txn |= begin;
    PGresult *res;
    if (p->n) {
        char fetch[64];
        snprintf(fetch, sizeof fetch, "FETCH FORWARD %d FROM %s", FIRST_ROWS, s->name);
        res = declare_pipelined(c, q, p, begin, fetch);
    } else {
        res = run(c, q, p, 0, "PostgreSQL error");
    }
    free(q);
    return res;
}

/* DECLARE + the first block (text: any type reads); binary blocks after it */
static int open_cursor(pg_conn *c, vk_stmt *s, const char *sql, const pg_params *p)
{
    int rc = open_txn_cursor(c) ? end_own_txn(c) : usable(c, "PostgreSQL error");
    if (rc)
        return rc;
    int begin = PQtransactionStatus(c->pg) == PQTRANS_IDLE;
    snprintf(s->name, sizeof s->name, "vk_cursor_%u", ++c->serial);
    PGresult *res = declare(c, s, sql, p, begin);
    if (!res) {
        recover_own_txn(c);
        s->name[0] = '\0';
        return vk_errcode();
    }
    s->state = ST_TXN;
    s->c = c;
    s->next = c->stmts;
    c->stmts = s;
    if (strncmp(PQcmdStatus(res), "FETCH", 5) == 0) {
        rc = take_block(s, res, FIRST_ROWS);
    } else {   /* sql held statements of its own: fetch apart */
        PQclear(res);
        rc = fetch_block(s, FIRST_ROWS, 0);
    }
    if (rc)
        return rc;
    s->binary = all_binary_readable(s->res);
    return VK_OK;
}

/* a statement that is not a query: run at once, its rows (if any) kept */
static int run_plain(pg_conn *c, vk_stmt *s, const char *sql, const pg_params *p)
{
    int rc = end_own_txn(c);
    if (rc)
        return rc;
    PGresult *res = run(c, sql, p, 0, "PostgreSQL error");
    if (!res)
        return vk_errcode();
    s->res = res;
    s->nrows = PQntuples(res);
    s->ncols = PQnfields(res);
    s->done = 1;
    s->state = ST_CLOSED;
    s->c = c;
    s->next = c->stmts;
    c->stmts = s;
    s->unesc = vk_calloc((size_t)s->ncols + 1, sizeof(unsigned char *));
    s->fmt = vk_calloc((size_t)s->ncols + 1, VK_VALUE_BUF);
    return s->unesc && s->fmt ? VK_OK : VK_ENOMEM;
}

static void pg_finish(vk_stmt *s)
{
    if (!s)
        return;
    close_cursor(s);
    stmt_unlink(s);
    free_unesc(s);
    free(s->unesc);
    free(s->fmt);
    PQclear(s->res);
    free(s);
}

static int pg_query(vk_db *db, const char *sql, const vk_value *params, int nparams, vk_stmt **out)
{
    pg_conn *c = CONN(db);
    pg_params p;
    int rc = params_build(&p, params, nparams);
    vk_stmt *s = rc ? NULL : vk_calloc(1, sizeof *s);
    if (!s)
        rc = rc ? rc : VK_ENOMEM;
    else if (rollback_of_lost_txn(c, sql))
        s->done = 1, s->state = ST_CLOSED;
    else if (is_select(sql))
        rc = open_cursor(c, s, sql, &p);
    else
        rc = run_plain(c, s, sql, &p);
    params_free(&p);
    if (rc) {
        if (s)
            pg_finish(s);
        return rc;
    }
    *out = s;
    return VK_OK;
}

static int pg_next(vk_stmt *s, vk_value *row, int ncols)
{
    while (s->row >= s->nrows) {
        if (s->done)
            return 0;
        int rc = fetch_block(s, BLOCK_ROWS, s->binary);
        if (rc)
            return rc;
    }
    free_unesc(s);
    return read_row(s->res, s->row++, row, ncols, s->unesc, s->fmt) ? VK_ENOMEM : 1;
}

static int pg_ncols(vk_stmt *s) { return s->ncols; }

/* ---------- catalog ---------- */

/* columns of the relation the quoted name $1 resolves to (search_path as for
 * every other statement); types through domains; single-column indexes that
 * are not partial: unique ones, and those not made by a constraint */
static const char DESCRIBE_SQL[] =
    "SELECT a.attname, COALESCE(NULLIF(t.typbasetype, 0), a.atttypid)::int8, a.attnotnull, "
    "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary "
    "  AND i.indnatts = 1 AND i.indkey[0] = a.attnum), "
    "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisunique "
    "  AND i.indnatts = 1 AND i.indkey[0] = a.attnum AND i.indpred IS NULL), "
    "EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = a.attrelid "
    "  AND i.indnatts = 1 AND i.indkey[0] = a.attnum AND i.indpred IS NULL "
    "  AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid "
    "    AND k.conrelid = i.indrelid)), "
    "CASE WHEN t.typbasetype <> 0 THEN t.typtypmod ELSE a.atttypmod END "
    "FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid "
    "WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attnum";

/* the kinds of SQLAlchemy's DateTime, Date and JSON; VARCHAR(n)'s n */
static void kind_of_oid(vk_column *c, Oid t, int typmod)
{
    c->kind = t == OID_TIMESTAMP ? VK_KIND_DATETIME : t == OID_DATE ? VK_KIND_DATE
            : t == OID_JSON || t == OID_JSONB ? VK_KIND_JSON : VK_KIND_PLAIN;
    /* a character type's typmod is its length plus 4, -1 without one */
    c->length = (t == OID_VARCHAR || t == OID_BPCHAR) && typmod > 4 ? typmod - 4 : 0;
}

static int read_columns(const PGresult *res, vk_column *cols, Oid *oids)
{
    for (int i = 0; i < PQntuples(res); i++) {
        vk_column *c = &cols[i];
        if (!(c->name = vk_strdup(PQgetvalue(res, i, 0))))
            return VK_ENOMEM;
        oids[i] = (Oid)strtoul(PQgetvalue(res, i, 1), NULL, 10);
        c->type = type_of_oid(oids[i]);
        kind_of_oid(c, oids[i], atoi(PQgetvalue(res, i, 6)));
        c->nullable = PQgetvalue(res, i, 2)[0] != 't';
        c->primary = PQgetvalue(res, i, 3)[0] == 't';
        c->unique = PQgetvalue(res, i, 4)[0] == 't';
        c->index = PQgetvalue(res, i, 5)[0] == 't';
    }
    return VK_OK;
}

static int pg_describe(vk_db *db, int *exists, vk_column **out, int *nout)
{
    pg_conn *c = CONN(db);
    *exists = 0;
    *out = NULL;
    *nout = 0;
    vk_value name = {.type = VK_TEXT, .s = db->qtable, .len = strlen(db->qtable)};
    pg_params p;
    int rc = params_build(&p, &name, 1);
    PGresult *res = rc ? NULL : run(c, DESCRIBE_SQL, &p, 0, "cannot read the table's schema");
    params_free(&p);
    if (!res)
        return rc ? rc : vk_errcode();
    int n = PQntuples(res);
    vk_column *cols = vk_calloc((size_t)n + 1, sizeof *cols);
    Oid *oids = vk_calloc((size_t)n + 1, sizeof *oids);
    rc = cols && oids ? read_columns(res, cols, oids) : VK_ENOMEM;
    PQclear(res);
    if (rc || n == 0) {
        vk_columns_free(cols, n);
        free(oids);
        return rc;
    }
    free(c->oids);
    c->oids = oids;
    c->noids = n;
    *exists = 1;
    *out = cols;
    *nout = n;
    return VK_OK;
}

/* ---------- COPY ---------- */

static int out_of_range(const char *col, i64 v, const char *type)
{
    return vk_fail(VK_EINVAL, "value %lld is out of range for column '%s' (%s)", (long long)v, col, type);
}

/* a value of a timestamp column (microseconds from 2000-01-01) or a date
 * column (days): its text, as vk_value_store or a read left it */
static int time_value(const vk_value *v, int is_date, i64 *out)
{
    vk_time t;
    if (v->type != VK_TEXT)
        return -1;
    if (v->len == 8 && !memcmp(v->s, "infinity", 8)) {
        *out = is_date ? INT32_MAX : INT64_MAX;
        return 0;
    }
    if (v->len == 9 && !memcmp(v->s, "-infinity", 9)) {
        *out = is_date ? INT32_MIN : INT64_MIN;
        return 0;
    }
    if (vk_time_parse(v->s, v->len, is_date, &t))
        return -1;
    i64 days = vk_days_from_civil(t.year, t.month, t.day) - PG_EPOCH_DAYS;
    *out = is_date ? days
                   : days * USEC_PER_DAY + ((i64)t.hour * 3600 + t.min * 60 + t.sec) * 1000000 + t.usec;
    return 0;
}

/* one field of COPY's binary format: length, then the type's binary form */
static int put_field(vk_buf *o, Oid t, const vk_value *v, const char *col)
{
    char w[12];
    size_t n = 0;
    const char *bytes = w + 4;
    if (v->type == VK_NULL) {
        put_u32(w, 0xFFFFFFFFu);
        return vk_buf_add(o, w, 4);
    }
    switch (t) {
    case OID_INT8: put_u64(w + 4, (u64)v->i); n = 8; break;
    case OID_INT4:
        if (v->i < INT32_MIN || v->i > INT32_MAX)
            return out_of_range(col, v->i, "integer");
        put_u32(w + 4, (uint32_t)v->i);
        n = 4;
        break;
    case OID_INT2:
        if (v->i < INT16_MIN || v->i > INT16_MAX)
            return out_of_range(col, v->i, "smallint");
        put_u16(w + 4, (unsigned)v->i);
        n = 2;
        break;
    case OID_FLOAT8: put_f64(w + 4, v->type == VK_INT ? (double)v->i : v->r); n = 8; break;
    case OID_FLOAT4: {
        float f = (float)(v->type == VK_INT ? (double)v->i : v->r);
        uint32_t u;
        memcpy(&u, &f, sizeof u);
        put_u32(w + 4, u);
        n = 4;
        break;
    }
    case OID_BOOL: w[4] = (char)(v->i != 0); n = 1; break;
    case OID_JSONB: w[4] = 1; n = 1; break;   /* version, then the text */
    case OID_TIMESTAMP:
    case OID_DATE: {
        i64 x;
        if (time_value(v, t == OID_DATE, &x))
            return vk_fail(VK_EINVAL, "column '%s': \"%.*s\" is no %s", col, (int)(v->len > 40 ? 40 : v->len),
                           v->type == VK_TEXT ? v->s : "", t == OID_DATE ? "date" : "timestamp");
        if (t == OID_DATE) {
            put_u32(w + 4, (uint32_t)x);
            n = 4;
        } else {
            put_u64(w + 4, (u64)x);
            n = 8;
        }
        break;
    }
    default: bytes = v->s; n = v->len; break;
    }
    if (t != OID_BYTEA && v->type == VK_TEXT && memchr(v->s, 0, v->len))
        return vk_fail(VK_EINVAL, "column '%s' holds a NUL byte, which PostgreSQL text cannot store",
                       col);
    size_t extra = t == OID_JSONB ? v->len : 0;
    put_u32(w, (uint32_t)(n + extra));
    if (vk_buf_add(o, w, 4) || vk_buf_add(o, bytes, n) || (extra && vk_buf_add(o, v->s, extra)))
        return VK_ENOMEM;
    return VK_OK;
}

/* one field of COPY's text format */
static int put_text_field(vk_buf *o, const vk_value *v)
{
    static const char hex[] = "0123456789abcdef";
    int rc = VK_OK;
    switch (v->type) {
    case VK_NULL: return vk_buf_adds(o, "\\N");
    case VK_INT: return vk_buf_printf(o, "%lld", (long long)v->i);
    case VK_BOOL: return vk_buf_adds(o, v->i ? "t" : "f");
    case VK_REAL:
        if (isnan(v->r) || isinf(v->r))
            return vk_buf_adds(o, isnan(v->r) ? "NaN" : v->r > 0 ? "Infinity" : "-Infinity");
        return vk_buf_printf(o, "%.17g", v->r);
    case VK_BLOB:
        rc = vk_buf_adds(o, "\\\\x");
        for (size_t i = 0; i < v->len && rc == VK_OK; i++) {
            char h[2] = {hex[(unsigned char)v->s[i] >> 4], hex[v->s[i] & 15]};
            rc = vk_buf_add(o, h, 2);
        }
        return rc;
    case VK_TEXT:
        for (size_t i = 0; i < v->len && rc == VK_OK; i++) {
            char ch = v->s[i];
            const char *esc = ch == '\\' ? "\\\\" : ch == '\n' ? "\\n" : ch == '\r' ? "\\r"
                              : ch == '\t' ? "\\t" : NULL;
            rc = esc ? vk_buf_adds(o, esc) : vk_buf_add(o, &ch, 1);
        }
        return rc;
    }
    return rc;
}

static int put_row(vk_db *db, vk_buf *o, const vk_value *row, int binary)
{
    char w[2];
    int rc = VK_OK;
    if (binary) {
        put_u16(w, (unsigned)db->ncols);
        rc = vk_buf_add(o, w, 2);
    }
    for (int i = 0; i < db->ncols && rc == VK_OK; i++) {
        if (binary)
            rc = put_field(o, column_oid(db, i), &row[i], db->cols[i].name);
        else
            rc = put_text_field(o, &row[i]) || vk_buf_adds(o, i + 1 < db->ncols ? "\t" : "\n");
    }
    return rc;
}

static char *copy_sql(const vk_db *db, int binary)
{
    vk_buf b = {0};
    int rc = vk_buf_printf(&b, "COPY %s (", db->qtable);
    for (int i = 0; i < db->ncols; i++) {
        if (i)
            rc |= vk_buf_adds(&b, ", ");
        rc |= vk_buf_ident(&b, db->cols[i].name);
    }
    rc |= vk_buf_printf(&b, ") FROM STDIN (FORMAT %s)", binary ? "binary" : "text");
    if (rc) {
        vk_buf_free(&b);
        return NULL;
    }
    return b.p;
}

static int send_copy(pg_conn *c, vk_buf *o)
{
    if (o->len && PQputCopyData(c->pg, o->p, (int)o->len) != 1)
        return VK_ESQL;
    o->len = 0;
    return VK_OK;
}

/* the rows of the batch as COPY data; VK_ESQL when libpq could not send */
static int stream_rows(vk_db *db, const vk_rows *rows, int binary)
{
    static const char header[19] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";
    vk_buf o = {0};
    int rc = binary ? vk_buf_add(&o, header, sizeof header) : VK_OK;
    for (i64 r = 0; r < rows->nrows && rc == VK_OK; r++) {
        if ((rc = vk_rows_wait(rows, r + 1)))
            break;
        if ((rc = put_row(db, &o, vk_rows_get(rows, r, 0), binary)))
            vk_fail_context("cannot insert the record with idx %lld",
                            (long long)vk_rows_get(rows, r, db->idx_col)->i);
        else if (o.len >= COPY_CHUNK)
            rc = send_copy(CONN(db), &o);
    }
    if (rc == VK_OK && binary)
        rc = vk_buf_add(&o, "\377\377", 2);
    if (rc == VK_OK)
        rc = send_copy(CONN(db), &o);
    vk_buf_free(&o);
    return rc;
}

/* names the record of a failed COPY from the "COPY t, line N" context */
static void copy_failed(vk_db *db, const vk_rows *rows, const PGresult *res)
{
    const char *ctx = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
    const char *line = ctx ? strstr(ctx, ", line ") : NULL;
    long n = line ? strtol(line + 7, NULL, 10) : 0;
    char what[256];
    if (n >= 1 && n <= rows->nrows)
        snprintf(what, sizeof what, "cannot insert the record with idx %lld",
                 (long long)vk_rows_get(rows, n - 1, db->idx_col)->i);
    else
        snprintf(what, sizeof what, "cannot insert into table %s", db->table);
    pg_fail(CONN(db), res, what);
}

/* the COPY's outcome once its end was sent; refused: our own error stands */
static int copy_result(vk_db *db, const vk_rows *rows, int refused)
{
    pg_conn *c = CONN(db);
    int rc = VK_OK, code = vk_errcode();
    char saved[1024];
    snprintf(saved, sizeof saved, "%s", vk_errmsg());
    PGresult *res;
    while ((res = PQgetResult(c->pg))) {
        if (PQresultStatus(res) == PGRES_COPY_IN)   /* the end did not get through */
            PQputCopyEnd(c->pg, "vekterdb could not finish the COPY");
        if (rc == VK_OK && PQresultStatus(res) != PGRES_COMMAND_OK) {
            copy_failed(db, rows, res);
            rc = vk_errcode();
        }
        PQclear(res);
    }
    if (rc == VK_OK && PQstatus(c->pg) == CONNECTION_BAD)
        copy_failed(db, rows, NULL);
    if (PQstatus(c->pg) == CONNECTION_BAD)
        mark_lost(c, 1);
    if (refused)
        return vk_fail(code, "%s", saved);
    return PQstatus(c->pg) == CONNECTION_BAD ? vk_errcode() : rc;
}

static int pg_insert(vk_db *db, const vk_rows *rows)
{
    pg_conn *c = CONN(db);
    int binary = 1;
    for (int i = 0; i < db->ncols; i++)
        binary &= binary_writable(column_oid(db, i));
    char *sql = copy_sql(db, binary);
    if (!sql)
        return VK_ENOMEM;
    char what[300];
    snprintf(what, sizeof what, "cannot insert into table %s", db->table);
    PGresult *res = run(c, sql, NULL, 0, what);
    free(sql);
    if (!res)
        return vk_errcode();
    int copying = PQresultStatus(res) == PGRES_COPY_IN;
    PQclear(res);
    if (!copying)
        return vk_fail(VK_ESQL, "cannot insert into table %s: the server did not start the COPY", db->table);
    int rc = stream_rows(db, rows, binary);
    /* 0: data sent; >0: a value we refused (the COPY is cancelled) */
    int refused = rc != VK_OK && rc != VK_ESQL;
    PQputCopyEnd(c->pg, refused ? "vekterdb refused a value" : NULL);
    return copy_result(db, rows, refused);
}

static int pg_table_exists(vk_db *db, const char *schema, const char *name, int *exists)
{
    /* to_regclass takes the quoted, schema-qualified name */
    vk_buf q = {0};
    int rc = VK_OK;
    if (schema) {
        rc |= vk_buf_ident(&q, schema);
        rc |= vk_buf_adds(&q, ".");
    }
    rc |= vk_buf_ident(&q, name);
    i64 n = 0;
    vk_value p = {.type = VK_TEXT, .s = q.p, .len = q.len};
    if (rc == VK_OK)
        rc = vk_db_query_int(db, "SELECT CASE WHEN to_regclass($1) IS NULL THEN 0 ELSE 1 END", &p, 1, &n,
                             NULL);
    else
        rc = VK_ENOMEM;
    vk_buf_free(&q);
    *exists = rc == VK_OK && n > 0;
    return rc;
}

/* the snapshot moves with every commit; NULL inside this connection's own
 * write transaction */
static const char *pg_change_stamp_sql(const vk_db *db)
{
    (void)db;
    return "SELECT CASE WHEN txid_current_if_assigned() IS NULL THEN txid_current_snapshot()::text END";
}

/* ---------- fetch by idx ---------- */

/* the name of a prepared statement for sql, prepared now if needed */
static const char *prepared_name(pg_conn *c, const char *sql, Oid type)
{
    for (int i = 0; i < PREP_CACHE; i++)
        if (c->prep[i].sql && strcmp(c->prep[i].sql, sql) == 0)
            return c->prep[i].name;
    if (usable(c, "PostgreSQL error"))
        return NULL;
    prepared *e = &c->prep[c->next_prep];
    c->next_prep = (c->next_prep + 1) % PREP_CACHE;
    if (e->sql && PQtransactionStatus(c->pg) != PQTRANS_INERROR) {
        char dealloc[64];
        snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", e->name);
        PQclear(run(c, dealloc, NULL, 0, "PostgreSQL error"));
    }
    free(e->sql);
    e->sql = NULL;
    snprintf(e->name, sizeof e->name, "vk_stmt_%u", ++c->serial);
    PGTransactionStatusType before = PQtransactionStatus(c->pg);
    PGresult *res = PQprepare(c->pg, e->name, sql, 1, &type);
    track(c, before, res);
    int ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        pg_fail(c, res, "PostgreSQL error");
    PQclear(res);
    if (!ok || !(e->sql = vk_strdup(sql)))
        return NULL;
    return e->name;
}

static void forget_prepared(pg_conn *c, const char *name)
{
    for (int i = 0; i < PREP_CACHE; i++)
        if (c->prep[i].sql && strcmp(c->prep[i].name, name) == 0) {
            free(c->prep[i].sql);
            c->prep[i].sql = NULL;
        }
}

static char *fetch_sql(const vk_db *db, const int *cols, int ncols)
{
    vk_buf b = {0};
    int rc = vk_buf_adds(&b, "SELECT ");
    rc |= vk_buf_ident(&b, db->idx_name);
    for (int i = 0; i < ncols; i++) {
        rc |= vk_buf_adds(&b, ", ");
        rc |= vk_buf_ident(&b, db->cols[cols[i]].name);
    }
    rc |= vk_buf_printf(&b, " FROM %s WHERE ", db->qtable);
    rc |= vk_buf_ident(&b, db->idx_name);
    rc |= vk_buf_adds(&b, " = ANY($1)");
    if (rc) {
        vk_buf_free(&b);
        return NULL;
    }
    return b.p;
}

/* int8[] in the array binary format: one dimension, no NULLs */
static char *id_array(const i64 *ids, i64 n, int *len)
{
    size_t size = 20 + 12 * (size_t)n;
    char *a = vk_malloc(size);
    if (!a)
        return NULL;
    put_u32(a, 1);
    put_u32(a + 4, 0);
    put_u32(a + 8, OID_INT8);
    put_u32(a + 12, (uint32_t)n);
    put_u32(a + 16, 1);
    for (i64 i = 0; i < n; i++) {
        put_u32(a + 20 + 12 * i, 8);
        put_u64(a + 24 + 12 * i, (u64)ids[i]);
    }
    *len = (int)size;
    return a;
}

static int rows_of(const PGresult *res, int ncols, vk_rows **out)
{
    vk_rows *r = vk_rows_new(ncols);
    vk_value *row = vk_calloc((size_t)ncols, sizeof(vk_value));
    unsigned char **unesc = vk_calloc((size_t)ncols, sizeof(unsigned char *));
    char (*fmt)[VK_VALUE_BUF] = vk_calloc((size_t)ncols, VK_VALUE_BUF);
    int rc = r && row && unesc && fmt ? VK_OK : VK_ENOMEM;
    for (int i = 0; i < PQntuples(res) && rc == VK_OK; i++) {
        rc = read_row(res, i, row, ncols, unesc, fmt);
        if (rc == VK_OK)
            rc = vk_rows_append(r, row);
        for (int j = 0; j < ncols; j++) {
            PQfreemem(unesc[j]);
            unesc[j] = NULL;
        }
    }
    free(row);
    free(unesc);
    free(fmt);
    if (rc) {
        vk_rows_free(r);
        return rc;
    }
    vk_rows_seal(r);
    *out = r;
    return VK_OK;
}

static int pg_fetch(vk_db *db, const i64 *ids, i64 n, const int *cols, int ncols, vk_rows **out)
{
    pg_conn *c = CONN(db);
    if (n > (INT32_MAX - 20) / 12)
        return vk_fail(VK_EINVAL, "cannot fetch %lld records in one query", (long long)n);
    int binary = binary_readable(column_oid(db, db->idx_col));
    for (int i = 0; i < ncols; i++)
        binary &= binary_readable(column_oid(db, cols[i]));
    if (n == 0)
        return (*out = vk_rows_new(ncols + 1)) ? VK_OK : VK_ENOMEM;
    char *sql = fetch_sql(db, cols, ncols);
    if (!sql)
        return VK_ENOMEM;
    const char *name = prepared_name(c, sql, OID_INT8_ARRAY);
    free(sql);
    int len = 0, fmt = 1;
    char *arr = name ? id_array(ids, n, &len) : NULL;
    if (!arr)
        return name ? VK_ENOMEM : vk_errcode();
    PGTransactionStatusType before = PQtransactionStatus(c->pg);
    PGresult *res = PQexecPrepared(c->pg, name, 1, (const char *const *)&arr, &len, &fmt, binary);
    track(c, before, res);
    free(arr);
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? VK_OK : pg_fail(c, res, "cannot fetch records");
    if (rc) {
        forget_prepared(c, name);
        recover_own_txn(c);
    } else {
        rc = rows_of(res, ncols + 1, out);
    }
    PQclear(res);
    return rc;
}

static const char *pg_sql_type(vk_type t)
{
    switch (t) {
    case VK_INT: return "BIGINT";
    case VK_REAL: return "DOUBLE PRECISION";
    case VK_TEXT: return "TEXT";
    case VK_BOOL: return "BOOLEAN";
    default: return "BYTEA";
    }
}

/* as SQLAlchemy's DateTime, Date and JSON create them */
static const char *pg_kind_sql_type(vk_kind k)
{
    switch (k) {
    case VK_KIND_DATETIME: return "TIMESTAMP WITHOUT TIME ZONE";
    case VK_KIND_DATE: return "DATE";
    case VK_KIND_JSON: return "JSON";
    default: return NULL;
    }
}

/* ---------- search nodes: large objects and change notices ---------- */

static int lo_failed(pg_conn *c, const char *what)
{
    return pg_fail(c, NULL, what);
}

static int pg_object_put(vk_db *db, int fd, i64 *oid)
{
    pg_conn *c = CONN(db);
    int rc = usable(c, "cannot store an index file");
    if (rc)
        return rc;
    Oid o = lo_creat(c->pg, INV_READ | INV_WRITE);
    if (o == InvalidOid)
        return lo_failed(c, "cannot create a large object");
    int lfd = lo_open(c->pg, o, INV_WRITE);
    if (lfd < 0)
        return lo_failed(c, "cannot open a large object");
    char *buf = vk_malloc(LO_CHUNK);
    rc = buf ? VK_OK : VK_ENOMEM;
    for (off_t off = 0; rc == VK_OK;) {
        ssize_t n = pread(fd, buf, LO_CHUNK, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = vk_fail(VK_EIO, "cannot read the index file to store: %s", strerror(errno));
        if (n <= 0)
            break;
        if (lo_write(c->pg, lfd, buf, (size_t)n) != (int)n)
            rc = lo_failed(c, "cannot write a large object");
        off += n;
    }
    free(buf);
    if (lo_close(c->pg, lfd) < 0 && rc == VK_OK)
        rc = lo_failed(c, "cannot close a large object");
    *oid = (i64)o;
    return rc;
}

static int pg_object_get(vk_db *db, i64 oid, int fd, i64 *bytes)
{
    pg_conn *c = CONN(db);
    *bytes = 0;
    int rc = usable(c, "cannot read an index file from the database");
    if (rc)
        return rc;
    int lfd = lo_open(c->pg, (Oid)oid, INV_READ);
    if (lfd < 0)
        return lo_failed(c, "cannot open a large object");
    char *buf = vk_malloc(LO_CHUNK);
    rc = buf ? VK_OK : VK_ENOMEM;
    while (rc == VK_OK) {
        int n = lo_read(c->pg, lfd, buf, LO_CHUNK);
        if (n < 0) {
            rc = lo_failed(c, "cannot read a large object");
            break;
        }
        if (n == 0)
            break;
        for (int done = 0; done < n && rc == VK_OK;) {
            ssize_t w = write(fd, buf + done, (size_t)(n - done));
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0)
                rc = vk_fail(VK_EIO, "cannot write the index file: %s", strerror(errno));
            else
                done += (int)w;
        }
        *bytes += n;
    }
    free(buf);
    if (lo_close(c->pg, lfd) < 0 && rc == VK_OK)
        rc = lo_failed(c, "cannot close a large object");
    return rc;
}

static int pg_object_drop(vk_db *db, i64 oid)
{
    pg_conn *c = CONN(db);
    int rc = usable(c, "cannot remove an index file from the database");
    if (rc)
        return rc;
    return lo_unlink(c->pg, (Oid)oid) < 0 ? lo_failed(c, "cannot remove a large object") : VK_OK;
}

static int pg_listen(vk_db *db)
{
    pg_conn *c = CONN(db);
    char ch[40], sql[64];
    channel_of(db, ch);
    snprintf(sql, sizeof sql, "LISTEN %s", ch);
    int rc = pg_exec(db, sql);
    if (rc == VK_OK)
        memcpy(c->channel, ch, sizeof ch);
    return rc;
}

static i64 now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (i64)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int pg_changes(vk_db *db, int timeout_ms, int *changed)
{
    pg_conn *c = CONN(db);
    *changed = 0;
    if (!*c->channel)
        return vk_fail(VK_ESTATE, "the connection is not listening for changes");
    /* a session inside a transaction is told nothing until it ends */
    if (c->own_txn) {
        *changed = 1;
        return end_own_txn(c);
    }
    if (c->lost) {
        *changed = 1;
        return usable(c, "cannot listen for changes");
    }
    if (c->missed) {
        c->missed = 0;
        *changed = 1;
    }
    i64 deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        /* twice: a server that ended the session sends its message, then
         * the end of the stream, which the first read may stop short of */
        if (!PQconsumeInput(c->pg) || !PQconsumeInput(c->pg) || PQstatus(c->pg) == CONNECTION_BAD) {
            /* the next statement reconnects; until then assume the worst */
            mark_lost(c, 0);
            *changed = 1;
            return VK_OK;
        }
        PGnotify *n;
        while ((n = PQnotifies(c->pg))) {
            if (strcmp(n->relname, c->channel) == 0)
                *changed = 1;
            PQfreemem(n);
        }
        i64 left = deadline - now_ms();
        if (*changed || left <= 0)
            return VK_OK;
        struct pollfd p = {.fd = PQsocket(c->pg), .events = POLLIN};
        if (p.fd < 0 || (poll(&p, 1, (int)left) < 0 && errno != EINTR)) {
            mark_lost(c, 0);
            *changed = 1;
            return VK_OK;
        }
    }
}

const vk_driver vk_pg_driver = {
    .name = "postgresql",
    .placeholder = "$",
    .quote = '"',
    .key_text_type = "TEXT",
    .update_returning = 1,
    .begin_sql = "BEGIN",
    .lock_writers = pg_lock_writers,
    .index_name_qualified = 0,
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec = pg_exec,
    .query = pg_query,
    .next = pg_next,
    .finish = pg_finish,
    .ncols = pg_ncols,
    .describe = pg_describe,
    .table_exists = pg_table_exists,
    .change_stamp_sql = pg_change_stamp_sql,
    .insert = pg_insert,
    .fetch = pg_fetch,
    .sql_type = pg_sql_type,
    .kind_sql_type = pg_kind_sql_type,
    .snapshot_sql = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    .object_put = pg_object_put,
    .object_get = pg_object_get,
    .object_drop = pg_object_drop,
    .listen = pg_listen,
    .changes = pg_changes,
};
