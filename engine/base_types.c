/* base_types.c: column types and the values they hold.
 *
 * One place maps a type's name (ours and SQLAlchemy's) or a catalog's
 * declared type to a vk_column, and converts values on their way in
 * (vk_value_store) and out (vk_value_read).  Drivers add only what their
 * wire formats need (store_pg.c: binary timestamps). */
#include "vk_base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PostgreSQL's varchar limit; a larger n is a mistake */
#define VK_VARCHAR_MAX 10485760
#define JSON_MAX_DEPTH 512

static int lower_eq(const char *a, size_t alen, const char *b)
{
    size_t i = 0;
    for (; i < alen && b[i]; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != b[i])
            return 0;
    }
    return i == alen && !b[i];
}

/* "(n)" at s, the whole rest of the name; n > 0 */
static int read_length(const char *s, int *n)
{
    char *end;
    if (*s != '(' || s[1] < '0' || s[1] > '9')
        return 0;
    long v = strtol(s + 1, &end, 10);
    if (*end != ')' || end[1] || v <= 0 || v > VK_VARCHAR_MAX)
        return 0;
    *n = (int)v;
    return 1;
}

int vk_column_parse_type(vk_column *c, const char *name)
{
    static const struct {
        const char *name;
        vk_type type;
        vk_kind kind;
    } map[] = {
        {"integer", VK_INT, VK_KIND_PLAIN},     {"int", VK_INT, VK_KIND_PLAIN},
        {"bigint", VK_INT, VK_KIND_PLAIN},      {"biginteger", VK_INT, VK_KIND_PLAIN},
        {"real", VK_REAL, VK_KIND_PLAIN},       {"float", VK_REAL, VK_KIND_PLAIN},
        {"double", VK_REAL, VK_KIND_PLAIN},     {"number", VK_REAL, VK_KIND_PLAIN},
        {"text", VK_TEXT, VK_KIND_PLAIN},       {"string", VK_TEXT, VK_KIND_PLAIN},
        {"varchar", VK_TEXT, VK_KIND_PLAIN},    {"blob", VK_BLOB, VK_KIND_PLAIN},
        {"bytes", VK_BLOB, VK_KIND_PLAIN},      {"binary", VK_BLOB, VK_KIND_PLAIN},
        {"largebinary", VK_BLOB, VK_KIND_PLAIN}, {"boolean", VK_BOOL, VK_KIND_PLAIN},
        {"bool", VK_BOOL, VK_KIND_PLAIN},       {"datetime", VK_TEXT, VK_KIND_DATETIME},
        {"timestamp", VK_TEXT, VK_KIND_DATETIME}, {"date", VK_TEXT, VK_KIND_DATE},
        {"json", VK_TEXT, VK_KIND_JSON},
    };
    const char *paren = name ? strchr(name, '(') : NULL;
    size_t len = name ? (paren ? (size_t)(paren - name) : strlen(name)) : 0;
    for (size_t i = 0; name && i < sizeof map / sizeof map[0]; i++) {
        if (!lower_eq(name, len, map[i].name))
            continue;
        int n = 0;
        if (paren && (!read_length(paren, &n) || (strcmp(map[i].name, "varchar") != 0 &&
                                                    strcmp(map[i].name, "string") != 0)))
            break;
        c->type = map[i].type;
        c->kind = map[i].kind;
        c->length = n;
        return VK_OK;
    }
    return vk_fail(VK_EINVAL, "column '%s': unknown type '%s' (known: integer, real, text, varchar(n), "
                   "blob, boolean, datetime, date, json, and SQLAlchemy's names: BigInteger, Float, "
                   "String(n), LargeBinary, DateTime...)", c->name ? c->name : "?", name ? name : "nil");
}

const char *vk_column_type_name(const vk_column *c)
{
    switch (c->kind) {
    case VK_KIND_DATETIME: return "datetime";
    case VK_KIND_DATE: return "date";
    case VK_KIND_JSON: return "json";
    default: break;
    }
    switch (c->type) {
    case VK_INT: return "integer";
    case VK_REAL: return "real";
    case VK_TEXT: return c->length > 0 ? "varchar" : "text";
    case VK_BLOB: return "blob";
    case VK_BOOL: return "boolean";
    default: return "null";
    }
}

void vk_column_from_decl(vk_column *c, const char *decl)
{
    char up[128];
    size_t i;
    for (i = 0; decl && decl[i] && i < sizeof up - 1; i++)
        up[i] = (char)((decl[i] >= 'a' && decl[i] <= 'z') ? decl[i] - 32 : decl[i]);
    up[i] = '\0';
    c->kind = VK_KIND_PLAIN;
    c->length = 0;
    if (!up[0] || strstr(up, "BLOB") || strstr(up, "BINARY") || strstr(up, "BYTEA")) {
        c->type = VK_BLOB;
    } else if (strstr(up, "BOOL")) {
        c->type = VK_BOOL;
    } else if (!strncmp(up, "DATETIME", 8) ||
               (!strncmp(up, "TIMESTAMP", 9) && (!strstr(up, "WITH TIME ZONE") || strstr(up, "WITHOUT")))) {
        c->type = VK_TEXT;
        c->kind = VK_KIND_DATETIME;
    } else if (!strcmp(up, "DATE")) {
        c->type = VK_TEXT;
        c->kind = VK_KIND_DATE;
    } else if (!strcmp(up, "JSON") || !strcmp(up, "JSONB")) {
        c->type = VK_TEXT;
        c->kind = VK_KIND_JSON;
    } else if (strstr(up, "INT")) {
        c->type = VK_INT;
    } else if (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT")) {
        c->type = VK_TEXT;
        const char *p = strchr(up, '(');
        if (strstr(up, "CHAR") && p && p[1] >= '0' && p[1] <= '9')
            c->length = atoi(p + 1);
    } else if (!strncmp(up, "TIME", 4) || !strncmp(up, "UUID", 4)) {
        c->type = VK_TEXT;   /* SQLAlchemy keeps both as text on SQLite */
    } else {
        c->type = VK_REAL;   /* REAL, FLOAT, DOUBLE, NUMERIC, DECIMAL... */
    }
}

/* ---------- times ---------- */

static int digits(const char *s, size_t len, size_t at, int n, int *out)
{
    int v = 0;
    if (at + (size_t)n > len)
        return 0;
    for (int i = 0; i < n; i++) {
        char c = s[at + (size_t)i];
        if (c < '0' || c > '9')
            return 0;
        v = v * 10 + (c - '0');
    }
    *out = v;
    return 1;
}

static int leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int month_days(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : days[m - 1];
}

int vk_time_parse(const char *s, size_t len, int date_only, vk_time *t)
{
    memset(t, 0, sizeof *t);
    if (!digits(s, len, 0, 4, &t->year) || len < 10 || s[4] != '-' || s[7] != '-' ||
        !digits(s, len, 5, 2, &t->month) || !digits(s, len, 8, 2, &t->day))
        return -1;
    if (t->year < 1 || t->month < 1 || t->month > 12 || t->day < 1 ||
        t->day > month_days(t->year, t->month))
        return -1;
    if (len == 10)
        return 0;
    if (date_only || (s[10] != ' ' && s[10] != 'T' && s[10] != 't') || !digits(s, len, 11, 2, &t->hour) ||
        len < 16 || s[13] != ':' || !digits(s, len, 14, 2, &t->min))
        return -1;
    size_t at = 16;
    if (at < len && s[at] == ':') {
        if (!digits(s, len, 17, 2, &t->sec))
            return -1;
        at = 19;
        if (at < len && s[at] == '.') {
            int n = 0;
            for (at++; at < len && s[at] >= '0' && s[at] <= '9'; at++, n++) {
                if (n == 6)
                    return -1;   /* finer than a microsecond */
                t->usec = t->usec * 10 + (s[at] - '0');
            }
            if (n == 0)
                return -1;
            for (; n < 6; n++)
                t->usec *= 10;
        }
    }
    if (at != len || t->hour > 23 || t->min > 59 || t->sec > 59)
        return -1;
    return 0;
}

/* Howard Hinnant's days_from_civil: days since 1970-01-01 */
i64 vk_days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    i64 era = (y >= 0 ? y : y - 399) / 400;
    i64 yoe = y - era * 400;
    i64 doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    i64 doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

void vk_civil_from_days(i64 z, int *y, int *m, int *d)
{
    z += 719468;
    i64 era = (z >= 0 ? z : z - 146096) / 146097;
    i64 doe = z - era * 146097;
    i64 yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    i64 doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    i64 mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

int vk_time_format(const vk_time *t, int with_time, int full_fraction, char *buf, size_t cap)
{
    /* years before 1: PostgreSQL's "BC" form */
    int bc = t->year < 1;
    int n = snprintf(buf, cap, "%04d-%02d-%02d", bc ? 1 - t->year : t->year, t->month, t->day);
    if (with_time) {
        n += snprintf(buf + n, cap - (size_t)n, " %02d:%02d:%02d", t->hour, t->min, t->sec);
        if (full_fraction) {
            n += snprintf(buf + n, cap - (size_t)n, ".%06d", t->usec);
        } else if (t->usec) {
            n += snprintf(buf + n, cap - (size_t)n, ".%06d", t->usec);
            while (buf[n - 1] == '0')
                buf[--n] = '\0';
        }
    }
    if (bc)
        n += snprintf(buf + n, cap - (size_t)n, " BC");
    return n;
}

/* ---------- JSON text ---------- */

typedef struct json_in {
    const char *s;
    size_t len, at;
} json_in;

static void json_ws(json_in *j)
{
    while (j->at < j->len && (j->s[j->at] == ' ' || j->s[j->at] == '\t' || j->s[j->at] == '\n' ||
                              j->s[j->at] == '\r'))
        j->at++;
}

static int json_lit(json_in *j, const char *w)
{
    size_t n = strlen(w);
    if (j->at + n > j->len || memcmp(j->s + j->at, w, n))
        return 0;
    j->at += n;
    return 1;
}

static int json_digits(json_in *j)
{
    size_t from = j->at;
    while (j->at < j->len && j->s[j->at] >= '0' && j->s[j->at] <= '9')
        j->at++;
    return j->at > from;
}

static int json_number(json_in *j)
{
    if (j->s[j->at] == '-')
        j->at++;
    if (j->at < j->len && j->s[j->at] == '0')
        j->at++;
    else if (!json_digits(j))
        return 0;
    if (j->at < j->len && j->s[j->at] == '.') {
        j->at++;
        if (!json_digits(j))
            return 0;
    }
    if (j->at < j->len && (j->s[j->at] == 'e' || j->s[j->at] == 'E')) {
        j->at++;
        if (j->at < j->len && (j->s[j->at] == '+' || j->s[j->at] == '-'))
            j->at++;
        if (!json_digits(j))
            return 0;
    }
    return 1;
}

static int json_string(json_in *j)
{
    for (j->at++; j->at < j->len; j->at++) {
        unsigned char c = (unsigned char)j->s[j->at];
        if (c == '"') {
            j->at++;
            return 1;
        }
        if (c < 0x20)
            return 0;
        if (c != '\\')
            continue;
        if (++j->at >= j->len)
            return 0;
        c = (unsigned char)j->s[j->at];
        if (c == 'u') {
            for (int i = 0; i < 4; i++) {
                char h = ++j->at < j->len ? j->s[j->at] : 0;
                if (!((h >= '0' && h <= '9') || (h >= 'a' && h <= 'f') || (h >= 'A' && h <= 'F')))
                    return 0;
            }
        } else if (!strchr("\"\\/bfnrt", c) || c == 0) {
            return 0;
        }
    }
    return 0;
}

static int json_value(json_in *j, int depth)
{
    json_ws(j);
    if (j->at >= j->len || depth > JSON_MAX_DEPTH)
        return 0;
    char c = j->s[j->at];
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        j->at++;
        json_ws(j);
        if (j->at < j->len && j->s[j->at] == close) {
            j->at++;
            return 1;
        }
        for (;;) {
            if (c == '{') {
                json_ws(j);
                if (j->at >= j->len || j->s[j->at] != '"' || !json_string(j))
                    return 0;
                json_ws(j);
                if (j->at >= j->len || j->s[j->at++] != ':')
                    return 0;
            }
            if (!json_value(j, depth + 1))
                return 0;
            json_ws(j);
            if (j->at >= j->len)
                return 0;
            if (j->s[j->at] == close) {
                j->at++;
                return 1;
            }
            if (j->s[j->at++] != ',')
                return 0;
        }
    }
    if (c == '"')
        return json_string(j);
    if (c == '-' || (c >= '0' && c <= '9'))
        return json_number(j);
    return json_lit(j, "true") || json_lit(j, "false") || json_lit(j, "null");
}

/* 0 when s is one JSON value (with white space around it), else the byte
 * (from 1) where it stops being one */
static size_t json_check(const char *s, size_t len)
{
    json_in j = {s, len, 0};
    if (json_value(&j, 0)) {
        json_ws(&j);
        if (j.at == len)
            return 0;
    }
    return j.at + 1;
}

/* ---------- values in and out ---------- */

/* the shortest of %.15g..%.17g that reads back as d */
static int format_real(char *buf, double d)
{
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, VK_VALUE_BUF, "%.*g", prec, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return n;
}

static const char *value_type_name(vk_type t)
{
    switch (t) {
    case VK_INT: return "integer";
    case VK_REAL: return "real";
    case VK_TEXT: return "text";
    case VK_BLOB: return "blob";
    case VK_BOOL: return "boolean";
    default: return "nil";
    }
}

/* characters of UTF-8 text (bytes that do not continue a character) */
static size_t utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

static int store_time(const vk_column *c, const vk_value *v, vk_value *out, char *buf)
{
    int date = c->kind == VK_KIND_DATE;
    vk_time t;
    if (v->type != VK_TEXT && v->type != VK_BLOB)
        return vk_fail(VK_EINVAL, "column '%s' holds %s values, got %s: give ISO-8601 text such as \"%s\"",
                       c->name, date ? "date" : "datetime", value_type_name(v->type),
                       date ? "2024-05-01" : "2024-05-01 12:30:00");
    if (vk_time_parse(v->s, v->len, date, &t))
        return vk_fail(VK_EINVAL, "column '%s' holds %s values: \"%.*s\" is not %s", c->name,
                       date ? "date" : "datetime", (int)(v->len > 40 ? 40 : v->len), v->s,
                       date ? "an ISO-8601 date YYYY-MM-DD"
                            : "an ISO-8601 time YYYY-MM-DD[ HH:MM[:SS[.ffffff]]] without a time zone");
    int n = vk_time_format(&t, !date, 1, buf, VK_VALUE_BUF);
    *out = (vk_value){.type = VK_TEXT, .s = buf, .len = (size_t)n};
    return VK_OK;
}

static int store_json(const vk_column *c, const vk_value *v, vk_value *out, char *buf)
{
    int n;
    switch (v->type) {
    case VK_INT: n = snprintf(buf, VK_VALUE_BUF, "%lld", (long long)v->i); break;
    case VK_BOOL: n = snprintf(buf, VK_VALUE_BUF, "%s", v->i ? "true" : "false"); break;
    case VK_REAL:
        if (!isfinite(v->r))
            return vk_fail(VK_EINVAL, "column '%s' holds JSON: %g has no JSON form", c->name, v->r);
        n = format_real(buf, v->r);
        break;
    default: {
        size_t bad = json_check(v->s, v->len);
        if (bad)
            return vk_fail(VK_EINVAL, "column '%s' holds JSON: the text is not JSON (at byte %zu)", c->name,
                           bad);
        *out = (vk_value){.type = VK_TEXT, .s = v->s, .len = v->len};
        return VK_OK;
    }
    }
    *out = (vk_value){.type = VK_TEXT, .s = buf, .len = (size_t)n};
    return VK_OK;
}

int vk_value_store(const vk_column *c, const vk_value *v, vk_value *out, char buf[VK_VALUE_BUF])
{
    if (v->type == VK_NULL) {
        *out = (vk_value){.type = VK_NULL};
        return VK_OK;
    }
    if (c->kind == VK_KIND_DATETIME || c->kind == VK_KIND_DATE)
        return store_time(c, v, out, buf);
    if (c->kind == VK_KIND_JSON)
        return store_json(c, v, out, buf);
    int ok = 0;
    switch (c->type) {
    case VK_INT:
        ok = v->type == VK_INT || v->type == VK_BOOL;
        *out = (vk_value){.type = VK_INT, .i = v->i};
        break;
    case VK_BOOL:
        ok = v->type == VK_BOOL || v->type == VK_INT;
        *out = (vk_value){.type = VK_BOOL, .i = v->i != 0};
        break;
    case VK_REAL:
        ok = v->type == VK_REAL || v->type == VK_INT;
        *out = (vk_value){.type = VK_REAL, .r = v->type == VK_INT ? (double)v->i : v->r};
        break;
    case VK_TEXT:
    case VK_BLOB:
        ok = v->type == VK_TEXT || v->type == VK_BLOB;
        *out = (vk_value){.type = c->type, .s = v->s, .len = v->len};
        break;
    default:
        break;
    }
    if (!ok)
        return vk_fail(VK_EINVAL, "column '%s' holds %s values, got %s", c->name, value_type_name(c->type),
                       value_type_name(v->type));
    if (c->type == VK_TEXT && c->length > 0) {
        size_t n = utf8_chars(v->s, v->len);
        if (n > (size_t)c->length)
            return vk_fail(VK_EINVAL, "column '%s' is VARCHAR(%d): a value of %zu characters is too long",
                           c->name, c->length, n);
    }
    return VK_OK;
}

void vk_value_read(const vk_column *c, const vk_value *v, vk_value *out, char buf[VK_VALUE_BUF])
{
    *out = *v;
    if ((c->kind == VK_KIND_DATETIME || c->kind == VK_KIND_DATE) && v->type == VK_TEXT) {
        vk_time t;
        int date = c->kind == VK_KIND_DATE;
        if (vk_time_parse(v->s, v->len, date, &t) == 0) {
            int n = vk_time_format(&t, !date, 0, buf, VK_VALUE_BUF);
            *out = (vk_value){.type = VK_TEXT, .s = buf, .len = (size_t)n};
        }
    } else if (c->kind == VK_KIND_JSON && (v->type == VK_INT || v->type == VK_REAL)) {
        /* SQLite keeps a JSON number in a JSON column (NUMERIC affinity) as a number */
        int n = v->type == VK_INT ? snprintf(buf, VK_VALUE_BUF, "%lld", (long long)v->i)
                                  : format_real(buf, v->r);
        *out = (vk_value){.type = VK_TEXT, .s = buf, .len = (size_t)n};
    }
}
