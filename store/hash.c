/*
 * hash.c — blob ids: SHA-256 through OpenSSL EVP, hex conversion.
 *
 * Every byte a backup reads is hashed, so the digest comes from OpenSSL,
 * which uses the CPU's SHA extensions. The EVP_MD is fetched from the
 * default provider once per process (pthread_once) instead of on every
 * EVP_DigestInit, which in OpenSSL 3 would otherwise go through the
 * provider lookup each time.
 *
 * The id functions return void by contract: a digest cannot be replaced
 * by an error value without risking a wrong dedup match, and with a
 * pre-fetched SHA-256 the only way OpenSSL can fail is an allocation of a
 * few hundred bytes. That case is logged and aborts the process rather
 * than hand out a wrong id that would silently corrupt the repository.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "store.h"

struct sd_hasher {
	EVP_MD_CTX *ctx;
};

static pthread_once_t hash_md_once = PTHREAD_ONCE_INIT;
static const EVP_MD *hash_md;

static void hash_md_fetch(void)
{
	/* Kept for the life of the process; never freed on purpose. */
	EVP_MD *md = EVP_MD_fetch(NULL, "SHA256", NULL);
	hash_md = md ? md : EVP_sha256();
}

static const EVP_MD *hash_md_get(void)
{
	pthread_once(&hash_md_once, hash_md_fetch);
	return hash_md;
}

static _Noreturn void hash_fail(const char *what)
{
	sd_log(SD_LOG_ERR, "SHA-256 failed in %s (OpenSSL); aborting", what);
	abort();
}

void sd_hash(const void *data, size_t len, sd_id *out)
{
	unsigned int n = 0;
	if (!EVP_Digest(data, len, out->b, &n, hash_md_get(), NULL) ||
	    n != SD_ID_LEN)
		hash_fail("EVP_Digest");
}

int sd_hasher_new(struct sd_hasher **out)
{
	struct sd_hasher *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex2(h->ctx, hash_md_get(), NULL)) {
		sd_hasher_free(h);
		return -ENOMEM;
	}
	*out = h;
	return 0;
}

void sd_hasher_update(struct sd_hasher *h, const void *data, size_t len)
{
	if (!EVP_DigestUpdate(h->ctx, data, len))
		hash_fail("EVP_DigestUpdate");
}

void sd_hasher_final(struct sd_hasher *h, sd_id *out)
{
	unsigned int n = 0;
	if (!EVP_DigestFinal_ex(h->ctx, out->b, &n) || n != SD_ID_LEN)
		hash_fail("EVP_DigestFinal_ex");
	/* Re-initialising with the same digest reuses the provider context,
	 * so this does not allocate. */
	if (!EVP_DigestInit_ex2(h->ctx, hash_md_get(), NULL))
		hash_fail("EVP_DigestInit_ex2");
}

void sd_hasher_free(struct sd_hasher *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

void sd_id_hex(const sd_id *id, char out[SD_ID_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < SD_ID_LEN; i++) {
		out[2 * i] = digits[id->b[i] >> 4];
		out[2 * i + 1] = digits[id->b[i] & 0xf];
	}
	out[SD_ID_HEX_LEN] = '\0';
}

static int hash_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int sd_id_parse(const char *hex, sd_id *out)
{
	if (!hex)
		return SD_EUSAGE;
	sd_id id;
	/* Stops at the first non-digit, so a short string's NUL is never
	 * read past. */
	for (size_t i = 0; i < SD_ID_LEN; i++) {
		int hi = hash_hex_digit(hex[2 * i]);
		if (hi < 0)
			return SD_EUSAGE;
		int lo = hash_hex_digit(hex[2 * i + 1]);
		if (lo < 0)
			return SD_EUSAGE;
		id.b[i] = (uint8_t)(hi << 4 | lo);
	}
	if (hex[SD_ID_HEX_LEN] != '\0')
		return SD_EUSAGE;
	*out = id;
	return 0;
}

int sd_id_cmp(const sd_id *a, const sd_id *b)
{
	int c = memcmp(a->b, b->b, SD_ID_LEN);
	return (c > 0) - (c < 0);
}

bool sd_id_is_zero(const sd_id *id)
{
	uint8_t acc = 0;
	for (size_t i = 0; i < SD_ID_LEN; i++)
		acc |= id->b[i];
	return acc == 0;
}
