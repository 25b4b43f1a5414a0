/*
 * daemon_fixture.c — the shared fixture of the black-box tests (daemon_fixture.h).
 */
#include "daemon_fixture.h"
#include <check.h>
#include <curl/curl.h>
#include <expat.h>
#include <jansson.h>
#include <png.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include "checkpoint.h"
#include "classifier.h"
#include "handwriting.h"
#include "images.h"
#include "mdn.h"
#include "model.h"
#include "sampler.h"
#include "strokes.h"
#include "trainer.h"
#include "vocab.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

/* Letters, digits, space, newline and punctuation; 'é' and '~' are not in it. */



long proc_status(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    long v = -1;
    const size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    fclose(f);
    ck_assert_msg(v >= 0, "%s has no %s", path, field);
    return v;
}

double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ---- the model ------------------------------------------------------------------------ */

char root[64];              /* this test case's temporary directory */
char model_path[128];       /* root/charlm.safetensors: the model "charlm" */
char hw_model_path[128];    /* root/handwriting.safetensors: loaded by the daemons of
                                    * the handwriting tests only (a second --models) */

/* Writes a tiny lnhyperlstm (1 layer, N 32, H 16, Z 4) over the vocabulary of CORPUS,
 * initialised as the trainer would and then perturbed, so that its text varies. */
void model_write(const char *path)
{
    char err[HYPER_ERRMSG_MAX];
    vocab v;
    ck_assert_msg(vocab_build(&v, CORPUS, strlen(CORPUS), err) == HYPER_OK, "vocab_build: %s", err);
    model_config cfg = {CELL_LNHYPERLSTM, 1, 32, 16, 4, 0, v.size};
    model m;
    ck_assert_msg(model_create(&m, &cfg, err) == HYPER_OK, "model_create: %s", err);
    model_init(&m, 1);
    hyper_rng rng;
    hyper_rng_seed(&rng, 2);
    for (size_t k = 0; k < m.size; k++)
        m.block[k] += (real)(0.3 * hyper_rng_normal(&rng));
    ck_assert_msg(checkpoint_save(path, &m, &v, NULL, 0, NULL, 0, err) == HYPER_OK,
                  "checkpoint_save: %s", err);
    model_free(&m);
    vocab_free(&v);
}

/* The handwriting model's normalisation, written into its metadata as the trainer does. */
const stroke_stats hw_stats = {0.5, -0.25, 2.0, 1.5};

/* Writes a tiny handwriting model (lnhyperlstm, 1 layer, N 16, H 8, Z 2, inputs (dx, dy,
 * eos), a head of 3 mixtures), initialised as the trainer would and slightly perturbed. */
void hw_model_write(const char *path)
{
    char err[HYPER_ERRMSG_MAX];
    model_config cfg = {CELL_LNHYPERLSTM, 1, 16, 8, 2, 3, mdn_outputs(3)};
    model m;
    ck_assert_msg(model_create(&m, &cfg, err) == HYPER_OK, "model_create: %s", err);
    model_init(&m, 3);
    hyper_rng rng;
    hyper_rng_seed(&rng, 4);
    for (size_t k = 0; k < m.size; k++)
        m.block[k] += (real)(0.1 * hyper_rng_normal(&rng));
    char v[4][32];
    const double stats[4] = {hw_stats.mean_x, hw_stats.mean_y, hw_stats.std_x, hw_stats.std_y};
    for (int k = 0; k < 4; k++)
        snprintf(v[k], sizeof v[k], "%.17g", stats[k]);
    const ckpt_kv meta[] = {{"kind", "handwriting"}, {"strokes.mean_x", v[0]},
                            {"strokes.mean_y", v[1]}, {"strokes.std_x", v[2]},
                            {"strokes.std_y", v[3]}};
    ck_assert_msg(checkpoint_save(path, &m, NULL, meta, 5, NULL, 0, err) == HYPER_OK,
                  "checkpoint_save: %s", err);
    model_free(&m);
}


void ref_open(ref_model *r)
{
    char err[HYPER_ERRMSG_MAX];
    ck_assert_msg(checkpoint_load(model_path, &r->m, &r->v, err) == HYPER_OK, "load: %s", err);
    ck_assert_msg(model_state_init(&r->st, &r->m.cfg, 1, err) == HYPER_OK, "state: %s", err);
    r->ws = model_step_ws_new(&r->m.cfg, 1);
    r->logits = malloc((size_t)r->m.cfg.outputs * sizeof(real));
    r->scratch = malloc(sampler_scratch_size(r->m.cfg.outputs));
    ck_assert(r->ws && r->logits && r->scratch);
    model_logits(&r->m, r->st.h[r->m.cfg.layers - 1], 1, r->logits);
}

void ref_close(ref_model *r)
{
    model_step_ws_free(r->ws);
    free(r->logits);
    free(r->scratch);
    model_state_free(&r->st);
    vocab_free(&r->v);
    model_free(&r->m);
}

/* Reads text; returns Σ −log2 p of its characters. */
double ref_feed(ref_model *r, const char *text)
{
    double bits = 0;
    for (const char *c = text; *c; c++) {
        int32_t id = vocab_id(&r->v, (unsigned char)*c);
        ck_assert_int_ge(id, 0);
        bits -= sampler_log2_prob(r->logits, r->m.cfg.outputs, id);
        model_step(&r->m, &r->st, r->ws, 1, &id, NULL, r->logits);
    }
    return bits;
}

/* Samples n characters (each read back into the state); returns them (new string). */
char *ref_generate(ref_model *r, int n, const sampler_params *sp, hyper_rng *rng)
{
    char *text = calloc((size_t)n * 4 + 1, 1);
    size_t len = 0;
    for (int k = 0; k < n; k++) {
        int32_t id = sampler_sample(r->logits, r->m.cfg.outputs, sp, rng, r->scratch);
        ck_assert_int_ge(id, 0);
        len += (size_t)vocab_decode(&r->v, id, text + len);
        model_step(&r->m, &r->st, r->ws, 1, &id, NULL, r->logits);
    }
    return text;
}

/* ---- temporary directories ------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

void root_make(void)
{
    snprintf(root, sizeof root, "/tmp/hyperd-test-XXXXXX");
    ck_assert_msg(mkdtemp(root) != NULL, "mkdtemp: %s", strerror(errno));
    snprintf(model_path, sizeof model_path, "%s/charlm.safetensors", root);
    model_write(model_path);
    snprintf(hw_model_path, sizeof hw_model_path, "%s/handwriting.safetensors", root);
    hw_model_write(hw_model_path);
}

void root_remove(void)
{
    if (root[0])
        nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    root[0] = 0;
}

/* ---- the daemon process --------------------------------------------------------------- */


static const char *hyperd_binary(void)
{
    const char *b = getenv("HYPERD");
    return b && *b ? b : "build/hyperd";
}

/* A daemon that will keep its data in root/name, with the extra flags given. */
void hyperd_init(hyperd_proc *p, const char *name, const char *const *flags)
{
    memset(p, 0, sizeof *p);
    snprintf(p->dir, sizeof p->dir, "%s/%.32s", root, name);
    snprintf(p->log, sizeof p->log, "%s/%.32s.log", root, name);
    for (int k = 0; flags && flags[k] && k < 15; k++)
        p->flags[k] = flags[k];
}

/* The last bytes of the daemon's log, for failure messages (static buffer). */
const char *hyperd_log_tail(const hyperd_proc *p)
{
    static char tail[1501];
    tail[0] = 0;
    int fd = open(p->log, O_RDONLY);
    if (fd < 0)
        return "(no log)";
    off_t end = lseek(fd, 0, SEEK_END);
    lseek(fd, end > 1500 ? end - 1500 : 0, SEEK_SET);
    ssize_t n = read(fd, tail, 1500);
    close(fd);
    tail[n > 0 ? n : 0] = 0;
    return tail;
}

/* Execs the daemon in the child: stdout to the pipe, stderr to the log, HYPERD_* variables
 * of our environment removed so that only the flags configure it. */
static void hyperd_exec(const hyperd_proc *p, int out_fd, pid_t parent)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int log = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(out_fd, 1);
    if (log >= 0)
        dup2(log, 2);
    const char *argv[32];
    int n = 0;
    argv[n++] = hyperd_binary();
    /* No built-in mnist unless a test case asks for it (a later --mnist-dir): reading the
     * digits takes seconds of every start, and only the classifier tests use them. */
    const char *fixed[] = {"--host", "127.0.0.1", "--port", "0", "--data-dir", p->dir,
                           "--models", model_path, "--mnist-dir", ""};
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++)
        argv[n++] = fixed[k];
    for (int k = 0; p->flags[k]; k++)
        argv[n++] = p->flags[k];
    argv[n] = NULL;
    char *envp[256];
    int ne = 0;
    for (char **e = environ; *e && ne < 255; e++)
        if (strncmp(*e, "HYPERD_", 7) != 0)
            envp[ne++] = *e;
    envp[ne] = NULL;
    execve(argv[0], (char *const *)argv, envp);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* Starts the daemon and waits for its one stdout line "hyperd listening on
 * http://127.0.0.1:PORT".  Returns 0, or -1 with the reason in why (the daemon is gone). */
int hyperd_start(hyperd_proc *p, char *why, size_t whylen)
{
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
        snprintf(why, whylen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        hyperd_exec(p, fds[1], parent);
    close(fds[1]);
    if (pid < 0) {
        close(fds[0]);
        snprintf(why, whylen, "fork: %s", strerror(errno));
        return -1;
    }
    char line[256];
    size_t len = 0;
    double deadline = now_s() + START_TIMEOUT_S;
    const char *fault = NULL;
    while (!memchr(line, '\n', len) && !fault) {
        int left = (int)((deadline - now_s()) * 1e3);
        struct pollfd pf = {fds[0], POLLIN, 0};
        int rc = left > 0 ? poll(&pf, 1, left) : 0;
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            fault = "no 'listening' line within the time limit";
            break;
        }
        ssize_t r = read(fds[0], line + len, sizeof line - 1 - len);
        if (r <= 0)
            fault = "it closed stdout (exited?) before saying where it listens";
        else if ((len += (size_t)r) == sizeof line - 1)
            fault = "its first stdout line is too long";
    }
    close(fds[0]);
    line[len] = 0;
    int port = 0, used = 0;
    if (!fault && (sscanf(line, "hyperd listening on http://127.0.0.1:%d\n%n", &port, &used) != 1 ||
                   used != (int)len || port <= 0 || port > 65535))
        fault = "its stdout is not exactly one line 'hyperd listening on http://127.0.0.1:PORT'";
    if (fault) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        snprintf(why, whylen, "%s %s: %s; stdout: '%s'; log: %s", hyperd_binary(), p->dir, fault,
                 line, hyperd_log_tail(p));
        return -1;
    }
    p->pid = pid;
    p->port = port;
    return 0;
}

/* Sends SIGTERM and waits (STOP_TIMEOUT_S, then SIGKILL).  Returns the wait status, or -1
 * when it had to be killed. */
int hyperd_stop(hyperd_proc *p)
{
    if (p->pid <= 0)
        return -1;
    kill(p->pid, SIGTERM);
    int status = -1;
    double deadline = now_s() + STOP_TIMEOUT_S;
    for (;;) {
        pid_t w = waitpid(p->pid, &status, WNOHANG);
        if (w == p->pid)
            break;
        if (w < 0 && errno != EINTR) {
            status = -1;
            break;
        }
        if (now_s() > deadline) {
            kill(p->pid, SIGKILL);
            waitpid(p->pid, NULL, 0);
            status = -1;
            break;
        }
        sleep_ms(5);
    }
    p->pid = 0;
    return status;
}



/* ---- HTTP ------------------------------------------------------------------------------ */




size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    size_t len = size * n;
    char *b = realloc(r->body, r->len + len + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, data, len);
    r->body = b;
    r->len += len;
    b[r->len] = 0;
    return len;
}

/* Copies the value of header "name: value" into out when line is that header. */
void header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return;
    const char *v = line + n + 1;
    size_t vl = len - n - 1;
    while (vl && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
        vl--;
    snprintf(out, cap, "%.*s", (int)vl, v);
}

size_t on_header(char *line, size_t size, size_t n, void *arg)
{
    reply *r = arg;
    header_value(line, size * n, "Content-Type", r->content_type, sizeof r->content_type);
    header_value(line, size * n, "Allow", r->allow, sizeof r->allow);
    header_value(line, size * n, "WWW-Authenticate", r->www_auth, sizeof r->www_auth);
    return size * n;
}

static size_t on_upload(char *buf, size_t size, size_t n, void *arg)
{
    upload *u = arg;
    size_t len = u->len - u->off < size * n ? u->len - u->off : size * n;
    memcpy(buf, u->data + u->off, len);
    u->off += len;
    return len;
}

/* Sets up handle h for method path (body may be NULL); the header list is returned for
 * the caller to free after the transfer. */
struct curl_slist *http_setup(CURL *h, const hyperd_proc *p, const char *method,
                                     const char *path, const char *body, const req_opts *o,
                                     upload *up)
{
    char url[24576]; /* room for URLs past hyperd's limit of 16 KiB */
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", p->port, path);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, HTTP_TIMEOUT_S);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    struct curl_slist *hd = curl_slist_append(NULL, "Expect:");
    char line[512];
    if (o && o->auth) {
        snprintf(line, sizeof line, "Authorization: %s", o->auth);
        hd = curl_slist_append(hd, line);
    }
    if (o && o->accept) {
        snprintf(line, sizeof line, "Accept: %s", o->accept);
        hd = curl_slist_append(hd, line);
    }
    if (o && o->last_event_id) {
        snprintf(line, sizeof line, "Last-Event-ID: %s", o->last_event_id);
        hd = curl_slist_append(hd, line);
    }
    if (o && o->path_as_is)
        curl_easy_setopt(h, CURLOPT_PATH_AS_IS, 1L);
    if (body) {
        const char *ct = o && o->content_type ? o->content_type : "application/json";
        const size_t len = o && o->body_len ? o->body_len : strlen(body);
        snprintf(line, sizeof line, "Content-Type:%s%s", *ct ? " " : "", ct);
        hd = curl_slist_append(hd, line);
        if (o && o->chunked) {
            up->data = body;
            up->len = len;
            up->off = 0;
            hd = curl_slist_append(hd, "Transfer-Encoding: chunked");
            curl_easy_setopt(h, CURLOPT_POST, 1L);
            curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
            curl_easy_setopt(h, CURLOPT_READDATA, up);
        } else {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)len);
        }
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    return hd;
}

reply http_req(const hyperd_proc *p, const char *method, const char *path,
                      const char *body, const req_opts *o)
{
    reply r;
    memset(&r, 0, sizeof r);
    snprintf(r.what, sizeof r.what, "%s %s", method, path);
    r.body = calloc(1, 1);
    CURL *h = curl_easy_init();
    ck_assert_ptr_nonnull(h);
    upload up;
    struct curl_slist *hd = http_setup(h, p, method, path, body, o, &up);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &r);
    r.rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    if (r.len)
        r.json = json_loadb(r.body, r.len, 0, NULL);
    return r;
}

void reply_free(reply *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

reply http_get(const hyperd_proc *p, const char *path)
{
    return http_req(p, "GET", path, NULL, NULL);
}

reply http_post(const hyperd_proc *p, const char *path, const char *body)
{
    return http_req(p, "POST", path, body, NULL);
}

/* Posts the json_pack of fmt and its arguments. */
reply http_postf(const hyperd_proc *p, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_error_t e;
    json_t *j = json_vpack_ex(&e, 0, fmt, ap);
    va_end(ap);
    ck_assert_msg(j != NULL, "json_pack %s: %s", fmt, e.text);
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    reply r = http_post(p, path, body);
    free(body);
    return r;
}


path_buf at(const char *id, const char *tail)
{
    path_buf b;
    snprintf(b.s, sizeof b.s, "/v1/sessions/%s%s", id, tail);
    return b;
}

/* ---- checks with the reply in the message ------------------------------------------------- */


/* The one error shape: {"error": {"code": status, "type": type, "message": "...part..."}}. */
void expect_error_at(int line, const reply *r, int status, const char *type,
                            const char *part)
{
    ck_assert_msg(r->status == status, "line %d: %s: HTTP %ld, want %d; body: %.1500s", line,
                  r->what, r->status, status, r->body);
    json_t *e = json_object_get(r->json, "error");
    json_t *code = json_object_get(e, "code"), *t = json_object_get(e, "type");
    json_t *m = json_object_get(e, "message");
    ck_assert_msg(json_is_object(r->json) && json_object_size(r->json) == 1 && json_is_object(e) &&
                      json_object_size(e) == 3 && json_is_integer(code) &&
                      json_integer_value(code) == status && json_is_string(t) &&
                      json_is_string(m),
                  "line %d: %s: not the error shape {\"error\":{\"code\":%d,\"type\",\"message\"}}: "
                  "%.1500s", line, r->what, status, r->body);
    ck_assert_msg(strcmp(json_string_value(t), type) == 0, "line %d: %s: error type '%s', want '%s'",
                  line, r->what, json_string_value(t), type);
    ck_assert_msg(strstr(json_string_value(m), part) != NULL,
                  "line %d: %s: error message '%s' does not mention '%s'", line, r->what,
                  json_string_value(m), part);
    ck_assert_msg(strncmp(r->content_type, "application/json", 16) == 0,
                  "line %d: %s: error Content-Type '%s'", line, r->what, r->content_type);
}

/* Fields of a JSON reply, checked for their type. */
json_int_t jint_at(int line, const reply *r, const char *key)
{
    json_t *v = json_object_get(r->json, key);
    ck_assert_msg(json_is_integer(v), "line %d: %s: '%s' is not an integer in %.1500s", line,
                  r->what, key, r->body);
    return json_integer_value(v);
}

const char *jstr_at(int line, const reply *r, const char *key)
{
    json_t *v = json_object_get(r->json, key);
    ck_assert_msg(json_is_string(v), "line %d: %s: '%s' is not a string in %.1500s", line,
                  r->what, key, r->body);
    return json_string_value(v);
}

double jnum_at(int line, const reply *r, const char *key)
{
    json_t *v = json_object_get(r->json, key);
    ck_assert_msg(json_is_number(v), "line %d: %s: '%s' is not a number in %.1500s", line,
                  r->what, key, r->body);
    return json_number_value(v);
}

/* ---- session helpers ------------------------------------------------------------------- */

hyperd_proc srv;            /* the test case's daemon */

/* Creates a session (with seed when seed >= 0) and copies its id into id. */
void session_new_at(int line, const hyperd_proc *p, int64_t seed, char *id)
{
    reply r = seed >= 0 ? http_postf(p, "/v1/sessions", "{s:I}", "seed", (json_int_t)seed)
                        : http_post(p, "/v1/sessions", "{}");
    ck_assert_msg(r.status == 201, "line %d: %s: HTTP %ld, want 201; body: %s", line, r.what,
                  r.status, r.body);
    const char *s = jstr(r, "id");
    ck_assert_msg(strlen(s) == ID_LEN && strspn(s, "0123456789abcdef") == ID_LEN,
                  "line %d: session id '%s' is not %d lowercase hex digits", line, s, ID_LEN);
    memcpy(id, s, ID_LEN + 1);
    reply_free(&r);
}

/* GET /v1/sessions/{id}: the session's chars_seen and busy. */
void session_state_at(int line, const hyperd_proc *p, const char *id, json_int_t *seen,
                             int *busy)
{
    reply r = http_get(p, at(id, "").s);
    ck_assert_msg(r.status == 200, "line %d: %s: HTTP %ld; body: %s", line, r.what, r.status, r.body);
    json_t *b = json_object_get(r.json, "busy");
    ck_assert_msg(json_is_boolean(b), "line %d: no busy in %s", line, r.body);
    if (seen)
        *seen = jint(r, "chars_seen");
    if (busy)
        *busy = json_is_true(b);
    reply_free(&r);
}

/* Waits up to timeout_s for the session to be free; returns the seconds it took, or -1. */
double wait_not_busy(const hyperd_proc *p, const char *id, double timeout_s)
{
    double t0 = now_s();
    for (;;) {
        int busy = 1;
        session_state(p, id, NULL, &busy);
        if (!busy)
            return now_s() - t0;
        if (now_s() - t0 > timeout_s)
            return -1;
        sleep_ms(10);
    }
}

/* Generates max_chars characters at temperature 1 (reseeding when seed >= 0); checks the
 * reply and returns the text (new string). */
char *generate_at(int line, const hyperd_proc *p, const char *id, int max_chars,
                         int64_t seed)
{
    reply r = seed >= 0 ? http_postf(p, at(id, "/generate").s, "{s:i, s:I}", "max_chars",
                                     max_chars, "seed", (json_int_t)seed)
                        : http_postf(p, at(id, "/generate").s, "{s:i}", "max_chars", max_chars);
    ck_assert_msg(r.status == 200, "line %d: %s: HTTP %ld; body: %.1500s", line, r.what, r.status,
                  r.body);
    ck_assert_msg(strcmp(jstr(r, "finish_reason"), "length") == 0 && jint(r, "chars") == max_chars,
                  "line %d: %s: want %d characters and finish_reason length: %.1500s", line,
                  r.what, max_chars, r.body);
    char *text = strdup(jstr(r, "text"));
    ck_assert_msg(strlen(text) == (size_t)max_chars, "line %d: %zu bytes of text for %d characters",
                  line, strlen(text), max_chars);
    reply_free(&r);
    return text;
}


/* ---- streamed generations ------------------------------------------------------------- */


static void stream_bad(stream_call *s, const char *why, const char *ev, size_t len)
{
    if (s->nbad++ == 0)
        snprintf(s->bad, sizeof s->bad, "%s: '%.*s'", why, (int)(len > 200 ? 200 : len), ev);
}

/* An event's "hyper" (include_hyper): an array of n activities [i, g, f, o] (n < 0: one
 * activity, not in an array), each a finite number ≥ 0. */
int hyper_valid(const json_t *h, int n)
{
    if (n < 0) {
        if (!json_is_array(h) || json_array_size(h) != 4)
            return 0;
        for (size_t g = 0; g < 4; g++) {
            json_t *v = json_array_get(h, g);
            if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0)
                return 0;
        }
        return 1;
    }
    if (!json_is_array(h) || json_array_size(h) != (size_t)n)
        return 0;
    for (int k = 0; k < n; k++)
        if (!hyper_valid(json_array_get(h, (size_t)k), -1))
            return 0;
    return 1;
}

/* A point event of a handwriting stream: {"x", "y", "dx", "dy" (finite numbers), "eos"
 * (true or false)}, with "hyper" (one activity) when include_hyper asked, and nothing else. */
static int hw_point_event(const json_t *j)
{
    json_t *h = json_object_get(j, "hyper");
    if (h && !hyper_valid(h, -1))
        return 0;
    static const char *const keys[] = {"x", "y", "dx", "dy"};
    for (int k = 0; k < 4; k++) {
        json_t *v = json_object_get(j, keys[k]);
        if (!json_is_number(v) || !isfinite(json_number_value(v)))
            return 0;
    }
    return json_object_size(j) == (h ? 6u : 5u) && json_is_boolean(json_object_get(j, "eos"));
}

/* One SSE event ("data: {...}") or NDJSON line. */
static void stream_event(stream_call *s, const char *ev, size_t len)
{
    if (!s->ndjson && len > 0 && ev[0] == ':') {
        s->ncomments++; /* an SSE comment: a heartbeat while nothing else comes (a long prompt or prime) */
        return;
    }
    if (!s->ndjson) {
        if (len < 6 || memcmp(ev, "data: ", 6) != 0 || memchr(ev, '\n', len)) {
            stream_bad(s, "not one 'data: ' line", ev, len);
            return;
        }
        ev += 6, len -= 6;
    }
    json_t *j = json_loadb(ev, len, 0, NULL);
    json_t *t = json_object_get(j, "text");
    if (!json_is_object(j) || s->done) {
        stream_bad(s, s->done ? "an event after the final one" : "not a JSON object", ev, len);
    } else if (json_is_string(t) && (json_object_size(j) == 1 ||
                                     (json_object_size(j) == 2 && json_object_get(j, "hyper")))) {
        json_t *h = json_object_get(j, "hyper");
        size_t chars = 0;
        for (const char *c = json_string_value(t); *c; c++)
            chars += ((unsigned char)*c & 0xC0) != 0x80;
        if (h && !hyper_valid(h, (int)chars))
            stream_bad(s, "hyper is not one activity per character of the text", ev, len);
        size_t n = json_string_length(t);
        s->text = realloc(s->text, s->text_len + n + 1);
        memcpy(s->text + s->text_len, json_string_value(t), n);
        s->text_len += n;
        s->text[s->text_len] = 0;
        if (s->ntext++ == 0)
            s->t_first = now_s();
        atomic_store(&s->seen, s->ntext);
    } else if (s->hw && hw_point_event(j)) {
        if (s->npoints++ == 0)
            s->t_first = now_s();
        s->ntext++; /* abort_after and stream_wait_text count points here */
        atomic_store(&s->seen, s->npoints);
    } else if (json_is_true(json_object_get(j, "done"))) {
        s->done = j;
        s->t_done = now_s();
    } else {
        stream_bad(s, s->hw ? "neither a point nor a done event" : "neither a text nor a done event",
                   ev, len);
    }
    if (j)
        json_array_append_new(s->events, j);
}

static size_t stream_write(char *data, size_t size, size_t n, void *arg)
{
    stream_call *s = arg;
    size_t len = size * n;
    if (!s->is_stream)
        return on_body(data, size, n, &s->head);
    s->pending = realloc(s->pending, s->pending_len + len + 1);
    memcpy(s->pending + s->pending_len, data, len);
    s->pending_len += len;
    const char *sep = s->ndjson ? "\n" : "\n\n";
    size_t seplen = strlen(sep);
    char *end;
    while ((end = memmem(s->pending, s->pending_len, sep, seplen)) != NULL) {
        size_t elen = (size_t)(end - s->pending);
        stream_event(s, s->pending, elen);
        memmove(s->pending, end + seplen, s->pending_len - elen - seplen);
        s->pending_len -= elen + seplen;
    }
    if ((s->abort_after && s->ntext >= s->abort_after) || atomic_load(&s->abort_now))
        return 0; /* curl closes the connection */
    return len;
}

static size_t stream_header(char *line, size_t size, size_t n, void *arg)
{
    stream_call *s = arg;
    on_header(line, size, n, &s->head);
    s->is_stream = strncmp(s->head.content_type, "text/event-stream", 17) == 0 ||
                   strncmp(s->head.content_type, "application/x-ndjson", 20) == 0;
    return size * n;
}

static int stream_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    (void)a, (void)b, (void)c, (void)d;
    stream_call *s = arg;
    return atomic_load(&s->abort_now) ? 1 : 0;
}

/* Prepares a streamed POST to path with the json_pack of fmt ("stream": true is added). */
static void stream_vinit(stream_call *s, const hyperd_proc *p, const char *path, int ndjson,
                         const char *fmt, va_list ap)
{
    memset(s, 0, sizeof *s);
    s->p = p;
    s->ndjson = ndjson;
    snprintf(s->path, sizeof s->path, "%s", path);
    json_error_t e;
    json_t *j = json_vpack_ex(&e, 0, fmt, ap);
    ck_assert_msg(j != NULL, "json_pack %s: %s", fmt, e.text);
    json_object_set_new(j, "stream", json_true());
    s->body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    s->events = json_array();
    s->text = calloc(1, 1);
    s->head.body = calloc(1, 1);
    snprintf(s->head.what, sizeof s->head.what, "POST %.80s %.100s", s->path, s->body);
}

/* Prepares a streamed generate on session id with the json_pack of fmt ("stream": true is
 * added). */
void stream_init(stream_call *s, const hyperd_proc *p, const char *id, int ndjson,
                        const char *fmt, ...)
{
    char path[200];
    snprintf(path, sizeof path, "/v1/sessions/%s/generate", id);
    va_list ap;
    va_start(ap, fmt);
    stream_vinit(s, p, path, ndjson, fmt, ap);
    va_end(ap);
}

/* Prepares a streamed drawing: POST path (the sample endpoint, or a handwriting session's
 * generate) with the json_pack of fmt ("stream": true is added). */
void hw_stream_init(stream_call *s, const hyperd_proc *p, const char *path, int ndjson,
                           const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    stream_vinit(s, p, path, ndjson, fmt, ap);
    va_end(ap);
    s->hw = 1;
}

void *stream_run(void *arg)
{
    stream_call *s = arg;
    s->h = curl_easy_init();
    upload up;
    const char *accept = s->ndjson ? "application/x-ndjson" : "text/event-stream";
    if (s->accept)
        accept = *s->accept ? s->accept : NULL;
    req_opts o = {.auth = s->auth, .accept = accept};
    struct curl_slist *hd = http_setup(s->h, s->p, "POST", s->path, s->body, &o, &up);
    curl_easy_setopt(s->h, CURLOPT_WRITEFUNCTION, stream_write);
    curl_easy_setopt(s->h, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(s->h, CURLOPT_HEADERFUNCTION, stream_header);
    curl_easy_setopt(s->h, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(s->h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(s->h, CURLOPT_XFERINFOFUNCTION, stream_progress);
    curl_easy_setopt(s->h, CURLOPT_XFERINFODATA, s);
    s->t_start = now_s();
    s->rc = curl_easy_perform(s->h);
    curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &s->status);
    s->head.status = s->status;
    s->head.rc = s->rc;
    curl_slist_free_all(hd);
    curl_easy_cleanup(s->h);
    s->h = NULL;
    if (s->is_stream && s->pending_len)
        stream_bad(s, "bytes after the last complete event", s->pending, s->pending_len);
    if (!s->is_stream && s->head.len)
        s->head.json = json_loadb(s->head.body, s->head.len, 0, NULL);
    atomic_store(&s->finished, 1);
    return NULL;
}

void stream_start(stream_call *s)
{
    ck_assert_int_eq(pthread_create(&s->thread, NULL, stream_run, s), 0);
}

void stream_join(stream_call *s)
{
    pthread_join(s->thread, NULL);
}

/* Waits up to timeout_s for the first text event; fails with what arrived otherwise. */
void stream_wait_text(stream_call *s, double timeout_s)
{
    double t0 = now_s();
    while (atomic_load(&s->seen) == 0 && !atomic_load(&s->finished) && now_s() - t0 < timeout_s)
        sleep_ms(2);
    ck_assert_msg(atomic_load(&s->seen) > 0,
                  "%s: no text event within %.1f s (HTTP %ld, curl %s, finished %d); body: %.500s",
                  s->head.what, timeout_s, s->status, curl_easy_strerror(s->rc),
                  atomic_load(&s->finished), s->head.body);
}

void stream_free(stream_call *s)
{
    free(s->body);
    free(s->pending);
    free(s->text);
    json_decref(s->events);
    reply_free(&s->head);
}

/* A stream that ran to its end: HTTP 200, the content type asked for, only well-formed
 * events, and a final done event with this finish_reason. */
void expect_stream_done_at(int line, const stream_call *s, const char *reason)
{
    ck_assert_msg(s->rc == CURLE_OK && s->status == 200,
                  "line %d: %s: HTTP %ld, curl: %s, after %d text event(s), %s final event, "
                  "%zu byte(s) of an incomplete one; body: %.1500s", line, s->head.what,
                  s->status, curl_easy_strerror(s->rc), s->ntext, s->done ? "with the" : "no",
                  s->pending_len, s->head.body);
    const char *ct = s->ndjson ? "application/x-ndjson" : "text/event-stream";
    ck_assert_msg(strncmp(s->head.content_type, ct, strlen(ct)) == 0,
                  "line %d: Content-Type '%s', want %s", line, s->head.content_type, ct);
    ck_assert_msg(s->nbad == 0, "line %d: %d malformed event(s), the first %s", line, s->nbad, s->bad);
    ck_assert_msg(s->done != NULL, "line %d: no done event after %d text event(s)", line, s->ntext);
    json_t *fr = json_object_get(s->done, "finish_reason");
    char *d = json_dumps(s->done, JSON_COMPACT);
    ck_assert_msg(json_is_string(fr) && strcmp(json_string_value(fr), reason) == 0,
                  "line %d: done event %s, want finish_reason '%s'", line, d, reason);
    ck_assert_msg(json_is_integer(json_object_get(s->done, "chars")) &&
                      json_is_object(json_object_get(s->done, "timings")),
                  "line %d: done event %s lacks chars or timings", line, d);
    free(d);
}

/* ---- fixtures ------------------------------------------------------------------------- */

/* Starts srv in the root made already, with the flags given. */
void serve_in_root(const char *const *flags)
{
    hyperd_init(&srv, "data", flags);
    char why[4096];
    if (hyperd_start(&srv, why, sizeof why) != 0) {
        root_remove(); /* the teardown does not run when the setup fails */
        ck_abort_msg("%s", why);
    }
}

/* Starts srv in a fresh root with the flags given. */
void serve(const char *const *flags)
{
    root_make();
    serve_in_root(flags);
}

void setup_plain(void)
{
    static const char *const flags[] = {"--max-chars-per-request", "100000", "--max-body-bytes",
                                        "262144", NULL};
    serve(flags);
}

void setup_auth(void)
{
    static const char *const flags[] = {"--api-key", API_KEY, NULL};
    serve(flags);
}

void setup_limits(void)
{
    static const char *const flags[] = {"--max-sessions", "2", "--max-body-bytes", "1024",
                                        "--max-chars-per-request", "1000000", NULL};
    serve(flags);
}

/* Tests that start their own daemons get a root only. */
void setup_root(void)
{
    root_make();
    memset(&srv, 0, sizeof srv);
}

static int unclean_exits;

/* Stops srv; it must still be alive and exit cleanly (a test may have crashed it).  A
 * failed check here would end the runner without a report, so it is counted instead. */
void teardown(void)
{
    if (srv.pid > 0) {
        int status = 0;
        pid_t w = waitpid(srv.pid, &status, WNOHANG);
        if (w == srv.pid) {
            srv.pid = 0;
            unclean_exits++;
            fprintf(stderr, "hyperd died during the tests (wait status %d); log: %s\n", status,
                    hyperd_log_tail(&srv));
        } else {
            int st = hyperd_stop(&srv);
            if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                unclean_exits++;
                fprintf(stderr, "hyperd did not exit cleanly on SIGTERM (wait status %d); log: %s\n",
                        st, hyperd_log_tail(&srv));
            }
        }
    }
    root_remove();
}

int daemon_unclean_exits(void)
{
    return unclean_exits;
}


/* The value of the sample "series value" in Prometheus text, or -1 when absent. */
double metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, series, n) == 0 && l[n] == ' ')
            return strtod(l + n + 1, NULL);
    return -1;
}

/* ---- helpers the endpoint files share --------------------------------------------------- */

TCase *tcase(Suite *s, const char *name, void (*setup)(void), double timeout)
{
    TCase *tc = tcase_create(name);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

int iso_utc_ms(const char *s)
{
    int y, mo, d, h, mi, sec, ms, n = 0;
    return sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &sec, &ms, &n) == 7 &&
           n == 24 && s[n] == 0;
}

void expect_refusals(const char *id, const char *tail, const bad_body *bad, size_t n,
                     const char *valid)
{
    for (size_t k = 0; k < n; k++) {
        reply r = http_post(&srv, at(id, tail).s, bad[k].body);
        expect_error(r, 400, "invalid_request", bad[k].part);
        reply_free(&r);
    }
    req_opts o = {.content_type = "text/plain"};
    reply r = http_req(&srv, "POST", at(id, tail).s, valid, &o);
    expect_error(r, 415, "unsupported_media_type", "text/plain");
    reply_free(&r);
    r = http_post(&srv, at("0123456789abcdef0123456789abcdef", tail).s, valid);
    expect_error(r, 404, "not_found", "0123456789abcdef0123456789abcdef");
    reply_free(&r);
    json_int_t seen;
    int busy;
    session_state(&srv, id, &seen, &busy);
    ck_assert_msg(seen == 0 && !busy, "refused %s requests left chars_seen %lld, busy %d", tail,
                  (long long)seen, busy);
}

void *call_run(void *arg)
{
    call *c = arg;
    pthread_barrier_wait(c->go);
    c->r = http_post(c->p, at(c->id, c->path_tail).s, c->body);
    return NULL;
}

void calls_run(call *c, int n)
{
    pthread_t th[BATCH_SESSIONS];
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, (unsigned)n);
    for (int k = 0; k < n; k++) {
        c[k].go = &go;
        ck_assert_int_eq(pthread_create(&th[k], NULL, call_run, &c[k]), 0);
    }
    for (int k = 0; k < n; k++)
        pthread_join(th[k], NULL);
    pthread_barrier_destroy(&go);
}

void setup_handwriting(void)
{
    static const char *const flags[] = {"--models", hw_model_path, "--max-body-bytes", "262144",
                                        NULL};
    serve(flags);
}

void hw_drawing_free(hw_drawing *d)
{
    free(d->xy);
    memset(d, 0, sizeof *d);
}

hw_drawing hw_drawing_at(int line, const reply *r)
{
    json_t *strokes = json_object_get(r->json, "strokes");
    ck_assert_msg(json_is_array(strokes) && json_array_size(strokes) > 0,
                  "line %d: %s: no strokes in %.1500s", line, r->what, r->body);
    hw_drawing d = {NULL, 0, (int)json_array_size(strokes)};
    size_t k, j;
    json_t *stroke, *pt;
    json_array_foreach(strokes, k, stroke) {
        ck_assert_msg(json_is_array(stroke) && json_array_size(stroke) > 0,
                      "line %d: stroke %zu is not a non-empty array: %.1500s", line, k, r->body);
        d.xy = realloc(d.xy, (size_t)(d.n + (int)json_array_size(stroke)) * 2 * sizeof *d.xy);
        json_array_foreach(stroke, j, pt) {
            json_t *x = json_array_get(pt, 0), *y = json_array_get(pt, 1);
            ck_assert_msg(json_array_size(pt) == 2 && json_is_number(x) && json_is_number(y) &&
                              isfinite(json_number_value(x)) && isfinite(json_number_value(y)),
                          "line %d: stroke %zu, point %zu is not [x, y] with finite numbers: %.1500s",
                          line, k, j, r->body);
            d.xy[2 * d.n] = json_number_value(x);
            d.xy[2 * d.n + 1] = json_number_value(y);
            d.n++;
        }
    }
    ck_assert_msg(d.n == jint_at(line, r, "points"),
                  "line %d: %d points in the strokes, \"points\" %lld", line, d.n,
                  (long long)jint_at(line, r, "points"));
    return d;
}

hw_drawing hw_stream_drawing_at(int line, const stream_call *s, int want)
{
    ck_assert_msg(s->rc == CURLE_OK && s->status == 200,
                  "line %d: %s: HTTP %ld, curl: %s, %d point event(s); body: %.1500s", line,
                  s->head.what, s->status, curl_easy_strerror(s->rc), s->npoints, s->head.body);
    const char *ct = s->ndjson ? "application/x-ndjson" : "text/event-stream";
    ck_assert_msg(strncmp(s->head.content_type, ct, strlen(ct)) == 0,
                  "line %d: Content-Type '%s', want %s", line, s->head.content_type, ct);
    ck_assert_msg(s->nbad == 0, "line %d: %d malformed event(s), the first %s", line, s->nbad, s->bad);
    ck_assert_msg(s->done != NULL, "line %d: no done event after %d point(s)", line, s->npoints);
    char *done = json_dumps(s->done, JSON_COMPACT);
    json_t *fr = json_object_get(s->done, "finish_reason");
    ck_assert_msg(s->npoints == want &&
                      json_integer_value(json_object_get(s->done, "points")) == want &&
                      json_is_string(fr) && strcmp(json_string_value(fr), "length") == 0,
                  "line %d: %d point events and the done event %s; want %d points, finish_reason "
                  "length", line, s->npoints, done, want);
    free(done);
    hw_drawing d = {calloc((size_t)want * 2 + 1, sizeof(double)), 0, 0};
    size_t k;
    json_t *e;
    int lifted = 1;
    json_array_foreach(s->events, k, e) {
        if (!json_object_get(e, "x"))
            continue;
        d.xy[2 * d.n] = json_number_value(json_object_get(e, "x"));
        d.xy[2 * d.n + 1] = json_number_value(json_object_get(e, "y"));
        d.n++;
        d.nstrokes += lifted;
        lifted = json_is_true(json_object_get(e, "eos"));
    }
    return d;
}

void expect_same_drawing_at(int line, const hw_drawing *a, const hw_drawing *b,
                            const char *what)
{
    ck_assert_msg(a->n == b->n, "line %d: %s: %d points against %d", line, what, a->n, b->n);
    for (int i = 0; i < 2 * a->n; i++)
        ck_assert_msg(a->xy[i] == b->xy[i], "line %d: %s: point %d: (%.2f, %.2f) against (%.2f, %.2f)",
                      line, what, i / 2, a->xy[i & ~1], a->xy[i | 1], b->xy[i & ~1], b->xy[i | 1]);
}

int drawings_equal(const hw_drawing *a, const hw_drawing *b)
{
    return a->n == b->n && memcmp(a->xy, b->xy, (size_t)a->n * 2 * sizeof *a->xy) == 0;
}

static void XMLCALL svg_open(void *user, const XML_Char *name, const XML_Char **attrs)
{
    svg_scan *c = user;
    if (c->depth++ == 0) {
        c->svg_root = strcmp(name, "svg") == 0;
    } else if (strcmp(name, "path") == 0) {
        c->paths++;
    } else if (strcmp(name, "tspan") == 0) {
        c->tspans++;
    } else if (strcmp(name, "polyline") == 0) {
        int pairs = 0;
        for (int k = 0; attrs[k]; k += 2)
            if (strcmp(attrs[k], "points") == 0)
                for (const char *q = attrs[k + 1]; *q; q++)
                    pairs += *q == ',';
        if (c->polylines < SVG_POLYLINES)
            c->polyline_points[c->polylines] = pairs;
        c->polylines++;
    }
}

static void XMLCALL svg_close(void *user, const XML_Char *name)
{
    (void)name;
    ((svg_scan *)user)->depth--;
}

svg_scan svg_read_at(int line, const char *doc, size_t len)
{
    XML_Parser x = XML_ParserCreate("UTF-8");
    ck_assert_ptr_nonnull(x);
    svg_scan c;
    memset(&c, 0, sizeof c);
    XML_SetUserData(x, &c);
    XML_SetElementHandler(x, svg_open, svg_close);
    int ok = XML_Parse(x, doc, (int)len, 1) == XML_STATUS_OK;
    char why[200];
    snprintf(why, sizeof why, "%s at line %lu", XML_ErrorString(XML_GetErrorCode(x)),
             (unsigned long)XML_GetCurrentLineNumber(x));
    XML_ParserFree(x);
    ck_assert_msg(ok, "line %d: the SVG is not well-formed XML (%s): %.500s", line, why, doc);
    ck_assert_msg(c.svg_root, "line %d: the document's root is not <svg>: %.300s", line, doc);
    return c;
}

void model_session_new_at(int line, const hyperd_proc *p, const char *model, int64_t seed,
                          char *id)
{
    reply r = seed >= 0 ? http_postf(p, "/v1/sessions", "{s:s, s:I}", "model", model, "seed",
                                     (json_int_t)seed)
                        : http_postf(p, "/v1/sessions", "{s:s}", "model", model);
    ck_assert_msg(r.status == 201, "line %d: %s: HTTP %ld, want 201; body: %s", line, r.what,
                  r.status, r.body);
    ck_assert_str_eq(jstr(r, "model"), model);
    snprintf(id, ID_LEN + 1, "%s", jstr(r, "id"));
    reply_free(&r);
}

json_int_t hw_points_seen_at(int line, const hyperd_proc *p, const char *id)
{
    reply r = http_get(p, at(id, "").s);
    ck_assert_msg(r.status == 200, "line %d: %s: HTTP %ld; body: %s", line, r.what, r.status, r.body);
    ck_assert_msg(!json_object_get(r.json, "chars_seen") &&
                      json_is_false(json_object_get(r.json, "busy")),
                  "line %d: a handwriting session shows chars_seen or is busy: %s", line, r.body);
    json_int_t seen = jint_at(line, &r, "points_seen");
    reply_free(&r);
    return seen;
}

hw_drawing hw_generate_at(int line, const hyperd_proc *p, const char *id, const char *fmt,
                          ...)
{
    va_list ap;
    va_start(ap, fmt);
    json_t *j = json_vpack_ex(NULL, 0, fmt, ap);
    va_end(ap);
    ck_assert_ptr_nonnull(j);
    char *body = json_dumps(j, JSON_COMPACT);
    int want = (int)json_integer_value(json_object_get(j, "max_points"));
    json_decref(j);
    reply r = http_post(p, at(id, "/generate").s, body);
    free(body);
    ck_assert_msg(r.status == 200, "line %d: %s: HTTP %ld; body: %.1500s", line, r.what, r.status,
                  r.body);
    hw_drawing d = hw_drawing_at(line, &r);
    ck_assert_msg(d.n == want && strcmp(jstr_at(line, &r, "finish_reason"), "length") == 0,
                  "line %d: %d points, want %d: %.500s", line, d.n, want, r.body);
    reply_free(&r);
    return d;
}

int ref_pen_point(const float *pt, double x, double y, void *user)
{
    (void)pt;
    ref_pen *r = user;
    r->out[2 * r->n] = round(x * 100) / 100;
    r->out[2 * r->n + 1] = round(y * 100) / 100;
    r->n++;
    return 0;
}

void hw_ref_draw(const double *prime, const int32_t *lens, int32_t nstrokes,
                 const hw_params *p, double *out)
{
    char err[HYPER_ERRMSG_MAX];
    checkpoint *ck = NULL;
    ck_assert_msg(checkpoint_open(hw_model_path, &ck, err) == HYPER_OK, "open: %s", err);
    model m;
    stroke_stats st;
    ck_assert_msg(strokes_stats_from_meta(ck, &st, err) == HYPER_OK, "stats: %s", err);
    ck_assert_msg(checkpoint_load_model(ck, &m, NULL, err) == HYPER_OK, "load: %s", err);
    checkpoint_close(ck);
    /* the daemon serves packed weights (the batch-invariant kernel): so do we */
    ck_assert_msg(model_pack(&m, 0, err) == HYPER_OK, "pack: %s", err);
    model_state s;
    ck_assert_msg(model_state_init(&s, &m.cfg, 1, err) == HYPER_OK, "state: %s", err);
    hw_pen pen;
    hw_pen_start(&pen);
    stroke_set set;
    strokes_init(&set);
    if (nstrokes) {
        ck_assert_msg(strokes_add_line(&set, NULL, prime, lens, nstrokes, err) == HYPER_OK, "%s", err);
        pen.x = prime[0];
        pen.y = prime[1];
    }
    hyper_rng rng;
    hyper_rng_seed(&rng, p->seed);
    float *pts = malloc((size_t)p->max_points * 3 * sizeof *pts);
    ref_pen rp = {out, 0};
    int32_t n = 0;
    ck_assert_msg(hw_draw(&m, &st, &s, &pen, nstrokes ? set.lines[0].pts : NULL,
                          nstrokes ? set.lines[0].npoints : 0, p, &rng, pts, &n, ref_pen_point,
                          &rp, NULL, err) == HYPER_OK && n == p->max_points, "hw_draw: %s", err);
    free(pts);
    strokes_free(&set);
    model_state_free(&s);
    model_free(&m);
}
