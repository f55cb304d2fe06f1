/* base_util.c: allocation wrappers and a growable buffer */
#include "vk_base.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *vk_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        vk_fail(VK_ENOMEM, "out of memory (%zu bytes)", n);
    return p;
}

void *vk_calloc(size_t n, size_t m)
{
    void *p = calloc(n ? n : 1, m ? m : 1);
    if (!p)
        vk_fail(VK_ENOMEM, "out of memory (%zu x %zu bytes)", n, m);
    return p;
}

void *vk_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        vk_fail(VK_ENOMEM, "out of memory (%zu bytes)", n);
    return q;
}

char *vk_strndup(const char *s, size_t n)
{
    char *p = vk_malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *vk_strdup(const char *s)
{
    return s ? vk_strndup(s, strlen(s)) : NULL;
}

int vk_buf_reserve(vk_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return VK_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = vk_realloc(b->p, cap);
    if (!p)
        return VK_ENOMEM;
    b->p = p;
    b->cap = cap;
    return VK_OK;
}

int vk_buf_add(vk_buf *b, const void *data, size_t n)
{
    if (vk_buf_reserve(b, n))
        return VK_ENOMEM;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return VK_OK;
}

int vk_buf_adds(vk_buf *b, const char *s) { return vk_buf_add(b, s, strlen(s)); }

int vk_buf_printf(vk_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || vk_buf_reserve(b, (size_t)n))
        return VK_ENOMEM;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return VK_OK;
}

int vk_buf_quoted(vk_buf *b, const char *name, char q)
{
    if (vk_buf_add(b, &q, 1))
        return VK_ENOMEM;
    for (const char *c = name; *c; c++)
        if (vk_buf_add(b, c, 1) || (*c == q && vk_buf_add(b, &q, 1)))
            return VK_ENOMEM;
    return vk_buf_add(b, &q, 1);
}

int vk_buf_ident(vk_buf *b, const char *name) { return vk_buf_quoted(b, name, '"'); }

void vk_buf_free(vk_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
