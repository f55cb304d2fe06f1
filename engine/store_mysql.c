/* store_mysql.c: the MySQL and MariaDB storage driver (MariaDB Connector/C)
 *
 * Every statement is a prepared statement of the binary protocol; the few
 * the engine runs again and again stay prepared (a small cache per
 * connection).  The engine writes numbered placeholders (?1, ?2, ...): they
 * are turned into MySQL's plain ? here, the values put in their order.
 *
 * A SELECT runs as a server-side read-only cursor: the server keeps the
 * result and sends it in blocks of FETCH_ROWS, so a select of any size
 * holds one block in memory here, and other statements run on the
 * connection while the cursor is open.
 *
 * Inserts are multi-row prepared INSERTs inside the caller's transaction.
 * Writers of a table take turns through a named lock (GET_LOCK) taken
 * after START TRANSACTION and released after COMMIT or ROLLBACK: a named
 * lock belongs to the session, so the implicit commit MySQL makes before
 * any DDL (CREATE TABLE IF NOT EXISTS of a side table) cannot drop it, and
 * the server releases it when the session ends however it ends.  After such
 * a DDL inside a transaction, the transaction is opened again.
 *
 * The session stores idx 0 as 0 on an AUTO_INCREMENT column (sql_mode gains
 * NO_AUTO_VALUE_ON_ZERO), reads committed data (READ COMMITTED) and makes
 * InnoDB tables.
 *
 * A broken connection is opened again at the next call, unless it broke
 * inside a transaction of the caller's: then every call fails until
 * ROLLBACK, so a COMMIT can never succeed on a new connection that lost the
 * work.  The password is kept for that, and never put into a message.
 */
#include "vk_store.h"

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define PREP_CACHE 16          /* prepared statements kept per connection */
#define FETCH_ROWS 1000        /* rows per block of a cursor */
#define INSERT_ROWS 1000       /* rows per INSERT statement at most */
#define INSERT_BYTES (4 << 20) /* bytes of values per INSERT statement at most */
#define MAX_PARAMS 65535       /* the protocol's limit of one statement */
#define FETCH_IDS 256          /* ids per fetch statement */
#define CELL_START 256         /* first buffer of a text or blob column */
#define MYSQL_NAME_MAX 64

typedef struct cached {
    char *sql;                 /* MySQL's text (plain ? placeholders) */
    MYSQL_STMT *st;
    int busy;                  /* in use by an open statement */
} cached;

typedef struct opt {
    char *key, *value;
} opt;

typedef struct my_conn {
    MYSQL *my;
    /* what (re)connecting needs */
    char *host, *user, *password, *dbname, *socket;
    unsigned port;
    opt *opts;
    int nopts;
    double lock_timeout;       /* seconds; < 0: the session's innodb_lock_wait_timeout */
    int in_txn;                /* a transaction of the caller's is open */
    int locked;                /* this session holds the writers' lock */
    char lock_name[64];
    int lost, lost_in_txn;
    vk_stmt *stmts;            /* open statements */
    cached cache[PREP_CACHE];
    int next_cache;
} my_conn;

enum { K_INT, K_BOOL, K_REAL, K_DECIMAL, K_TEXT, K_BLOB, K_NULL };

typedef struct my_cell {
    int kind;
    long long i;
    double d;
    char *buf;
    unsigned long cap, len;
    my_bool is_null, error;
} my_cell;

struct vk_stmt {
    my_conn *c;
    vk_stmt *next;
    MYSQL_STMT *st;            /* NULL once the connection is gone */
    cached *slot;              /* the cache entry st belongs to, or NULL */
    int ncols;
    my_cell *cells;
    MYSQL_BIND *binds;
    int done;
};

#define CONN(db) ((my_conn *)(db)->conn)

static void stmt_detach(vk_stmt *s);

/* ---------- errors ---------- */

static int is_lost_errno(unsigned e)
{
    return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_SERVER_LOST_EXTENDED ||
           e == ER_CONNECTION_KILLED || e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR ||
           e == 4031 /* ER_CLIENT_INTERACTION_TIMEOUT */;
}

/* the connection broke: statements are gone; in_txn: with a transaction */
static void mark_lost(my_conn *c)
{
    if (!c->lost)
        c->lost_in_txn = c->in_txn;
    c->lost = 1;
    c->locked = 0;
    for (vk_stmt *s = c->stmts; s; s = s->next)
        stmt_detach(s);
    for (int i = 0; i < PREP_CACHE; i++) {
        if (c->cache[i].st)
            mysql_stmt_close(c->cache[i].st);
        free(c->cache[i].sql);
        c->cache[i] = (cached){0};
    }
}

/* "what: MySQL's message"; errno and message from the statement or the
 * connection */
static int my_fail_with(my_conn *c, unsigned err, const char *message, const char *what)
{
    char msg[1024];   /* a copy: marking the connection lost frees the statement's */
    snprintf(msg, sizeof msg, "%s", message);
    int code = VK_ESQL;
    switch (err) {
    case ER_DUP_ENTRY: case ER_DUP_ENTRY_WITH_KEY_NAME: case ER_BAD_NULL_ERROR:
    case ER_NO_REFERENCED_ROW_2: case ER_ROW_IS_REFERENCED_2: case ER_CONSTRAINT_FAILED:
    case ER_NO_DEFAULT_FOR_FIELD:
        code = VK_ECONSTRAINT;
        break;
    case ER_LOCK_WAIT_TIMEOUT:
        return vk_fail(VK_ELOCKED, "%s: database is locked: %s (innodb_lock_wait_timeout)", what, msg);
    }
    if (is_lost_errno(err)) {
        int in_txn = c->in_txn;
        mark_lost(c);
        return vk_fail(VK_ESQL, "%s: the connection was lost%s: %s", what,
                       in_txn ? " during a transaction (it was rolled back)" : "", msg);
    }
    return vk_fail(code, "%s: %s", what, msg);
}

static int conn_fail(my_conn *c, const char *what)
{
    return my_fail_with(c, mysql_errno(c->my), mysql_error(c->my), what);
}

static int stmt_fail(my_conn *c, MYSQL_STMT *st, const char *what)
{
    return my_fail_with(c, mysql_stmt_errno(st), mysql_stmt_error(st), what);
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

/* ---------- connecting ---------- */

static int set_str(char **field, const char *v)
{
    free(*field);
    *field = v ? vk_strdup(v) : NULL;
    return v && !*field ? VK_ENOMEM : VK_OK;
}

static int parse_uint(const char *key, const char *v, unsigned *out)
{
    char *end;
    unsigned long n = strtoul(v, &end, 10);
    if (!*v || *end || n > 0x7fffffffUL)
        return vk_fail(VK_EINVAL, "MySQL connection option %s must be a whole number", key);
    *out = (unsigned)n;
    return VK_OK;
}

static int is_true(const char *v)
{
    return !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on");
}

/* one option: the connection's own fields, or kept for mysql_options */
static int take_option(my_conn *c, const char *k, const char *v)
{
    static const char *const known[] = {"connect_timeout", "read_timeout", "write_timeout", "charset",
                                        "init_command", "ssl", "ssl_ca", "ssl_capath", "ssl_cert",
                                        "ssl_key", "ssl_cipher", "ssl_verify_cert"};
    if (!strcmp(k, "unix_socket") || !strcmp(k, "socket"))
        return set_str(&c->socket, v);
    if (!strcmp(k, "host"))
        return set_str(&c->host, v);
    if (!strcmp(k, "user"))
        return set_str(&c->user, v);
    if (!strcmp(k, "password") || !strcmp(k, "passwd"))
        return set_str(&c->password, v);
    if (!strcmp(k, "database") || !strcmp(k, "db") || !strcmp(k, "dbname"))
        return set_str(&c->dbname, v);
    if (!strcmp(k, "port"))
        return parse_uint(k, v, &c->port);
    if (!strcmp(k, "lock_timeout")) {
        char *end;
        c->lock_timeout = strtod(v, &end);
        if (!*v || *end || !(c->lock_timeout >= 0 && c->lock_timeout <= 31536000))
            return vk_fail(VK_EINVAL, "MySQL connection option lock_timeout must be a number of seconds");
        return VK_OK;
    }
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (!strcmp(k, known[i])) {
            unsigned n = 0;
            if (strstr(k, "timeout") && parse_uint(k, v, &n))
                return vk_errcode();
            opt *o = vk_realloc(c->opts, sizeof(opt) * (size_t)(c->nopts + 1));
            if (!o)
                return VK_ENOMEM;
            c->opts = o;
            o[c->nopts] = (opt){vk_strdup(k), vk_strdup(v)};
            if (!o[c->nopts].key || !o[c->nopts].value) {
                free(o[c->nopts].key);
                free(o[c->nopts].value);
                return VK_ENOMEM;
            }
            c->nopts++;
            return VK_OK;
        }
    return vk_fail(VK_EINVAL, "unknown MySQL connection option '%.64s'", k);
}

static void apply_options(my_conn *c, MYSQL *my)
{
    const char *charset = "utf8mb4";
    for (int i = 0; i < c->nopts; i++) {
        const char *k = c->opts[i].key, *v = c->opts[i].value;
        unsigned n = (unsigned)strtoul(v, NULL, 10);
        my_bool on = is_true(v);
        if (!strcmp(k, "connect_timeout"))
            mysql_options(my, MYSQL_OPT_CONNECT_TIMEOUT, &n);
        else if (!strcmp(k, "read_timeout"))
            mysql_options(my, MYSQL_OPT_READ_TIMEOUT, &n);
        else if (!strcmp(k, "write_timeout"))
            mysql_options(my, MYSQL_OPT_WRITE_TIMEOUT, &n);
        else if (!strcmp(k, "charset"))
            charset = v;
        else if (!strcmp(k, "init_command"))
            mysql_options(my, MYSQL_INIT_COMMAND, v);
        else if (!strcmp(k, "ssl"))
            mysql_options(my, MYSQL_OPT_SSL_ENFORCE, &on);
        else if (!strcmp(k, "ssl_ca"))
            mysql_options(my, MYSQL_OPT_SSL_CA, v);
        else if (!strcmp(k, "ssl_capath"))
            mysql_options(my, MYSQL_OPT_SSL_CAPATH, v);
        else if (!strcmp(k, "ssl_cert"))
            mysql_options(my, MYSQL_OPT_SSL_CERT, v);
        else if (!strcmp(k, "ssl_key"))
            mysql_options(my, MYSQL_OPT_SSL_KEY, v);
        else if (!strcmp(k, "ssl_cipher"))
            mysql_options(my, MYSQL_OPT_SSL_CIPHER, v);
        else if (!strcmp(k, "ssl_verify_cert"))
            mysql_options(my, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &on);
    }
    mysql_options(my, MYSQL_SET_CHARSET_NAME, charset);
}

/* the session every statement of this driver expects */
static const char *const SESSION_SQL[] = {
    "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'NO_AUTO_VALUE_ON_ZERO')",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET SESSION default_storage_engine = InnoDB",
};

/* opens c->my; the message names neither the password nor its parts */
static int open_session(my_conn *c)
{
    MYSQL *my = mysql_init(NULL);
    if (!my)
        return vk_fail(VK_ENOMEM, "out of memory");
    apply_options(c, my);
    if (!mysql_real_connect(my, c->host, c->user, c->password, c->dbname, c->port, c->socket, 0)) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", mysql_error(my));
        redact(msg, sizeof msg, c->password);
        mysql_close(my);
        return vk_fail(VK_ESQL, "cannot connect to MySQL: %s", msg);
    }
    for (size_t i = 0; i < sizeof SESSION_SQL / sizeof *SESSION_SQL; i++)
        if (mysql_query(my, SESSION_SQL[i])) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", mysql_error(my));
            mysql_close(my);
            return vk_fail(VK_ESQL, "cannot set up the MySQL session: %s", msg);
        }
    c->my = my;
    c->lost = c->lost_in_txn = 0;
    c->in_txn = c->locked = 0;
    return VK_OK;
}

static void conn_free(my_conn *c)
{
    if (!c)
        return;
    free(c->host);
    free(c->user);
    if (c->password)
        memset(c->password, 0, strlen(c->password));
    free(c->password);
    free(c->dbname);
    free(c->socket);
    for (int i = 0; i < c->nopts; i++) {
        free(c->opts[i].key);
        free(c->opts[i].value);
    }
    free(c->opts);
    free(c);
}

static int my_connect(vk_db *db, const vk_url *u, const char *const *opts, int nopts)
{
    my_conn *c = vk_calloc(1, sizeof *c);
    if (!c)
        return VK_ENOMEM;
    c->lock_timeout = -1;
    int rc = set_str(&c->host, u->host) || set_str(&c->user, u->user) ||
             set_str(&c->password, u->password) || set_str(&c->dbname, u->dbname) ? VK_ENOMEM : VK_OK;
    if (rc == VK_OK && u->port)
        rc = parse_uint("port", u->port, &c->port);
    for (int i = 0; rc == VK_OK && i < u->nopts; i++)
        rc = take_option(c, u->keys[i], u->values[i]);
    for (int i = 0; rc == VK_OK && i < nopts; i++) {
        const char *eq = strchr(opts[i], '=');
        if (!eq) {
            rc = vk_fail(VK_EINVAL, "connection option %d is not key=value", i + 1);   /* may be a secret */
            break;
        }
        char *k = vk_strndup(opts[i], (size_t)(eq - opts[i]));
        rc = k ? take_option(c, k, eq + 1) : VK_ENOMEM;
        free(k);
    }
    if (rc == VK_OK)
        rc = open_session(c);
    if (rc) {
        conn_free(c);
        return rc;
    }
    db->conn = c;
    return VK_OK;
}

static void my_disconnect(vk_db *db)
{
    my_conn *c = CONN(db);
    for (vk_stmt *s = c->stmts; s; s = s->next) {
        stmt_detach(s);
        s->c = NULL;   /* statements still open fail from now on */
    }
    c->stmts = NULL;
    for (int i = 0; i < PREP_CACHE; i++) {
        if (c->cache[i].st)
            mysql_stmt_close(c->cache[i].st);
        free(c->cache[i].sql);
    }
    mysql_close(c->my);
    conn_free(c);
    db->conn = NULL;
}

/* before a command: a broken connection is opened again when no
 * transaction was lost with it */
static int usable(my_conn *c, const char *what)
{
    if (!c->lost)
        return VK_OK;
    if (c->lost_in_txn)
        return vk_fail(VK_ESQL, "%s: the connection was lost during a transaction: ROLLBACK to reconnect",
                       what);
    mysql_close(c->my);
    c->my = NULL;
    int rc = open_session(c);
    if (rc) {
        /* c->my stays unusable: the next call tries again */
        c->my = mysql_init(NULL);
        c->lost = 1;
        return vk_fail_context("%s: the connection was lost", what);
    }
    return VK_OK;
}

/* ---------- plain statements ---------- */

static int starts_with(const char *sql, const char *word)
{
    while (*sql == ' ' || *sql == '\n' || *sql == '\t' || *sql == '\r')
        sql++;
    size_t n = strlen(word);
    return strncasecmp(sql, word, n) == 0 &&
           !(sql[n] == '_' || (sql[n] >= 'a' && sql[n] <= 'z') || (sql[n] >= 'A' && sql[n] <= 'Z'));
}

static int run_text(my_conn *c, const char *sql, const char *what)
{
    if (mysql_query(c->my, sql))
        return conn_fail(c, what);
    MYSQL_RES *r = mysql_store_result(c->my);
    mysql_free_result(r);
    return VK_OK;
}

/* after COMMIT or ROLLBACK: the next writer may go */
static void release_lock(my_conn *c)
{
    if (!c->locked || c->lost)
        return;
    char sql[128];
    snprintf(sql, sizeof sql, "DO RELEASE_LOCK('%s')", c->lock_name);
    char saved[1024];
    int code = vk_errcode();
    snprintf(saved, sizeof saved, "%s", vk_errmsg());
    run_text(c, sql, "cannot release the writers' lock");
    c->locked = 0;
    vk_fail(code, "%s", saved);
}

static int my_exec(vk_db *db, const char *sql)
{
    my_conn *c = CONN(db);
    int commit = starts_with(sql, "COMMIT"), rollback = starts_with(sql, "ROLLBACK");
    if (rollback && c->lost && c->lost_in_txn) {
        /* the server rolled it back when the connection broke */
        c->lost_in_txn = 0;
        c->in_txn = 0;
        return VK_OK;
    }
    int rc = usable(c, "MySQL error");
    if (rc)
        return rc;
    int ddl = starts_with(sql, "CREATE") || starts_with(sql, "DROP") || starts_with(sql, "ALTER");
    rc = run_text(c, sql, "MySQL error");
    if (rc == VK_OK && (starts_with(sql, "START") || starts_with(sql, "BEGIN")))
        c->in_txn = 1;
    if (commit || rollback) {
        if (rc == VK_OK || c->lost)
            c->in_txn = 0;
        release_lock(c);
    } else if (ddl && c->in_txn && !c->lost) {
        /* MySQL committed before the DDL: the transaction goes on in a new
         * one (the writers' lock is the session's, it still holds) */
        int rc2 = run_text(c, "START TRANSACTION", "MySQL error");
        rc = rc ? rc : rc2;
    }
    return rc;
}

/* Writers of one table take turns through a named lock keyed by the
 * database and the table's qualified name; it waits as long as the URL's
 * lock_timeout (seconds) or the session's innodb_lock_wait_timeout allows. */
static int my_lock_writers(vk_db *db)
{
    my_conn *c = CONN(db);
    uint64_t h = 1469598103934665603ULL;   /* FNV-1a */
    const char *parts[2] = {c->dbname ? c->dbname : "", db->qtable};
    for (int i = 0; i < 2; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ULL;
        h = (h ^ '.') * 1099511628211ULL;
    }
    snprintf(c->lock_name, sizeof c->lock_name, "vekterdb_%016llx", (unsigned long long)h);
    char sql[160], limit[32];
    if (c->lock_timeout >= 0)
        snprintf(limit, sizeof limit, "%g", c->lock_timeout);
    else
        snprintf(limit, sizeof limit, "@@innodb_lock_wait_timeout");
    snprintf(sql, sizeof sql, "SELECT GET_LOCK('%s', %s)", c->lock_name, limit);
    int rc = usable(c, "cannot wait for the other writers");
    if (rc)
        return rc;
    if (mysql_query(c->my, sql))
        return conn_fail(c, "cannot wait for the other writers");
    MYSQL_RES *r = mysql_store_result(c->my);
    MYSQL_ROW row = r ? mysql_fetch_row(r) : NULL;
    int got = row && row[0] && row[0][0] == '1';
    int timeout = row && row[0] && row[0][0] == '0';
    mysql_free_result(r);
    if (got) {
        c->locked = 1;
        return VK_OK;
    }
    if (timeout)
        return vk_fail(VK_ELOCKED, "cannot wait for the other writers: database is locked: another writer "
                       "held the table longer than the lock timeout (%s%s s)",
                       c->lock_timeout >= 0 ? "lock_timeout " : "", limit);
    return conn_fail(c, "cannot wait for the other writers");
}

/* ---------- placeholders ---------- */

/* MySQL's text of sql: ?N (and plain ?) become ?, order[k] the 0-based
 * parameter of the k-th; quoted text and comments are left alone */
static int translate(const char *sql, int nparams, vk_buf *out, int **order, int *n)
{
    int cap = 16, count = 0, seq = 0;
    int *ord = vk_malloc(sizeof(int) * (size_t)cap);
    if (!ord)
        return VK_ENOMEM;
    int rc = VK_OK;
    for (const char *p = sql; *p && rc == VK_OK;) {
        char ch = *p;
        if (ch == '\'' || ch == '"' || ch == '`') {
            const char *q = p + 1;
            while (*q && *q != ch) {
                if (*q == '\\' && ch != '`' && q[1])
                    q++;
                q++;
            }
            if (*q)
                q++;
            rc = vk_buf_add(out, p, (size_t)(q - p));
            p = q;
        } else if ((ch == '-' && p[1] == '-') || ch == '#') {
            size_t k = strcspn(p, "\n");
            rc = vk_buf_add(out, p, k);
            p += k;
        } else if (ch == '/' && p[1] == '*') {
            const char *e = strstr(p + 2, "*/");
            size_t k = e ? (size_t)(e + 2 - p) : strlen(p);
            rc = vk_buf_add(out, p, k);
            p += k;
        } else if (ch == '?') {
            int idx;
            p++;
            if (*p >= '0' && *p <= '9') {
                long v = strtol(p, (char **)&p, 10);
                idx = v > 0 && v <= MAX_PARAMS ? (int)v - 1 : -1;
            } else {
                idx = seq;
            }
            seq = idx + 1;
            if (idx < 0 || idx >= nparams) {
                free(ord);
                return vk_fail(VK_EINVAL, "query refers to parameter %d but %d values were given", idx + 1,
                               nparams);
            }
            if (count == cap) {
                int *o = vk_realloc(ord, sizeof(int) * (size_t)(cap *= 2));
                if (!o) {
                    free(ord);
                    return VK_ENOMEM;
                }
                ord = o;
            }
            ord[count++] = idx;
            rc = vk_buf_add(out, "?", 1);
        } else {
            rc = vk_buf_add(out, p, 1);
            p++;
        }
    }
    if (rc == VK_OK)
        rc = vk_buf_add(out, "", 1);
    if (rc) {
        free(ord);
        return VK_ENOMEM;
    }
    *order = ord;
    *n = count;
    return VK_OK;
}

/* ---------- prepared statements ---------- */

/* a prepared statement for sql (MySQL's text): from the cache when free */
static int prepare(my_conn *c, const char *sql, MYSQL_STMT **out, cached **slot)
{
    *slot = NULL;
    for (int i = 0; i < PREP_CACHE; i++) {
        cached *e = &c->cache[i];
        if (e->sql && !e->busy && strcmp(e->sql, sql) == 0) {
            e->busy = 1;
            *slot = e;
            *out = e->st;
            return VK_OK;
        }
    }
    MYSQL_STMT *st = mysql_stmt_init(c->my);
    if (!st)
        return vk_fail(VK_ENOMEM, "out of memory");
    if (mysql_stmt_prepare(st, sql, strlen(sql))) {
        int rc = stmt_fail(c, st, "MySQL error");
        mysql_stmt_close(st);
        return rc;
    }
    unsigned long cursor = mysql_stmt_field_count(st) ? CURSOR_TYPE_READ_ONLY : CURSOR_TYPE_NO_CURSOR;
    unsigned long prefetch = FETCH_ROWS;
    mysql_stmt_attr_set(st, STMT_ATTR_CURSOR_TYPE, &cursor);
    mysql_stmt_attr_set(st, STMT_ATTR_PREFETCH_ROWS, &prefetch);
    *out = st;
    /* kept when a cache entry is free (none busy in it) */
    for (int k = 0; k < PREP_CACHE; k++) {
        cached *e = &c->cache[(c->next_cache + k) % PREP_CACHE];
        if (e->busy)
            continue;
        char *copy = vk_strdup(sql);
        if (!copy)
            break;
        if (e->st)
            mysql_stmt_close(e->st);
        free(e->sql);
        *e = (cached){.sql = copy, .st = st, .busy = 1};
        c->next_cache = (int)(e - c->cache + 1) % PREP_CACHE;
        *slot = e;
        break;
    }
    return VK_OK;
}

/* the statement goes back to the cache, or is closed */
static void unprepare(MYSQL_STMT *st, cached *slot)
{
    if (slot)
        slot->busy = 0;
    else if (st)
        mysql_stmt_close(st);
}

static void bind_param(MYSQL_BIND *b, const vk_value *v)
{
    memset(b, 0, sizeof *b);
    switch (v->type) {
    case VK_NULL: b->buffer_type = MYSQL_TYPE_NULL; break;
    case VK_INT: b->buffer_type = MYSQL_TYPE_LONGLONG; b->buffer = (void *)&v->i; break;
    case VK_BOOL: b->buffer_type = MYSQL_TYPE_LONGLONG; b->buffer = (void *)&v->i; break;
    case VK_REAL: b->buffer_type = MYSQL_TYPE_DOUBLE; b->buffer = (void *)&v->r; break;
    case VK_TEXT:
    case VK_BLOB:
        b->buffer_type = v->type == VK_TEXT ? MYSQL_TYPE_STRING : MYSQL_TYPE_BLOB;
        b->buffer = (void *)(v->len ? v->s : "");
        b->buffer_length = (unsigned long)v->len;
        break;
    }
}

/* binds params (in order) and runs st */
static int execute(my_conn *c, MYSQL_STMT *st, const vk_value *params, const int *order, int n,
                   const char *what)
{
    MYSQL_BIND *b = n ? vk_calloc((size_t)n, sizeof *b) : NULL;
    if (n && !b)
        return VK_ENOMEM;
    for (int i = 0; i < n; i++)
        bind_param(&b[i], &params[order ? order[i] : i]);
    int rc = VK_OK;
    if ((n && mysql_stmt_bind_param(st, b)) || mysql_stmt_execute(st))
        rc = stmt_fail(c, st, what);
    free(b);
    return rc;
}

/* ---------- results ---------- */

/* the kind of value a result column holds: the one place MySQL's types
 * become the engine's (describe() reads the catalog's names, type_of_decl) */
static int kind_of_field(const MYSQL_FIELD *f)
{
    switch (f->type) {
    case MYSQL_TYPE_TINY:
        return f->length == 1 ? K_BOOL : K_INT;
    case MYSQL_TYPE_SHORT: case MYSQL_TYPE_LONG: case MYSQL_TYPE_INT24: case MYSQL_TYPE_LONGLONG:
    case MYSQL_TYPE_YEAR:
        return K_INT;
    case MYSQL_TYPE_FLOAT: case MYSQL_TYPE_DOUBLE:
        return K_REAL;
    case MYSQL_TYPE_DECIMAL: case MYSQL_TYPE_NEWDECIMAL:
        return K_DECIMAL;
    case MYSQL_TYPE_NULL:
        return K_NULL;
    case MYSQL_TYPE_TINY_BLOB: case MYSQL_TYPE_MEDIUM_BLOB: case MYSQL_TYPE_LONG_BLOB:
    case MYSQL_TYPE_BLOB: case MYSQL_TYPE_VAR_STRING: case MYSQL_TYPE_STRING: case MYSQL_TYPE_VARCHAR:
    case MYSQL_TYPE_BIT: case MYSQL_TYPE_GEOMETRY:
        return f->charsetnr == 63 ? K_BLOB : K_TEXT;   /* 63: binary */
    default:
        return K_TEXT;   /* dates and times, JSON, ENUM, SET: as text */
    }
}

static void bind_cell(MYSQL_BIND *b, my_cell *cell)
{
    memset(b, 0, sizeof *b);
    b->is_null = &cell->is_null;
    b->error = &cell->error;
    b->length = &cell->len;
    switch (cell->kind) {
    case K_INT: case K_BOOL:
        b->buffer_type = MYSQL_TYPE_LONGLONG;
        b->buffer = &cell->i;
        break;
    case K_REAL:
        b->buffer_type = MYSQL_TYPE_DOUBLE;
        b->buffer = &cell->d;
        break;
    case K_NULL:
        b->buffer_type = MYSQL_TYPE_NULL;
        break;
    default:
        b->buffer_type = cell->kind == K_BLOB ? MYSQL_TYPE_BLOB : MYSQL_TYPE_STRING;
        b->buffer = cell->buf;
        b->buffer_length = cell->cap;
    }
}

static int bind_results(vk_stmt *s)
{
    MYSQL_RES *meta = mysql_stmt_result_metadata(s->st);
    if (!meta)
        return stmt_fail(s->c, s->st, "MySQL error");
    s->ncols = (int)mysql_num_fields(meta);
    MYSQL_FIELD *f = mysql_fetch_fields(meta);
    s->cells = vk_calloc((size_t)s->ncols + 1, sizeof *s->cells);
    s->binds = vk_calloc((size_t)s->ncols + 1, sizeof *s->binds);
    int rc = s->cells && s->binds ? VK_OK : VK_ENOMEM;
    for (int i = 0; rc == VK_OK && i < s->ncols; i++) {
        my_cell *cell = &s->cells[i];
        cell->kind = kind_of_field(&f[i]);
        if (cell->kind >= K_DECIMAL && cell->kind != K_NULL) {
            if (!(cell->buf = vk_malloc(CELL_START)))
                rc = VK_ENOMEM;
            cell->cap = CELL_START;
        }
        bind_cell(&s->binds[i], cell);
    }
    mysql_free_result(meta);
    if (rc == VK_OK && mysql_stmt_bind_result(s->st, s->binds))
        rc = stmt_fail(s->c, s->st, "MySQL error");
    return rc;
}

/* a cell longer than its buffer: the buffer grows and the cell is read again */
static int refetch(vk_stmt *s, int i)
{
    my_cell *cell = &s->cells[i];
    unsigned long need = cell->len + 1;
    char *p = vk_realloc(cell->buf, need);
    if (!p)
        return VK_ENOMEM;
    cell->buf = p;
    cell->cap = need;
    bind_cell(&s->binds[i], cell);
    if (mysql_stmt_fetch_column(s->st, &s->binds[i], (unsigned)i, 0))
        return stmt_fail(s->c, s->st, "MySQL error");
    return mysql_stmt_bind_result(s->st, s->binds) ? stmt_fail(s->c, s->st, "MySQL error") : VK_OK;
}

static void cell_value(const my_cell *cell, vk_value *v)
{
    if (cell->is_null || cell->kind == K_NULL) {
        *v = (vk_value){.type = VK_NULL};
        return;
    }
    switch (cell->kind) {
    case K_INT: *v = (vk_value){.type = VK_INT, .i = cell->i}; return;
    case K_BOOL: *v = (vk_value){.type = VK_BOOL, .i = cell->i != 0}; return;
    case K_REAL: *v = (vk_value){.type = VK_REAL, .r = cell->d}; return;
    case K_DECIMAL: {
        char tmp[80];
        snprintf(tmp, sizeof tmp, "%.*s", (int)cell->len, cell->buf);
        *v = (vk_value){.type = VK_REAL, .r = strtod(tmp, NULL)};
        return;
    }
    default:
        *v = (vk_value){.type = cell->kind == K_BLOB ? VK_BLOB : VK_TEXT, .s = cell->buf, .len = cell->len};
    }
}

/* ---------- queries ---------- */

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

/* the statement's server side is gone (connection lost or closed) */
static void stmt_detach(vk_stmt *s)
{
    if (s->st && !s->slot)
        mysql_stmt_close(s->st);
    if (s->slot)
        s->slot->busy = 0;
    s->st = NULL;
    s->slot = NULL;
    s->done = 1;
}

static void my_finish(vk_stmt *s)
{
    if (!s)
        return;
    if (s->st) {
        /* an unfinished cursor is closed on the server */
        if (!s->done)
            mysql_stmt_reset(s->st);
        else
            mysql_stmt_free_result(s->st);
        unprepare(s->st, s->slot);
    }
    stmt_unlink(s);
    for (int i = 0; s->cells && i < s->ncols; i++)
        free(s->cells[i].buf);
    free(s->cells);
    free(s->binds);
    free(s);
}

/* runs sql with params; cursor: a SELECT keeps its rows on the server */
static int run_query(my_conn *c, const char *sql, const vk_value *params, int nparams, int cursor,
                     vk_stmt **out)
{
    *out = NULL;
    int rc = usable(c, "MySQL error");
    if (rc)
        return rc;
    vk_buf text = {0};
    int *order = NULL, n = 0;
    if ((rc = translate(sql, nparams, &text, &order, &n)))
        return rc;
    vk_stmt *s = vk_calloc(1, sizeof *s);
    if (!s) {
        free(order);
        vk_buf_free(&text);
        return VK_ENOMEM;
    }
    s->c = c;
    rc = prepare(c, text.p, &s->st, &s->slot);
    vk_buf_free(&text);
    if (rc == VK_OK && (int)mysql_stmt_param_count(s->st) != n)
        rc = vk_fail(VK_EINVAL, "query has %lu placeholders but %d values were given",
                     mysql_stmt_param_count(s->st), n);
    if (rc == VK_OK) {
        unsigned long type = cursor && mysql_stmt_field_count(s->st) ? CURSOR_TYPE_READ_ONLY
                                                                    : CURSOR_TYPE_NO_CURSOR;
        mysql_stmt_attr_set(s->st, STMT_ATTR_CURSOR_TYPE, &type);
        rc = execute(c, s->st, params, order, n, "MySQL error");
    }
    free(order);
    if (rc == VK_OK && mysql_stmt_field_count(s->st)) {
        rc = bind_results(s);
        /* no cursor (not asked for, or the server would not open one): the
         * rows are read now, so the connection is free for other statements */
        if (rc == VK_OK && !(c->my->server_status & SERVER_STATUS_CURSOR_EXISTS) &&
            mysql_stmt_store_result(s->st))
            rc = stmt_fail(c, s->st, "MySQL error");
    } else if (rc == VK_OK) {
        s->done = 1;
    }
    if (rc == VK_OK) {
        s->next = c->stmts;
        c->stmts = s;
        *out = s;
        return VK_OK;
    }
    if (c->lost) {
        /* the cache was emptied; a statement of its own is closed here */
        if (s->st && !s->slot)
            mysql_stmt_close(s->st);
        s->st = NULL;
        s->slot = NULL;
    } else if (s->st) {
        mysql_stmt_reset(s->st);
    }
    s->done = 1;
    s->c = NULL;
    my_finish(s);
    return rc;
}

static int my_query(vk_db *db, const char *sql, const vk_value *params, int nparams, vk_stmt **out)
{
    my_conn *c = CONN(db);
    if (starts_with(sql, "ROLLBACK") || starts_with(sql, "COMMIT") || starts_with(sql, "START") ||
        starts_with(sql, "BEGIN")) {
        /* transaction control goes through exec(), which keeps track of it */
        int rc = my_exec(db, sql);
        if (rc)
            return rc;
        vk_stmt *s = vk_calloc(1, sizeof *s);
        if (!s)
            return VK_ENOMEM;
        s->done = 1;
        *out = s;
        return VK_OK;
    }
    return run_query(c, sql, params, nparams, 1, out);
}

static int my_next(vk_stmt *s, vk_value *row, int ncols)
{
    if (s->done && !s->st) {
        if (!s->c && s->cells)
            return vk_fail(VK_ESTATE, "the database connection was closed under an open query");
        if (s->cells)
            return vk_fail(VK_ESQL, "MySQL cursor closed before all rows were read: the connection was lost");
        return 0;
    }
    if (!s->ncols || !s->st)
        return 0;
    int r = mysql_stmt_fetch(s->st);
    if (r == MYSQL_NO_DATA) {
        s->done = 1;
        return 0;
    }
    if (r == 1)
        return stmt_fail(s->c, s->st, "MySQL error");
    for (int i = 0; i < s->ncols; i++) {
        my_cell *cell = &s->cells[i];
        if (cell->kind >= K_DECIMAL && cell->kind != K_NULL && !cell->is_null && cell->len > cell->cap) {
            int rc = refetch(s, i);
            if (rc)
                return rc;
        }
    }
    for (int i = 0; i < ncols; i++) {
        if (i < s->ncols)
            cell_value(&s->cells[i], &row[i]);
        else
            row[i] = (vk_value){.type = VK_NULL};
    }
    return 1;
}

static int my_ncols(vk_stmt *s) { return s->ncols; }

/* ---------- catalog ---------- */

/* the engine's type of a column the catalog describes */
static vk_type type_of_decl(const char *data_type, const char *column_type)
{
    static const char *const ints[] = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"};
    static const char *const reals[] = {"float", "double", "decimal", "numeric", "real"};
    static const char *const blobs[] = {"tinyblob", "blob", "mediumblob", "longblob", "binary", "varbinary",
                                        "bit"};
    if (!strcasecmp(data_type, "tinyint") && !strncasecmp(column_type, "tinyint(1)", 10))
        return VK_BOOL;
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (!strcasecmp(data_type, ints[i]))
            return VK_INT;
    for (size_t i = 0; i < sizeof reals / sizeof *reals; i++)
        if (!strcasecmp(data_type, reals[i]))
            return VK_REAL;
    for (size_t i = 0; i < sizeof blobs / sizeof *blobs; i++)
        if (!strcasecmp(data_type, blobs[i]))
            return VK_BLOB;
    return VK_TEXT;
}

/* DDL for a column type (the catalog reads it back through type_of_decl) */
static const char *my_sql_type(vk_type t)
{
    switch (t) {
    case VK_INT: return "BIGINT";
    case VK_REAL: return "DOUBLE";
    case VK_TEXT: return "TEXT";
    case VK_BOOL: return "BOOL";
    default: return "LONGBLOB";
    }
}

/* as SQLAlchemy's MySQL dialect declares them, with the microseconds its
 * plain DATETIME would drop */
static const char *my_kind_sql_type(vk_kind k)
{
    switch (k) {
    case VK_KIND_DATETIME: return "DATETIME(6)";
    case VK_KIND_DATE: return "DATE";
    case VK_KIND_JSON: return "JSON";
    default: return NULL;
    }
}

static const char COLUMNS_SQL[] =
    "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE = 'YES' FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = COALESCE(?1, DATABASE()) AND TABLE_NAME = ?2 ORDER BY ORDINAL_POSITION";

/* single-column indexes: name, unique, column */
static const char INDEXES_SQL[] =
    "SELECT INDEX_NAME, MIN(NON_UNIQUE), MIN(COLUMN_NAME) FROM information_schema.STATISTICS "
    "WHERE TABLE_SCHEMA = COALESCE(?1, DATABASE()) AND TABLE_NAME = ?2 GROUP BY INDEX_NAME "
    "HAVING COUNT(*) = 1";

static vk_value text_or_null(const char *s)
{
    if (!s)
        return (vk_value){.type = VK_NULL};
    return (vk_value){.type = VK_TEXT, .s = s, .len = strlen(s)};
}

static char *cell_dup(const vk_value *v)
{
    return v->type == VK_TEXT || v->type == VK_BLOB ? vk_strndup(v->s, v->len) : vk_strdup("");
}

static int read_indexes(my_conn *c, const vk_value *p, vk_column *cols, int n)
{
    vk_stmt *s;
    int rc = run_query(c, INDEXES_SQL, p, 2, 0, &s);
    if (rc)
        return rc;
    vk_value row[3];
    int r;
    while ((r = my_next(s, row, 3)) == 1) {
        if (row[2].type != VK_TEXT)
            continue;
        for (int i = 0; i < n; i++) {
            if (strlen(cols[i].name) != row[2].len || memcmp(cols[i].name, row[2].s, row[2].len))
                continue;
            int primary = row[0].len == 7 && !memcmp(row[0].s, "PRIMARY", 7);
            int unique = row[1].type == VK_INT && row[1].i == 0;
            cols[i].primary |= primary;
            cols[i].unique |= unique;
            /* an index of its own (not the key, not a UNIQUE constraint):
             * non-unique, or unique and named as SQLAlchemy names indexes */
            cols[i].index |= !primary && (!unique || (row[0].len > 3 && !memcmp(row[0].s, "ix_", 3)));
        }
    }
    my_finish(s);
    return r < 0 ? r : VK_OK;
}

static int my_describe(vk_db *db, int *exists, vk_column **out, int *nout)
{
    my_conn *c = CONN(db);
    *exists = 0;
    *out = NULL;
    *nout = 0;
    vk_value p[2] = {text_or_null(db->schema), text_or_null(db->table)};
    vk_stmt *s;
    int rc = run_query(c, COLUMNS_SQL, p, 2, 0, &s);
    if (rc)
        return vk_fail_context("cannot read the table's schema");
    vk_column *cols = NULL;
    int n = 0, r;
    vk_value row[4];
    while ((r = my_next(s, row, 4)) == 1) {
        vk_column *more = vk_realloc(cols, sizeof *cols * (size_t)(n + 1));
        if (!more) {
            r = VK_ENOMEM;
            break;
        }
        cols = more;
        vk_column *col = &cols[n];
        memset(col, 0, sizeof *col);
        char *dt = cell_dup(&row[1]), *ct = cell_dup(&row[2]);
        col->name = cell_dup(&row[0]);
        if (!col->name || !dt || !ct) {
            free(dt);
            free(ct);
            free((char *)col->name);
            r = VK_ENOMEM;
            break;
        }
        n++;
        col->type = type_of_decl(dt, ct);
        /* dates, times, JSON and VARCHAR(n) as the other drivers read them
         * (MariaDB reports a JSON column as longtext: it reads as text) */
        vk_column decl = {0};
        vk_column_from_decl(&decl, ct);
        if (decl.kind != VK_KIND_PLAIN) {
            col->type = decl.type;
            col->kind = decl.kind;
        } else if (col->type == VK_TEXT) {
            col->length = decl.length;
        }
        col->nullable = row[3].type != VK_NULL && row[3].i != 0;
        free(dt);
        free(ct);
    }
    my_finish(s);
    rc = r < 0 ? r : VK_OK;
    if (rc == VK_OK && n)
        rc = read_indexes(c, p, cols, n);
    if (rc || n == 0) {
        vk_columns_free(cols, n);
        return rc;
    }
    *exists = 1;
    *out = cols;
    *nout = n;
    return VK_OK;
}

static int my_table_exists(vk_db *db, const char *schema, const char *name, int *exists)
{
    vk_value p[2] = {text_or_null(schema), text_or_null(name)};
    i64 n = 0;
    int rc = vk_db_query_int(db,
                             "SELECT COUNT(*) FROM information_schema.TABLES "
                             "WHERE TABLE_SCHEMA = COALESCE(?1, DATABASE()) AND TABLE_NAME = ?2",
                             p, 2, &n, NULL);
    *exists = rc == VK_OK && n > 0;
    return rc;
}

/* ---------- insert ---------- */

static char *insert_sql(const vk_db *db, i64 nrows)
{
    vk_buf b = {0};
    int rc = vk_buf_printf(&b, "INSERT INTO %s (", db->qtable);
    for (int i = 0; i < db->ncols; i++) {
        if (i)
            rc |= vk_buf_adds(&b, ", ");
        rc |= vk_db_ident(db, &b, db->cols[i].name);
    }
    rc |= vk_buf_adds(&b, ") VALUES ");
    for (i64 r = 0; r < nrows && rc == VK_OK; r++) {
        rc |= vk_buf_adds(&b, r ? ", (" : "(");
        for (int i = 0; i < db->ncols; i++)
            rc |= vk_buf_adds(&b, i ? ", ?" : "?");
        rc |= vk_buf_adds(&b, ")");
    }
    if (rc) {
        vk_buf_free(&b);
        vk_fail(VK_ENOMEM, "out of memory");
        return NULL;
    }
    return b.p;
}

/* rows from..: as many as one statement takes; -1 when a row cannot be
 * made final */
static i64 chunk_rows(const vk_db *db, const vk_rows *rows, i64 from)
{
    i64 max = MAX_PARAMS / db->ncols;
    if (max > INSERT_ROWS)
        max = INSERT_ROWS;
    size_t bytes = 0;
    i64 n = 0;
    while (from + n < rows->nrows && n < max) {
        if (vk_rows_wait(rows, from + n + 1))
            return -1;
        const vk_value *row = vk_rows_get(rows, from + n, 0);
        for (int i = 0; i < db->ncols; i++)
            bytes += 16 + row[i].len;
        if (n && bytes > INSERT_BYTES)
            break;
        n++;
    }
    return n;
}

/* the rows of a failed chunk: the first one MySQL names, else the chunk */
static int insert_failed(vk_db *db, const vk_rows *rows, i64 from, i64 n)
{
    if (n == 1)
        return vk_fail_context("cannot insert the record with idx %lld",
                               (long long)vk_rows_get(rows, from, db->idx_col)->i);
    return vk_fail_context("cannot insert into table %s (records with idx %lld..%lld)", db->table,
                           (long long)vk_rows_get(rows, from, db->idx_col)->i,
                           (long long)vk_rows_get(rows, from + n - 1, db->idx_col)->i);
}

static int my_insert(vk_db *db, const vk_rows *rows)
{
    my_conn *c = CONN(db);
    for (i64 from = 0; from < rows->nrows;) {
        i64 n = chunk_rows(db, rows, from);
        if (n < 0)
            return vk_errcode();
        char *sql = insert_sql(db, n);
        if (!sql)
            return VK_ENOMEM;
        vk_stmt *s;
        int rc = run_query(c, sql, vk_rows_get(rows, from, 0), (int)(n * db->ncols), 0, &s);
        free(sql);
        if (rc)
            return insert_failed(db, rows, from, n);
        my_finish(s);
        from += n;
    }
    return VK_OK;
}

/* ---------- fetch by idx ---------- */

static char *fetch_sql(const vk_db *db, const int *cols, int ncols)
{
    vk_buf b = {0};
    int rc = vk_buf_adds(&b, "SELECT ");
    rc |= vk_db_ident(db, &b, db->idx_name);
    for (int i = 0; i < ncols; i++) {
        rc |= vk_buf_adds(&b, ", ");
        rc |= vk_db_ident(db, &b, db->cols[cols[i]].name);
    }
    rc |= vk_buf_printf(&b, " FROM %s WHERE ", db->qtable);
    rc |= vk_db_ident(db, &b, db->idx_name);
    rc |= vk_buf_adds(&b, " IN (");
    for (int i = 0; i < FETCH_IDS; i++)
        rc |= vk_buf_adds(&b, i ? ", ?" : "?");
    rc |= vk_buf_adds(&b, ")");
    if (rc) {
        vk_buf_free(&b);
        vk_fail(VK_ENOMEM, "out of memory");
        return NULL;
    }
    return b.p;
}

static int my_fetch(vk_db *db, const i64 *ids, i64 n, const int *cols, int ncols, vk_rows **out)
{
    my_conn *c = CONN(db);
    vk_rows *r = vk_rows_new(ncols + 1);
    vk_value *row = vk_calloc((size_t)ncols + 1, sizeof *row);
    vk_value p[FETCH_IDS];
    char *sql = n ? fetch_sql(db, cols, ncols) : NULL;
    int rc = r && row && (sql || !n) ? VK_OK : VK_ENOMEM;
    for (i64 from = 0; rc == VK_OK && from < n; from += FETCH_IDS) {
        /* the last chunk repeats its last id: one statement text for all */
        for (int i = 0; i < FETCH_IDS; i++)
            p[i] = (vk_value){.type = VK_INT, .i = ids[from + i < n ? from + i : n - 1]};
        vk_stmt *s;
        if ((rc = run_query(c, sql, p, FETCH_IDS, 0, &s)))
            break;
        int k;
        while ((k = my_next(s, row, ncols + 1)) == 1)
            if ((rc = vk_rows_append(r, row)))
                break;
        if (rc == VK_OK && k < 0)
            rc = k;
        my_finish(s);
    }
    free(sql);
    free(row);
    if (rc) {
        vk_rows_free(r);
        return vk_fail_context("cannot fetch records");
    }
    vk_rows_seal(r);
    *out = r;
    return VK_OK;
}

const vk_driver vk_mysql_driver = {
    .name = "mysql",
    .placeholder = "?",
    .quote = '`',
    .max_name = MYSQL_NAME_MAX,
    .upsert_style = 1,
    /* a side table's key of two text columns fits InnoDB's 3072 bytes in utf8mb4 */
    .key_text_type = "VARCHAR(380)",
    .update_returning = 0,
    /* an index on a TEXT or BLOB column covers its first 255 characters */
    .key_prefix = "(255)",
    .begin_sql = "START TRANSACTION",
    .lock_writers = my_lock_writers,
    .index_name_qualified = 0,
    .connect = my_connect,
    .disconnect = my_disconnect,
    .exec = my_exec,
    .query = my_query,
    .next = my_next,
    .finish = my_finish,
    .ncols = my_ncols,
    .describe = my_describe,
    .table_exists = my_table_exists,
    .insert = my_insert,
    .fetch = my_fetch,
    .sql_type = my_sql_type,
    .kind_sql_type = my_kind_sql_type,
};
