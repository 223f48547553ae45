/* image.c: a checkpoint file's bytes before HDF5 parses them, and after HDF5 built them in
 * memory: the signature and superblock version a checkpoint must start with, and the
 * superblock checksum HDF5 1.10 leaves stale in a file image. */
#include "engine/ckpt/format.h"

#include "engine/base/base.h"
#include "engine/base/file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define ROT(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

/* Bob Jenkins's lookup3 hashlittle (public domain) with seed 0, byte by byte: HDF5's metadata
 * checksum. */
static uint32_t lookup3(const uint8_t *k, size_t len) {
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)len;
    if (len == 0)
        return c;
    for (;;) {
        /* The last block, 1 to 12 bytes, is zero-padded: absent bytes add nothing. */
        uint8_t t[12] = {0};
        memcpy(t, k, len < 12 ? len : 12);
        a += t[0] + ((uint32_t)t[1] << 8) + ((uint32_t)t[2] << 16) + ((uint32_t)t[3] << 24);
        b += t[4] + ((uint32_t)t[5] << 8) + ((uint32_t)t[6] << 16) + ((uint32_t)t[7] << 24);
        c += t[8] + ((uint32_t)t[9] << 8) + ((uint32_t)t[10] << 16) + ((uint32_t)t[11] << 24);
        if (len <= 12)
            break;
        a -= c, a ^= ROT(c, 4), c += b;
        b -= a, b ^= ROT(a, 6), a += c;
        c -= b, c ^= ROT(b, 8), b += a;
        a -= c, a ^= ROT(c, 16), c += b;
        b -= a, b ^= ROT(a, 19), a += c;
        c -= b, c ^= ROT(b, 4), b += a;
        k += 12, len -= 12;
    }
    c ^= b, c -= ROT(b, 14);
    a ^= c, a -= ROT(c, 11);
    b ^= a, b -= ROT(a, 25);
    c ^= b, c -= ROT(b, 16);
    a ^= c, a -= ROT(c, 4);
    b ^= a, b -= ROT(a, 14);
    c ^= b, c -= ROT(b, 24);
    return c;
}

/* HDF5 1.10's H5Fget_file_image clears the superblock's status flags in the image but leaves
 * the checksum computed over them (HDF5 issue 1915, fixed upstream in 2025), so the image would
 * not open: recompute it, as the fix does. Superblocks 2 and 3 end in a checksum of what comes
 * before: 12 bytes, then four addresses of img[9] bytes each. Returns 0, or -1 for an image
 * that does not start with a superblock. */
int ckpt_fix_superblock(uint8_t *img, size_t len) {
    static const uint8_t sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    if (len < 12 || memcmp(img, sig, sizeof sig) != 0)
        return -1;
    if (img[8] < 2)
        return 0; /* versions 0 and 1 have no checksum */
    const size_t end = 12 + 4 * (size_t)img[9];
    if (end + 4 > len)
        return -1;
    const uint32_t sum = lookup3(img, end);
    for (int i = 0; i < 4; i++)
        img[end + (size_t)i] = (uint8_t)(sum >> (8 * i));
    return 0;
}

/* The file's first bytes, before HDF5 parses anything: the HDF5 signature at offset 0 (pstrain
 * writes no user block), then a superblock of version 2 or later, as the format bounds (1.8,
 * latest) of every checkpoint pstrain writes give. In those, HDF5 checks its metadata's
 * checksums before it uses them. Earlier versions carry none, and on damaged files of that
 * kind libhdf5 1.10 has read freed memory and asked for absurd allocations (tests/fuzz):
 * such files are refused here instead. Returns PST_OK, or PST_EIO / PST_EFORMAT with err. */
int ckpt_check_head(const char *path, char *err, size_t errlen) {
    unsigned char head[9];
    int rc;
    FILE *f = pst_fopen_regular(path, &rc, err, errlen);
    if (!f)
        return rc;
    const size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    return ckpt_check_head_bytes(head, got, path, err, errlen);
}

int ckpt_check_head_bytes(const void *bytes, size_t got, const char *path, char *err,
                          size_t errlen) {
    static const unsigned char sig[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    const unsigned char *head = bytes;
    if (got == 0)
        return pst_err(err, errlen, PST_EFORMAT, "%s: empty file (truncated?)", path);
    if (got < 9 || memcmp(head, sig, sizeof sig) != 0)
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: not an HDF5 file or truncated (no HDF5 signature at its start)", path);
    if (head[8] < 2)
        return pst_err(err, errlen, PST_EFORMAT,
                       "%s: HDF5 superblock version %d: not a pstrain checkpoint (pstrain writes "
                       "version 2 or later, whose metadata HDF5 checks)",
                       path, head[8]);
    return PST_OK;
}
