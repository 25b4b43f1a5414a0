/*
 * remote.c — the `hyper` commands that talk to a running hyperd (remote.h): one libcurl
 * handle per command (so a repl reuses its connection), JSON through jansson, streamed
 * replies read as server-sent events.
 *
 * What the user asked for goes to stdout (text as it is generated, tables, a job's id);
 * a new session's id, progress of uploads and every message go to stderr, so
 * `hyper generate > out.txt` holds the text alone.  Options a user does not give are not
 * sent, so the server's defaults and the server's checks are the only ones: a bad value
 * comes back as the server's message ("hyper: 400: temperature must be between 0 and 100,
 * not -1").
 */
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "opts.h"
#include "remote.h"

#define DEFAULT_URL "http://127.0.0.1:8080"
#define BASE_MAX 1024                     /* bytes of --url */
#define API_KEY_MAX 1024                  /* bytes of --api-key */
#define PATH_MAX_BYTES 1024               /* path and query of one request */
#define ID_MAX 128                        /* bytes of a session or job id we keep */
#define REPLY_MAX ((size_t)256 << 20)     /* bytes of a plain reply (an SVG of 20000 points is ~1 MB) */
#define SSE_MAX ((size_t)1 << 20)         /* bytes of one SSE line, and of one event's data */
#define REPL_LINE_MAX 65536               /* bytes of one line typed at the repl */
#define CONNECT_TIMEOUT_S 10L
#define BAR_WIDTH 30                      /* the progress bar of jobs watch, */
#define DRAW_EVERY_S 0.1                  /*   redrawn at most this often on a terminal */
#define PRINT_EVERY_S 1.0                 /*   and a line at most this often elsewhere */

/* Exit statuses (remote.h). */
enum { REMOTE_OK = 0, REMOTE_FAILED = 1, REMOTE_USAGE = 2 };

/* An option the user did not give: INT64_MIN for integers, NAN for numbers (the parser
 * refuses non-finite numbers, so NAN can only mean "not given"). */
#define UNSET INT64_MIN

/* ---- bytes and server-sent events ----------------------------------------------------- */

/* A growing byte buffer, always NUL-terminated once anything was added. */
typedef struct {
    char *p;
    size_t len, cap;
} bytes;

/* Appends n bytes; -1 when out of memory or when the total would pass max. */
static int bytes_add(bytes *b, const char *data, size_t n, size_t max)
{
    if (b->len + n + 1 > max)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q)
            return -1;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
    return 0;
}

/* Called once per event with its type ("message" unless an event: line said otherwise) and
 * its data (the data: lines joined by \n).  Returns 0 to read on, 1 to stop reading (done),
 * -1 to stop on an error the handler has already printed. */
typedef int (*sse_fn)(void *user, const char *event, const char *data);

/* An SSE reader (the WHATWG EventSource rules): lines end in \n, \r\n or \r, and any of
 * them may be split across reads; ":" lines are comments (hyperd's heartbeats); a blank
 * line ends an event. */
typedef struct {
    bytes line;           /* the line being read */
    bytes data;           /* the data of the event being read */
    char event[64];
    int after_cr;         /* the last byte was \r: a \n now ends nothing */
    sse_fn fn;
    void *user;
} sse_reader;

static int sse_line(sse_reader *s, const char *line, size_t n)
{
    if (n == 0) {
        int rc = 0;
        if (s->data.len > 1) { /* an event with no data carries nothing for us */
            s->data.p[--s->data.len] = 0; /* the \n after the last data line */
            rc = s->fn(s->user, s->event[0] ? s->event : "message", s->data.p);
        }
        s->data.len = 0;
        s->event[0] = 0;
        return rc;
    }
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', n);
    size_t flen = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    if (v < line + n && *v == ' ')
        v++;
    size_t vlen = (size_t)(line + n - v);
    if (flen == 4 && memcmp(line, "data", 4) == 0) {
        if (bytes_add(&s->data, v, vlen, SSE_MAX) != 0 || bytes_add(&s->data, "\n", 1, SSE_MAX) != 0)
            return -2;
    } else if (flen == 5 && memcmp(line, "event", 5) == 0) {
        snprintf(s->event, sizeof s->event, "%.*s", (int)vlen, v);
    } /* id: and retry: are not needed: a watch that breaks says so */
    return 0;
}

/* Feeds n bytes; returns 0, the handler's 1 or -1, or -2 for an event too large to hold. */
static int sse_feed(sse_reader *s, const char *data, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s->after_cr) {
            s->after_cr = 0;
            if (data[i] == '\n') {
                i++;
                continue;
            }
        }
        size_t j = i;
        while (j < n && data[j] != '\n' && data[j] != '\r')
            j++;
        if (j > i && bytes_add(&s->line, data + i, j - i, SSE_MAX) != 0)
            return -2;
        if (j == n)
            break;
        s->after_cr = data[j] == '\r';
        int rc = sse_line(s, s->line.len ? s->line.p : "", s->line.len);
        s->line.len = 0;
        if (rc != 0)
            return rc;
        i = j + 1;
    }
    return 0;
}

static void sse_free(sse_reader *s)
{
    free(s->line.p);
    free(s->data.p);
}

/* ---- the connection -------------------------------------------------------------------- */

typedef struct {
    const char *url;
    const char *api_key;
} conn_opts;

static void conn_defaults(conn_opts *c)
{
    c->url = getenv("HYPERD_URL");
    c->api_key = getenv("HYPERD_API_KEY");
}

#define URL_HELP "hyperd's address (HYPERD_URL; " DEFAULT_URL ")"
#define KEY_HELP "sent as Authorization: Bearer KEY (HYPERD_API_KEY)"
#define CONN_OPTS(c)                                              \
    {"--url", NULL, OPT_STR, &(c).url, URL_HELP},                 \
    {"--api-key", NULL, OPT_STR, &(c).api_key, KEY_HELP}
#define OPTS_END {NULL, NULL, 0, NULL, NULL}

typedef struct {
    char base[BASE_MAX];                  /* the server's address, no trailing slash */
    char auth[API_KEY_MAX + 32];          /* "Authorization: Bearer KEY", or "" */
    CURL *curl;
    char errbuf[CURL_ERROR_SIZE];
} remote;

/* Checks the address and key and makes the curl handle; an exit status (message printed). */
static int remote_open(remote *r, const conn_opts *c)
{
    memset(r, 0, sizeof *r);
    const char *url = c->url && *c->url ? c->url : DEFAULT_URL;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        fprintf(stderr, "hyper: --url: '%s' is not an http:// or https:// address\n", url);
        return REMOTE_USAGE;
    }
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    if (n >= sizeof r->base) {
        fprintf(stderr, "hyper: --url: more than %d bytes\n", BASE_MAX - 1);
        return REMOTE_USAGE;
    }
    memcpy(r->base, url, n);
    r->base[n] = 0;
    if (c->api_key && *c->api_key) {
        if (strlen(c->api_key) > API_KEY_MAX || strpbrk(c->api_key, "\r\n")) {
            fprintf(stderr, "hyper: --api-key: not a key (more than %d bytes, or a line break)\n", API_KEY_MAX);
            return REMOTE_USAGE;
        }
        snprintf(r->auth, sizeof r->auth, "Authorization: Bearer %s", c->api_key);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(r->curl = curl_easy_init())) {
        fprintf(stderr, "hyper: libcurl could not start\n");
        return REMOTE_FAILED;
    }
    return REMOTE_OK;
}

static void remote_close(remote *r)
{
    if (r->curl)
        curl_easy_cleanup(r->curl);
    r->curl = NULL;
}

/* prefix, the escaped segment (an id or a name from the user), suffix: into buf.  -1
 * (message printed) when it does not fit. */
static int path_with(remote *r, char *buf, size_t n, const char *prefix, const char *seg, const char *suffix)
{
    char *e = curl_easy_escape(r->curl, seg, 0);
    int len = e ? snprintf(buf, n, "%s%s%s", prefix, e, suffix) : -1;
    curl_free(e);
    if (len < 0 || (size_t)len >= n) {
        fprintf(stderr, "hyper: '%.40s...' is too long\n", seg);
        return -1;
    }
    return 0;
}

/* One request. */
typedef struct {
    const char *method;                   /* GET, POST or DELETE */
    const char *path;                     /* "/v1/jobs?limit=10", escaped */
    json_t *body;                         /* sent as application/json (borrowed), or NULL */
    FILE *upload;                         /* or a file sent as the body as it is read, */
    int64_t upload_bytes;                 /*   of this many bytes */
    const char *content_type;             /*   and this type */
    sse_fn on_event;                      /* a streamed reply: each event, else NULL */
    void *user;
} call;

typedef struct {
    remote *r;
    const call *c;
    long status;
    bytes body;                           /* a plain reply, or an error's */
    sse_reader sse;
    int handler_rc;                       /* the event handler stopped the stream: 1 or -1 */
    int too_big;
} transfer;

static size_t on_write(char *data, size_t size, size_t nmemb, void *user)
{
    transfer *t = user;
    size_t n = size * nmemb;
    if (!t->status)
        curl_easy_getinfo(t->r->curl, CURLINFO_RESPONSE_CODE, &t->status);
    if (t->c->on_event && t->status >= 200 && t->status < 300) {
        int rc = sse_feed(&t->sse, data, n);
        if (rc == -2)
            t->too_big = 1;
        else if (rc != 0)
            t->handler_rc = rc;
        return rc ? 0 : n; /* 0 ends the transfer */
    }
    if (bytes_add(&t->body, data, n, REPLY_MAX) != 0) {
        t->too_big = 1;
        return 0;
    }
    return n;
}

static size_t on_read(char *buf, size_t size, size_t nmemb, void *user)
{
    size_t got = fread(buf, size, nmemb, (FILE *)user);
    return ferror((FILE *)user) ? CURL_READFUNC_ABORT : got;
}

/* Upload progress on a terminal: "uploading 12.3 of 52.1 MB (23%)". */
static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)user, (void)dltotal, (void)dlnow;
    if (ultotal > 0)
        fprintf(stderr, "\ruploading %.1f of %.1f MB (%d%%) ", (double)ulnow / 1e6, (double)ultotal / 1e6,
                (int)(100 * ulnow / ultotal));
    return 0;
}

/* The server's error ({"error": {"message": ...}}), else the start of what it said. */
static void server_error(long status, const bytes *b)
{
    json_t *j = b->len ? json_loadb(b->p, b->len, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    if (msg)
        fprintf(stderr, "hyper: %ld: %s%s\n", status, msg,
                status == 401 ? " (give --api-key or set HYPERD_API_KEY)" : "");
    else
        fprintf(stderr, "hyper: %ld: %.200s\n", status, b->len ? b->p : "the server gave no reason");
    json_decref(j);
}

/* Sends the request and reads the reply: into out (when not NULL, the caller frees out->p)
 * or, for a streamed reply, through c->on_event.  An exit status: on anything but a 2xx
 * reply the server's message, or why it could not be reached, is printed. */
static int remote_call(remote *r, const call *c, bytes *out)
{
    char url[BASE_MAX + PATH_MAX_BYTES];
    snprintf(url, sizeof url, "%s%s", r->base, c->path);
    transfer t = {.r = r, .c = c, .sse = {.fn = c->on_event, .user = c->user}};
    struct curl_slist *hdr = NULL;
    char *json = NULL, ctype[160];
    CURL *h = r->curl;
    curl_easy_reset(h); /* keeps the connection */
    r->errbuf[0] = 0;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "hyper");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    hdr = curl_slist_append(hdr, c->on_event ? "Accept: text/event-stream" : "Accept: application/json");
    if (r->auth[0])
        hdr = curl_slist_append(hdr, r->auth);
    if (c->body) {
        if (!(json = json_dumps(c->body, JSON_COMPACT))) {
            fprintf(stderr, "hyper: out of memory\n");
            curl_slist_free_all(hdr);
            return REMOTE_FAILED;
        }
        hdr = curl_slist_append(hdr, "Content-Type: application/json");
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, json);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(json));
    } else if (c->upload) {
        snprintf(ctype, sizeof ctype, "Content-Type: %s", c->content_type);
        hdr = curl_slist_append(hdr, ctype);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(h, CURLOPT_READDATA, c->upload);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)c->upload_bytes);
        if (isatty(STDERR_FILENO)) {
            curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
            curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        }
    } else if (strcmp(c->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
    }
    if (strcmp(c->method, "GET") != 0 && strcmp(c->method, "POST") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, c->method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);

    CURLcode cc = curl_easy_perform(h);
    if (c->upload && isatty(STDERR_FILENO))
        fprintf(stderr, "\n");
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    int rc = REMOTE_FAILED;
    if (t.handler_rc) {
        rc = t.handler_rc > 0 ? REMOTE_OK : REMOTE_FAILED;
    } else if (t.too_big) {
        fprintf(stderr, "hyper: %s: the reply is larger than this client accepts\n", url);
    } else if (cc != CURLE_OK && status == 0) {
        fprintf(stderr, "hyper: cannot connect to hyperd at %s: %s (is it running? --url or HYPERD_URL says where)\n",
                r->base, r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
    } else if (cc != CURLE_OK) {
        fprintf(stderr, "hyper: the connection to hyperd at %s broke: %s\n", r->base,
                r->errbuf[0] ? r->errbuf : curl_easy_strerror(cc));
    } else if (status < 200 || status >= 300) {
        server_error(status, &t.body);
    } else {
        rc = REMOTE_OK;
        if (out) {
            *out = t.body;
            t.body = (bytes){0};
        }
    }
    free(t.body.p);
    sse_free(&t.sse);
    free(json);
    curl_slist_free_all(hdr);
    return rc;
}

/* A request with a JSON reply: *out gets it (new reference; {} for a reply with no body)
 * when out is not NULL.  An exit status. */
static int remote_json(remote *r, const char *method, const char *path, json_t *body, json_t **out)
{
    call c = {.method = method, .path = path, .body = body};
    bytes b = {0};
    int rc = remote_call(r, &c, &b);
    if (out)
        *out = NULL;
    if (rc == REMOTE_OK && out) {
        json_error_t e;
        *out = b.len ? json_loadb(b.p, b.len, 0, &e) : json_object();
        if (!*out) {
            fprintf(stderr, "hyper: %s%s: the reply is not JSON: %s\n", r->base, path, e.text);
            rc = REMOTE_FAILED;
        }
    }
    free(b.p);
    return rc;
}

/* ---- small helpers ----------------------------------------------------------------------- */

/* The data of an event as a JSON object (new), or NULL after printing why (an event that
 * is not JSON, or an error event the server sent in place of the rest of the stream). */
static json_t *event_json(const char *data)
{
    json_t *o = json_loads(data, 0, NULL);
    if (!json_is_object(o)) {
        fprintf(stderr, "hyper: the server sent an event that is not a JSON object: %.80s\n", data);
        json_decref(o);
        return NULL;
    }
    const char *msg = json_string_value(json_object_get(json_object_get(o, "error"), "message"));
    if (msg) {
        fprintf(stderr, "hyper: %s\n", msg);
        json_decref(o);
        return NULL;
    }
    return o;
}

static void set_int(json_t *o, const char *key, int64_t v)
{
    if (v != UNSET)
        json_object_set_new(o, key, json_integer(v));
}

static void set_num(json_t *o, const char *key, double v)
{
    if (!isnan(v))
        json_object_set_new(o, key, json_real(v));
}

/* Sets a string the user gave (opt names it in the message); -1 when it is not UTF-8. */
static int set_str(json_t *o, const char *key, const char *v, const char *opt)
{
    if (!v)
        return 0;
    json_t *s = json_string(v);
    if (!s) {
        fprintf(stderr, "hyper: %s: not valid UTF-8\n", opt);
        return -1;
    }
    json_object_set_new(o, key, s);
    return 0;
}

/* Why a JSON file given as option opt could not be read. */
static void json_file_error(const char *opt, const char *path, const json_error_t *e)
{
    if (e->line > 0)
        fprintf(stderr, "hyper: %s %s: line %d: %s\n", opt, path, e->line, e->text);
    else
        fprintf(stderr, "hyper: %s: %s\n", opt, e->text); /* "unable to open PATH: ..." */
}

static double num_of(const json_t *v) { return json_is_number(v) ? json_number_value(v) : NAN; }

static const char *str_of(const json_t *o, const char *key, const char *def)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : def;
}

static void print_json(const json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2));
    putchar('\n');
}

/* The longest string of key over the objects of an array (at least min). */
static int column_width(const json_t *arr, const char *key, int min)
{
    size_t k;
    json_t *v;
    int w = min;
    json_array_foreach(arr, k, v) {
        int n = (int)strlen(str_of(v, key, ""));
        if (n > w)
            w = n;
    }
    return w;
}

typedef struct {
    const char *name;
    int (*fn)(int argc, char **argv);
    const char *usage;
} subcommand;

/* Runs the subcommand argv[0] names, or def when argv[0] is missing or an option. */
static int dispatch(const char *group, const subcommand *subs, const char *def, int argc, char **argv)
{
    const char *name = def;
    if (argc > 0 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h") || !strcmp(argv[0], "help"))) {
        printf("usage: hyper %s SUBCOMMAND   (hyper %s SUBCOMMAND --help for its options)\n", group, group);
        for (const subcommand *s = subs; s->name; s++)
            printf("  %s\n", s->usage);
        return REMOTE_OK;
    }
    if (argc > 0 && argv[0][0] != '-') {
        name = argv[0];
        argc--;
        argv++;
    }
    for (const subcommand *s = subs; s->name; s++)
        if (strcmp(name, s->name) == 0)
            return s->fn(argc, argv);
    fprintf(stderr, "hyper %s: unknown subcommand '%s'\n", group, name);
    for (const subcommand *s = subs; s->name; s++)
        fprintf(stderr, "  %s\n", s->usage);
    return REMOTE_USAGE;
}

/* ---- generate and repl ------------------------------------------------------------------- */

/* The generation fields a user gave. */
typedef struct {
    int64_t max_chars, top_k, seed;
    double temperature, top_p;
    const char *stop;
} gen_opts;

static void gen_opts_init(gen_opts *g)
{
    g->max_chars = g->top_k = g->seed = UNSET;
    g->temperature = g->top_p = NAN;
    g->stop = NULL;
}

#define GEN_OPTS(g)                                                                                        \
    {"-n", "--chars", OPT_I64, &(g).max_chars, "characters to generate (the server's default: 200)"},     \
    {"--temperature", NULL, OPT_DBL, &(g).temperature, "0 = greedy (1.0)"},                                \
    {"--top-k", NULL, OPT_I64, &(g).top_k, "keep the k most likely, 0 = all (0)"},                         \
    {"--top-p", NULL, OPT_DBL, &(g).top_p, "nucleus mass (1.0)"},                                          \
    {"--seed", NULL, OPT_I64, &(g).seed, "reseed the session: the same state and seed give the same text"}, \
    {"--stop", NULL, OPT_STR, &(g).stop, "a string that ends the generation (not printed)"}

/* The body of a streamed generate (new), or NULL when a string is not UTF-8. */
static json_t *gen_body(const gen_opts *g, const char *prompt, int with_seed)
{
    json_t *o = json_object();
    if (set_str(o, "prompt", prompt, "--prompt") < 0 || set_str(o, "stop", g->stop, "--stop") < 0) {
        json_decref(o);
        return NULL;
    }
    set_int(o, "max_chars", g->max_chars);
    set_num(o, "temperature", g->temperature);
    set_int(o, "top_k", g->top_k);
    set_num(o, "top_p", g->top_p);
    if (with_seed)
        set_int(o, "seed", g->seed);
    json_object_set_new(o, "stream", json_true());
    return o;
}

typedef struct {
    int done;                             /* the final event came */
    char finish[16];                      /* its finish_reason */
    int64_t chars;
    int at_line_start;                    /* nothing written, or the last byte was \n */
} gen_stream;

static int on_text_event(void *user, const char *event, const char *data)
{
    (void)event;
    gen_stream *g = user;
    json_t *o = event_json(data);
    if (!o)
        return -1;
    json_t *text = json_object_get(o, "text");
    int rc = 0;
    if (json_is_string(text)) {
        const char *s = json_string_value(text);
        size_t n = json_string_length(text);
        if (n && (fwrite(s, 1, n, stdout) != n || fflush(stdout) != 0)) {
            fprintf(stderr, "hyper: writing the text: %s\n", strerror(errno));
            rc = -1;
        }
        if (n)
            g->at_line_start = s[n - 1] == '\n';
    } else if (json_is_true(json_object_get(o, "done"))) {
        g->done = 1;
        snprintf(g->finish, sizeof g->finish, "%s", str_of(o, "finish_reason", ""));
        g->chars = json_integer_value(json_object_get(o, "chars"));
    }
    json_decref(o);
    return rc;
}

/* Streams a generation of session sid to stdout as it arrives.  An exit status. */
static int stream_text(remote *r, const char *sid, json_t *body, gen_stream *gs)
{
    char path[PATH_MAX_BYTES];
    memset(gs, 0, sizeof *gs);
    gs->at_line_start = 1;
    if (path_with(r, path, sizeof path, "/v1/sessions/", sid, "/generate") < 0)
        return REMOTE_USAGE;
    call c = {.method = "POST", .path = path, .body = body, .on_event = on_text_event, .user = gs};
    int rc = remote_call(r, &c, NULL);
    if (rc == REMOTE_OK && !gs->done) {
        fprintf(stderr, "%shyper: the stream ended before the generation did\n", gs->at_line_start ? "" : "\n");
        rc = REMOTE_FAILED;
    } else if (rc == REMOTE_OK && strcmp(gs->finish, "shutdown") == 0) {
        fprintf(stderr, "%shyper: hyperd is shutting down: the generation stopped after %" PRId64 " characters\n",
                gs->at_line_start ? "" : "\n", gs->chars);
        rc = REMOTE_FAILED;
    }
    return rc;
}

/* A new session on model (NULL: the server's default); its id into id, and to stderr. */
static int session_new(remote *r, const char *model, char *id, size_t n)
{
    json_t *body = json_object(), *rep = NULL;
    int rc = set_str(body, "model", model, "--model") < 0 ? REMOTE_USAGE
                                                          : remote_json(r, "POST", "/v1/sessions", body, &rep);
    const char *s = str_of(rep, "id", NULL);
    if (rc == REMOTE_OK && (!s || strlen(s) >= n)) {
        fprintf(stderr, "hyper: the server's reply names no session\n");
        rc = REMOTE_FAILED;
    }
    if (rc == REMOTE_OK) {
        snprintf(id, n, "%s", s);
        fprintf(stderr, "session: %s\n", id);
    }
    json_decref(body);
    json_decref(rep);
    return rc;
}

int remote_generate(int argc, char **argv)
{
    conn_opts co;
    conn_defaults(&co);
    gen_opts g;
    gen_opts_init(&g);
    const char *sid = NULL, *model = NULL, *prompt = NULL;
    const opt_spec opts[] = {
        {"--session", NULL, OPT_STR, &sid, "continue this session (default: a new one, its id on stderr)"},
        {"--model", NULL, OPT_STR, &model, "model of a new session (the server's default)"},
        {"--prompt", NULL, OPT_STR, &prompt, "text fed to the session first (not repeated)"},
        GEN_OPTS(g), CONN_OPTS(co), OPTS_END};
    const char *usage = "hyper generate [--session ID | --model NAME] [--prompt TEXT] [-n CHARS] "
                        "[--temperature T] [--top-k K] [--top-p P] [--seed S] [--stop TEXT] [--url URL]";
    if (parse_opts(argc, argv, opts, NULL, 0, usage) < 0)
        return REMOTE_USAGE;
    if (sid && model) {
        fprintf(stderr, "hyper generate: --model is for a new session; session %s keeps its own model\n", sid);
        return REMOTE_USAGE;
    }
    json_t *body = gen_body(&g, prompt, 1);
    if (!body)
        return REMOTE_USAGE;
    remote r;
    char id[ID_MAX];
    int rc = remote_open(&r, &co);
    if (rc == REMOTE_OK && !sid && (rc = session_new(&r, model, id, sizeof id)) == REMOTE_OK)
        sid = id;
    gen_stream gs;
    if (rc == REMOTE_OK)
        rc = stream_text(&r, sid, body, &gs);
    if (rc == REMOTE_OK && !gs.at_line_start && isatty(STDOUT_FILENO))
        putchar('\n');
    json_decref(body);
    remote_close(&r);
    return rc;
}

int remote_repl(int argc, char **argv)
{
    conn_opts co;
    conn_defaults(&co);
    gen_opts g;
    gen_opts_init(&g);
    const char *sid = NULL, *model = NULL;
    const opt_spec opts[] = {
        {"--session", NULL, OPT_STR, &sid, "talk to this session (default: a new one, its id on stderr)"},
        {"--model", NULL, OPT_STR, &model, "model of a new session (the server's default)"},
        GEN_OPTS(g), CONN_OPTS(co), OPTS_END};
    const char *usage = "hyper repl [--session ID | --model NAME] [-n CHARS] [--temperature T] [--top-k K] "
                        "[--top-p P] [--seed S] [--stop TEXT (a blank line)] [--url URL]";
    if (parse_opts(argc, argv, opts, NULL, 0, usage) < 0)
        return REMOTE_USAGE;
    if (sid && model) {
        fprintf(stderr, "hyper repl: --model is for a new session; session %s keeps its own model\n", sid);
        return REMOTE_USAGE;
    }
    if (!g.stop)
        g.stop = "\n\n"; /* the model's turn ends at a blank line */
    remote r;
    char id[ID_MAX];
    int rc = remote_open(&r, &co);
    if (rc == REMOTE_OK && !sid && (rc = session_new(&r, model, id, sizeof id)) == REMOTE_OK)
        sid = id;
    if (rc != REMOTE_OK) {
        remote_close(&r);
        return rc;
    }
    /* on a terminal a failed turn is reported and the talk goes on; a script is stopped */
    const int tty = isatty(STDIN_FILENO);
    if (tty)
        fprintf(stderr, "type a line and the model goes on; Ctrl-D ends\n> ");
    char *line = NULL, *prompt = NULL;
    size_t cap = 0;
    ssize_t n;
    int first = 1, status = REMOTE_OK;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            n--;
        if (n > REPL_LINE_MAX) {
            fprintf(stderr, "hyper: a line of %zd bytes is more than the %d this repl sends\n", n, REPL_LINE_MAX);
            rc = REMOTE_USAGE;
        } else if (!(prompt = realloc(prompt, (size_t)n + 2))) {
            fprintf(stderr, "hyper: out of memory\n");
            rc = REMOTE_FAILED;
        } else {
            memcpy(prompt, line, (size_t)n);
            memcpy(prompt + n, "\n", 2); /* the line as typed, Enter included */
            json_t *body = gen_body(&g, prompt, first);
            gen_stream gs;
            rc = body ? stream_text(&r, sid, body, &gs) : REMOTE_USAGE;
            if (rc == REMOTE_OK && !gs.at_line_start)
                putchar('\n');
            fflush(stdout);
            json_decref(body);
            first = 0;
        }
        if (rc != REMOTE_OK) {
            status = rc;
            if (!tty)
                break;
        }
        if (tty)
            fprintf(stderr, "> ");
    }
    if (tty)
        fprintf(stderr, "\n");
    free(line);
    free(prompt);
    remote_close(&r);
    return status;
}

/* ---- models and sessions ----------------------------------------------------------------- */

/* A GET whose reply is printed raw (--json) or by show; an exit status. */
static int list_command(const conn_opts *co, const char *path, int as_json, void (*show)(const json_t *))
{
    remote r;
    json_t *rep = NULL;
    int rc = remote_open(&r, co);
    if (rc == REMOTE_OK)
        rc = remote_json(&r, "GET", path, NULL, &rep);
    if (rc == REMOTE_OK) {
        if (as_json)
            print_json(rep);
        else
            show(rep);
    }
    json_decref(rep);
    remote_close(&r);
    return rc;
}

static void show_models(const json_t *rep)
{
    const json_t *arr = json_object_get(rep, "models");
    const char *def = str_of(rep, "default", "");
    int w = column_width(arr, "name", 4);
    printf("%-*s  %-11s  %-11s  %6s  %5s  %5s  %5s  %10s\n", w, "NAME", "KIND", "CELL", "LAYERS", "UNITS", "HYPER",
           "EMBED", "PARAMETERS");
    size_t k;
    json_t *m;
    json_array_foreach(arr, k, m) {
        char hyper[16] = "-", embed[16] = "-";
        if (json_is_integer(json_object_get(m, "hyper_units")))
            snprintf(hyper, sizeof hyper, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(m, "hyper_units")));
        if (json_is_integer(json_object_get(m, "embedding_size")))
            snprintf(embed, sizeof embed, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(m, "embedding_size")));
        const char *name = str_of(m, "name", "?");
        char layers[24] = "-", units[24] = "-";   /* classifiers have neither: their arch is the cell */
        if (json_is_integer(json_object_get(m, "layers")))
            snprintf(layers, sizeof layers, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(m, "layers")));
        if (json_is_integer(json_object_get(m, "units")))
            snprintf(units, sizeof units, "%" JSON_INTEGER_FORMAT, json_integer_value(json_object_get(m, "units")));
        printf("%-*s  %-11s  %-11s  %6s  %5s  %5s  %5s  %10" JSON_INTEGER_FORMAT "%s\n", w, name,
               str_of(m, "kind", "?"), str_of(m, "cell", str_of(m, "arch", "?")), layers, units, hyper, embed,
               json_integer_value(json_object_get(m, "parameters")), strcmp(name, def) == 0 ? "  (default)" : "");
    }
}

int remote_models(int argc, char **argv)
{
    conn_opts co;
    conn_defaults(&co);
    int as_json = 0;
    const opt_spec opts[] = {{"--json", NULL, OPT_FLAG, &as_json, "the server's reply as it is"}, CONN_OPTS(co), OPTS_END};
    if (parse_opts(argc, argv, opts, NULL, 0, "hyper models [--json] [--url URL]") < 0)
        return REMOTE_USAGE;
    return list_command(&co, "/v1/models", as_json, show_models);
}

static void show_sessions(const json_t *rep)
{
    const json_t *arr = json_object_get(rep, "sessions");
    int w = column_width(arr, "model", 5);
    printf("%-32s  %-*s  %14s  %-24s  %s\n", "ID", w, "MODEL", "SEEN", "LAST USED", "BUSY");
    size_t k;
    json_t *s;
    json_array_foreach(arr, k, s) {
        const json_t *pts = json_object_get(s, "points_seen");
        char seen[32];
        snprintf(seen, sizeof seen, "%" JSON_INTEGER_FORMAT " %s",
                 json_integer_value(pts ? pts : json_object_get(s, "chars_seen")), pts ? "points" : "chars");
        printf("%-32s  %-*s  %14s  %-24s  %s\n", str_of(s, "id", "?"), w, str_of(s, "model", "?"), seen,
               str_of(s, "last_used_at", ""), json_is_true(json_object_get(s, "busy")) ? "yes" : "no");
    }
    json_int_t total = json_integer_value(json_object_get(rep, "total"));
    if ((size_t)total > json_array_size(arr))
        fprintf(stderr, "(%zu of %" JSON_INTEGER_FORMAT " sessions from %" JSON_INTEGER_FORMAT "; --limit, --offset)\n",
                json_array_size(arr), total, json_integer_value(json_object_get(rep, "offset")));
}

static int sessions_list(int argc, char **argv)
{
    conn_opts co;
    conn_defaults(&co);
    int as_json = 0;
    int64_t limit = UNSET, offset = UNSET;
    const opt_spec opts[] = {
        {"--json", NULL, OPT_FLAG, &as_json, "the server's reply as it is"},
        {"--limit", NULL, OPT_I64, &limit, "sessions per page (100)"},
        {"--offset", NULL, OPT_I64, &offset, "sessions skipped (0)"},
        CONN_OPTS(co), OPTS_END};
    if (parse_opts(argc, argv, opts, NULL, 0, "hyper sessions [list] [--limit N] [--offset N] [--json]") < 0)
        return REMOTE_USAGE;
    char path[PATH_MAX_BYTES] = "/v1/sessions";
    size_t at = strlen(path);
    if (limit != UNSET)
        at += (size_t)snprintf(path + at, sizeof path - at, "?limit=%" PRId64, limit);
    if (offset != UNSET)
        snprintf(path + at, sizeof path - at, "%soffset=%" PRId64, limit != UNSET ? "&" : "?", offset);
    return list_command(&co, path, as_json, show_sessions);
}

/* DELETE prefix/NAME, the one positional argument; prints "deleted WHAT NAME". */
static int delete_command(int argc, char **argv, const char *prefix, const char *what, const char *usage)
{
    conn_opts co;
    conn_defaults(&co);
    const char *name = NULL;
    const opt_spec opts[] = {CONN_OPTS(co), OPTS_END};
    if (parse_opts(argc, argv, opts, &name, 1, usage) < 0)
        return REMOTE_USAGE;
    if (!name) {
        fprintf(stderr, "usage: %s\n", usage);
        return REMOTE_USAGE;
    }
    remote r;
    char path[PATH_MAX_BYTES];
    int rc = remote_open(&r, &co);
    if (rc == REMOTE_OK)
        rc = path_with(&r, path, sizeof path, prefix, name, "") < 0 ? REMOTE_USAGE
                                                                     : remote_json(&r, "DELETE", path, NULL, NULL);
    if (rc == REMOTE_OK)
        printf("deleted %s %s\n", what, name);
    remote_close(&r);
    return rc;
}

static int sessions_delete(int argc, char **argv)
{
    return delete_command(argc, argv, "/v1/sessions/", "session", "hyper sessions delete ID");
}

int remote_sessions(int argc, char **argv)
{
    static const subcommand subs[] = {
        {"list", sessions_list, "list [--limit N] [--offset N] [--json]   the sessions (the default)"},
        {"delete", sessions_delete, "delete ID                               remove a session"},
        {NULL, NULL, NULL}};
    return dispatch("sessions", subs, "list", argc, argv);
}

/* ---- datasets ---------------------------------------------------------------------------- */

/* The Content-Type of an upload, from the file's extension; NULL when it says nothing. */
static const char *content_type_of(const char *path)
{
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return NULL;
    if (!strcasecmp(dot, ".txt") || !strcasecmp(dot, ".text"))
        return "text/plain";
    if (!strcasecmp(dot, ".json"))
        return "application/json";
    if (!strcasecmp(dot, ".xml"))
        return "application/xml";
    return NULL;
}

static void show_dataset(const json_t *d)
{
    printf("%s: %s, %" JSON_INTEGER_FORMAT " bytes, %" JSON_INTEGER_FORMAT " %s, %" JSON_INTEGER_FORMAT
           " part(s), sha256 %s\n",
           str_of(d, "name", "?"), str_of(d, "kind", "?"), json_integer_value(json_object_get(d, "bytes")),
           json_integer_value(json_object_get(d, "items")),
           strcmp(str_of(d, "kind", ""), "strokes") == 0  ? "lines"
           : strcmp(str_of(d, "kind", ""), "images") == 0 ? "images"
                                                         : "characters",
           json_integer_value(json_object_get(d, "parts")), str_of(d, "sha256", "?"));
}

static int datasets_upload(int argc, char **argv)
{
    conn_opts co;
    conn_defaults(&co);
    const char *kind = NULL, *pos[2];
    int as_json = 0;
    const opt_spec opts[] = {
        {"--kind", NULL, OPT_STR, &kind, "text | strokes (from the file: .txt text, .json/.xml strokes)"},
        {"--json", NULL, OPT_FLAG, &as_json, "the server's reply as it is"},
        CONN_OPTS(co), OPTS_END};
    const char *usage = "hyper datasets upload NAME FILE [--kind text|strokes]";
    if (parse_opts(argc, argv, opts, pos, 2, usage) < 0)
        return REMOTE_USAGE;
    if (!pos[1]) {
        fprintf(stderr, "usage: %s\n", usage);
        return REMOTE_USAGE;
    }
    const char *ctype = content_type_of(pos[1]);
    if (!ctype && kind && strcmp(kind, "strokes") == 0) {
        fprintf(stderr, "hyper: %s: strokes are sent as .json or .xml (IAM-OnDB) files\n", pos[1]);
        return REMOTE_USAGE;
    }
    if (!ctype)
        ctype = "text/plain";
    FILE *f = fopen(pos[1], "rb");
    struct stat sb;
    if (!f || fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "hyper: %s: %s\n", pos[1], f ? "not a regular file" : strerror(errno));
        if (f)
            fclose(f);
        return REMOTE_USAGE;
    }
    remote r;
    json_t *rep = NULL;
    char path[PATH_MAX_BYTES];
    int rc = remote_open(&r, &co);
    if (rc == REMOTE_OK && path_with(&r, path, sizeof path, "/v1/datasets?name=", pos[0], kind ? "&kind=" : "") < 0)
        rc = REMOTE_USAGE;
    if (rc == REMOTE_OK && kind) {
        char *k = curl_easy_escape(r.curl, kind, 0);
        size_t at = strlen(path);
        if (!k || snprintf(path + at, sizeof path - at, "%s", k) >= (int)(sizeof path - at))
            rc = REMOTE_USAGE;
        curl_free(k);
    }
    if (rc == REMOTE_OK) {
        call c = {.method = "POST", .path = path, .upload = f, .upload_bytes = (int64_t)sb.st_size,
                  .content_type = ctype};
        bytes b = {0};
        rc = remote_call(&r, &c, &b);
        if (rc == REMOTE_OK && !(rep = json_loadb(b.p ? b.p : "", b.len, 0, NULL))) {
            fprintf(stderr, "hyper: the server's reply is not JSON\n");
            rc = REMOTE_FAILED;
        }
        free(b.p);
    }
    if (rc == REMOTE_OK) {
        if (as_json)
            print_json(rep);
        else
            show_dataset(rep);
    }
    json_decref(rep);
    fclose(f);
    remote_close(&r);
    return rc;
}

static void show_datasets(const json_t *rep)
{
    const json_t *arr = json_object_get(rep, "datasets");
    int w = column_width(arr, "name", 4);
    printf("%-*s  %-7s  %12s  %12s  %s\n", w, "NAME", "KIND", "BYTES", "ITEMS", "CREATED");
    size_t k;
    json_t *d;
    json_array_foreach(arr, k, d) {
        printf("%-*s  %-7s  %12" JSON_INTEGER_FORMAT "  %12" JSON_INTEGER_FORMAT "  %s\n", w, str_of(d, "name", "?"),
               str_of(d, "kind", "?"), json_integer_value(json_object_get(d, "bytes")),
               json_integer_value(json_object_get(d, "items")),
               json_is_true(json_object_get(d, "builtin")) ? "built in" : str_of(d, "created_at", ""));
    }
}

static int datasets_list(int argc, char **argv)
{
    conn_opts co;
    conn_defaults(&co);
    int as_json = 0;
    const opt_spec opts[] = {{"--json", NULL, OPT_FLAG, &as_json, "the server's reply as it is"}, CONN_OPTS(co), OPTS_END};
    if (parse_opts(argc, argv, opts, NULL, 0, "hyper datasets [list] [--json]") < 0)
        return REMOTE_USAGE;
    return list_command(&co, "/v1/datasets", as_json, show_datasets);
}

static int datasets_delete(int argc, char **argv)
{
    return delete_command(argc, argv, "/v1/datasets/", "dataset", "hyper datasets delete NAME");
}

int remote_datasets(int argc, char **argv)
{
    static const subcommand subs[] = {
        {"list", datasets_list, "list [--json]                          the datasets (the default)"},
        {"upload", datasets_upload, "upload NAME FILE [--kind text|strokes]  send a corpus (appends to a strokes dataset)"},
        {"delete", datasets_delete, "delete NAME                            remove a dataset"},
        {NULL, NULL, NULL}};
    return dispatch("datasets", subs, "list", argc, argv);
}

/* ---- jobs ---------------------------------------------------------------------------- */

/* The sub-object key of spec (made when missing; borrowed). */
static json_t *spec_part(json_t *spec, const char *key)
{
    json_t *o = json_object_get(spec, key);
    if (!o) {
        o = json_object();
        json_object_set_new(spec, key, o);
    }
    return o;
}

static void spec_int(json_t *spec, const char *part, const char *key, int64_t v)
{
    if (v != UNSET)
        set_int(spec_part(spec, part), key, v);
}

static void spec_num(json_t *spec, const char *part, const char *key, double v)
{
    if (!isnan(v))
        set_num(spec_part(spec, part), key, v);
}

static int job_watch(remote *r, const char *id);

static int jobs_submit(int argc, char **argv)
{
    conn_opts co;
    conn_defaults(&co);
    const char *kind = NULL, *dataset = NULL, *name = NULL, *cell = NULL, *init_from = NULL, *spec_file = NULL;
    const char *arch = NULL;
    int64_t layers = UNSET, units = UNSET, hyper_units = UNSET, embed = UNSET, mixtures = UNSET, steps = UNSET,
            batch = UNSET, seq = UNSET, seed = UNSET, eval_every = UNSET, ckpt_every = UNSET, eval_limit = UNSET;
    int64_t hidden = UNSET, channels = UNSET, kernel = UNSET, gen_hidden = UNSET, tile_rows = UNSET, tile_cols = UNSET;
    double keep = NAN, epochs = NAN, lr = NAN, clip = NAN, val_fraction = NAN;
    int watch = 0, wnorm = 0;
    const opt_spec opts[] = {
        {"--spec", NULL, OPT_STR, &spec_file, "a job spec (JSON) to start from; the options below override it"},
        {"--kind", NULL, OPT_STR, &kind, "charlm | handwriting | classifier (charlm)"},
        {"--dataset", NULL, OPT_STR, &dataset, "dataset to train on (required)"},
        {"--name", NULL, OPT_STR, &name, "name of the model it makes (required)"},
        {"--init-from", NULL, OPT_STR, &init_from, "a served model to fine-tune (its shape is kept)"},
        {"--cell", NULL, OPT_STR, &cell, "lstm | lnlstm | hyperlstm | lnhyperlstm"},
        {"--layers", NULL, OPT_I64, &layers, "L"},
        {"--units", NULL, OPT_I64, &units, "N"},
        {"--hyper-units", NULL, OPT_I64, &hyper_units, "H"},
        {"--embed", NULL, OPT_I64, &embed, "Z"},
        {"--mixtures", NULL, OPT_I64, &mixtures, "handwriting: M Gaussians of the output"},
        {"--arch", NULL, OPT_STR, &arch, "classifier: mlp | hypermlp | conv | hyperconv"},
        {"--hidden", NULL, OPT_I64, &hidden, "classifier (mlp): hidden units"},
        {"--channels", NULL, OPT_I64, &channels, "classifier (conv): channels"},
        {"--kernel", NULL, OPT_I64, &kernel, "classifier (conv): kernel side"},
        {"--gen-hidden", NULL, OPT_I64, &gen_hidden, "classifier (hyper): the generator's width d"},
        {"--tile-rows", NULL, OPT_I64, &tile_rows, "classifier (hypermlp): rows per generated tile"},
        {"--tile-cols", NULL, OPT_I64, &tile_cols, "classifier (hypermlp): columns per generated tile"},
        {"--wnorm", NULL, OPT_FLAG, &wnorm, "classifier (hyper): layer norm on the generated weights"},
        {"--keep", NULL, OPT_DBL, &keep, "recurrent dropout keep probability"},
        {"--steps", NULL, OPT_I64, &steps, "optimizer steps"},
        {"--epochs", NULL, OPT_DBL, &epochs, "passes over the data (instead of --steps)"},
        {"--batch", NULL, OPT_I64, &batch, "B"},
        {"--seq", NULL, OPT_I64, &seq, "T"},
        {"--lr", NULL, OPT_DBL, &lr, "Adam learning rate"},
        {"--clip", NULL, OPT_DBL, &clip, "gradient-norm clip"},
        {"--seed", NULL, OPT_I64, &seed, "seed of weights and dropout"},
        {"--eval-every", NULL, OPT_I64, &eval_every, "steps between validations"},
        {"--eval-limit", NULL, OPT_I64, &eval_limit, "validation characters (or lines) per run, 0 = all"},
        {"--checkpoint-every", NULL, OPT_I64, &ckpt_every, "steps between checkpoints"},
        {"--val-fraction", NULL, OPT_DBL, &val_fraction, "share of the data held out"},
        {"--watch", NULL, OPT_FLAG, &watch, "follow the job until it ends (as hyper jobs watch)"},
        CONN_OPTS(co), OPTS_END};
    const char *usage = "hyper jobs submit [--spec FILE.json] --dataset NAME --name MODEL [--kind charlm|handwriting|classifier] "
                        "[--cell C --layers L --units N ... | --arch A ...] [--steps S | --epochs E ...] [--watch]";
    if (parse_opts(argc, argv, opts, NULL, 0, usage) < 0)
        return REMOTE_USAGE;
    json_t *spec = json_object();
    if (spec_file) {
        json_error_t e;
        json_decref(spec);
        spec = json_load_file(spec_file, JSON_REJECT_DUPLICATES, &e);
        if (!json_is_object(spec)) {
            if (spec)
                fprintf(stderr, "hyper: --spec %s: not a JSON object\n", spec_file);
            else
                json_file_error("--spec", spec_file, &e);
            json_decref(spec);
            return REMOTE_USAGE;
        }
    }
    if (set_str(spec, "kind", kind, "--kind") < 0 || set_str(spec, "dataset", dataset, "--dataset") < 0 ||
        set_str(spec, "model_name", name, "--name") < 0 || set_str(spec, "init_from", init_from, "--init-from") < 0 ||
        (cell && set_str(spec_part(spec, "model"), "cell", cell, "--cell") < 0) ||
        (arch && set_str(spec_part(spec, "model"), "arch", arch, "--arch") < 0)) {
        json_decref(spec);
        return REMOTE_USAGE;
    }
    if (!json_object_get(spec, "kind"))
        json_object_set_new(spec, "kind", json_string("charlm"));
    spec_int(spec, "model", "layers", layers);
    spec_int(spec, "model", "units", units);
    spec_int(spec, "model", "hyper_units", hyper_units);
    spec_int(spec, "model", "embed", embed);
    spec_int(spec, "model", "mixtures", mixtures);
    spec_int(spec, "model", "hidden", hidden);
    spec_int(spec, "model", "channels", channels);
    spec_int(spec, "model", "kernel", kernel);
    spec_int(spec, "model", "gen_hidden", gen_hidden);
    spec_int(spec, "model", "tile_rows", tile_rows);
    spec_int(spec, "model", "tile_cols", tile_cols);
    if (wnorm)
        json_object_set_new(spec_part(spec, "model"), "wnorm", json_true());
    spec_num(spec, "model", "keep", keep);
    if (steps != UNSET || !isnan(epochs)) /* an option replaces the spec's length of training */
        json_object_del(spec_part(spec, "train"), steps != UNSET ? "epochs" : "steps");
    spec_int(spec, "train", "steps", steps);
    spec_num(spec, "train", "epochs", epochs);
    spec_int(spec, "train", "batch", batch);
    spec_int(spec, "train", "seq", seq);
    spec_num(spec, "train", "lr", lr);
    spec_num(spec, "train", "clip", clip);
    spec_int(spec, "train", "seed", seed);
    spec_int(spec, "train", "eval_every", eval_every);
    spec_int(spec, "train", "eval_limit", eval_limit);
    spec_int(spec, "train", "checkpoint_every", ckpt_every);
    spec_num(spec, "train", "val_fraction", val_fraction);
    if (!json_object_get(spec, "dataset") || !json_object_get(spec, "model_name")) {
        fprintf(stderr, "hyper jobs submit: --dataset and --name (or a --spec that has them) are required\nusage: %s\n",
                usage);
        json_decref(spec);
        return REMOTE_USAGE;
    }
    remote r;
    json_t *rep = NULL;
    int rc = remote_open(&r, &co);
    if (rc == REMOTE_OK)
        rc = remote_json(&r, "POST", "/v1/jobs", spec, &rep);
    const char *id = str_of(rep, "id", NULL);
    if (rc == REMOTE_OK && !id) {
        fprintf(stderr, "hyper: the server's reply names no job\n");
        rc = REMOTE_FAILED;
    }
    if (rc == REMOTE_OK) {
        printf("%s\n", id);
        fflush(stdout);
        if (watch)
            rc = job_watch(&r, id);
    }
    json_decref(rep);
    json_decref(spec);
    remote_close(&r);
    return rc;
}

/* The key and unit of a job's training speed, by its kind. */
static void job_rate(const json_t *job, const char **key, const char **unit)
{
    const char *kind = str_of(job, "kind", "");
    const int hw = strcmp(kind, "handwriting") == 0, img = strcmp(kind, "classifier") == 0;
    *key = img ? "images_per_second" : hw ? "points_per_second" : "chars_per_second";
    *unit = img ? "images/s" : hw ? "points/s" : "chars/s";
}

/* What jobs watch knows while it follows a job. */
typedef struct {
    int tty;                              /* redraw one line with \r, else print lines */
    const char *loss_unit, *val_unit, *rate_unit;
    double val;                           /* the last validation loss seen (NAN: none yet) */
    double drawn_at;                      /* when the last line was drawn (monotonic seconds) */
    int on_line;                          /* a \r line is on the terminal */
    json_t *final;                        /* the final event (new), once it came */
    int shutdown;                         /* the server said it is stopping */
} watch_ctx;

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One progress report.  A job reports every step and a finished job's history comes all
 * at once, so lines are drawn at most every DRAW_EVERY_S on a terminal and every
 * PRINT_EVERY_S elsewhere, and always for a validation and for the last step. */
static void draw_progress(watch_ctx *w, const json_t *p)
{
    json_int_t step = json_integer_value(json_object_get(p, "step"));
    json_int_t steps = json_integer_value(json_object_get(p, "steps"));
    double loss = num_of(json_object_get(p, "train_loss")), val = num_of(json_object_get(p, "val_loss"));
    double rate = num_of(json_object_get(p, "items_per_sec")), t = now_seconds();
    const int evaluated = json_is_true(json_object_get(p, "evaluated"));
    if (!isnan(val))
        w->val = val;
    if (!evaluated && step != steps && w->drawn_at > 0 && t - w->drawn_at < (w->tty ? DRAW_EVERY_S : PRINT_EVERY_S))
        return;
    w->drawn_at = t;
    char eta[32], vbuf[64];
    fmt_duration(num_of(json_object_get(p, "eta")), eta, sizeof eta);
    if (isnan(w->val))
        snprintf(vbuf, sizeof vbuf, "-");
    else
        snprintf(vbuf, sizeof vbuf, "%.4f %s", w->val, w->val_unit);
    char text[256];
    snprintf(text, sizeof text, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT "  loss %.4f %s  val %s  %.0f %s  ETA %s",
             step, steps, loss, w->loss_unit, vbuf, isnan(rate) ? 0.0 : rate, w->rate_unit, eta);
    if (w->tty) {
        char bar[BAR_WIDTH + 1];
        int filled = steps > 0 ? (int)((double)step / (double)steps * BAR_WIDTH) : 0;
        for (int k = 0; k < BAR_WIDTH; k++)
            bar[k] = k < filled ? '#' : '.';
        bar[BAR_WIDTH] = 0;
        printf("\r[%s] %s  ", bar, text);
        w->on_line = 1;
    } else {
        printf("step %s\n", text);
    }
    fflush(stdout);
}

static int on_job_event(void *user, const char *event, const char *data)
{
    (void)event;
    watch_ctx *w = user;
    json_t *o = event_json(data);
    if (!o)
        return -1;
    json_t *done = json_object_get(o, "done");
    if (json_is_true(done)) {
        json_decref(w->final);
        w->final = o;
        return 0;
    }
    if (done) /* {"done": false, "finish_reason": "shutdown"} */
        w->shutdown = 1;
    else
        draw_progress(w, o);
    json_decref(o);
    return 0;
}

/* The end of a job: 0 when it succeeded, else 1 with its error. */
static int report_final(const char *id, const json_t *j)
{
    const char *state = str_of(j, "state", "?");
    if (strcmp(state, "succeeded") == 0) {
        double val = num_of(json_object_get(j, "val_loss"));
        printf("job %s succeeded: model %s", id, str_of(j, "model_name", "?"));
        if (!isnan(val))
            printf(" (validation %.4f %s)", val, str_of(j, "val_unit", ""));
        printf("\n");
        return REMOTE_OK;
    }
    if (strcmp(state, "failed") == 0)
        fprintf(stderr, "hyper: job %s failed: %s\n", id, str_of(j, "error", "no reason given"));
    else
        fprintf(stderr, "hyper: job %s was %s\n", id, state);
    return REMOTE_FAILED;
}

/* Follows job id's events to its end; an exit status (1 when it failed or was cancelled). */
static int job_watch(remote *r, const char *id)
{
    char path[PATH_MAX_BYTES];
    json_t *job = NULL;
    if (path_with(r, path, sizeof path, "/v1/jobs/", id, "") < 0)
        return REMOTE_USAGE;
    int rc = remote_json(r, "GET", path, NULL, &job);
    if (rc != REMOTE_OK)
        return rc;
    const char *rate_key, *rate_unit;
    job_rate(job, &rate_key, &rate_unit);
    watch_ctx w = {.tty = isatty(STDOUT_FILENO), .loss_unit = str_of(job, "loss_unit", ""),
                   .val_unit = str_of(job, "val_unit", ""), .rate_unit = rate_unit, .val = NAN};
    if (strcmp(str_of(job, "state", ""), "queued") == 0) {
        printf("job %s is queued\n", id);
        fflush(stdout);
    }
    path_with(r, path, sizeof path, "/v1/jobs/", id, "/events");
    call c = {.method = "GET", .path = path, .on_event = on_job_event, .user = &w};
    rc = remote_call(r, &c, NULL);
    if (w.on_line)
        printf("\n");
    if (rc == REMOTE_OK && w.final) {
        rc = report_final(id, w.final);
    } else if (rc == REMOTE_OK && w.shutdown) {
        fprintf(stderr, "hyper: hyperd is shutting down; job %s goes on when it is back (hyper jobs watch %s)\n", id, id);
        rc = REMOTE_FAILED;
    } else if (rc == REMOTE_OK) {
        fprintf(stderr, "hyper: the events of job %s ended before the job did\n", id);
        rc = REMOTE_FAILED;
    }
    json_decref(w.final);
    json_decref(job);
    return rc;
}

/* A command on one job: ID, the one positional argument, then fn.  An exit status. */
static int with_job(int argc, char **argv, const char *usage, int *as_json, int (*fn)(remote *, const char *, int))
{
    conn_opts co;
    conn_defaults(&co);
    const char *id = NULL;
    int dummy = 0;
    const opt_spec opts[] = {{"--json", NULL, OPT_FLAG, as_json ? as_json : &dummy, "the server's reply as it is"},
                             CONN_OPTS(co), OPTS_END};
    /* commands without --json start the table after it */
    if (parse_opts(argc, argv, as_json ? opts : opts + 1, &id, 1, usage) < 0)
        return REMOTE_USAGE;
    if (!id) {
        fprintf(stderr, "usage: %s\n", usage);
        return REMOTE_USAGE;
    }
    remote r;
    int rc = remote_open(&r, &co);
    if (rc == REMOTE_OK)
        rc = fn(&r, id, as_json ? *as_json : 0);
    remote_close(&r);
    return rc;
}

static int watch_fn(remote *r, const char *id, int as_json)
{
    (void)as_json;
    return job_watch(r, id);
}

static int jobs_watch(int argc, char **argv)
{
    return with_job(argc, argv, "hyper jobs watch ID", NULL, watch_fn);
}

static void show_job(const json_t *j)
{
    const char *state = str_of(j, "state", "?");
    char el[32], eta[32];
    fmt_duration(num_of(json_object_get(j, "elapsed_seconds")), el, sizeof el);
    fmt_duration(num_of(json_object_get(j, "eta_seconds")), eta, sizeof eta);
    const char *rate_key, *rate_unit;
    job_rate(j, &rate_key, &rate_unit);
    printf("id:          %s\n", str_of(j, "id", "?"));
    printf("state:       %s\n", state);
    printf("kind:        %s\n", str_of(j, "kind", "?"));
    printf("dataset:     %s\n", str_of(j, "dataset", "?"));
    printf("model:       %s\n", str_of(j, "model_name", "?"));
    printf("step:        %" JSON_INTEGER_FORMAT " of %" JSON_INTEGER_FORMAT " (%.0f%%)\n",
           json_integer_value(json_object_get(j, "step")), json_integer_value(json_object_get(j, "steps")),
           100 * num_of(json_object_get(j, "fraction")));
    printf("loss:        %.4f %s\n", num_of(json_object_get(j, "train_loss")), str_of(j, "loss_unit", ""));
    printf("validation:  %.4f %s\n", num_of(json_object_get(j, "val_loss")), str_of(j, "val_unit", ""));
    printf("speed:       %.0f %s\n", num_of(json_object_get(j, rate_key)), rate_unit);
    printf("elapsed:     %s%s%s\n", el, strcmp(state, "running") == 0 ? ", ETA " : "",
           strcmp(state, "running") == 0 ? eta : "");
    const json_t *ck = json_object_get(j, "checkpoint_step");
    if (json_is_integer(ck))
        printf("checkpoint:  step %" JSON_INTEGER_FORMAT "\n", json_integer_value(ck));
    printf("created:     %s\n", str_of(j, "created_at", "-"));
    printf("started:     %s\n", str_of(j, "started_at", "-"));
    printf("finished:    %s\n", str_of(j, "finished_at", "-"));
    if (json_is_string(json_object_get(j, "error")))
        printf("error:       %s\n", str_of(j, "error", ""));
}

static int get_fn(remote *r, const char *id, int as_json)
{
    char path[PATH_MAX_BYTES];
    json_t *j = NULL;
    if (path_with(r, path, sizeof path, "/v1/jobs/", id, "") < 0)
        return REMOTE_USAGE;
    int rc = remote_json(r, "GET", path, NULL, &j);
    if (rc == REMOTE_OK) {
        if (as_json)
            print_json(j);
        else
            show_job(j);
    }
    json_decref(j);
    return rc;
}

static int jobs_get(int argc, char **argv)
{
    int as_json = 0;
    return with_job(argc, argv, "hyper jobs get ID [--json]", &as_json, get_fn);
}

static int cancel_fn(remote *r, const char *id, int as_json)
{
    (void)as_json;
    char path[PATH_MAX_BYTES];
    json_t *j = NULL;
    if (path_with(r, path, sizeof path, "/v1/jobs/", id, "/cancel") < 0)
        return REMOTE_USAGE;
    int rc = remote_json(r, "POST", path, NULL, &j);
    if (rc == REMOTE_OK) {
        const char *state = str_of(j, "state", "?");
        if (strcmp(state, "running") == 0)
            printf("job %s: cancelling (it stops at its next step)\n", id);
        else
            printf("job %s: %s\n", id, state);
    }
    json_decref(j);
    return rc;
}

static int jobs_cancel(int argc, char **argv)
{
    return with_job(argc, argv, "hyper jobs cancel ID", NULL, cancel_fn);
}

static int jobs_delete(int argc, char **argv)
{
    return delete_command(argc, argv, "/v1/jobs/", "job", "hyper jobs delete ID");
}

static void show_jobs(const json_t *rep)
{
    const json_t *arr = json_object_get(rep, "jobs");
    int wi = column_width(arr, "id", 2), wm = column_width(arr, "model_name", 5), wd = column_width(arr, "dataset", 7);
    printf("%-*s  %-9s  %-11s  %-*s  %-*s  %17s  %8s  %8s\n", wi, "ID", "STATE", "KIND", wm, "MODEL", wd, "DATASET",
           "STEP", "LOSS", "VAL");
    size_t k;
    json_t *j;
    json_array_foreach(arr, k, j) {
        char step[48], loss[32] = "-", val[32] = "-";
        snprintf(step, sizeof step, "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
                 json_integer_value(json_object_get(j, "step")), json_integer_value(json_object_get(j, "steps")));
        if (json_is_number(json_object_get(j, "train_loss")))
            snprintf(loss, sizeof loss, "%.4f", num_of(json_object_get(j, "train_loss")));
        if (json_is_number(json_object_get(j, "val_loss")))
            snprintf(val, sizeof val, "%.4f", num_of(json_object_get(j, "val_loss")));
        printf("%-*s  %-9s  %-11s  %-*s  %-*s  %17s  %8s  %8s\n", wi, str_of(j, "id", "?"), str_of(j, "state", "?"),
               str_of(j, "kind", "?"), wm, str_of(j, "model_name", "?"), wd, str_of(j, "dataset", "?"), step, loss, val);
    }
}

static int jobs_list(int argc, char **argv)
{
    conn_opts co;
    conn_defaults(&co);
    int as_json = 0;
    const opt_spec opts[] = {{"--json", NULL, OPT_FLAG, &as_json, "the server's reply as it is"}, CONN_OPTS(co), OPTS_END};
    if (parse_opts(argc, argv, opts, NULL, 0, "hyper jobs [list] [--json]") < 0)
        return REMOTE_USAGE;
    return list_command(&co, "/v1/jobs", as_json, show_jobs);
}

int remote_jobs(int argc, char **argv)
{
    static const subcommand subs[] = {
        {"list", jobs_list, "list [--json]           the jobs (the default)"},
        {"submit", jobs_submit, "submit [options] [--watch]  start training (--help lists the options)"},
        {"get", jobs_get, "get ID [--json]         one job's state, losses, speed and times"},
        {"watch", jobs_watch, "watch ID                follow a job: progress bar, loss, ETA; exit 1 unless it succeeds"},
        {"cancel", jobs_cancel, "cancel ID               stop a job"},
        {"delete", jobs_delete, "delete ID               remove a finished job's record"},
        {NULL, NULL, NULL}};
    return dispatch("jobs", subs, "list", argc, argv);
}

/* ---- handwrite --server ------------------------------------------------------------------ */

int remote_handwrite_wanted(int argc, char **argv)
{
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--server") || !strcmp(argv[i], "--url") || !strncmp(argv[i], "--server=", 9) ||
            !strncmp(argv[i], "--url=", 6))
            return 1;
    return 0;
}

/* The strokes of a --prime file's first line (new), or NULL after saying why.  The file is
 * one hyper train reads ([{"strokes": ...}, ...]), one handwrite --out .json writes
 * ({"strokes": ...}), or bare strokes [[[x, y], ...], ...]. */
static json_t *load_prime(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j) {
        json_file_error("--prime", path, &e);
        return NULL;
    }
    json_t *s = j;
    if (json_is_array(j) && json_is_object(json_array_get(j, 0)))
        s = json_object_get(json_array_get(j, 0), "strokes");
    else if (json_is_object(j))
        s = json_object_get(j, "strokes");
    if (!json_is_array(s)) {
        fprintf(stderr, "hyper: --prime: %s holds no strokes ([{\"strokes\": [[[x, y], ...], ...]}])\n", path);
        json_decref(j);
        return NULL;
    }
    json_incref(s);
    json_decref(j);
    return s;
}

/* Writes the drawing to out (stdout when NULL): .json the strokes, else the SVG. */
static int write_drawing(const json_t *rep, const char *out)
{
    size_t olen = out ? strlen(out) : 0;
    const int as_json = olen > 5 && strcasecmp(out + olen - 5, ".json") == 0;
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) {
        fprintf(stderr, "hyper: --out %s: %s\n", out, strerror(errno));
        return REMOTE_FAILED;
    }
    int bad = 0;
    if (as_json) {
        json_t *o = json_pack("{s:O, s:O, s:O}", "strokes", json_object_get(rep, "strokes"), "points",
                              json_object_get(rep, "points"), "seed", json_object_get(rep, "seed"));
        bad = !o || json_dumpf(o, f, JSON_REAL_PRECISION(8)) != 0 || fputc('\n', f) == EOF;
        json_decref(o);
    } else {
        bad = fputs(str_of(rep, "svg", ""), f) == EOF;
    }
    if ((out ? fclose(f) : fflush(f)) != 0 || bad) {
        fprintf(stderr, "hyper: --out %s: %s\n", out ? out : "(stdout)", strerror(errno));
        return REMOTE_FAILED;
    }
    return REMOTE_OK;
}

int remote_handwrite(int argc, char **argv)
{
    conn_opts co;
    conn_defaults(&co);
    const char *model = NULL, *out = NULL, *prime = NULL;
    int64_t points = UNSET, seed = UNSET;
    double bias = NAN, temperature = NAN;
    const opt_spec opts[] = {
        {"--server", "--url", OPT_STR, &co.url, "draw on this hyperd (HYPERD_URL; " DEFAULT_URL ")"},
        {"--api-key", NULL, OPT_STR, &co.api_key, KEY_HELP},
        {"--model", NULL, OPT_STR, &model, "a handwriting model the server has (its default)"},
        {"--out", NULL, OPT_STR, &out, "FILE.svg, or FILE.json for the strokes (default: SVG on stdout)"},
        {"-n", "--points", OPT_I64, &points, "points to draw (700)"},
        {"--bias", NULL, OPT_DBL, &bias, "sampling bias, 0 = as trained, higher = neater (0)"},
        {"--temperature", NULL, OPT_DBL, &temperature, "(1.0)"},
        {"--seed", NULL, OPT_I64, &seed, "sampling seed (default: the server draws one; it is printed)"},
        {"--prime", NULL, OPT_STR, &prime, "JSON strokes file whose first line the pen continues"},
        OPTS_END};
    const char *usage = "hyper handwrite --server URL [--model NAME] [--bias B] [--seed S] [-n POINTS] "
                        "[--prime FILE.json] [--out FILE.svg|FILE.json]";
    if (parse_opts(argc, argv, opts, NULL, 0, usage) < 0)
        return REMOTE_USAGE;
    json_t *body = json_object(), *rep = NULL, *pr = NULL;
    if (set_str(body, "model", model, "--model") < 0 || (prime && !(pr = load_prime(prime)))) {
        json_decref(body);
        return REMOTE_USAGE;
    }
    set_int(body, "max_points", points);
    set_num(body, "bias", bias);
    set_num(body, "temperature", temperature);
    set_int(body, "seed", seed);
    if (pr)
        json_object_set_new(body, "prime", pr);
    json_object_set_new(body, "format", json_string("json")); /* strokes, SVG and the seed */
    remote r;
    int rc = remote_open(&r, &co);
    if (rc == REMOTE_OK)
        rc = remote_json(&r, "POST", "/v1/handwriting/sample", body, &rep);
    if (rc == REMOTE_OK)
        rc = write_drawing(rep, out);
    if (rc == REMOTE_OK && out)
        fprintf(stderr, "wrote %s: %" JSON_INTEGER_FORMAT " points in %zu strokes with %s (seed %" JSON_INTEGER_FORMAT ")\n",
                out, json_integer_value(json_object_get(rep, "points")), json_array_size(json_object_get(rep, "strokes")),
                str_of(rep, "model", "?"), json_integer_value(json_object_get(rep, "seed")));
    json_decref(rep);
    json_decref(body);
    remote_close(&r);
    return rc;
}
