/* ctest.h: a few macros that print TAP for the engine's C tests */
#ifndef CTEST_H
#define CTEST_H

#include <stdio.h>
#include <string.h>

static int ct_n, ct_failed;

#define CHECK(cond, name)                                                           \
    do {                                                                            \
        ct_n++;                                                                     \
        if (cond) {                                                                 \
            printf("ok %d - %s\n", ct_n, name);                                     \
        } else {                                                                    \
            ct_failed++;                                                            \
            printf("not ok %d - %s\n#   %s:%d: %s\n#   last error: %s\n", ct_n, name, \
                   __FILE__, __LINE__, #cond, vk_errmsg());                         \
        }                                                                           \
    } while (0)

#define CT_DONE()                            \
    do {                                     \
        printf("1..%d\n", ct_n);             \
        return ct_failed ? 1 : 0;            \
    } while (0)

#endif
