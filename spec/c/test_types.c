/* test_types.c: column types and the values they hold (base_types.c) */
#include "ctest.h"
#include "vk_base.h"

#include <string.h>

static int stored(const vk_column *c, const char *in, const char *want)
{
    vk_value v = {.type = VK_TEXT, .s = in, .len = strlen(in)}, out;
    char buf[VK_VALUE_BUF];
    if (vk_value_store(c, &v, &out, buf))
        return want == NULL;
    return want && out.type == VK_TEXT && out.len == strlen(want) && !memcmp(out.s, want, out.len);
}

static int read_back(const vk_column *c, vk_value v, const char *want)
{
    vk_value out;
    char buf[VK_VALUE_BUF];
    vk_value_read(c, &v, &out, buf);
    return out.type == VK_TEXT && out.len == strlen(want) && !memcmp(out.s, want, out.len);
}

static void test_names(void)
{
    vk_column c = {.name = "c"};
    CHECK(vk_column_parse_type(&c, "DateTime") == VK_OK && c.type == VK_TEXT && c.kind == VK_KIND_DATETIME,
          "DateTime is a datetime column of text values");
    CHECK(vk_column_parse_type(&c, "String(32)") == VK_OK && c.kind == VK_KIND_PLAIN && c.length == 32 &&
              !strcmp(vk_column_type_name(&c), "varchar"),
          "String(32) is varchar with a length");
    CHECK(vk_column_parse_type(&c, "LargeBinary") == VK_OK && c.type == VK_BLOB && c.length == 0,
          "LargeBinary is a blob, and the length is reset");
    CHECK(vk_column_parse_type(&c, "integer(3)") == VK_EINVAL, "a length only for varchar and string");
    CHECK(vk_column_parse_type(&c, "varchar(0)") == VK_EINVAL && vk_column_parse_type(&c, "varchar(3") == VK_EINVAL,
          "a length is positive, in parentheses");
    CHECK(vk_column_parse_type(&c, "interval") == VK_EINVAL && strstr(vk_errmsg(), "unknown type 'interval'"),
          "an unknown type is named");
    static const struct {
        const char *decl;
        vk_type type;
        vk_kind kind;
        int length;
    } decls[] = {
        {"DATETIME", VK_TEXT, VK_KIND_DATETIME, 0},  {"timestamp without time zone", VK_TEXT, VK_KIND_DATETIME, 0},
        {"TIMESTAMP WITH TIME ZONE", VK_TEXT, VK_KIND_PLAIN, 0}, {"DATE", VK_TEXT, VK_KIND_DATE, 0},
        {"JSON", VK_TEXT, VK_KIND_JSON, 0},          {"jsonb", VK_TEXT, VK_KIND_JSON, 0},
        {"VARCHAR(32)", VK_TEXT, VK_KIND_PLAIN, 32}, {"character varying(7)", VK_TEXT, VK_KIND_PLAIN, 7},
        {"VARCHAR", VK_TEXT, VK_KIND_PLAIN, 0},      {"BIGINT", VK_INT, VK_KIND_PLAIN, 0},
        {"FLOAT", VK_REAL, VK_KIND_PLAIN, 0},        {"NUMERIC(10, 2)", VK_REAL, VK_KIND_PLAIN, 0},
        {"BLOB", VK_BLOB, VK_KIND_PLAIN, 0},         {"", VK_BLOB, VK_KIND_PLAIN, 0},
        {"BOOLEAN", VK_BOOL, VK_KIND_PLAIN, 0},      {"TIME", VK_TEXT, VK_KIND_PLAIN, 0},
    };
    int ok = 1;
    for (size_t i = 0; i < sizeof decls / sizeof decls[0]; i++) {
        vk_column_from_decl(&c, decls[i].decl);
        if (c.type != decls[i].type || c.kind != decls[i].kind || c.length != decls[i].length) {
            printf("# %s\n", decls[i].decl);
            ok = 0;
        }
    }
    CHECK(ok, "declared types of SQLite and PostgreSQL catalogs");
}

static void test_times(void)
{
    vk_column dt = {.name = "t", .type = VK_TEXT, .kind = VK_KIND_DATETIME};
    vk_column d = {.name = "d", .type = VK_TEXT, .kind = VK_KIND_DATE};
    CHECK(stored(&dt, "2024-02-29T01:02:03.5", "2024-02-29 01:02:03.500000"), "a time is stored as SQLAlchemy writes it");
    CHECK(stored(&dt, "2024-02-29", "2024-02-29 00:00:00.000000"), "a date alone is midnight");
    CHECK(stored(&dt, "2024-02-29 01:02", "2024-02-29 01:02:00.000000"), "seconds may be left out");
    CHECK(stored(&dt, "2023-02-29", NULL) && stored(&dt, "2024-04-31", NULL) && stored(&dt, "0000-01-01", NULL),
          "impossible dates are refused");
    CHECK(stored(&dt, "2024-01-01 24:00:00", NULL) && stored(&dt, "2024-01-01 12:60", NULL) &&
              stored(&dt, "2024-01-01 12:00:61", NULL),
          "impossible times are refused");
    CHECK(stored(&dt, "2024-01-01 12:00:00Z", NULL) && stored(&dt, "2024-01-01 12:00:00+02:00", NULL),
          "a time zone is refused");
    CHECK(stored(&dt, "2024-01-01 12:00:00.1234567", NULL) && stored(&dt, "2024-01-01 12:00:00.", NULL),
          "at most 6 fraction digits, at least one");
    CHECK(stored(&d, "1999-12-31", "1999-12-31") && stored(&d, "1999-12-31 00:00", NULL), "a date column takes dates");
    CHECK(read_back(&dt, (vk_value){.type = VK_TEXT, .s = "2024-01-02 03:04:05.000000", .len = 26},
                    "2024-01-02 03:04:05"),
          "read: a zero fraction goes");
    CHECK(read_back(&dt, (vk_value){.type = VK_TEXT, .s = "2024-01-02 03:04:05.250000", .len = 26},
                    "2024-01-02 03:04:05.25"),
          "read: trailing zeros go");
    CHECK(read_back(&dt, (vk_value){.type = VK_TEXT, .s = "someday", .len = 7}, "someday"),
          "read: text that is no time is left as it is");
    int y, m, dd, ok = 1;
    for (i64 day = -800000; day <= 3000000; day += 997) {
        vk_civil_from_days(day, &y, &m, &dd);
        ok &= vk_days_from_civil(y, m, dd) == day;
    }
    vk_civil_from_days(10957, &y, &m, &dd);
    CHECK(ok && y == 2000 && m == 1 && dd == 1 && vk_days_from_civil(1970, 1, 1) == 0,
          "days and dates convert both ways");
    vk_time bc = {.year = -43, .month = 3, .day = 15};
    char buf[VK_VALUE_BUF];
    vk_time_format(&bc, 0, 0, buf, sizeof buf);
    CHECK(!strcmp(buf, "0044-03-15 BC"), "years before 1 as PostgreSQL writes them");
}

static void test_json_and_varchar(void)
{
    vk_column j = {.name = "j", .type = VK_TEXT, .kind = VK_KIND_JSON};
    static const char *const good[] = {"{}", " [1, -0.5e+3, \"a\\u00e9\\n\", true, false, null, {\"k\": []}] ",
                                       "\"hello\"", "0", "-1.25E-2"};
    static const char *const bad[] = {"", "hello", "{'a': 1}", "[1,]", "{\"a\" 1}", "01", "1.", "[1] 2",
                                      "\"\\x\"", "\"a\nb\"", "[", "nul"};
    int ok = 1;
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        ok &= stored(&j, good[i], good[i]);
    CHECK(ok, "JSON text is kept as it is");
    ok = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (!stored(&j, bad[i], NULL)) {
            printf("# accepted %s\n", bad[i]);
            ok = 0;
        }
    CHECK(ok, "text that is not JSON is refused");
    char deep[2000];
    memset(deep, '[', sizeof deep - 1);
    deep[sizeof deep - 1] = '\0';
    CHECK(stored(&j, deep, NULL), "nesting is limited");
    vk_value out, num = {.type = VK_REAL, .r = 0.1};
    char buf[VK_VALUE_BUF];
    CHECK(vk_value_store(&j, &num, &out, buf) == VK_OK && out.len == 3 && !memcmp(out.s, "0.1", 3),
          "a number becomes its shortest JSON text");
    CHECK(read_back(&j, (vk_value){.type = VK_INT, .i = 42}, "42"), "read: a number SQLite kept is JSON text");
    vk_column v = {.name = "v", .type = VK_TEXT, .length = 3};
    CHECK(stored(&v, "äöü", "äöü") && stored(&v, "abcd", NULL) && strstr(vk_errmsg(), "VARCHAR(3)"),
          "VARCHAR(n) counts characters");
}

int main(void)
{
    test_names();
    test_times();
    test_json_and_varchar();
    CT_DONE();
}
