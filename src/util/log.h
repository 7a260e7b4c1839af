/*
 * Leveled logging to stderr. The level is checked before any formatting;
 * request-scoped lines carry the outcome id. Never log a key or a prompt.
 */
#ifndef TOLLGATE_LOG_H
#define TOLLGATE_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG };

extern int log_level;

/* Parses "error", "warn", "info", "debug"; returns -1 if unknown. */
int log_parse_level(const char *name);

void log_write(int level, const char *outcome_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG(lvl, oid, ...)                                                     \
    do {                                                                       \
        if ((lvl) <= log_level)                                                \
            log_write((lvl), (oid), __VA_ARGS__);                              \
    } while (0)

#define log_error(...) LOG(LOG_ERROR, NULL, __VA_ARGS__)
#define log_warn(...) LOG(LOG_WARN, NULL, __VA_ARGS__)
#define log_info(...) LOG(LOG_INFO, NULL, __VA_ARGS__)
#define log_debug(...) LOG(LOG_DEBUG, NULL, __VA_ARGS__)

#endif
