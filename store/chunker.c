/*
 * chunker.c — content-defined chunking: FastCDC with a gear hash.
 *
 * Idea (Xia et al., "FastCDC", USENIX ATC 2016 / TPDS 2020): roll a gear
 * hash fp = (fp << 1) + gear[byte] over the data and cut where the masked
 * hash bits are all zero. Because each step shifts left, bit k of fp depends
 * only on the last k + 1 bytes, so testing the top bits of fp gives a
 * sliding window of about 64 bytes with no bytes to remove. Cut points
 * therefore depend only on nearby content: inserting bytes into a file moves
 * the cuts around the edit and leaves the later chunks, and their ids, as
 * they were.
 *
 * Cut-point skipping: no cut is searched in the first min_size bytes.
 * Normalised chunking, level 2: before avg_size the mask has log2(avg) + 2
 * bits (cuts are 4x rarer), after it log2(avg) - 2 bits (4x likelier).
 * This pulls chunk sizes towards avg_size and keeps few chunks at max_size.
 *
 * The gear table below pins the on-disk dedup: changing any entry changes
 * every chunk boundary and so every chunk id, and a repository would no
 * longer deduplicate against its own past. It was generated once with
 * splitmix64 seeded by 0x736e617064726166 ("snapdraf") and must never
 * change; tests/unit/test_chunker.c pins boundaries on known data.
 *
 * Speed: this loop touches every byte backed up. Per byte it is one table
 * load, a shift-add and the mask test; the two loops avoid testing which
 * mask applies on every byte.
 */
#include <stdint.h>

#include "store.h"

static const uint64_t chunker_gear[256] = {
	0x535d035f914a0f75ULL, 0x8c5c4e4964decb4eULL, 0x81084c8594d26ee8ULL,
	0x1b60ecaf2cb715d5ULL, 0x2d41bfca009de1a7ULL, 0xe00b19e2aff9e93cULL,
	0xf0d001106b55ecfdULL, 0x4cac33314a2d6ba4ULL, 0x875c5a4c002570cdULL,
	0x1f98f9bf40d9bcf6ULL, 0x132a7db16c4eae04ULL, 0xfe69e7d7f79d33b0ULL,
	0xb6260fc3a83c93c3ULL, 0xcab27065cf66f14dULL, 0x82df05472a42e7beULL,
	0x826b6147c2ddbd91ULL, 0x5da8a700423f1ee9ULL, 0x6cb87cefe9b24cffULL,
	0x17e8ce87066e8674ULL, 0x4bc00c6092e8bba0ULL, 0x8e2ae0faaf7a00eaULL,
	0x311a68b736ac8ceeULL, 0xafcf0b571fa975bfULL, 0xeb86edce5c1ff8a4ULL,
	0xc38bea39a98118e6ULL, 0x30492207ca728925ULL, 0xd8632b5165222acfULL,
	0xe7b7ab63df8583eaULL, 0x52395dd5def9a5adULL, 0x778a86f7192c1e65ULL,
	0xa5cb4ced28a4ad0eULL, 0x70355a86582b473fULL, 0xf28d393bd96c339eULL,
	0x4eeaa584928a24c6ULL, 0xd3c8cb12ffc02096ULL, 0x39dc9118db5aadbaULL,
	0xb9c417a5deb37d9fULL, 0x4265bca9c141eea0ULL, 0x6a7cb7b15b1ed34dULL,
	0xa2611307e20e31d4ULL, 0xef92b7686fa4a724ULL, 0x4bb5e35935d7a693ULL,
	0x9f2d162e71b53047ULL, 0x6e8f62a1a52f15caULL, 0xf76d5c219c7a5173ULL,
	0x0ffbdfa3f77d429aULL, 0x422acec150f64ce4ULL, 0xeb73e37131a78d33ULL,
	0x1e613808ed4e295fULL, 0x20aeb160674cc649ULL, 0xc04f28db43c2447aULL,
	0xcc748df79d900d7cULL, 0xea3d0044055b4190ULL, 0x45598ee15846e2cdULL,
	0x42fffc73c29828cdULL, 0xb465da07168d7760ULL, 0xc30624fddb463082ULL,
	0xe34b33d99997fe40ULL, 0x65ab178253d0141eULL, 0xd708c5b673066a07ULL,
	0x07a9d93fa95b4e98ULL, 0x116de42469c03316ULL, 0x23c8464d94d1649bULL,
	0xd7f7aec08d568c53ULL, 0x1eb4354d79e80759ULL, 0x871312e902f3b356ULL,
	0x4f3f08473f849353ULL, 0xea007a91c531a81bULL, 0xb100f3fc42fb3238ULL,
	0x31030474e88494a3ULL, 0xa9ddac4286f6b590ULL, 0x8bbc44dbd9b79f42ULL,
	0x9c00fee2af7b112aULL, 0xd034ff04ba4bc984ULL, 0xf8f2a1a7832f8d00ULL,
	0xafbeace0237db672ULL, 0xccc156870f84cc53ULL, 0x9490f57cf62fed3aULL,
	0xc45533ece5ba209dULL, 0xb3b7ff78471b4d46ULL, 0xd3d9c23fd9fb9b4aULL,
	0x3307ab0dffcd9ee2ULL, 0xd65f1e93d4b3e887ULL, 0x671e964d39b0e4c3ULL,
	0xe51d2267fc868048ULL, 0x1651a9fc00f72ff5ULL, 0x36d246eb64a7fa1fULL,
	0xcac279ae6f963a6bULL, 0x8129af6e7b6b64adULL, 0xf318cdb516e739edULL,
	0x3c8cc2d9fe5f9bf9ULL, 0xdac00858aec3d5f9ULL, 0xaa0a1c072dfa6bd1ULL,
	0x44192093de7a0a63ULL, 0xb75fa8b4bdd1e766ULL, 0xf746139f891c706dULL,
	0xc06d0c05bcbca61bULL, 0xc8ea1e5565ff8cd9ULL, 0xb7eadef24ce450f1ULL,
	0x2930558fac941d17ULL, 0x265137ff63f2dde2ULL, 0x50c2643f7b7d1e9eULL,
	0x1eeca73e1bb7a77bULL, 0x1cb6b158c5b6484eULL, 0xb742ab324f4bb146ULL,
	0x3c7c81ed60245e56ULL, 0x824b3a58a9a065cbULL, 0x0b9227b36d3beb22ULL,
	0x8f0a0ba5a605edc8ULL, 0xb1eda1338b060db1ULL, 0xc9535e6fcda071ddULL,
	0xa2b2ba789b0000b3ULL, 0xd90affd5dddfe6aeULL, 0x0702b8b21ed64007ULL,
	0x03f72bb888a9d7bcULL, 0xa8410101c95896bbULL, 0x2e1da8c545b215b5ULL,
	0xe21cdbebd91045aeULL, 0x0fce698f01b556daULL, 0x30c150c271ae1b93ULL,
	0xc17bb17ce0932378ULL, 0xefedef8dc7d7cf49ULL, 0x91d945f35a5646feULL,
	0xe827f8ee0266dcd1ULL, 0x9ec8c14aae625b13ULL, 0x06fc20dda348bcc4ULL,
	0x2afab48a20d1f259ULL, 0x2d713a573898e888ULL, 0xef047b14116850d0ULL,
	0x99d7a1bcf103cbdcULL, 0x823e4cda238e49e8ULL, 0x31aced53064dcc18ULL,
	0x30bdb75f7ab0604cULL, 0x06424c67a99c6c0cULL, 0x86647c34f4016261ULL,
	0xf40b624e2630c567ULL, 0x67c0e1026340f996ULL, 0xe3f68a107dba2b35ULL,
	0x411b3a0f7eee804cULL, 0xf037e8f9e9b0b266ULL, 0x177a91d8c2b52119ULL,
	0x7bcb14f358df45a4ULL, 0x7477807cb0d0d7feULL, 0x48e14b7f61a3cc82ULL,
	0xd8400b96cc9d1612ULL, 0xf32d1002d09bf3b1ULL, 0xcd805b53f20fefb5ULL,
	0x2cafbd865233df28ULL, 0xb5551ffdf5a1fa31ULL, 0x0072d422dd5327e5ULL,
	0x29a4a257c4b658f8ULL, 0x3c18fd2f9363a08aULL, 0x63d000eeff917551ULL,
	0xcb1640a17554798fULL, 0x7b999fe00106e4e7ULL, 0x964417e4db7d2832ULL,
	0x815fab9160d63b26ULL, 0x30315083ffcb3ce3ULL, 0x4d67e2ea9a9e9a9dULL,
	0x4298984344dba80fULL, 0xe663877d38d37992ULL, 0x9e33be49fcee9865ULL,
	0x300a6b105d6d69e4ULL, 0xb8723ae00c8eb59dULL, 0x1bb9a510ca124c41ULL,
	0xad8054d93a9d2018ULL, 0xdaf25d06fb58c700ULL, 0xf972f292b55257cdULL,
	0xe3b775e6dd972904ULL, 0x5d867780268a232bULL, 0x856ce7b7833db6c8ULL,
	0xe45bb4b41afc5eb2ULL, 0xf12eb0ada431936fULL, 0x3ca5bcd1c616db77ULL,
	0xe6315d9f92b7c47fULL, 0xff8fd24c7b261499ULL, 0x34dd8b9168c50458ULL,
	0xb5640c3d2e0248c1ULL, 0x19d8f64b3121ae98ULL, 0x8f5d9ba3dd5a8d3aULL,
	0x1b6a6d1462210d94ULL, 0x7a3e2a517bc19447ULL, 0xe675f413c7b1cca4ULL,
	0xe2e300ca03547571ULL, 0xaecc82bc0725e920ULL, 0xc5bb3d9cde52f594ULL,
	0x863dd0854dc56e6eULL, 0xc7c5a4d0211501edULL, 0xc1dfbd3645d75db2ULL,
	0x5c4a9e8c638c6217ULL, 0x9d83c2700c119697ULL, 0xb381c0115f3d7ef8ULL,
	0x77a5ca8d783acbb1ULL, 0x929d67e19345c460ULL, 0x5638421e283ce692ULL,
	0x15659dfca0b42ca6ULL, 0xb343840d7721a60aULL, 0x1291144ee03d9ac6ULL,
	0xe1369aa976cac364ULL, 0x6a4ad1d42e7fa5b2ULL, 0x47ef3025dd56c44dULL,
	0xa22d8ad49e8ae32eULL, 0xfa3203506ec1330dULL, 0xc7f04069c072b468ULL,
	0xd32b27a5b69e4f94ULL, 0x6ef71721c0813a99ULL, 0x3df5543bbe8867a9ULL,
	0x4e37551b1564d42fULL, 0x99af183eaa58486eULL, 0x534683c39c1db4caULL,
	0xbbc3e542d2f58976ULL, 0xe2c680b6b22d9024ULL, 0x5929caf309400e35ULL,
	0x73189ea8036795beULL, 0xa147188bdcda26c6ULL, 0xdc132298b9b1f54fULL,
	0xea8b2e371610fbd0ULL, 0xd19540c18c9292ebULL, 0x531e22d890895af6ULL,
	0xe14bb21eab3def7dULL, 0xd160efdeb692fd9cULL, 0x8614d963e5ae68deULL,
	0xe69cc3435aae581bULL, 0xea5b7e62d6896e08ULL, 0x0d710c9824d303f5ULL,
	0x4f6cad9652da3b49ULL, 0xb51cb26714b230bcULL, 0xf887f7c6a0c4f1c6ULL,
	0xae9482c1e8c6a3e6ULL, 0x5e8087b6c3182afaULL, 0x2fc9b43cd2a3d119ULL,
	0x51aeafc164dc6b8cULL, 0xdecc9a0b8810885cULL, 0x7863151c24cfc79aULL,
	0x29af64d3de3f9230ULL, 0x6114a22d26801f1dULL, 0xccfb1ada3328b5eeULL,
	0xc1cba35519c4d352ULL, 0x67970cb7f08e3251ULL, 0xa8e704f7c36ad15bULL,
	0x3762a73926d3a80fULL, 0xe09c498602fc74b4ULL, 0xe75973c5caff43e6ULL,
	0x6c8cf1179c439b1dULL, 0x3bf1b99882e402aeULL, 0xae125ed81c63ea34ULL,
	0xbdf2616c6bfdec1fULL, 0x399dc7d13e36e9daULL, 0xc1163241cb2f1b01ULL,
	0xe85eecf94a0a7a3cULL, 0xe01b05c68495efe9ULL, 0x7cc433bacb4bbf4dULL,
	0xc881d9b328796cb2ULL, 0xadc0bf7b6047ee28ULL, 0x6e6b4e109b782376ULL,
	0x4b10f91a0ee84f42ULL,
};

int store_chunker_params_check(const struct store_chunker_params *p)
{
	if (!p || p->min_size < 64)
		return SD_EUSAGE;
	if (p->avg_size == 0 || (p->avg_size & (p->avg_size - 1)) != 0)
		return SD_EUSAGE;
	if (p->min_size > p->avg_size || p->avg_size > p->max_size)
		return SD_EUSAGE;
	return 0;
}

/* The top n bits of a 64-bit word: the widest window of the gear hash. */
static inline uint64_t chunker_mask(unsigned n)
{
	return n == 0 ? 0 : ~UINT64_C(0) << (64 - n);
}

size_t store_chunk_cut(const struct store_chunker_params *p,
		       const uint8_t *buf, size_t len)
{
	size_t min = p->min_size, avg = p->avg_size;
	if (len > p->max_size)
		len = p->max_size;
	if (len <= min || avg == 0)
		return len;
	/* avg >= min >= 64 after params_check, so bits is in [6, 31]. */
	unsigned bits = (unsigned)__builtin_ctzll(avg);
	const uint64_t mask_s = chunker_mask(bits + 2);
	const uint64_t mask_l = chunker_mask(bits > 2 ? bits - 2 : 1);
	size_t normal = avg < len ? avg : len;
	uint64_t fp = 0;
	size_t i = min;

	for (; i < normal; i++) {
		fp = (fp << 1) + chunker_gear[buf[i]];
		if (!(fp & mask_s))
			return i + 1;
	}
	for (; i < len; i++) {
		fp = (fp << 1) + chunker_gear[buf[i]];
		if (!(fp & mask_l))
			return i + 1;
	}
	return len;
}
