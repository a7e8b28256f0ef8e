/* test_parity_geom.c - alg_parity's stripe geometry (parity_geom.c): the
 * limits and their messages, the rotating placement (one chunk per node
 * per row, parity in m of every n rows), and the map from storage offsets
 * to nodes against the inverse, for several chunk sizes. */
#include <stdlib.h>

#include "alg/parity_geom.h"
#include "unit.h"

static void bad(unsigned k, unsigned m, uint64_t chunk, uint64_t node_bytes, const char *msg)
{
	struct parity_geom g;
	char err[200] = "";
	CHECK_EQ(parity_geom_init(&g, k, m, chunk, node_bytes, err, sizeof(err)), -1);
	CHECK_STR(err, msg);
}

TEST(init_limits)
{
	bad(1, 1, 65536, 1 << 20,
	    "alg_parity: --data 1: a stripe needs at least 2 data chunks (for one, use "
	    "alg_mirror)");
	bad(0, 2, 65536, 1 << 20,
	    "alg_parity: --data 0: a stripe needs at least 2 data chunks (for one, use "
	    "alg_mirror)");
	bad(4, 0, 65536, 1 << 20, "alg_parity: --parity 0: expected 1, 2 or 3 parity chunks");
	bad(4, 4, 65536, 1 << 20, "alg_parity: --parity 4: expected 1, 2 or 3 parity chunks");
	bad(14, 3, 65536, 1 << 20,
	    "alg_parity: --data 14 --parity 3: 17 nodes per stripe, at most 16");
	bad(16, 1, 65536, 1 << 20,
	    "alg_parity: --data 16 --parity 1: 17 nodes per stripe, at most 16");
	bad(4, 2, 12288, 1 << 20, "alg_parity: chunk 12288: expected a power of two from 4K to 1G");
	bad(4, 2, 2048, 1 << 20, "alg_parity: chunk 2048: expected a power of two from 4K to 1G");
	bad(4, 2, 0, 1 << 20, "alg_parity: chunk 0: expected a power of two from 4K to 1G");
	bad(4, 2, 2ull << 30, 1ull << 40,
	    "alg_parity: chunk 2147483648: expected a power of two from 4K to 1G");
	bad(4, 2, 65536, 65535,
	    "alg_parity: nodes of 65535 bytes are smaller than one chunk (65536 bytes)");
	bad(4, 2, 65536, 0,
	    "alg_parity: nodes of 0 bytes are smaller than one chunk (65536 bytes)");

	struct parity_geom g;
	char err[200];
	CHECK_EQ(parity_geom_init(&g, 2, 1, 4096, 4096, err, sizeof(err)), 0);
	CHECK_EQ(g.rows, 1);
	CHECK_EQ(g.size, 8192);
	CHECK_EQ(parity_geom_init(&g, 13, 3, 1u << 30, 1ull << 31, err, sizeof(err)), 0);
	CHECK_EQ(parity_geom_init(&g, 15, 1, 4096, 4096, err, sizeof(err)), 0);
	/* The tail short of a chunk is not used. */
	CHECK_EQ(parity_geom_init(&g, 4, 2, 65536, 10 * 65536 + 4095, err, sizeof(err)), 0);
	CHECK_EQ(g.k, 4);
	CHECK_EQ(g.m, 2);
	CHECK_EQ(g.n, 6);
	CHECK_EQ(g.chunk, 65536);
	CHECK_EQ(g.rows, 10);
	CHECK_EQ(g.row_bytes, 4 * 65536);
	CHECK_EQ(g.size, 10ull * 4 * 65536);
}

static const uint64_t chunks[] = {4096, 65536, 1u << 20};

/* Each row puts one chunk on every node, role and node are inverse, row 0
 * is data on the first k nodes, and each node holds parity in m of every
 * n consecutive rows, whichever row the window starts at. */
TEST(placement)
{
	for (unsigned k = PARITY_MIN_K; k < PARITY_MAX_N; k++) {
		for (unsigned m = 1; m <= PARITY_MAX_M && k + m <= PARITY_MAX_N; m++) {
			struct parity_geom g;
			char err[200];
			unsigned n = k + m;
			CHECK_EQ(
			    parity_geom_init(&g, k, m, 4096, 4096ull * 4 * n, err, sizeof(err)), 0);
			CHECK_EQ(g.rows, 4 * n);
			for (unsigned c = 0; c < n; c++)
				CHECK_EQ(parity_node(&g, 0, c), c);
			unsigned parity_rows[PARITY_MAX_N][4 * PARITY_MAX_N + 1] = {{0}};
			for (uint64_t r = 0; r < g.rows; r++) {
				uint32_t seen = 0;
				for (unsigned c = 0; c < n; c++) {
					unsigned x = parity_node(&g, r, c);
					CHECK(x < n);
					seen |= 1u << x;
					CHECK_EQ(parity_role(&g, r, x), c);
					/* Left rotation: one node further left each row. */
					CHECK_EQ(x, (c + 3 * n - r % n) % n);
				}
				CHECK_EQ(seen, (1u << n) - 1);
				for (unsigned x = 0; x < n; x++)
					parity_rows[x][r + 1] =
					    parity_rows[x][r] + (parity_role(&g, r, x) >= k);
				/* Masks both ways. */
				uint32_t nodes = (uint32_t)(r * 2654435761u) & ((1u << n) - 1);
				CHECK_EQ(parity_nodes_of(&g, r, parity_roles_of(&g, r, nodes)),
					 nodes);
				uint32_t roles = 0;
				for (unsigned x = 0; x < n; x++)
					if (nodes & (1u << x))
						roles |= 1u << parity_role(&g, r, x);
				CHECK_EQ(parity_roles_of(&g, r, nodes), roles);
			}
			for (unsigned x = 0; x < n; x++)
				for (uint64_t r = 0; r + n <= g.rows; r++)
					CHECK_EQ(parity_rows[x][r + n] - parity_rows[x][r], m);
		}
	}
}

/* The map of an offset, recomputed from the definition, and back from
 * (node, node offset) through the node's role in its row. */
static void check_map(const struct parity_geom *g, uint64_t off, uint64_t len)
{
	struct parity_loc l;
	parity_map(g, off, len, &l);
	uint64_t row = off / (g->k * g->chunk), i = off % (g->k * g->chunk) / g->chunk;
	CHECK_EQ(l.row, row);
	CHECK_EQ(l.data, i);
	CHECK_EQ(l.node, (i + g->n - row % g->n) % g->n);
	CHECK_EQ(l.in, off % g->chunk);
	CHECK_EQ(l.node_off, row * g->chunk + off % g->chunk);
	uint64_t left = g->chunk - off % g->chunk;
	CHECK_EQ(l.len, len < left ? len : left);
	/* Inverse. */
	uint64_t r = l.node_off / g->chunk;
	unsigned role = parity_role(g, r, l.node);
	CHECK(role < g->k);
	CHECK_EQ(r * g->k * g->chunk + role * g->chunk + l.node_off % g->chunk, off);
}

TEST(map)
{
	srand(9);
	static const unsigned geo[][2] = {{2, 1}, {3, 1}, {4, 2}, {5, 3}, {7, 2}, {13, 3}, {15, 1}};
	for (size_t t = 0; t < sizeof(geo) / sizeof(geo[0]); t++) {
		for (size_t s = 0; s < sizeof(chunks) / sizeof(chunks[0]); s++) {
			struct parity_geom g;
			char err[200];
			unsigned n = geo[t][0] + geo[t][1];
			uint64_t chunk = chunks[s];
			/* Three full rotations. */
			CHECK_EQ(parity_geom_init(&g, geo[t][0], geo[t][1], chunk, 3 * n * chunk,
						  err, sizeof(err)),
				 0);
			CHECK_EQ(g.size, 3 * n * g.k * chunk);
			/* Every data slot of every node reached by exactly one chunk
			 * of the storage: each chunk's first, second and last byte. */
			uint8_t used[PARITY_MAX_N][3 * PARITY_MAX_N] = {{0}};
			for (uint64_t ch = 0; ch < g.size / chunk; ch++) {
				uint64_t off = ch * chunk;
				check_map(&g, off, 3 * chunk);
				check_map(&g, off + 1, 1);
				check_map(&g, off + chunk - 1, 2);
				struct parity_loc l;
				parity_map(&g, off, chunk, &l);
				used[l.node][l.row]++;
			}
			unsigned data_slots = 0;
			for (unsigned x = 0; x < n; x++) {
				for (uint64_t r = 0; r < g.rows; r++) {
					CHECK(used[x][r] <= 1);
					CHECK_EQ(used[x][r], parity_role(&g, r, x) < g.k);
					data_slots += used[x][r];
				}
			}
			CHECK_EQ(data_slots, g.rows * g.k);
			for (int i = 0; i < 1000; i++) {
				uint64_t off = ((uint64_t)rand() << 20 ^ (uint64_t)rand()) % g.size;
				check_map(&g, off, 1 + (uint64_t)rand() % (2 * chunk));
			}
		}
	}
}

UNIT_MAIN(T(init_limits), T(placement), T(map))
