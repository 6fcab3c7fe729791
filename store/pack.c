/*
 * pack.c — building and parsing self-describing pack files.
 *
 * A pack is "SDPACK01", the stored blobs back to back, a trailer of fixed
 * 50-byte entries and a 48-byte footer (see store.h). Reading the footer
 * from the end of a file gives the trailer's length and hash, the trailer
 * gives every blob; that is all `repair --rebuild-index` needs, so the
 * packs alone are the truth.
 *
 * Every field is encoded byte by byte in little endian; structs are never
 * copied to or from disk, so the format does not depend on the compiler's
 * padding or the host's byte order.
 *
 * The parser reads bytes that may be damaged or hostile. It checks before it
 * trusts: the footer magic, that the trailer length is exactly count * 50
 * and fits in the file, the trailer's SHA-256, and for each entry its type
 * and flags, that its lengths agree with its flags, and that its bytes lie
 * inside the blob area in ascending order without overlap (which is how the
 * builder writes them). All arithmetic on file values is done in 64 bits
 * after range checks, so no value can overflow an offset. Anything else is
 * SD_ECORRUPT.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

#define PACK_MAGIC "SDPACK01"
#define PACK_END_MAGIC "SDPKEND1"
#define PACK_MAGIC_LEN 8u
#define PACK_ENTRY_LEN 50u
/* Largest count whose trailer length still fits the footer's u32. */
#define PACK_MAX_ENTRIES (UINT32_MAX / PACK_ENTRY_LEN)

struct store_pack_builder {
	uint8_t *buf;		/* header, blobs, then (finished) trailer */
	size_t len, cap;
	struct store_pack_entry *entries;
	size_t n, ecap;
	bool finished;		/* trailer and footer appended */
	sd_id pack_id;		/* valid when finished */
};

static void pack_put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void pack_put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t pack_get_le32(const uint8_t *p)
{
	uint32_t v = 0;
	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t pack_get_le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The rules an entry obeys regardless of where it sits. */
static bool pack_entry_valid(uint8_t type, uint8_t flags, uint32_t stored_len,
			     uint32_t plain_len)
{
	if (type != STORE_BLOB_DATA && type != STORE_BLOB_TREE)
		return false;
	if (flags & ~STORE_BLOB_COMPRESSED)
		return false;
	/* A zstd frame is never empty and never decodes to nothing here:
	 * empty blobs are stored plain. */
	if (flags & STORE_BLOB_COMPRESSED)
		return stored_len > 0 && plain_len > 0;
	return stored_len == plain_len;
}

static void pack_entry_encode(const struct store_pack_entry *e, uint8_t *p)
{
	memcpy(p, e->id.b, SD_ID_LEN);
	p[32] = e->type;
	p[33] = e->flags;
	pack_put_le64(p + 34, e->offset);
	pack_put_le32(p + 42, e->stored_len);
	pack_put_le32(p + 46, e->plain_len);
}

static void pack_entry_decode(const uint8_t *p, struct store_pack_entry *e)
{
	memcpy(e->id.b, p, SD_ID_LEN);
	e->type = p[32];
	e->flags = p[33];
	e->offset = pack_get_le64(p + 34);
	e->stored_len = pack_get_le32(p + 42);
	e->plain_len = pack_get_le32(p + 46);
}

static int pack_buf_reserve(struct store_pack_builder *b, size_t extra)
{
	if (extra > SIZE_MAX - b->len)
		return -ENOMEM;
	size_t need = b->len + extra;
	if (need <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	uint8_t *buf = realloc(b->buf, cap);
	if (!buf)
		return -ENOMEM;
	b->buf = buf;
	b->cap = cap;
	return 0;
}

int store_pack_builder_new(struct store_pack_builder **out)
{
	struct store_pack_builder *b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	if (pack_buf_reserve(b, PACK_MAGIC_LEN) < 0) {
		free(b);
		return -ENOMEM;
	}
	store_pack_builder_reset(b);
	*out = b;
	return 0;
}

void store_pack_builder_free(struct store_pack_builder *b)
{
	if (!b)
		return;
	free(b->buf);
	free(b->entries);
	free(b);
}

void store_pack_builder_reset(struct store_pack_builder *b)
{
	memcpy(b->buf, PACK_MAGIC, PACK_MAGIC_LEN);
	b->len = PACK_MAGIC_LEN;
	b->n = 0;
	b->finished = false;
}

int store_pack_builder_add(struct store_pack_builder *b, const sd_id *id,
			   uint8_t type, uint8_t flags, const void *stored,
			   uint32_t stored_len, uint32_t plain_len)
{
	if (b->finished || !pack_entry_valid(type, flags, stored_len, plain_len))
		return -EINVAL;
	if (b->n >= PACK_MAX_ENTRIES)
		return -E2BIG;
	if (b->n == b->ecap) {
		size_t ecap = b->ecap ? b->ecap * 2 : 64;
		struct store_pack_entry *e =
			reallocarray(b->entries, ecap, sizeof(*e));
		if (!e)
			return -ENOMEM;
		b->entries = e;
		b->ecap = ecap;
	}
	int r = pack_buf_reserve(b, stored_len);
	if (r < 0)
		return r;
	struct store_pack_entry *e = &b->entries[b->n++];
	e->id = *id;
	e->type = type;
	e->flags = flags;
	e->offset = b->len;
	e->stored_len = stored_len;
	e->plain_len = plain_len;
	if (stored_len)
		memcpy(b->buf + b->len, stored, stored_len);
	b->len += stored_len;
	return 0;
}

/* The size the pack has once finished (or has, when it is). */
size_t store_pack_builder_size(const struct store_pack_builder *b)
{
	if (b->finished)
		return b->len;
	return b->len + b->n * PACK_ENTRY_LEN + STORE_PACK_FOOTER_LEN;
}

size_t store_pack_builder_count(const struct store_pack_builder *b)
{
	return b->n;
}

int store_pack_builder_finish(struct store_pack_builder *b,
			      const uint8_t **data, size_t *len,
			      sd_id *pack_id,
			      const struct store_pack_entry **entries,
			      size_t *n)
{
	if (!b->finished) {
		size_t tlen = b->n * PACK_ENTRY_LEN;
		int r = pack_buf_reserve(b, tlen + STORE_PACK_FOOTER_LEN);
		if (r < 0)
			return r;
		uint8_t *trailer = b->buf + b->len;
		for (size_t i = 0; i < b->n; i++)
			pack_entry_encode(&b->entries[i],
					  trailer + i * PACK_ENTRY_LEN);
		uint8_t *footer = trailer + tlen;
		sd_id th;
		sd_hash(trailer, tlen, &th);
		pack_put_le32(footer, (uint32_t)b->n);
		memcpy(footer + 4, th.b, SD_ID_LEN);
		pack_put_le32(footer + 36, (uint32_t)tlen);
		memcpy(footer + 40, PACK_END_MAGIC, 8);
		b->len += tlen + STORE_PACK_FOOTER_LEN;
		sd_hash(b->buf, b->len, &b->pack_id);
		b->finished = true;
	}
	if (data)
		*data = b->buf;
	if (len)
		*len = b->len;
	if (pack_id)
		*pack_id = b->pack_id;
	if (entries)
		*entries = b->entries;
	if (n)
		*n = b->n;
	return 0;
}

/* Decodes and checks every entry of a trailer whose hash already matched. */
static int pack_trailer_entries(const uint8_t *trailer, uint32_t count,
				uint64_t blob_end,
				struct store_pack_entry **entries, size_t *n)
{
	struct store_pack_entry *list = NULL;
	if (entries && count > 0) {
		list = calloc(count, sizeof(*list));
		if (!list)
			return -ENOMEM;
	}
	uint64_t prev_end = PACK_MAGIC_LEN;
	for (uint32_t i = 0; i < count; i++) {
		struct store_pack_entry e;
		pack_entry_decode(trailer + (size_t)i * PACK_ENTRY_LEN, &e);
		/* offset <= blob_end first, so offset + stored_len cannot
		 * wrap (stored_len < 2^32, blob_end < 2^63 after it). */
		if (!pack_entry_valid(e.type, e.flags, e.stored_len,
				      e.plain_len) ||
		    e.offset < prev_end || e.offset > blob_end ||
		    e.stored_len > blob_end - e.offset) {
			free(list);
			return SD_ECORRUPT;
		}
		prev_end = e.offset + e.stored_len;
		if (list)
			list[i] = e;
	}
	if (entries)
		*entries = list;
	if (n)
		*n = count;
	return 0;
}

int store_pack_trailer_parse(const uint8_t *tail, size_t len,
			     uint64_t pack_size, uint32_t *trailer_len,
			     struct store_pack_entry **entries, size_t *n)
{
	if (entries)
		*entries = NULL;
	if (n)
		*n = 0;
	if (!tail || len < STORE_PACK_FOOTER_LEN || len > pack_size)
		return -EINVAL;
	if (pack_size > INT64_MAX ||
	    pack_size < PACK_MAGIC_LEN + STORE_PACK_FOOTER_LEN)
		return SD_ECORRUPT;
	const uint8_t *footer = tail + len - STORE_PACK_FOOTER_LEN;
	if (memcmp(footer + 40, PACK_END_MAGIC, 8) != 0)
		return SD_ECORRUPT;
	uint32_t count = pack_get_le32(footer);
	uint32_t tlen = pack_get_le32(footer + 36);
	if ((uint64_t)count * PACK_ENTRY_LEN != tlen)
		return SD_ECORRUPT;
	if ((uint64_t)tlen > pack_size - PACK_MAGIC_LEN - STORE_PACK_FOOTER_LEN)
		return SD_ECORRUPT;
	if (trailer_len)
		*trailer_len = tlen;
	/* Only the footer was given: the caller learns tlen and comes back. */
	if (len - STORE_PACK_FOOTER_LEN < tlen)
		return 0;

	const uint8_t *trailer = footer - tlen;
	sd_id th;
	sd_hash(trailer, tlen, &th);
	if (memcmp(th.b, footer + 4, SD_ID_LEN) != 0)
		return SD_ECORRUPT;
	uint64_t blob_end = pack_size - STORE_PACK_FOOTER_LEN - tlen;
	return pack_trailer_entries(trailer, count, blob_end, entries, n);
}
