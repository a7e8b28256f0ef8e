/* log.c - timestamped log lines: "2026-11-23T10:00:00.123 dstd[42] error: ...". */
#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *log_prog = "dst";
static FILE *log_out;
static enum log_level log_max = LOG_INFO;

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

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	static const char *names[] = {"error", "warning", "info", "debug"};
	if (lvl > log_max)
		return;
	FILE *out = log_out ? log_out : stderr;
	struct timeval tv;
	struct tm tm;
	char stamp[32];
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	char line[2048];
	int n = snprintf(line, sizeof(line), "%s.%03ld %s[%d] %s: ", stamp, (long)tv.tv_usec / 1000,
			 log_prog, (int)getpid(), names[lvl]);
	va_list ap;
	va_start(ap, fmt);
	if (n > 0 && (size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	va_end(ap);
	/* One fputs per line so concurrent writers to a shared log do not interleave. */
	size_t len = strlen(line);
	if (len + 1 < sizeof(line)) {
		line[len] = '\n';
		line[len + 1] = '\0';
	}
	fputs(line, out);
	fflush(out);
}
