/* test_ev_poll.c - the event loop's polling before it sleeps (common/ev.c):
 * off unless bounded, catches a client that answers within the bound, costs
 * nothing for one that trickles, stays within its CPU budget, and gives way
 * to another task that wants the CPU.
 *
 * A "client" thread writes a byte to one end of a socketpair each time the
 * loop's handler (the "server") has read the last one and asked it to,
 * after a delay; the handler asks the loop to poll (as the NBD server does
 * once it has queued a reply) and may burn some CPU first, as a server
 * working on a request would. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/ev.h"
#include "common/util.h"
#include "unit.h"

struct pingpong {
	struct ev_loop *loop;
	struct ev_io w;
	int fds[2];
	unsigned rounds, done;
	uint64_t work_ns;  /* CPU the handler burns per round */
	uint64_t delay_ns; /* how long the client takes to send the next byte */
	bool busy_delay;   /* ... spent burning CPU, not sleeping */
	bool apart;	   /* the loop and the client on two different CPUs */
	atomic_uint asked; /* bytes the client was asked for */
	pthread_t client;
};

static void sleep_ns(uint64_t ns)
{
	struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u),
			      .tv_nsec = (long)(ns % 1000000000u)};
	nanosleep(&ts, NULL);
}

static void *client_main(void *arg)
{
	struct pingpong *pp = arg;
	for (unsigned sent = 0; sent < pp->rounds; sent++) {
		while (atomic_load(&pp->asked) <= sent)
			sleep_ns(100 * 1000);
		if (pp->busy_delay) {
			uint64_t end = ev_now_ns() + pp->delay_ns;
			while (ev_now_ns() < end)
				;
		} else {
			sleep_ns(pp->delay_ns);
		}
		char b = 'x';
		if (write(pp->fds[1], &b, 1) != 1)
			break;
	}
	return NULL;
}

static void on_byte(struct ev_io *w, uint32_t events)
{
	struct pingpong *pp = container_of(w, struct pingpong, w);
	(void)events;
	char b;
	if (read(w->fd, &b, 1) != 1)
		return;
	uint64_t end = ev_now_ns() + pp->work_ns;
	while (ev_now_ns() < end)
		;
	if (++pp->done == pp->rounds) {
		ev_loop_break(pp->loop);
		return;
	}
	ev_poll_soon(pp->loop);
	atomic_fetch_add(&pp->asked, 1);
}

/* Runs ROUNDS of the ping-pong with polling bounded by max_ns; returns the
 * loop's polling counters. */
static struct ev_poll_stats run_pp(struct pingpong pp, uint64_t max_ns)
{
	struct ev_poll_stats st = {0};
	pp.loop = ev_loop_new();
	CHECK(pp.loop != NULL);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, pp.fds) == 0);
	ev_set_poll_max(pp.loop, max_ns);
	pp.w.fn = on_byte;
	CHECK(ev_io_start(pp.loop, &pp.w, pp.fds[0], EPOLLIN) == 0);
	atomic_store(&pp.asked, 1); /* the first byte comes unasked */
	cpu_set_t all, loop_cpu, client_cpu;
	CHECK(sched_getaffinity(0, sizeof(all), &all) == 0);
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	if (pp.apart && CPU_COUNT(&all) >= 2) {
		int a = -1, b = -1;
		for (int i = 0; i < CPU_SETSIZE && b < 0; i++)
			if (CPU_ISSET(i, &all))
				*(a < 0 ? &a : &b) = i;
		CPU_ZERO(&loop_cpu);
		CPU_SET(a, &loop_cpu);
		CPU_ZERO(&client_cpu);
		CPU_SET(b, &client_cpu);
		CHECK(sched_setaffinity(0, sizeof(loop_cpu), &loop_cpu) == 0);
		pthread_attr_setaffinity_np(&attr, sizeof(client_cpu), &client_cpu);
	}
	CHECK(pthread_create(&pp.client, &attr, client_main, &pp) == 0);
	pthread_attr_destroy(&attr);
	CHECK(ev_run(pp.loop) == 0);
	pthread_join(pp.client, NULL);
	if (pp.apart)
		CHECK(sched_setaffinity(0, sizeof(all), &all) == 0);
	CHECK_EQ(pp.done, pp.rounds);
	ev_poll_get_stats(pp.loop, &st);
	ev_io_stop(pp.loop, &pp.w);
	close(pp.fds[0]);
	close(pp.fds[1]);
	ev_loop_free(pp.loop);
	return st;
}

static struct ev_poll_stats run(uint64_t max_ns, unsigned rounds, uint64_t work_ns,
				uint64_t delay_ns)
{
	struct pingpong pp = {
	    .rounds = rounds, .work_ns = work_ns, .delay_ns = delay_ns, .apart = true};
	return run_pp(pp, max_ns);
}

#define US 1000ull
#define MS (1000 * US)

TEST(off_by_default)
{
	struct ev_poll_stats st = run(0, 20, 0, 200 * US);
	CHECK_EQ(st.max_ns, 0);
	CHECK_EQ(st.polls, 0);
	CHECK_EQ(st.hits, 0);
	CHECK_EQ(st.ns, 0);
}

/* The client answers within ~1 ms; the bound is 50 ms and the handler works
 * 5 ms a round, so the budget allows 2.5 ms of polling a round: the window
 * grows from nothing until it covers the client's delay, and then polls
 * catch its bytes. (On a machine busy with other work a poll may find
 * itself descheduled instead, and give way: that counts as preempted.) */
TEST(catches_a_quick_client)
{
	struct ev_poll_stats st = run(50 * MS, 40, 5 * MS, 1 * MS);
	CHECK_EQ(st.max_ns, 50 * MS);
	CHECK(st.polls >= 1);
	CHECK(st.hits + st.preempted >= 1);
	CHECK(st.hits <= st.polls);
	/* within budget: half the work, plus one window's overshoot */
	CHECK(st.ns <= 40 * 5 * MS / 2 + 50 * MS);
	fprintf(stderr, "  quick client: %llu polls, %llu hits, %llu preempted, %llu us polling\n",
		(unsigned long long)st.polls, (unsigned long long)st.hits,
		(unsigned long long)st.preempted, (unsigned long long)(st.ns / US));
}

/* A client slower than the bound: every sleep is longer than polling could
 * cover, the window never opens, nothing is spent. */
TEST(trickle_costs_nothing)
{
	struct ev_poll_stats st = run(1 * MS, 15, 1 * MS, 20 * MS);
	CHECK_EQ(st.polls, 0);
	CHECK_EQ(st.ns, 0);
}

/* A handler that does next to no work earns next to no polling: without the
 * budget, 100 rounds against a client 1 ms away would poll ~100 ms. */
TEST(budget)
{
	struct ev_poll_stats st = run(50 * MS, 100, 0, 1 * MS);
	CHECK(st.ns < 30 * MS);
	fprintf(stderr, "  idle handler: %llu polls, %llu us polling\n",
		(unsigned long long)st.polls, (unsigned long long)(st.ns / US));
}

/* The client shares the loop's CPU and burns it while it prepares its next
 * byte: a poll then only keeps it from running, until the scheduler gives
 * it the CPU; the loop notices (it was descheduled), stops polling and does
 * not poll again for the holdoff (100 ms), so over ~0.3 s it polls a few
 * times at most and most rounds sleep. */
TEST(gives_way)
{
	cpu_set_t all, one;
	CHECK(sched_getaffinity(0, sizeof(all), &all) == 0);
	CPU_ZERO(&one);
	CPU_SET(sched_getcpu(), &one);
	CHECK(sched_setaffinity(0, sizeof(one), &one) == 0); /* and the client thread */
	struct pingpong pp = {
	    .rounds = 60, .work_ns = 2 * MS, .delay_ns = 2 * MS, .busy_delay = true};
	struct ev_poll_stats st = run_pp(pp, 50 * MS);
	CHECK(sched_setaffinity(0, sizeof(all), &all) == 0);
	CHECK(st.preempted >= 1);
	CHECK(st.polls <= 20); /* without giving way: nearly every round */
	fprintf(stderr, "  client on the same CPU: %llu polls, %llu preempted, %llu us polling\n",
		(unsigned long long)st.polls, (unsigned long long)st.preempted,
		(unsigned long long)(st.ns / US));
}

UNIT_MAIN(T(off_by_default), T(catches_a_quick_client), T(trickle_costs_nothing), T(budget),
	  T(gives_way))
