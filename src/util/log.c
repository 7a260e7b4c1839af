/*
 * One line per event: time, level, outcome id when there is one, message.
 */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int log_level = LOG_INFO;

static const char *level_names[] = {"error", "warn", "info", "debug"};

int log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

void log_write(int level, const char *outcome_id, const char *fmt, ...)
{
    char line[1024];
    char stamp[32];
    struct timespec ts;
    struct tm tm;
    size_t n;
    va_list ap;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    n = (size_t)snprintf(line, sizeof(line), "%s.%03ldZ %s %s%s", stamp,
                         ts.tv_nsec / 1000000, level_names[level],
                         outcome_id ? outcome_id : "", outcome_id ? " " : "");
    if (n < sizeof(line)) {
        va_start(ap, fmt);
        vsnprintf(line + n, sizeof(line) - n, fmt, ap);
        va_end(ap);
    }
    fprintf(stderr, "%s\n", line);
}
