/* parity_check.c - for the alg_parity functional tests: recompute the
 * parity of every row from the node files of a parity storage and say
 * which rows disagree with the parity stored on the nodes.
 *
 *   parity_check [--rows N] [--extract OUT] K M CHUNK FILE...
 *
 * FILE... are the K+M nodes' backing files in the order they were added
 * (node 0 first); a node's data area is its file's first rows * CHUNK
 * bytes (the label is in its last 4 KiB, past the data area). N defaults
 * to what the smallest file holds: (size - 4096) / CHUNK rows.
 *
 * The placement is parity_geom.h's (role c of row r on node
 * (c + n - r % n) % n) and the code parity_code.h's, so a storage that
 * wrote its parity with another code or placement fails here. --extract
 * also writes the storage's bytes as the placement says (the data chunks
 * of each row in order) to OUT, for a comparison with what a client reads.
 *
 * Exit status: 0 every row consistent, 1 some rows differ (their count and
 * the first ones are printed), 2 bad arguments or an IO error. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alg/parity_code.h"
#include "alg/parity_geom.h"

#define LABEL_BYTES 4096u
#define SHOW_ROWS   10 /* differing rows printed one by one */

static const char usage[] = "usage: parity_check [--rows N] [--extract OUT] K M CHUNK FILE...\n";

static int die(const char *what, const char *path)
{
	fprintf(stderr, "parity_check: %s %s: %s\n", what, path, strerror(errno));
	return 2;
}

/* len bytes of fd at off, all of them (a short file is an error). */
static int read_full(int fd, uint8_t *buf, size_t len, uint64_t off)
{
	while (len) {
		ssize_t r = pread(fd, buf, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO;
			return -1;
		}
		buf += r;
		len -= (size_t)r;
		off += (uint64_t)r;
	}
	return 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long x = strtoull(s, &end, 10);
	if (errno || end == s || *end)
		return -1;
	*v = x;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"rows", required_argument, NULL, 'r'},
					     {"extract", required_argument, NULL, 'x'},
					     {NULL, 0, NULL, 0}};
	uint64_t rows = 0, k, m, chunk;
	const char *extract = NULL;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (parse_u64(optarg, &rows) < 0 || rows == 0) {
				fprintf(stderr,
					"parity_check: --rows %s: expected a positive number\n",
					optarg);
				return 2;
			}
			break;
		case 'x': extract = optarg; break;
		default: fputs(usage, stderr); return 2;
		}
	}
	if (argc - optind < 3 || parse_u64(argv[optind], &k) < 0 ||
	    parse_u64(argv[optind + 1], &m) < 0 || parse_u64(argv[optind + 2], &chunk) < 0) {
		fputs(usage, stderr);
		return 2;
	}
	char **files = argv + optind + 3;
	unsigned n = (unsigned)(argc - optind - 3);
	if (n != k + m) {
		fprintf(stderr, "parity_check: %u files for %" PRIu64 "+%" PRIu64 " nodes\n", n, k,
			m);
		return 2;
	}

	struct parity_code code;
	struct parity_geom g;
	char err[200];
	/* The geometry only checks the numbers here: rows come from the files. */
	if (parity_geom_init(&g, (unsigned)k, (unsigned)m, chunk, chunk, err, sizeof(err)) < 0 ||
	    parity_code_init(&code, (unsigned)k, (unsigned)m) < 0) {
		fprintf(stderr, "parity_check: %s\n", err);
		return 2;
	}

	int fds[PARITY_MAX_N];
	uint64_t min_rows = UINT64_MAX;
	for (unsigned x = 0; x < n; x++) {
		struct stat st;
		fds[x] = open(files[x], O_RDONLY);
		if (fds[x] < 0 || fstat(fds[x], &st) < 0)
			return die("open", files[x]);
		uint64_t size = (uint64_t)st.st_size;
		uint64_t r = size > LABEL_BYTES ? (size - LABEL_BYTES) / chunk : 0;
		if (r < min_rows)
			min_rows = r;
	}
	if (rows == 0)
		rows = min_rows;
	if (rows == 0) {
		fprintf(stderr, "parity_check: the files hold no whole row of %" PRIu64 " bytes\n",
			chunk);
		return 2;
	}

	int out = -1;
	if (extract) {
		out = open(extract, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (out < 0)
			return die("create", extract);
	}

	/* buf[role]: the row's chunks as stored; want[j]: parity j recomputed. */
	uint8_t *buf[PARITY_MAX_N], *want[PARITY_MAX_M];
	for (unsigned x = 0; x < n; x++)
		buf[x] = malloc(chunk);
	for (unsigned j = 0; j < m; j++)
		want[j] = malloc(chunk);

	uint64_t bad = 0;
	for (uint64_t r = 0; r < rows; r++) {
		for (unsigned role = 0; role < n; role++) {
			unsigned x = parity_node(&g, r, role);
			if (read_full(fds[x], buf[role], chunk, r * chunk) < 0)
				return die("read", files[x]);
		}
		parity_code_encode(&code, (const uint8_t *const *)buf, want, chunk);
		unsigned differ = 0; /* bit j: parity j differs */
		for (unsigned j = 0; j < m; j++)
			if (memcmp(want[j], buf[k + j], chunk))
				differ |= 1u << j;
		if (differ) {
			if (bad < SHOW_ROWS) {
				printf("row %" PRIu64 ":", r);
				for (unsigned j = 0; j < m; j++)
					if (differ & (1u << j))
						printf(" parity %u (node %u) differs;", j,
						       parity_node(&g, r, (unsigned)k + j));
				printf("\n");
			}
			bad++;
		}
		for (unsigned i = 0; out >= 0 && i < k; i++)
			if (write(out, buf[i], chunk) != (ssize_t)chunk)
				return die("write", extract);
	}
	if (out >= 0 && close(out) < 0)
		return die("close", extract);
	printf("parity_check: %" PRIu64 " rows of %" PRIu64 "+%" PRIu64 " x %" PRIu64
	       " bytes, %" PRIu64 " differ\n",
	       rows, k, m, chunk, bad);
	for (unsigned x = 0; x < n; x++) {
		free(buf[x]);
		close(fds[x]);
	}
	for (unsigned j = 0; j < m; j++)
		free(want[j]);
	return bad ? 1 : 0;
}
