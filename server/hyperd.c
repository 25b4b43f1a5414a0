/*
 * hyperd — the HyperLSTM server: flags and environment, start-up, the janitor (idle
 * sessions, periodic saves), and graceful shutdown on SIGINT/SIGTERM.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "fsutil.h"
#include "http.h"
#include "kernels.h"
#include "linalg.h"
#include "registry.h"
#include "scheduler.h"
#include "session.h"

#define MAX_MODEL_PATHS 16
#define SAVE_EVERY_SECONDS 30
#define JANITOR_TICK_SECONDS 1
#define DEFAULT_MAX_CONNECTIONS 16384
#define SPARE_FILES 256          /* descriptors kept for models, data and logs */
#define LOCK_FILE "hyperd.lock"  /* in the data directory: who owns it */

typedef struct {
    const char *host;
    long port;
    const char *data_dir;
    const char *models[MAX_MODEL_PATHS];
    int nmodels;
    const char *api_key;
    const char *api_key_file;
    long threads;
    long max_sessions;
    long idle_timeout;            /* seconds, 0 = never */
    long max_body_bytes;
    long max_chars;
    long max_connections;
    long header_timeout;          /* seconds */
    long body_min_rate;           /* bytes/s */
    long conn_idle_timeout;       /* seconds */
    long http_workers;
    long connection_kib;
    long max_batch;
    long half_weights;
    const char *log_level;
    long train_workers;
    long train_threads;
    long max_upload_bytes;
    const char *web_dir;
    const char *mnist_dir;
} options;

typedef struct {
    const char *flag, *env, *arg, *help;
} flag_doc;

static const flag_doc flags[] = {
    {"--host", "HYPERD_HOST", "ADDR", "address to listen on (127.0.0.1)"},
    {"--port", "HYPERD_PORT", "N", "port, 0 = any free one (8080)"},
    {"--data-dir", "HYPERD_DATA_DIR", "DIR", "sessions, models, datasets, jobs (./data)"},
    {"--models", "HYPERD_MODELS", "PATH[,PATH]", "model files or folders to load (models/); repeatable"},
    {"--api-key", "HYPERD_API_KEY", "KEY", "require Authorization: Bearer KEY (off)"},
    {"--api-key-file", "HYPERD_API_KEY_FILE", "FILE", "read the API key from a file"},
    {"--threads", "HYPERD_THREADS", "N", "BLAS threads for the math (1)"},
    {"--max-sessions", "HYPERD_MAX_SESSIONS", "N", "sessions kept; beyond, the least recently used idle one is evicted (1024)"},
    {"--session-idle-timeout", "HYPERD_SESSION_IDLE_TIMEOUT", "SECONDS", "delete sessions idle this long, 0 = never (86400)"},
    {"--max-body-bytes", "HYPERD_MAX_BODY_BYTES", "N", "largest request body (1048576)"},
    {"--max-chars-per-request", "HYPERD_MAX_CHARS_PER_REQUEST", "N", "most characters one generate may ask for (10000)"},
    {"--max-connections", "HYPERD_MAX_CONNECTIONS", "N", "concurrent connections, at most what RLIMIT_NOFILE allows (16384)"},
    {"--header-timeout", "HYPERD_HEADER_TIMEOUT", "SECONDS", "a request's headers must arrive this soon after its first byte, else 408 (10)"},
    {"--body-min-rate", "HYPERD_BODY_MIN_RATE", "BYTES/S", "a body must average this rate once --header-timeout has passed, else 408 (1024)"},
    {"--idle-timeout", "HYPERD_IDLE_TIMEOUT", "SECONDS", "close a keep-alive connection with no request this long, 0 = never (60)"},
    {"--http-workers", "HYPERD_HTTP_WORKERS", "N", "threads that run request handlers; connections need none (8)"},
    {"--connection-memory", "HYPERD_CONNECTION_MEMORY", "KIB", "memory per connection: URLs up to 1/8 of it, headers 1/4 (128)"},
    {"--max-batch", "HYPERD_MAX_BATCH", "N", "streams stepped together per model, 1 = one by one (128)"},
    {"--half-weights", "HYPERD_HALF_WEIGHTS", "0|1", "serve weights rounded to half precision: faster steps (0)"},
    {"--log-level", "HYPERD_LOG_LEVEL", "LEVEL", "error | warn | info | debug (info)"},
    {"--train-workers", "HYPERD_TRAIN_WORKERS", "N", "training jobs run at once, 0 = none run (1)"},
    {"--train-threads", "HYPERD_TRAIN_THREADS", "N", "BLAS threads of training jobs (1)"},
    {"--max-upload-bytes", "HYPERD_MAX_UPLOAD_BYTES", "N", "largest dataset upload (268435456)"},
    {"--web-dir", "HYPERD_WEB_DIR", "DIR", "the demo page served at / (clients/web; \"\" = none)"},
    {"--mnist-dir", "HYPERD_MNIST_DIR", "DIR", "the MNIST digits of the built-in mnist dataset (data/mnist)"},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: hyperd [options]   (each option can also be set by its environment variable)\n"
               "       hyperd --list-routes   (the routes it serves, one per line)\n");
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        fprintf(f, "  %s %-12s %-30s %s\n", flags[i].flag, flags[i].arg, flags[i].env, flags[i].help);
}

static int parse_long(const char *flag, const char *v, long lo, long hi, long *out)
{
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || !*v || *end || x < lo || x > hi) {
        fprintf(stderr, "hyperd: %s: '%s' is not an integer in %ld..%ld\n", flag, v, lo, hi);
        return -1;
    }
    *out = x;
    return 0;
}

/* Applies one option (from argv or the environment).  0 ok, -1 bad value, -2 unknown. */
static int set_option(options *o, const char *flag, const char *v)
{
    if (!strcmp(flag, "--host")) o->host = v;
    else if (!strcmp(flag, "--port")) return parse_long(flag, v, 0, 65535, &o->port);
    else if (!strcmp(flag, "--data-dir")) o->data_dir = v;
    else if (!strcmp(flag, "--models")) {
        if (o->nmodels >= MAX_MODEL_PATHS) {
            fprintf(stderr, "hyperd: --models: at most %d paths\n", MAX_MODEL_PATHS);
            return -1;
        }
        o->models[o->nmodels++] = v;
    }
    else if (!strcmp(flag, "--api-key")) o->api_key = v;
    else if (!strcmp(flag, "--api-key-file")) o->api_key_file = v;
    else if (!strcmp(flag, "--threads")) return parse_long(flag, v, 1, 256, &o->threads);
    else if (!strcmp(flag, "--max-sessions")) return parse_long(flag, v, 1, SESSIONS_MAX_LIMIT, &o->max_sessions);
    else if (!strcmp(flag, "--session-idle-timeout")) return parse_long(flag, v, 0, 100L * 365 * 86400, &o->idle_timeout);
    else if (!strcmp(flag, "--max-body-bytes")) return parse_long(flag, v, 1024, 1L << 30, &o->max_body_bytes);
    else if (!strcmp(flag, "--max-chars-per-request")) return parse_long(flag, v, 1, 10000000, &o->max_chars);
    else if (!strcmp(flag, "--max-connections")) return parse_long(flag, v, 1, 100000, &o->max_connections);
    else if (!strcmp(flag, "--header-timeout")) return parse_long(flag, v, 1, 3600, &o->header_timeout);
    else if (!strcmp(flag, "--body-min-rate")) return parse_long(flag, v, 0, 1L << 30, &o->body_min_rate);
    else if (!strcmp(flag, "--idle-timeout")) return parse_long(flag, v, 0, 86400, &o->conn_idle_timeout);
    else if (!strcmp(flag, "--http-workers")) return parse_long(flag, v, 1, 1024, &o->http_workers);
    else if (!strcmp(flag, "--connection-memory")) return parse_long(flag, v, 16, 1024, &o->connection_kib);
    else if (!strcmp(flag, "--max-batch")) return parse_long(flag, v, 1, SCHED_MAX_BATCH, &o->max_batch);
    else if (!strcmp(flag, "--half-weights")) return parse_long(flag, v, 0, 1, &o->half_weights);
    else if (!strcmp(flag, "--log-level")) o->log_level = v;
    else if (!strcmp(flag, "--train-workers")) return parse_long(flag, v, 0, JOBS_MAX_WORKERS, &o->train_workers);
    else if (!strcmp(flag, "--train-threads")) return parse_long(flag, v, 1, 256, &o->train_threads);
    else if (!strcmp(flag, "--web-dir")) o->web_dir = v;
    else if (!strcmp(flag, "--mnist-dir")) o->mnist_dir = v;
    else if (!strcmp(flag, "--max-upload-bytes")) return parse_long(flag, v, 1024, DATASET_MAX_BYTES_CEILING, &o->max_upload_bytes);
    else return -2;
    return 0;
}

static char *read_key_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
        buf[--n] = 0;
    return n ? strdup(buf) : NULL;
}

/* The library's log lines (hyper_log) in the daemon's log, with its time and level. */
static void engine_log(hyper_log_level level, const char *line, void *user)
{
    (void)user;
    log_msg(level == HYPER_LOG_ERROR ? LOG_ERROR : level == HYPER_LOG_WARN ? LOG_WARN : LOG_INFO, "%s", line);
}

/* ---- janitor ------------------------------------------------------------------------ */

typedef struct {
    session_store *sessions;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
} janitor;

static void *janitor_main(void *arg)
{
    janitor *j = arg;
    time_t last_save = time(NULL);
    pthread_mutex_lock(&j->mu);
    while (!j->stop) {
        const struct timespec until = hyper_deadline(JANITOR_TICK_SECONDS * 1000);
        pthread_cond_timedwait(&j->cv, &j->mu, &until);
        if (j->stop)
            break;
        pthread_mutex_unlock(&j->mu);
        size_t gone = session_expire(j->sessions, now_ms());
        if (gone)
            log_msg(LOG_INFO, "%zu idle session(s) expired", gone);
        if (time(NULL) - last_save >= SAVE_EVERY_SECONDS) {
            int failed = session_store_save(j->sessions, 0);
            if (failed)
                log_msg(LOG_WARN, "%d session(s) could not be saved", failed);
            last_save = time(NULL);
        }
        pthread_mutex_lock(&j->mu);
    }
    pthread_mutex_unlock(&j->mu);
    return NULL;
}

/* ---- the data directory -------------------------------------------------------------- */

/* Makes the data directory this daemon's alone: an exclusive lock on DIR/LOCK_FILE, held
 * for the life of the process (a second hyperd on the same directory would run the same
 * jobs and overwrite the same sessions), then the temporaries a crash left in the middle
 * of an atomic write are removed — safe only because no other writer can be in it.
 * Returns the lock's descriptor (kept open), or -1 after saying why. */
static int data_dir_claim(const char *dir)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/" LOCK_FILE, dir);
    long holder = 0;
    int fd = fs_lock_file(path, &holder);
    if (fd < 0) {
        if (errno == EWOULDBLOCK) {
            char pid[32] = "";
            if (holder > 0)
                snprintf(pid, sizeof pid, " (pid %ld)", holder);
            fprintf(stderr, "hyperd: --data-dir %s is in use by another hyperd%s; each daemon needs a data "
                            "directory of its own\n", dir, pid);
        } else {
            fprintf(stderr, "hyperd: --data-dir %s: cannot lock %s: %s\n", dir, path, strerror(errno));
        }
        return -1;
    }
    long swept = fs_sweep_temporaries(dir);
    if (swept < 0)
        log_msg(LOG_WARN, "--data-dir %s: cannot look for stale temporary files: %s", dir, strerror(errno));
    else
        log_msg(swept ? LOG_WARN : LOG_INFO, "--data-dir %s: %ld stale temporary file(s) removed", dir, swept);
    return fd;
}

/* Raises the soft limit of open files to the hard one and caps the connections to what it
 * leaves (a connection is a descriptor; models, datasets and logs need SPARE_FILES more).
 * Says in the log what was got. */
static long connections_allowed(long wanted)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return wanted;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            rl.rlim_cur = old;
    }
    long room = rl.rlim_cur == RLIM_INFINITY ? wanted : (long)rl.rlim_cur - SPARE_FILES;
    long got = wanted < room ? wanted : (room > 1 ? room : 1);
    log_msg(got < wanted ? LOG_WARN : LOG_INFO, "open files: %llu allowed, so %ld connection(s)%s",
            (unsigned long long)rl.rlim_cur, got, got < wanted ? " (fewer than --max-connections)" : "");
    return got;
}

/* ---- main --------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    options o = {.host = "127.0.0.1", .port = 8080, .data_dir = "./data", .threads = 1, .max_sessions = 1024,
                 .idle_timeout = 86400, .max_body_bytes = API_DEFAULT_MAX_BODY_BYTES,
                 .max_chars = API_DEFAULT_MAX_CHARS, .max_connections = DEFAULT_MAX_CONNECTIONS,
                 .header_timeout = 10, .body_min_rate = 1024, .conn_idle_timeout = 60, .http_workers = 8, .connection_kib = 128,
                 .max_batch = SCHED_MAX_BATCH, .half_weights = 0, .log_level = "info", .train_workers = 1,
                 .train_threads = 1, .max_upload_bytes = API_DEFAULT_MAX_UPLOAD_BYTES, .web_dir = "clients/web",
                 .mnist_dir = DATASET_MNIST_DEFAULT};
    /* the environment first, then the command line over it */
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        const char *v = getenv(flags[i].env);
        if (v && *v) {
            if (!strcmp(flags[i].flag, "--models")) {
                char *copy = strdup(v); /* comma-separated list; lives as long as the process */
                for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save))
                    if (set_option(&o, "--models", p) != 0)
                        return 2;
            } else if (set_option(&o, flags[i].flag, v) != 0) {
                fprintf(stderr, "hyperd: (from %s)\n", flags[i].env);
                return 2;
            }
        }
    }
    int cli_models = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--list-routes")) { /* the routing table, for the API document's test */
            for (size_t r = 0; r < api_nroutes; r++)
                printf("%s %s\n", api_routes[r].method, api_routes[r].pattern);
            return 0;
        }
        char *eq = strchr(argv[i], '=');
        char flag[64];
        const char *v;
        if (eq) {
            snprintf(flag, sizeof flag, "%.*s", (int)(eq - argv[i]), argv[i]);
            v = eq + 1;
        } else {
            snprintf(flag, sizeof flag, "%s", argv[i]);
            if (i + 1 >= argc) {
                fprintf(stderr, "hyperd: %s needs a value\n", flag);
                return 2;
            }
            v = argv[++i];
        }
        if (!strcmp(flag, "--models") && !cli_models++)
            o.nmodels = 0; /* the command line replaces the environment's list */
        int rc = set_option(&o, flag, v);
        if (rc == -2) {
            fprintf(stderr, "hyperd: unknown option '%s'\n", flag);
            usage(stderr);
            return 2;
        }
        if (rc != 0)
            return 2;
    }
    log_level level = LOG_INFO;
    if (!strcmp(o.log_level, "error")) level = LOG_ERROR;
    else if (!strcmp(o.log_level, "warn")) level = LOG_WARN;
    else if (!strcmp(o.log_level, "info")) level = LOG_INFO;
    else if (!strcmp(o.log_level, "debug")) level = LOG_DEBUG;
    else {
        fprintf(stderr, "hyperd: --log-level: '%s' is not error, warn, info or debug\n", o.log_level);
        return 2;
    }
    log_set_level(level);
    hyper_set_log(engine_log, NULL);
    char *key = NULL;
    if (o.api_key_file) {
        key = read_key_file(o.api_key_file);
        if (!key) {
            fprintf(stderr, "hyperd: --api-key-file: cannot read a key from %s\n", o.api_key_file);
            return 2;
        }
    } else if (o.api_key) {
        if (!*o.api_key) {
            fprintf(stderr, "hyperd: --api-key must not be empty\n");
            return 2;
        }
        key = strdup(o.api_key);
    }
    if (o.nmodels == 0)
        o.models[o.nmodels++] = "models";

    /* signals go to a waiting main thread, never to the workers */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    linalg_init();
    math_set_threads((int)o.threads);
    kernels_set_threads((int)o.threads); /* the serving kernel: same bits on 1 or 2 threads */
    if (mkdir(o.data_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "hyperd: --data-dir %s: %s\n", o.data_dir, strerror(errno));
        return 1;
    }
    if (data_dir_claim(o.data_dir) < 0)
        return 1;
    char dataset_dir[PATH_MAX], job_dir[PATH_MAX], job_models[PATH_MAX];
    snprintf(dataset_dir, sizeof dataset_dir, "%s/datasets", o.data_dir);
    snprintf(job_dir, sizeof job_dir, "%s/jobs", o.data_dir);
    snprintf(job_models, sizeof job_models, "%s/models", o.data_dir);

    registry models;
    registry_init(&models, (int)o.max_batch);
    models.half_weights = (int)o.half_weights;
    session_store sessions;
    char err[HYPER_ERRMSG_MAX];
    store *records = NULL; /* what users create, in the data dir (store.h) */
    if (store_open_local(&records, o.data_dir, err) != HYPER_OK ||
        session_store_init(&sessions, records, (size_t)o.max_sessions, (int64_t)o.idle_timeout * 1000, err) !=
            HYPER_OK) {
        fprintf(stderr, "hyperd: %s\n", err);
        return 1;
    }
    dataset_store *datasets = NULL;
    if (dataset_store_open(&datasets, dataset_dir, NULL, err) != HYPER_OK) {
        fprintf(stderr, "hyperd: %s\n", err);
        return 1;
    }
    if (dataset_store_add_mnist(datasets, o.mnist_dir, err) != HYPER_OK)
        fprintf(stderr, "hyperd: no built-in mnist dataset (make data/mnist/9.json fetches it): %s\n", err);
    api_app app = {.models = &models, .sessions = &sessions, .datasets = datasets, .models_dir = job_models,
                   .web_dir = o.web_dir && *o.web_dir ? o.web_dir : NULL,
                   .metrics = api_metrics_new(), .api_key = key, .max_body_bytes = (size_t)o.max_body_bytes,
                   .max_upload_bytes = (size_t)o.max_upload_bytes, .max_chars = o.max_chars,
                   .started = (double)time(NULL)};
    char herr[256];
    const http_limits lim = {.max_connections = (int)connections_allowed(o.max_connections),
                             .header_timeout_s = (double)o.header_timeout,
                             .body_min_rate = (double)o.body_min_rate,
                             .idle_timeout_s = (double)o.conn_idle_timeout,
                             .workers = (int)o.http_workers,
                             .connection_memory = (size_t)o.connection_kib * 1024};
    http_server *srv = http_start(&app, o.host, (uint16_t)o.port, &lim, level, herr, sizeof herr);
    if (!srv) {
        fprintf(stderr, "hyperd: %s\n", herr);
        return 1;
    }
    for (int i = 0; i < o.nmodels; i++) {
        if (registry_load(&models, o.models[i], err) != HYPER_OK) {
            log_msg(LOG_ERROR, "%s", err);
            http_stop(srv);
            registry_free(&models);
            return 1;
        }
    }
    /* the models training jobs made; one that cannot be loaded is not fatal */
    struct stat jm;
    if (stat(job_models, &jm) == 0 && registry_load(&models, job_models, err) != HYPER_OK)
        log_msg(LOG_WARN, "%s", err);
    job_host host = api_job_host(&app);
    if (job_runner_open(&app.jobs, job_dir, job_models, (int)o.train_workers, (int)o.train_threads, &host, err) !=
        HYPER_OK) {
        log_msg(LOG_ERROR, "%s", err);
        http_stop(srv);
        registry_free(&models);
        return 1;
    }
    for (int i = 0; i < registry_count(&models); i++) {
        model_entry *e = registry_at(&models, i);
        if (e->clf)
            log_msg(LOG_INFO, "model %s: %s classifier, %zu parameters (%s)", e->name,
                    clf_arch_str((clf_arch)e->clf->cfg.arch), e->params, e->path);
        else
            log_msg(LOG_INFO, "model %s: %s, %d layer(s) x %d units, %zu parameters (%s)", e->name,
                    cell_kind_str((cell_kind)e->m.cfg.cell), e->m.cfg.layers, e->m.cfg.units, e->params,
                    e->path);
    }
    size_t restored = session_store_restore(&sessions, &models);
    app.ready = 1;
    log_msg(LOG_INFO, "hyperd listening on http://%s:%u (%zu session(s) restored, BLAS: %s%s)",
            o.host, (unsigned)http_port(srv), restored, linalg_backend(), key ? ", API key required" : "");
    printf("hyperd listening on http://%s:%u\n", o.host, (unsigned)http_port(srv));
    fflush(stdout);

    janitor jan = {.sessions = &sessions};
    pthread_mutex_init(&jan.mu, NULL);
    pthread_cond_init(&jan.cv, NULL);
    pthread_t jt;
    int have_janitor = pthread_create(&jt, NULL, janitor_main, &jan) == 0;

    int sig = 0;
    sigwait(&sigs, &sig);
    log_msg(LOG_INFO, "signal %d: finishing running generations and saving sessions", sig);
    app.stopping = 1;
    http_quiesce(srv);
    for (int i = 0; i < registry_count(&models); i++)
        scheduler_stop(registry_at(&models, i)->sched);
    http_stop(srv);
    job_runner_free(app.jobs); /* running jobs write a checkpoint and resume at the next start */
    app.jobs = NULL;
    if (have_janitor) {
        pthread_mutex_lock(&jan.mu);
        jan.stop = 1;
        pthread_cond_signal(&jan.cv);
        pthread_mutex_unlock(&jan.mu);
        pthread_join(jt, NULL);
    }
    int failed = session_store_save(&sessions, 1);
    log_msg(failed ? LOG_WARN : LOG_INFO, "saved %zu session(s)%s", session_count(&sessions) - (size_t)failed,
            failed ? " (some failed)" : "");
    session_store_free(&sessions);
    store_close(records);
    registry_free(&models);
    dataset_store_free(datasets);
    api_metrics_free(app.metrics);
    free(key);
    return 0;
}
