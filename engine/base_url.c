/* base_url.c: SQLAlchemy-style database URLs */
#include "vk_base.h"

#include <stdlib.h>
#include <string.h>

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* percent-decodes s[0..n); NULL on a malformed escape or an embedded NUL */
static char *decode(const char *s, size_t n, const char *what)
{
    char *out = vk_malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%') {
            int a = i + 1 < n ? hexval(s[i + 1]) : -1;
            int b = i + 2 < n ? hexval(s[i + 2]) : -1;
            int h = (a < 0 || b < 0) ? -1 : a * 16 + b;
            if (h <= 0) {
                free(out);
                vk_fail(VK_EINVAL, "invalid database URL: bad percent escape in the %s", what);
                return NULL;
            }
            *o++ = (char)h;
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}

static int add_option(vk_url *u, const char *k, size_t kn, const char *v, size_t vn)
{
    char **keys = vk_realloc(u->keys, sizeof(char *) * (size_t)(u->nopts + 1));
    if (!keys)
        return VK_ENOMEM;
    u->keys = keys;
    char **values = vk_realloc(u->values, sizeof(char *) * (size_t)(u->nopts + 1));
    if (!values)
        return VK_ENOMEM;
    u->values = values;
    char *dk = decode(k, kn, "query options");
    char *dv = dk ? decode(v, vn, "query options") : NULL;
    if (!dk || !dv) {
        free(dk);
        return vk_errcode();
    }
    u->keys[u->nopts] = dk;
    u->values[u->nopts] = dv;
    u->nopts++;
    return VK_OK;
}

static int parse_query(vk_url *u, const char *q)
{
    while (*q) {
        size_t n = strcspn(q, "&");
        const char *eq = memchr(q, '=', n);
        if (n) {
            if (!eq || eq == q)
                return vk_fail(VK_EINVAL, "invalid database URL: query option without a name=value form");
            int rc = add_option(u, q, (size_t)(eq - q), eq + 1, n - (size_t)(eq - q) - 1);
            if (rc)
                return rc;
        }
        q += n;
        if (*q == '&')
            q++;
    }
    return VK_OK;
}

/* PostgreSQL and MySQL URLs */
static int parse_pg(vk_url *u, const char *rest)
{
    /* rest: [user[:password]@][host][:port][/dbname][?query] */
    size_t auth_end = strcspn(rest, "/?");
    const char *at = NULL;
    for (const char *c = rest; c < rest + auth_end; c++)
        if (*c == '@')
            at = c;     /* the last '@' ends the credentials */
    const char *hp = rest;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        size_t un = colon ? (size_t)(colon - rest) : (size_t)(at - rest);
        if (un && !(u->user = decode(rest, un, "user name")))
            return vk_errcode();
        if (colon && !(u->password = decode(colon + 1, (size_t)(at - colon - 1), "password")))
            return vk_errcode();
        hp = at + 1;
    }
    size_t hn = (size_t)(rest + auth_end - hp);
    const char *port = NULL;
    if (hn && hp[0] == '[') {
        const char *close = memchr(hp, ']', hn);
        if (!close)
            return vk_fail(VK_EINVAL, "invalid database URL: unterminated [ in the host");
        if (!(u->host = vk_strndup(hp + 1, (size_t)(close - hp - 1))))
            return VK_ENOMEM;
        if (close + 1 < hp + hn) {
            if (close[1] != ':')
                return vk_fail(VK_EINVAL, "invalid database URL: text after the host");
            port = close + 2;
        }
    } else {
        const char *colon = memchr(hp, ':', hn);
        size_t hlen = colon ? (size_t)(colon - hp) : hn;
        if (hlen && !(u->host = decode(hp, hlen, "host")))
            return vk_errcode();
        if (colon)
            port = colon + 1;
    }
    if (port) {
        size_t pn = (size_t)(hp + hn - port);
        if (pn == 0 || pn > 5 || strspn(port, "0123456789") < pn)
            return vk_fail(VK_EINVAL, "invalid database URL: the port must be a number");
        if (!(u->port = vk_strndup(port, pn)))
            return VK_ENOMEM;
    }
    const char *p = rest + auth_end;
    if (*p == '/') {
        p++;
        size_t dn = strcspn(p, "?");
        if (dn && !(u->dbname = decode(p, dn, "database name")))
            return vk_errcode();
        p += dn;
    }
    if (*p == '?')
        return parse_query(u, p + 1);
    return VK_OK;
}

static int parse_sqlite(vk_url *u, const char *rest)
{
    /* "" (memory), "/:memory:", "/relative.db", "//absolute.db", each with ?query */
    size_t pn = strcspn(rest, "?");
    if (pn > 0) {
        if (rest[0] != '/')
            return vk_fail(VK_EINVAL, "invalid SQLite URL: expected sqlite:///path/to/file.db");
        const char *path = rest + 1;
        size_t n = pn - 1;
        if (n && !(n == 8 && memcmp(path, ":memory:", 8) == 0))
            if (!(u->path = decode(path, n, "file path")))
                return vk_errcode();
    }
    if (rest[pn] == '?')
        return parse_query(u, rest + pn + 1);
    return VK_OK;
}

int vk_url_parse(const char *url, vk_url *u)
{
    memset(u, 0, sizeof *u);
    if (!url)
        return vk_fail(VK_EINVAL, "invalid database URL: none given");
    if (strlen(url) > 8192)
        return vk_fail(VK_EINVAL, "invalid database URL: longer than 8192 characters");
    const char *sep = strstr(url, "://");
    size_t sn = sep ? (size_t)(sep - url) : 0;
    size_t base = strcspn(url, "+:");     /* "postgresql+psycopg2" is "postgresql" */
    if (!sep || base == 0 || base > sn)
        return vk_fail(VK_EINVAL, "invalid database URL: expected scheme://..., e.g. sqlite:///file.db");
    int rc;
    if (base == 6 && strncmp(url, "sqlite", 6) == 0) {
        u->scheme = vk_strdup("sqlite");
        rc = u->scheme ? parse_sqlite(u, sep + 3) : VK_ENOMEM;
    } else if ((base == 10 && strncmp(url, "postgresql", 10) == 0) ||
               (base == 8 && strncmp(url, "postgres", 8) == 0)) {
        u->scheme = vk_strdup("postgresql");
        rc = u->scheme ? parse_pg(u, sep + 3) : VK_ENOMEM;
    } else if ((base == 5 && strncmp(url, "mysql", 5) == 0) ||
               (base == 7 && strncmp(url, "mariadb", 7) == 0)) {
        /* one driver (MariaDB Connector/C) speaks to both servers */
        u->scheme = vk_strdup("mysql");
        rc = u->scheme ? parse_pg(u, sep + 3) : VK_ENOMEM;
    } else {
        rc = vk_fail(VK_EINVAL, "unsupported database URL scheme '%.*s': use sqlite://, postgresql:// "
                     "or mysql://",
                     (int)(sn > 40 ? 40 : sn), url);
    }
    if (rc)
        vk_url_free(u);
    return rc;
}

void vk_url_free(vk_url *u)
{
    free(u->scheme);
    free(u->user);
    free(u->password);
    free(u->host);
    free(u->port);
    free(u->dbname);
    free(u->path);
    for (int i = 0; i < u->nopts; i++) {
        free(u->keys[i]);
        free(u->values[i]);
    }
    free(u->keys);
    free(u->values);
    memset(u, 0, sizeof *u);
}
