/* log.c - timestamped log lines: "2026-11-23T10:00:00.123 dstd[42] error: ...".
 * The same message repeated within a window is written once and then
 * counted (log_repeat.h), so a failure that repeats cannot fill the disk. */
#include <pthread.h>
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "log_repeat.h"

static const char *log_prog = "dst";
static FILE *log_out;
static enum log_level log_max = LOG_INFO;
/* Worker threads (mem:, fuse) may log too. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_repeat log_rep;

static const char *const level_names[] = {"error", "warning", "info", "debug"};

void log_init(const char *prog, FILE *out, enum log_level level)
{
	log_prog = prog;
	log_out = out;
	log_max = level;
}

void log_set_file(FILE *out)
{
	log_out = out;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One whole line, with its stamp. */
static void write_line(FILE *out, int lvl, const char *msg)
{
	struct timeval tv;
	struct tm tm;
	char stamp[32];
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	char line[2200];
	snprintf(line, sizeof(line), "%s.%03ld %s[%d] %s: %s\n", stamp, (long)tv.tv_usec / 1000,
		 log_prog, (int)getpid(), level_names[lvl], msg);
	size_t len = strlen(line);
	if (len && line[len - 1] != '\n')
		line[len - 1] = '\n'; /* cut short: still one line */
	/* One fputs per line so concurrent writers to a shared log do not interleave. */
	fputs(line, out);
	fflush(out);
}

static void say_repeated(FILE *out, int lvl, unsigned long n)
{
	char msg[64];
	snprintf(msg, sizeof(msg), "last message repeated %lu time%s", n, n == 1 ? "" : "s");
	write_line(out, lvl, msg);
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl > log_max)
		return;
	char msg[LOG_REPEAT_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	FILE *out = log_out ? log_out : stderr;
	unsigned long rep;
	int rep_lvl;
	if (log_repeat_check(&log_rep, (int)lvl, msg, mono_ns(), &rep, &rep_lvl)) {
		if (rep)
			say_repeated(out, rep_lvl, rep);
		write_line(out, (int)lvl, msg);
	}
	pthread_mutex_unlock(&log_lock);
}

void log_flush_repeats(void)
{
	pthread_mutex_lock(&log_lock);
	int lvl;
	unsigned long n = log_repeat_take(&log_rep, &lvl);
	if (n)
		say_repeated(log_out ? log_out : stderr, lvl, n);
	pthread_mutex_unlock(&log_lock);
}
