/* base_codec.c: vectors as one zstd frame of little-endian float32 values,
 * the same bytes the Python VekterDB stores; plus the exact metrics. */
#include "vk_base.h"

#include <math.h>
#include <string.h>
#include <zstd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "VekterDB stores little-endian float32; big-endian hosts are not supported yet"
#endif

static _Thread_local ZSTD_CCtx *cctx;
static _Thread_local ZSTD_DCtx *dctx;

size_t vk_codec_bound(int64_t d)
{
    return ZSTD_compressBound((size_t)d * sizeof(f32));
}

int vk_codec_check_level(int level)
{
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel())
        return vk_fail(VK_EINVAL, "compression level %d is outside zstd's range %d..%d", level,
                       ZSTD_minCLevel(), ZSTD_maxCLevel());
    return VK_OK;
}

size_t vk_encode(const float *v, int64_t d, int level, void *dst, size_t cap)
{
    if (d <= 0)
        return vk_fail(VK_EINVAL, "cannot encode a vector of dimension %lld", (long long)d), 0;
    if (vk_codec_check_level(level))
        return 0;
    if (!cctx && !(cctx = ZSTD_createCCtx()))
        return vk_fail(VK_ENOMEM, "out of memory creating a zstd context"), 0;
    size_t n = ZSTD_compressCCtx(cctx, dst, cap, v, (size_t)d * sizeof(f32), level);
    if (ZSTD_isError(n))
        return vk_fail(VK_ECODEC, "zstd compression failed: %s", ZSTD_getErrorName(n)), 0;
    return n;
}

int64_t vk_decoded_dim(const void *blob, size_t len)
{
    unsigned long long n = ZSTD_getFrameContentSize(blob, len);
    if (n == ZSTD_CONTENTSIZE_ERROR || n == ZSTD_CONTENTSIZE_UNKNOWN || n % sizeof(f32))
        return -1;
    if (n / sizeof(f32) > (unsigned long long)INT64_MAX)
        return -1;
    return (int64_t)(n / sizeof(f32));
}

int vk_decode(const void *blob, size_t len, float *out, int64_t d)
{
    if (!blob || len == 0)
        return vk_fail(VK_ECODEC, "corrupted vector: empty blob");
    if (!dctx && !(dctx = ZSTD_createDCtx()))
        return vk_fail(VK_ENOMEM, "out of memory creating a zstd context");
    size_t want = (size_t)d * sizeof(f32);
    unsigned long long n = ZSTD_getFrameContentSize(blob, len);
    if (n == ZSTD_CONTENTSIZE_ERROR)
        return vk_fail(VK_ECODEC, "corrupted vector: not a zstd frame");
    if (n != ZSTD_CONTENTSIZE_UNKNOWN && n != want)
        return vk_fail(VK_ECODEC, "corrupted vector: it holds %llu bytes, expected %zu (d=%lld)",
                       n, want, (long long)d);
    size_t got = ZSTD_decompressDCtx(dctx, out, want, blob, len);
    if (ZSTD_isError(got))
        return vk_fail(VK_ECODEC, "corrupted vector: %s", ZSTD_getErrorName(got));
    if (got != want)
        return vk_fail(VK_ECODEC, "corrupted vector: it holds %zu bytes, expected %zu (d=%lld)",
                       got, want, (long long)d);
    return VK_OK;
}

int64_t vk_first_nonfinite(const float *v, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return i;
    return -1;
}

float vk_metric_value(vk_metric m, const float *a, const float *b, int64_t d)
{
    double s = 0;
    if (m == VK_METRIC_IP) {
        for (int64_t i = 0; i < d; i++)
            s += (double)a[i] * b[i];
        return (float)s;
    }
    for (int64_t i = 0; i < d; i++) {
        double t = (double)a[i] - b[i];
        s += t * t;
    }
    return (float)sqrt(s);
}

int vk_metric_parse(const char *name, vk_metric *out)
{
    if (!strcmp(name, "inner_product") || !strcmp(name, "ip") || !strcmp(name, "INNER_PRODUCT")) {
        *out = VK_METRIC_IP;
        return VK_OK;
    }
    if (!strcmp(name, "l2") || !strcmp(name, "L2")) {
        *out = VK_METRIC_L2;
        return VK_OK;
    }
    return vk_fail(VK_EINVAL, "unknown metric '%s': use \"inner_product\" or \"l2\"", name);
}

const char *vk_metric_name(vk_metric m) { return m == VK_METRIC_L2 ? "l2" : "inner_product"; }
