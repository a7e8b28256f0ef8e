/* test_pipepool.c - the pipes payloads are spliced through: bytes in and
 * out unchanged, tee leaving its source whole (what a resend and a
 * mirror's legs rely on), copy_out not consuming, drop and put emptying a
 * pipe, sockets spliced both ways, and the pool's bound. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/pipepool.h"
#include "unit.h"

#define LEN (256u << 10)

static uint8_t *pattern(unsigned seed)
{
	uint8_t *p = malloc(LEN);
	srand(seed);
	for (size_t i = 0; i < LEN; i++)
		p[i] = (uint8_t)rand();
	return p;
}

TEST(buf_in_and_out)
{
	uint8_t *src = pattern(1), *dst = calloc(1, LEN);
	struct spipe *p = spipe_get();
	CHECK(p != NULL);
	CHECK_EQ(spipe_from_buf(p, src, LEN), LEN);
	CHECK_EQ(p->len, LEN);
	CHECK_EQ(spipe_to_buf(p, dst, LEN), 0);
	CHECK_EQ(p->len, 0);
	CHECK(memcmp(src, dst, LEN) == 0);
	spipe_put(p);
	free(src);
	free(dst);
}

TEST(tee_keeps_source)
{
	uint8_t *src = pattern(2), *a = calloc(1, LEN), *b = calloc(1, LEN);
	struct spipe *p = spipe_get(), *q = spipe_get();
	CHECK(p && q && p != q);
	CHECK_EQ(spipe_from_buf(p, src, LEN), LEN);
	/* Twice, as a resend after a lost connection does. */
	for (int round = 0; round < 2; round++) {
		CHECK_EQ(spipe_tee(p, q), 0);
		CHECK_EQ(q->len, LEN);
		CHECK_EQ(p->len, LEN);
		memset(a, 0, LEN);
		CHECK_EQ(spipe_to_buf(q, a, LEN), 0);
		CHECK(memcmp(src, a, LEN) == 0);
	}
	/* copy_out: the bytes, and the pipe still holds them. */
	CHECK_EQ(spipe_copy_out(p, b), 0);
	CHECK(memcmp(src, b, LEN) == 0);
	CHECK_EQ(p->len, LEN);
	/* A tee into a pipe that is not empty would repeat the head. */
	CHECK_EQ(spipe_from_buf(q, src, 100), 100);
	spipe_put(q); /* put drops what it holds */
	spipe_drop(p);
	CHECK_EQ(p->len, 0);
	spipe_put(p);
	free(src);
	free(a);
	free(b);
}

TEST(sockets_both_ways)
{
	int sv[2];
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	uint8_t *src = pattern(3), *dst = calloc(1, LEN);
	struct spipe *p = spipe_get();
	/* socket -> pipe */
	size_t put = 0, got = 0;
	while (got < LEN) {
		if (put < LEN) {
			ssize_t w = write(sv[0], src + put, LEN - put);
			if (w > 0)
				put += (size_t)w;
		}
		ssize_t r = spipe_from_fd(p, sv[1], LEN - got);
		if (r > 0)
			got += (size_t)r;
		else
			CHECK(r < 0 && errno == EAGAIN);
	}
	CHECK_EQ(p->len, LEN);
	/* Nothing more to move: EAGAIN, not a hang. */
	CHECK_EQ(spipe_from_fd(p, sv[1], 4096), -1);
	CHECK_EQ(errno, EAGAIN);
	/* pipe -> socket */
	size_t sent = 0;
	got = 0;
	while (got < LEN) {
		if (sent < LEN) {
			ssize_t w = spipe_to_fd(p, sv[0], LEN - sent, false);
			if (w > 0)
				sent += (size_t)w;
		}
		ssize_t r = read(sv[1], dst + got, LEN - got);
		if (r > 0)
			got += (size_t)r;
	}
	CHECK_EQ(p->len, 0);
	CHECK(memcmp(src, dst, LEN) == 0);
	/* EOF reads as 0. */
	close(sv[0]);
	CHECK_EQ(spipe_from_fd(p, sv[1], 4096), 0);
	close(sv[1]);
	spipe_put(p);
	free(src);
	free(dst);
}

TEST(bounded)
{
	struct spipe *held[SPIPE_MAX];
	unsigned made, in_use;
	spipe_counts(&made, &in_use);
	CHECK_EQ(in_use, 0);
	unsigned n = 0;
	while (n < SPIPE_MAX && (held[n] = spipe_get()))
		n++;
	/* Under a low RLIMIT_NOFILE or pipe-user-pages the pool stops early;
	 * it never goes past its bound. */
	CHECK(n >= 2);
	if (n == SPIPE_MAX)
		CHECK(spipe_get() == NULL);
	spipe_counts(&made, &in_use);
	CHECK_EQ(in_use, n);
	CHECK(made <= SPIPE_MAX);
	for (unsigned i = 0; i < n; i++)
		spipe_put(held[i]);
	spipe_counts(&made, &in_use);
	CHECK_EQ(in_use, 0);
	/* Given back, the same pipes serve again. */
	struct spipe *p = spipe_get();
	CHECK(p != NULL);
	spipe_counts(&made, &in_use);
	CHECK(made <= SPIPE_MAX);
	spipe_put(p);
}

UNIT_MAIN(T(buf_in_and_out), T(tee_keeps_source), T(sockets_both_ways), T(bounded))
