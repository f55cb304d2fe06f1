/* base_error.c: the per-thread last error that every engine call leaves behind */
#include "vk_base.h"

#include <stdio.h>
#include <string.h>

#define VK_ERRMSG_MAX 2048

static _Thread_local char errbuf[VK_ERRMSG_MAX];
static _Thread_local int errcode;

const char *vk_errmsg(void) { return errbuf; }
int vk_errcode(void) { return errcode; }

void vk_clear_error(void)
{
    errbuf[0] = '\0';
    errcode = VK_OK;
}

int vk_set_error(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errbuf, sizeof errbuf, fmt, ap);
    va_end(ap);
    errcode = code;
    return code;
}

int vk_fail_context(const char *fmt, ...)
{
    char prefix[512], old[VK_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, errbuf, sizeof old);
    size_t n = strlen(prefix);
    if (n > sizeof errbuf - 3)
        n = sizeof errbuf - 3;
    memcpy(errbuf, prefix, n);
    memcpy(errbuf + n, ": ", 2);
    size_t m = strlen(old);
    if (m > sizeof errbuf - n - 3)
        m = sizeof errbuf - n - 3;
    memcpy(errbuf + n + 2, old, m);
    errbuf[n + 2 + m] = '\0';
    return errcode ? errcode : VK_EINVAL;
}
