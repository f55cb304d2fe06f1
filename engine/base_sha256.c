/* base_sha256.c: the SHA-256 of a file (OpenSSL's EVP), for the digests
 * of index files */
#include "vk_base.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int vk_sha256_fd(int fd, unsigned char digest[32], i64 *bytes)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return vk_fail(VK_ENOMEM, "cannot start a SHA-256 digest");
    }
    enum { CHUNK = 1 << 20 };
    unsigned char *buf = vk_malloc(CHUNK);
    int rc = buf ? VK_OK : VK_ENOMEM;
    i64 off = 0;
    while (rc == VK_OK) {
        ssize_t n = pread(fd, buf, CHUNK, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = vk_fail(VK_EIO, "cannot read the index file: %s", strerror(errno));
        else if (n == 0)
            break;
        else if (!EVP_DigestUpdate(ctx, buf, (size_t)n))
            rc = vk_fail(VK_ENOMEM, "SHA-256 digest failed");
        else
            off += n;
    }
    unsigned int len = 0;
    if (rc == VK_OK && (!EVP_DigestFinal_ex(ctx, digest, &len) || len != 32))
        rc = vk_fail(VK_ENOMEM, "SHA-256 digest failed");
    EVP_MD_CTX_free(ctx);
    free(buf);
    if (bytes)
        *bytes = off;
    return rc;
}

void vk_sha256_hex(const unsigned char d[32], char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[d[i] >> 4];
        hex[2 * i + 1] = digits[d[i] & 15];
    }
    hex[64] = 0;
}
