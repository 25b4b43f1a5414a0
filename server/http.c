/*
 * http.c — the HTTP side of hyperd over libmicrohttpd, event-driven: one thread polls
 * every connection (epoll), and no thread is a connection's.
 *
 * Threads.  The event thread reads requests, answers the quick routes (health, ready,
 * metrics) and the refusals that need no handler, and writes replies.  Every other
 * handler runs on one of `workers` threads: the connection is suspended, the handler runs
 * (it may wait for a model or the disk), and the connection is resumed to send what it
 * made.  A streamed reply's next() never waits: when it has nothing, the connection is
 * suspended until the stream's notify says there is more (a model's scheduler, for text
 * and pen points) or the watchdog's next tick (every quarter second: heartbeats, and
 * streams without notify).  A silent client costs a socket and a few kilobytes, not a
 * thread.  Dataset uploads still write their pieces to disk on the event thread as they
 * arrive (the commit — sync, checks, rename — runs on a worker).
 *
 * Deadlines.  libmicrohttpd's own timeout is one of inactivity: a client that sends a byte
 * now and then, or opens connections and sends nothing, would hold a thread each forever.
 * A watchdog thread follows every connection through its phases and enforces:
 *   idle      no request started (just accepted, or between keep-alive requests): closed
 *             quietly after idle_timeout_s.  The first byte of a request is seen in the
 *             socket's received-byte count (TCP_INFO), within one tick.
 *   headers   from that first byte to the last header line: header_timeout_s, then 408.
 *   body      from the headers to the last body byte: once header_timeout_s have passed,
 *             the bytes so far must keep up body_min_rate on average, else 408.
 *   busy      the handler runs or the reply is sent: no deadline here (a stream may run for
 *             long; a client that stops reading it is left to libmicrohttpd's timeout).
 * A 408 is written by the watchdog itself — the connection's thread is blocked reading, and
 * nothing else writes to the socket in those phases — as hyperd's JSON error with
 * "Connection: close"; the write side is shut (FIN after the reply), and a moment later
 * the read side, which wakes the connection's thread to close it.  The watchdog touches a
 * socket only under the watch lock, and a connection leaves the watch list (its CLOSED
 * notice, which libmicrohttpd gives before it closes the socket) under the same lock, so
 * a descriptor number is never acted on after it was closed and reused.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <linux/tcp.h> /* struct tcp_info with tcpi_bytes_received */
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* What libmicrohttpd may hold of one connection (http_limits.connection_memory, 128 KiB
 * by default) gives hyperd's limits on a request's head: the URL an eighth of it, all
 * header lines a quarter, so that a request at both limits fits and hyperd, not
 * libmicrohttpd's HTML pages, answers what exceeds them (414, 431).  A connection costs
 * that memory once it has made a request: libmicrohttpd 0.9.75 clears its whole pool
 * between keep-alive requests. */
#define URL_MAX (16 * 1024)             /* the longest URL ever read (the buffer) */
#define CONNECTION_MEMORY_DEFAULT (128 * 1024)

#define STOP_WAIT_SECONDS 10
#define WATCH_TICK_MS 250               /* how often the watchdog looks at every connection */
#define STREAM_TICK_MS 250              /* a suspended stream is looked at again this soon */
#define LINGER_MS 1000                  /* from a 408's FIN to the shut read side */

typedef enum { W_IDLE, W_HEADERS, W_BODY, W_BUSY, W_ENDING } watch_phase;

/* One connection as the watchdog sees it (all fields under http_server.wmu). */
struct stream_box;

typedef struct conn_watch {
    struct conn_watch *prev, *next;
    struct stream_box *box;     /* the streamed reply being sent, or NULL */
    struct conn_ctx *pending;   /* a reply waiting for the scheduler (api_later), or NULL */
    int pending_cancelled;
    int fd;
    watch_phase phase;
    struct timespec since;      /* when the phase began */
    uint64_t baseline;          /* bytes received when it became idle */
    uint64_t body_bytes;        /* of the body so far */
    int timed_out;              /* a 408 was sent: the request must not be served */
} conn_watch;

struct http_server {
    struct MHD_Daemon *d;
    api_app *app;
    uint16_t port;
    http_limits lim;
    pthread_mutex_t mu;
    pthread_cond_t idle;
    int inflight;               /* requests begun and not yet completed */
    pthread_mutex_t wmu;        /* the watch list and every conn_watch */
    pthread_cond_t wcv;
    conn_watch *watched;
    int watch_stop;
    int watch_running;
    pthread_t watchdog;
    size_t nwatched;            /* connections in the list */
    struct stream_box **wake;   /* the watchdog's: streams to resume after a tick */
    size_t nwake, wake_cap;
    /* the workers that run handlers */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    struct conn_ctx *qhead, *qtail;
    int qstop;
    pthread_t *workers;
    int nworkers;
    int nworkers_left;          /* workers still running (under qmu) */
    atomic_int closing;         /* http_stop has begun: nothing is suspended any more */
    size_t url_max, headers_max; /* of a request's head, from the connection memory */
};

/* ---- log ------------------------------------------------------------------------- */

static log_level current_level = LOG_INFO;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;

void log_set_level(log_level level) { current_level = level; }

void log_msg(log_level level, const char *fmt, ...)
{
    if (level > current_level)
        return;
    static const char *const names[] = {"error", "warn", "info", "debug"};
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &tm);
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&log_mu);
    fprintf(stderr, "%s %s ", stamp, names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_mu);
    va_end(ap);
}

/* A streamed body outlives its conn_ctx: MHD reports the request complete (and we free
 * the conn_ctx) before it destroys the response, whose free callback releases the stream. */
typedef struct stream_box {
    api_stream stream;
    uint64_t *bytes;            /* the conn_ctx's counter; used only while the reader runs */
    http_server *srv;
    struct MHD_Connection *conn;
    conn_watch *watch;          /* the connection's (box registered in it), or NULL */
    atomic_int suspended;       /* 1 from the suspension to the one resume that ends it */
    _Atomic double since_ms;    /* when it was suspended (monotonic) */
    atomic_int refs;            /* the response's, and the watchdog's while it wakes it */
} stream_box;

static void box_unref(stream_box *box)
{
    if (atomic_fetch_sub(&box->refs, 1) == 1)
        free(box);
}

static void stream_wake(void *arg);

/* The stream's wake-up holds a reference of its own: it may come after the response is
 * gone (the scheduler gives it on its thread, possibly late). */
static void stream_wake_ref(void *arg)
{
    stream_wake(arg);
    box_unref(arg);
}

static void stream_wake_drop(void *arg) { box_unref(arg); }

static double mono_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* Ends a stream's suspension (from any thread): the one that flips `suspended` resumes. */
static void stream_wake(void *arg)
{
    stream_box *box = arg;
    if (atomic_exchange(&box->suspended, 0))
        MHD_resume_connection(box->conn);
}

/* ---- deadlines ---------------------------------------------------------------------- */

static uint64_t bytes_received(int fd)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    memset(&ti, 0, sizeof ti);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received)
        return 0;
    return ti.tcpi_bytes_received;
}

static double since_ms(const struct timespec *t0, const struct timespec *now)
{
    return (double)(now->tv_sec - t0->tv_sec) * 1e3 + (double)(now->tv_nsec - t0->tv_nsec) * 1e-6;
}

/* Moves w to phase p, now (wmu held). */
static void watch_enter(conn_watch *w, watch_phase p)
{
    w->phase = p;
    clock_gettime(CLOCK_MONOTONIC, &w->since);
}

/* Writes hyperd's JSON 408 on the socket and ends the connection (wmu held). */
static void send_timeout(http_server *s, conn_watch *w, const char *why)
{
    api_reply rep = {0};
    api_error(&rep, 408, "%s", why);
    char *body = json_text(rep.json, JSON_COMPACT);
    json_decref(rep.json);
    char head[256];
    const size_t blen = body ? strlen(body) : 0;
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n", blen + 1);
    struct iovec iov[3] = {{head, (size_t)hl}, {body ? body : "", blen}, {"\n", 1}};
    struct msghdr mh = {.msg_iov = iov, .msg_iovlen = 3};
    (void)sendmsg(w->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL); /* a client that cannot take 300 bytes gets none */
    free(body);
    shutdown(w->fd, SHUT_WR);
    w->timed_out = 1;
    watch_enter(w, W_ENDING);
    api_metrics_request(s->app->metrics, "unmatched", 408);
    log_msg(LOG_INFO, "connection %d: 408: %s", w->fd, why);
}

static void pending_cancel(struct conn_ctx *cc);

/* Whether the peer of fd is gone: a reset, not a half-close (see peer_gone). */
static int fd_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = 0};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)))
        return 1;
    int e = 0;
    socklen_t el = sizeof e;
    return getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e != 0;
}

/* One look at every connection (wmu held). */
static void watch_tick(http_server *s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    const double header_ms = s->lim.header_timeout_s * 1e3, idle_ms = s->lim.idle_timeout_s * 1e3;
    for (conn_watch *w = s->watched; w; w = w->next) {
        const double ms = since_ms(&w->since, &now);
        char why[160];
        switch (w->phase) {
        case W_IDLE:
            if (bytes_received(w->fd) > w->baseline) {
                watch_enter(w, W_HEADERS);
            } else if (idle_ms > 0 && ms > idle_ms) {
                shutdown(w->fd, SHUT_RDWR); /* quietly: no request was started */
                watch_enter(w, W_ENDING);
            }
            break;
        case W_HEADERS:
            if (header_ms > 0 && ms > header_ms) {
                snprintf(why, sizeof why, "the request's headers did not arrive within %g s of its first byte",
                         s->lim.header_timeout_s);
                send_timeout(s, w, why);
            }
            break;
        case W_BODY:
            if (header_ms > 0 && ms > header_ms && (double)w->body_bytes < s->lim.body_min_rate * ms / 1e3) {
                snprintf(why, sizeof why,
                         "the request's body arrived at %.0f bytes/s, slower than the minimum of %g bytes/s",
                         (double)w->body_bytes / (ms / 1e3), s->lim.body_min_rate);
                send_timeout(s, w, why);
            }
            break;
        case W_ENDING:
            if (w->timed_out && ms > LINGER_MS) {
                shutdown(w->fd, SHUT_RD); /* wakes the connection's thread, which closes it */
                w->timed_out = 2;
            }
            break;
        case W_BUSY:
            break;
        }
        stream_box *box = w->box;
        if (box && atomic_load(&box->suspended) && mono_now_ms() - box->since_ms >= STREAM_TICK_MS &&
            s->nwake < s->wake_cap) { /* woken once the lock is let go (watch_wake) */
            atomic_fetch_add(&box->refs, 1);
            s->wake[s->nwake++] = box;
        }
        if (w->pending && !w->pending_cancelled && fd_gone(w->fd)) { /* its client left: stop the work */
            pending_cancel(w->pending);
            w->pending_cancelled = 1;
        }
    }
}

/* Resumes the streams watch_tick picked, with wmu released: libmicrohttpd takes its own
 * locks there, and its thread may want wmu while it holds them. */
static void watch_wake(http_server *s)
{
    for (size_t k = 0; k < s->nwake; k++) {
        stream_wake(s->wake[k]);
        box_unref(s->wake[k]);
    }
    s->nwake = 0;
}

/* Room for one tick's wake-ups (wmu held); when it cannot grow, the rest wait a tick. */
static void wake_reserve(http_server *s)
{
    if (s->wake_cap >= s->nwatched)
        return;
    size_t cap = s->nwatched + 64;
    stream_box **w = realloc(s->wake, cap * sizeof *w);
    if (w) {
        s->wake = w;
        s->wake_cap = cap;
    }
}

static void *watchdog_main(void *arg)
{
    http_server *s = arg;
    pthread_mutex_lock(&s->wmu);
    while (!s->watch_stop) {
        const struct timespec until = hyper_deadline(WATCH_TICK_MS);
        pthread_cond_timedwait(&s->wcv, &s->wmu, &until);
        if (s->watch_stop)
            break;
        wake_reserve(s);
        watch_tick(s);
        pthread_mutex_unlock(&s->wmu);
        watch_wake(s); /* only this thread touches the wake list */
        pthread_mutex_lock(&s->wmu);
    }
    pthread_mutex_unlock(&s->wmu);
    return NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    http_server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        conn_watch *w = ci ? calloc(1, sizeof *w) : NULL;
        *socket_context = w;
        if (!w)
            return; /* not watched: libmicrohttpd's own timeout still applies */
        w->fd = ci->connect_fd;
        pthread_mutex_lock(&s->wmu);
        watch_enter(w, W_IDLE);
        w->next = s->watched;
        if (w->next)
            w->next->prev = w;
        s->watched = w;
        s->nwatched++;
        pthread_mutex_unlock(&s->wmu);
        return;
    }
    conn_watch *w = *socket_context;
    if (!w)
        return;
    pthread_mutex_lock(&s->wmu);
    if (w->prev)
        w->prev->next = w->next;
    else
        s->watched = w->next;
    if (w->next)
        w->next->prev = w->prev;
    s->nwatched--;
    pthread_mutex_unlock(&s->wmu);
    free(w);
    *socket_context = NULL;
}

static conn_watch *watch_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* The connection's thread moves its request to phase p; 0 when the watchdog has already
 * answered it with a 408 (the request must then not go on). */
static int watch_move(http_server *s, conn_watch *w, watch_phase p, uint64_t body_bytes)
{
    if (!w)
        return 1;
    pthread_mutex_lock(&s->wmu);
    const int ok = !w->timed_out;
    if (ok && p != w->phase)
        watch_enter(w, p);
    if (p == W_IDLE)
        w->baseline = bytes_received(w->fd);
    w->body_bytes += body_bytes;
    pthread_mutex_unlock(&s->wmu);
    return ok;
}

/* ---- one request ------------------------------------------------------------------ */

typedef enum { TASK_NONE, TASK_HANDLER, TASK_UPLOAD_END, TASK_COMPLETE } task_kind;

typedef struct conn_ctx {
    http_server *srv;
    struct MHD_Connection *conn;
    char method[16];
    char url[URL_MAX + 1];
    const char *route;          /* route name for metrics, or "unmatched" */
    char *body;
    size_t body_len;
    int too_large;
    api_upload up;              /* a streamed upload in progress (up.write != NULL) */
    int up_stopped;             /* write() said stop: drop the rest */
    int answered;               /* a reply was queued */
    int status;
    uint64_t bytes;
    struct timespec start;
    conn_watch *watch;          /* the connection's, NULL when it could not be watched */
    int quick;                  /* the route is answered on the event thread */
    /* a handler on a worker: queued with the connection suspended, resumed when done */
    task_kind task;
    struct conn_ctx *task_next;
    atomic_int task_done;
    api_reply task_rep;
    api_later later;            /* a reply that comes when the scheduler is done (TASK_COMPLETE) */
    pthread_mutex_t *later_mu;  /* when no worker can complete it: the waiter's */
    pthread_cond_t *later_cv;
    int later_ready;
} conn_ctx;


static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-6;
}

static const char *query_lookup(void *conn, const char *key)
{
    return MHD_lookup_connection_value((struct MHD_Connection *)conn, MHD_GET_ARGUMENT_KIND, key);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, conn_ctx *cc, api_reply *rep);

/* Whether the peer is gone, without reading anything from the socket: a reset (POLLERR,
 * POLLHUP, a pending socket error).  A client that only shut its write side after sending
 * its request (POLLRDHUP, legal HTTP/1.1) still waits for the reply; one that closed
 * without a reset is found when the reply's write fails. */
static int peer_gone(void *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info((struct MHD_Connection *)conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    struct pollfd p = {.fd = ci->connect_fd, .events = 0};
    if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR)))
        return 1;
    int e = 0;
    socklen_t el = sizeof e;
    return getsockopt(ci->connect_fd, SOL_SOCKET, SO_ERROR, &e, &el) == 0 && e != 0;
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    stream_box *box = cls;
    ssize_t n = box->stream.next(box->stream.ctx, buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (n > 0) {
        *box->bytes += (uint64_t)n;
        return n;
    }
    if (atomic_load(&box->srv->closing))
        return MHD_CONTENT_READER_END_OF_STREAM; /* the server stops: no one would resume it */
    if (!box->watch && !box->stream.notify)
        return MHD_CONTENT_READER_END_OF_STREAM; /* nothing could wake it (no watch: out of memory) */
    /* nothing now: off the event loop until the stream says there is more, or the tick */
    MHD_suspend_connection(box->conn);
    box->since_ms = mono_now_ms();
    atomic_store(&box->suspended, 1);
    if (atomic_load(&box->srv->closing)) /* http_stop may have looked already: wake it here */
        stream_wake(box);
    else if (box->stream.notify) {
        atomic_fetch_add(&box->refs, 1);
        box->stream.notify(box->stream.ctx, stream_wake_ref, stream_wake_drop, box);
    }
    return 0;
}

static void stream_free(void *cls)
{
    stream_box *box = cls;
    if (box->watch) { /* the watchdog must not wake it any more */
        pthread_mutex_lock(&box->srv->wmu);
        box->watch->box = NULL;
        pthread_mutex_unlock(&box->srv->wmu);
    }
    box->stream.release(box->stream.ctx); /* no wake-up comes after it */
    box_unref(box);
}

/* Constant-time comparison of the Authorization header with "Bearer <key>". */
static int auth_ok(const char *header, const char *key)
{
    if (!header || strncasecmp(header, "Bearer ", 7) != 0) /* the scheme is case-insensitive */
        return 0;
    const char *given = header + 7;
    size_t gl = strlen(given), kl = strlen(key);
    unsigned char diff = (unsigned char)(gl != kl);
    for (size_t i = 0; i < kl; i++)
        diff |= (unsigned char)(key[i] ^ (i < gl ? given[i] : 0));
    return diff == 0;
}

static void request_init(struct MHD_Connection *c, conn_ctx *cc, api_request *req)
{
    memset(req, 0, sizeof *req);
    req->method = cc->method;
    req->path = cc->url;
    req->body = cc->body;
    req->body_len = cc->body_len;
    req->content_type = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    req->accept = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
    req->last_event_id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Last-Event-ID");
    req->query = query_lookup;
    req->client_gone = peer_gone;
    req->conn = c;
    req->app = cc->srv->app;
}

/* Finds a query parameter whose name or value holds a NUL (%00): read as a C string it
 * would be cut short ("name=a%00b" as "a").  Copies its name into cls (64 bytes) and stops. */
static int has_control(const char *s)
{
    for (; s && *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

static enum MHD_Result find_nul_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    (void)kind;
    if (strlen(key) == key_size && (!value || strlen(value) == value_size) && !has_control(key) &&
        !has_control(value))
        return MHD_YES;
    snprintf(cls, 64, "%s", *key ? key : "(a parameter)");
    return MHD_NO;
}

/* Sums the header lines of a request and looks at the headers that frame its body. */
typedef struct {
    size_t bytes;
    int content_lengths;        /* Content-Length headers */
    int lengths_differ;
    const char *first_length;
    int transfer_encoding;
} header_scan;

static enum MHD_Result scan_header(void *cls, enum MHD_ValueKind kind, const char *key, size_t key_size,
                                   const char *value, size_t value_size)
{
    (void)kind;
    header_scan *h = cls;
    h->bytes += key_size + value_size + 4; /* "key: value\r\n" */
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (h->content_lengths++ && strcmp(h->first_length, value ? value : "") != 0)
            h->lengths_differ = 1;
        else
            h->first_length = value ? value : "";
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        h->transfer_encoding = 1;
    }
    return MHD_YES;
}

/* What hyperd refuses of a request from its request line and headers alone, before any of
 * its body: too long a URL (414), too many header bytes (431), a control character or %00
 * in the path (400), a body framed two ways (400).  Fills rep and returns 1 when refused. */
static int refuse_framing(const http_server *s, struct MHD_Connection *c, const char *url, api_reply *rep)
{
    if (strlen(url) > s->url_max) {
        api_error(rep, 414, "the URL is longer than %zu bytes", s->url_max);
        return 1;
    }
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) {
            api_error(rep, 400, "the path holds a control character or %%00");
            return 1;
        }
    header_scan h = {0};
    MHD_get_connection_values_n(c, MHD_HEADER_KIND, scan_header, &h);
    if (h.bytes > s->headers_max) {
        api_error(rep, 431, "the request's headers are larger than the limit of %zu bytes", s->headers_max);
        return 1;
    }
    if (h.lengths_differ) {
        api_error(rep, 400, "the request has Content-Length headers that differ");
        return 1;
    }
    if (h.content_lengths && h.transfer_encoding) {
        api_error(rep, 400, "the request has both Content-Length and Transfer-Encoding");
        return 1;
    }
    return 0;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Percent-decodes s in place (libmicrohttpd's unescape hook, for the path and the query
 * alike), turning a decoded NUL into 0x7f: a NUL would cut the C string short
 * ("/index.html%00.png" read as "/index.html"), 0x7f is refused as a control character. */
static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    char *w = s;
    for (const char *r = s; *r; r++) {
        int hi, lo;
        if (r[0] == '%' && (hi = hexval(r[1])) >= 0 && (lo = hexval(r[2])) >= 0) {
            char b = (char)(hi * 16 + lo);
            *w++ = b ? b : 0x7f;
            r += 2;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

/* Routes the request and checks what every route checks (key, readiness, size); on a pass
 * returns the route with req filled, else NULL with rep filled. */
static const api_route *admit(struct MHD_Connection *c, conn_ctx *cc, api_request *req, api_reply *rep)
{
    api_app *app = cc->srv->app;
    request_init(c, cc, req);
    int status = 404;
    char allow[64];
    const api_route *route = api_route_match(cc->method, cc->url, req, &status, allow, sizeof allow);
    if (!route) {
        cc->route = "unmatched";
        if (status == 405) {
            api_error(rep, 405, "%s does not take %s (it takes %s)", cc->url, cc->method, allow);
            snprintf(rep->allow, sizeof rep->allow, "%s", allow);
        } else {
            api_error(rep, 404, "no such route: %s %s", cc->method, cc->url);
        }
        return NULL;
    }
    cc->route = route->name;
    if (app->api_key && !route->public &&
        !auth_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION), app->api_key)) {
        api_error(rep, 401, "a valid API key is required: Authorization: Bearer <key>");
        return NULL;
    }
    if ((app->stopping || !app->ready) && !route->public) {
        api_error(rep, 503, app->stopping ? "the server is shutting down" : "the server is starting");
        return NULL;
    }
    if (cc->too_large) {
        size_t limit = route->upload ? app->max_upload_bytes : app->max_body_bytes;
        api_error(rep, 413, "the body is larger than the limit of %zu bytes", limit);
        return NULL;
    }
    return route;
}

static void dispatch(struct MHD_Connection *c, conn_ctx *cc, api_reply *rep)
{
    api_request req;
    const api_route *route = admit(c, cc, &req, rep);
    if (!route)
        return;
    if (!route->handler) { /* an upload route reached without its upload */
        api_error(rep, 500, "%s takes its body as an upload", cc->url);
        return;
    }
    route->handler(&req, rep);
    if (!rep->json && !rep->body && !rep->streaming && rep->status == 0 && !rep->later.complete)
        api_error(rep, 500, "the handler gave no reply");
}

static enum MHD_Result send_reply(struct MHD_Connection *c, conn_ctx *cc, api_reply *rep)
{
    struct MHD_Response *r = NULL;
    const char *ctype = "application/json";
    stream_box *box = NULL;
    if (rep->streaming) {
        box = calloc(1, sizeof *box);
        if (box) {
            box->stream = rep->stream;
            box->bytes = &cc->bytes;
            box->srv = cc->srv;
            box->conn = c;
            atomic_init(&box->refs, 1);
            r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, stream_reader, box, stream_free);
            if (!r) {
                free(box);
            } else if (cc->watch) {
                box->watch = cc->watch;
                pthread_mutex_lock(&cc->srv->wmu);
                cc->watch->box = box;
                pthread_mutex_unlock(&cc->srv->wmu);
            }
        }
        ctype = rep->stream.content_type;
    } else if (rep->body) {
        r = MHD_create_response_from_buffer(rep->body_len, rep->body, MHD_RESPMEM_MUST_FREE);
        if (r)
            rep->body = NULL;
        ctype = rep->content_type;
        cc->bytes = rep->body_len;
    } else if (rep->json) {
        char *text = json_text(rep->json, JSON_COMPACT);
        size_t len = text ? strlen(text) : 0;
        if (text) {
            text[len] = 0;
            char *with_nl = realloc(text, len + 2);
            if (with_nl) {
                text = with_nl;
                text[len++] = '\n';
                text[len] = 0;
            }
        }
        r = text ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE) : NULL;
        if (!r)
            free(text);
        cc->bytes = len;
    } else {
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    }
    if (!r) {
        if (rep->streaming)
            rep->stream.release(rep->stream.ctx);
        return MHD_NO;
    }
    if (rep->status != 204)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (rep->streaming) {
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(r, "X-Accel-Buffering", "no");
    }
    if (rep->allow[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, rep->allow);
    if (rep->status == 401)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    cc->status = rep->status;
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)rep->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Routes the request, runs its handler and queues the reply. */
/* Queues rep (consumed). */
static enum MHD_Result reply_with(struct MHD_Connection *c, conn_ctx *cc, api_reply *rep)
{
    cc->answered = 1;
    watch_move(cc->srv, cc->watch, W_BUSY, 0);
    enum MHD_Result r = send_reply(c, cc, rep);
    json_decref(rep->json);
    free(rep->body);
    return r;
}

static void later_wake(void *arg)
{
    conn_ctx *cc = arg;
    pthread_mutex_lock(cc->later_mu);
    cc->later_ready = 1;
    pthread_cond_signal(cc->later_cv);
    pthread_mutex_unlock(cc->later_mu);
}

/* A deferred reply where no worker can take it (the server is stopping, or has no
 * workers): waits for it here. */
static void later_wait(conn_ctx *cc, api_reply *rep)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    const api_later later = rep->later;
    memset(&rep->later, 0, sizeof rep->later);
    cc->later_mu = &mu;
    cc->later_cv = &cv;
    cc->later_ready = 0;
    later.notify(later.ctx, later_wake, cc);
    pthread_mutex_lock(&mu);
    while (!cc->later_ready)
        pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    later.complete(later.ctx, rep);
}

/* Answers on the event thread: the quick routes, and refusals that run no handler. */
static enum MHD_Result answer_here(struct MHD_Connection *c, conn_ctx *cc)
{
    api_reply rep = {0};
    dispatch(c, cc, &rep);
    if (rep.later.complete)
        later_wait(cc, &rep);
    return reply_with(c, cc, &rep);
}

static void task_push(http_server *s, conn_ctx *cc);

static void pending_cancel(conn_ctx *cc) { cc->later.cancel(cc->later.ctx); }

/* The scheduler has finished a deferred reply's work (any thread): a worker completes it. */
static void later_ready(void *arg)
{
    conn_ctx *cc = arg;
    http_server *s = cc->srv;
    pthread_mutex_lock(&s->wmu);
    if (cc->watch)
        cc->watch->pending = NULL;
    pthread_mutex_unlock(&s->wmu);
    cc->task = TASK_COMPLETE;
    task_push(s, cc);
}

/* Runs a queued task on a worker thread, then resumes its connection — unless the handler
 * deferred its reply, which the scheduler's notice queues again (later_ready). */
static void task_run(conn_ctx *cc)
{
    if (cc->task == TASK_UPLOAD_END) { /* the end of a streamed upload: sync, check, publish */
        api_upload up = cc->up;
        cc->up.write = NULL;
        up.finish(up.ctx, &cc->task_rep);
    } else if (cc->task == TASK_COMPLETE) {
        cc->later.complete(cc->later.ctx, &cc->task_rep);
        memset(&cc->later, 0, sizeof cc->later);
    } else {
        dispatch(cc->conn, cc, &cc->task_rep);
        if (cc->task_rep.later.complete) {
            cc->later = cc->task_rep.later;
            memset(&cc->task_rep.later, 0, sizeof cc->task_rep.later);
            pthread_mutex_lock(&cc->srv->wmu);
            if (cc->watch) { /* the watchdog cancels it if the client goes */
                cc->watch->pending = cc;
                cc->watch->pending_cancelled = 0;
            }
            pthread_mutex_unlock(&cc->srv->wmu);
            cc->later.notify(cc->later.ctx, later_ready, cc);
            return;
        }
    }
    atomic_store(&cc->task_done, 1);
    MHD_resume_connection(cc->conn); /* libmicrohttpd calls on_request again: reply_with */
}

static void *worker_main(void *arg)
{
    http_server *s = arg;
    pthread_mutex_lock(&s->qmu);
    for (;;) {
        while (!s->qhead && !s->qstop)
            pthread_cond_wait(&s->qcv, &s->qmu);
        conn_ctx *cc = s->qhead;
        if (!cc)
            break; /* stopping, and nothing is left to run */
        s->qhead = cc->task_next;
        if (!s->qhead)
            s->qtail = NULL;
        pthread_mutex_unlock(&s->qmu);
        task_run(cc);
        pthread_mutex_lock(&s->qmu);
    }
    s->nworkers_left--;
    pthread_mutex_unlock(&s->qmu);
    return NULL;
}

/* The request is complete: answer it here (quick routes), or suspend the connection and
 * hand the handler to a worker; called again once the worker has resumed it. */
static enum MHD_Result answer(struct MHD_Connection *c, conn_ctx *cc)
{
    if (!watch_move(cc->srv, cc->watch, W_BUSY, 0))
        return MHD_NO; /* answered 408 already */
    http_server *s = cc->srv;
    if (cc->task != TASK_NONE) {
        if (!atomic_load(&cc->task_done))
            return MHD_YES; /* not ours yet (a call while it runs) */
        api_reply rep = cc->task_rep;
        memset(&cc->task_rep, 0, sizeof cc->task_rep);
        return reply_with(c, cc, &rep);
    }
    if ((cc->quick && !cc->up.write) || s->nworkers == 0 || atomic_load(&s->closing)) {
        if (!cc->up.write)
            return answer_here(c, cc);
        api_reply rep = {0};
        api_upload up = cc->up;
        cc->up.write = NULL;
        up.finish(up.ctx, &rep);
        return reply_with(c, cc, &rep);
    }
    cc->task = cc->up.write ? TASK_UPLOAD_END : TASK_HANDLER;
    cc->conn = c;
    MHD_suspend_connection(c);
    task_push(s, cc);
    return MHD_YES;
}

/* Queues cc for a worker; when the workers have stopped, runs it here (the server is
 * going down: a deferred reply's work has ended with the schedulers). */
static void task_push(http_server *s, conn_ctx *cc)
{
    cc->task_next = NULL;
    pthread_mutex_lock(&s->qmu);
    const int stopped = s->qstop && s->nworkers_left == 0;
    if (!stopped) {
        if (s->qtail)
            s->qtail->task_next = cc;
        else
            s->qhead = cc;
        s->qtail = cc;
        pthread_cond_signal(&s->qcv);
    }
    pthread_mutex_unlock(&s->qmu);
    if (stopped)
        task_run(cc);
}

/* The headers of an upload route are in: admit it and start the upload, or answer now. */
static enum MHD_Result upload_begin(struct MHD_Connection *c, conn_ctx *cc)
{
    api_reply rep = {0};
    api_request req;
    const api_route *route = admit(c, cc, &req, &rep);
    if (!route || route->upload(&req, &rep, &cc->up) != 0) {
        cc->up.write = NULL;
        return reply_with(c, cc, &rep);
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_size, void **con_cls)
{
    (void)version;
    http_server *srv = cls;
    conn_ctx *cc = *con_cls;
    if (!cc) {
        cc = calloc(1, sizeof *cc);
        if (!cc)
            return MHD_NO;
        cc->srv = srv;
        cc->conn = c;
        cc->route = "unmatched";
        cc->watch = watch_of(c);
        if (!watch_move(srv, cc->watch, W_BODY, 0)) { /* the headers came after their 408 */
            free(cc);
            return MHD_NO;
        }
        pthread_mutex_lock(&srv->mu);
        srv->inflight++;
        pthread_mutex_unlock(&srv->mu);
        clock_gettime(CLOCK_MONOTONIC, &cc->start);
        snprintf(cc->method, sizeof cc->method, "%s", method);
        snprintf(cc->url, sizeof cc->url, "%s", url);
        *con_cls = cc;
        api_reply refused = {0};
        if (refuse_framing(srv, c, url, &refused))
            return reply_with(c, cc, &refused);
        char nul_key[64] = "";
        MHD_get_connection_values_n(c, MHD_GET_ARGUMENT_KIND, find_nul_arg, nul_key);
        if (nul_key[0]) {
            api_reply rep = {0};
            api_error(&rep, 400, "%s: a query parameter cannot hold %%00 or a control character", nul_key);
            return reply_with(c, cc, &rep);
        }
        const api_route *route = api_route_match(method, url, NULL, &(int){0}, NULL, 0);
        cc->quick = route && route->quick;
        const size_t limit = route && route->upload ? srv->app->max_upload_bytes : srv->app->max_body_bytes;
        const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (len && strtoull(len, NULL, 10) > limit)
            cc->too_large = 1;
        /* refuse a body we would not read (no such route, too large, or no valid key) before
         * it is sent */
        if (!route || cc->too_large ||
            (srv->app->api_key && route && !route->public &&
             !auth_ok(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                      srv->app->api_key))) {
            return answer_here(c, cc); /* a refusal: no handler runs */
        }
        if (route && route->upload)
            return upload_begin(c, cc);
        return MHD_YES;
    }
    if (cc->answered) { /* refused before the body: drop it */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0 && !watch_move(srv, cc->watch, W_BODY, *upload_size))
        return MHD_NO; /* answered 408 already */
    if (cc->up.write) {
        if (*upload_size > 0) {
            if (!cc->up_stopped && cc->up.write(cc->up.ctx, upload_data, *upload_size) != 0)
                cc->up_stopped = 1;
            *upload_size = 0;
            return MHD_YES;
        }
        return answer(c, cc);
    }
    if (*upload_size > 0) {
        if (!cc->too_large && cc->body_len + *upload_size <= srv->app->max_body_bytes) {
            char *b = realloc(cc->body, cc->body_len + *upload_size + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + cc->body_len, upload_data, *upload_size);
            cc->body = b;
            cc->body_len += *upload_size;
            cc->body[cc->body_len] = 0;
        } else {
            cc->too_large = 1;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return answer(c, cc);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c;
    http_server *srv = cls;
    conn_ctx *cc = *con_cls;
    if (!cc)
        return;
    const int timed_out = !watch_move(srv, cc->watch, W_IDLE, 0);
    if (!timed_out) /* a 408 was counted when it was sent */
        api_metrics_request(srv->app->metrics, cc->route, cc->status);
    /* the URL arrives percent-decoded: no control character may forge a log line */
    for (char *p = cc->url; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    log_msg(LOG_INFO, "%s %s %d %llu %.1fms%s", cc->method, cc->url, timed_out ? 408 : cc->status,
            (unsigned long long)cc->bytes, elapsed_ms(&cc->start),
            timed_out ? " (request timeout)" : toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (client gone)");
    if (cc->up.write) /* the connection died in the middle of an upload */
        cc->up.abort(cc->up.ctx);
    if (!cc->answered) { /* a worker made a reply the connection closed before it was sent */
        json_decref(cc->task_rep.json);
        free(cc->task_rep.body);
        if (cc->task_rep.streaming)
            cc->task_rep.stream.release(cc->task_rep.stream.ctx);
    }
    free(cc->body);
    free(cc);
    *con_cls = NULL;
    pthread_mutex_lock(&srv->mu);
    if (--srv->inflight == 0)
        pthread_cond_broadcast(&srv->idle);
    pthread_mutex_unlock(&srv->mu);
}

/* Stops the workers (after the tasks they have queued) and the watchdog. */
static void http_threads_stop(http_server *s)
{
    pthread_mutex_lock(&s->qmu);
    s->qstop = 1;
    pthread_cond_broadcast(&s->qcv);
    pthread_mutex_unlock(&s->qmu);
    for (int k = 0; k < s->nworkers; k++)
        pthread_join(s->workers[k], NULL);
    free(s->workers);
    s->workers = NULL;
    s->nworkers = 0;
    if (s->watch_running) {
        pthread_mutex_lock(&s->wmu);
        s->watch_stop = 1;
        pthread_cond_signal(&s->wcv);
        pthread_mutex_unlock(&s->wmu);
        pthread_join(s->watchdog, NULL);
        s->watch_running = 0;
    }
}

http_server *http_start(api_app *app, const char *host, uint16_t port, const http_limits *lim,
                        log_level level, char *err, size_t errlen)
{
    log_set_level(level);
    http_server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->app = app;
    s->lim = *lim;
    const size_t memory = lim->connection_memory ? lim->connection_memory : CONNECTION_MEMORY_DEFAULT;
    s->url_max = memory / 8 < URL_MAX ? memory / 8 : URL_MAX;
    s->headers_max = memory / 4;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->idle, NULL);
    pthread_mutex_init(&s->wmu, NULL);
    pthread_cond_init(&s->wcv, NULL);
    pthread_mutex_init(&s->qmu, NULL);
    pthread_cond_init(&s->qcv, NULL);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    /* one event thread over epoll (select could not take a descriptor past FD_SETSIZE,
     * 1024); connections are suspended while a worker or a stream has nothing for them */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG;
    socklen_t sl;
    if (strchr(host, ':')) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(port);
        if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1) {
            snprintf(err, errlen, "--host: '%s' is not an IPv6 address", host);
            free(s);
            return NULL;
        }
        flags |= MHD_USE_IPv6;
        sl = sizeof *a6;
    } else {
        struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
        a4->sin_family = AF_INET;
        a4->sin_port = htons(port);
        if (strcmp(host, "localhost") == 0)
            host = "127.0.0.1";
        if (inet_pton(AF_INET, host, &a4->sin_addr) != 1) {
            snprintf(err, errlen, "--host: '%s' is not an IPv4 address", host);
            free(s);
            return NULL;
        }
        sl = sizeof *a4;
    }
    (void)sl;
    /* the watchdog and the workers first: the daemon's first request may need them */
    if (pthread_create(&s->watchdog, NULL, watchdog_main, s) == 0)
        s->watch_running = 1;
    else
        log_msg(LOG_WARN, "no watchdog thread: slow requests are left to the %d s inactivity timeout", 300);
    s->workers = calloc((size_t)(lim->workers > 0 ? lim->workers : 1), sizeof *s->workers);
    for (int k = 0; s->workers && k < lim->workers; k++) {
        pthread_mutex_lock(&s->qmu);
        s->nworkers_left++;
        pthread_mutex_unlock(&s->qmu);
        if (pthread_create(&s->workers[k], NULL, worker_main, s) != 0) {
            pthread_mutex_lock(&s->qmu);
            s->nworkers_left--;
            pthread_mutex_unlock(&s->qmu);
            break;
        }
        s->nworkers++;
    }
    if (s->nworkers < lim->workers)
        log_msg(LOG_WARN, "%d of %d worker threads started%s", s->nworkers, lim->workers,
                s->nworkers ? "" : ": handlers run on the event thread");
    s->d = MHD_start_daemon(flags, port, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)lim->max_connections,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, memory,
                            MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
                            MHD_OPTION_END);
    if (!s->d) {
        http_threads_stop(s);
        snprintf(err, errlen, "cannot listen on %s port %u: the port is in use (another hyperd?), or %s is "
                              "not an address of this machine", host, (unsigned)port, host);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : port;
    return s;
}

uint16_t http_port(const http_server *s) { return s->port; }

void http_quiesce(http_server *s)
{
    if (s && s->d) {
        MHD_socket fd = MHD_quiesce_daemon(s->d); /* ours to close: new connections are refused */
        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
}

void http_stop(http_server *s)
{
    if (!s)
        return;
    /* MHD_stop_daemon closes open connections: let running replies (a stream's final
     * event) finish first, within a deadline */
    const struct timespec until = hyper_deadline(STOP_WAIT_SECONDS * 1000);
    pthread_mutex_lock(&s->mu);
    while (s->inflight > 0)
        if (pthread_cond_timedwait(&s->idle, &s->mu, &until) != 0)
            break;
    pthread_mutex_unlock(&s->mu);
    /* libmicrohttpd must not be stopped with a connection suspended: from here on nothing
     * suspends (streams end, handlers run in place), queued handlers finish and resume
     * theirs, and suspended streams are woken */
    atomic_store(&s->closing, 1);
    http_threads_stop(s); /* before the daemon stops: its connections' sockets close then */
    /* the suspended streams: resumed one by one, each then ends (closing); a stream that
     * suspends after this look sees closing and wakes itself */
    for (;;) {
        stream_box *box = NULL;
        pthread_mutex_lock(&s->wmu);
        for (conn_watch *w = s->watched; w && !box; w = w->next)
            if (w->box && atomic_load(&w->box->suspended)) {
                box = w->box;
                atomic_fetch_add(&box->refs, 1);
            }
        pthread_mutex_unlock(&s->wmu);
        if (!box)
            break;
        stream_wake(box);
        box_unref(box);
    }
    free(s->wake);
    if (s->d)
        MHD_stop_daemon(s->d);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->idle);
    pthread_mutex_destroy(&s->wmu);
    pthread_cond_destroy(&s->wcv);
    pthread_mutex_destroy(&s->qmu);
    pthread_cond_destroy(&s->qcv);
    free(s);
}
