/* log.h - leveled logging to stderr or a log file, with timestamps; the same
 * line repeated within a few seconds is counted, not written (log_repeat.h). */
#ifndef DST_LOG_H
#define DST_LOG_H

#include <stdio.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_init(const char *prog, FILE *out, enum log_level level);
void log_set_file(FILE *out);
void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Say now how often the last message was repeated, if it was (before the
 * log file is closed or reopened). */
void log_flush_repeats(void);

#define log_err(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
