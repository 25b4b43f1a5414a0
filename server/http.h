/*
 * http.h — libmicrohttpd wiring: one event thread for every connection and a few workers
 * for the handlers, bodies collected with a size limit, the route table dispatched,
 * replies (JSON, raw, streamed) sent, API keys checked, deadlines kept, one access-log
 * line per request.
 */
#ifndef HYPERD_HTTP_H
#define HYPERD_HTTP_H

#include <stdint.h>

#include "api.h"

typedef struct http_server http_server;

typedef enum { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG } log_level;

/* What a connection may take (see http.c, "Deadlines"); a timeout of 0 is none. */
typedef struct {
    int max_connections;
    double header_timeout_s;    /* from a request's first byte to its last header line: then 408 */
    double body_min_rate;       /* bytes/s a body must average once header_timeout_s have passed */
    double idle_timeout_s;      /* a keep-alive connection with no request started: closed */
    int workers;                /* threads that run handlers (0: on the event thread) */
    size_t connection_memory;   /* bytes libmicrohttpd may hold per connection (0: 128 KiB);
                                 * URLs may be an eighth of it (at most 16 KiB), headers a quarter */
} http_limits;

/* Starts listening on host:port (port 0 = any free port; see http_port).  NULL with err
 * filled when the address cannot be bound. */
http_server *http_start(api_app *app, const char *host, uint16_t port, const http_limits *lim,
                        log_level level, char *err, size_t errlen);
uint16_t http_port(const http_server *s);
/* Stops accepting new connections (running ones go on). */
void http_quiesce(http_server *s);
/* Waits (up to 10 s) for running requests to complete, closes what is left, frees. */
void http_stop(http_server *s);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_set_level(log_level level);

#endif
