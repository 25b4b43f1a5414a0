/*
 * static.c — the demo page: GET / is index.html and GET /web/{file} one file of the folder
 * app->web_dir (--web-dir, clients/web in the source tree).  Only plain files directly in
 * that folder, with a safe name and a known type, are served; everything else is a 404.
 * These routes are public: the page holds no data, and sends the user's API key itself.
 *
 * A file is sent as a stream read from disk in pieces, which also gets it the
 * "Cache-Control: no-cache" that server/http.c puts on every stream: an edited page is
 * seen at the next reload.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"

#define STATIC_NAME_MAX 64             /* bytes of a file name */
#define STATIC_FILE_MAX (8L << 20)     /* larger files are not part of a demo page */

/* The content type of a file name by its extension, or NULL for a type not served. */
static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".json", "application/json"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    if (!dot)
        return NULL;
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return NULL;
}

/* 1 when name may be served: 1-63 of A-Z a-z 0-9 . _ -, not starting with a dot (so
 * neither "..", nor a hidden file), no '/'. */
static int safe_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n >= STATIC_NAME_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return strstr(name, "..") == NULL;
}

typedef struct {
    int fd;
} file_stream;

static ssize_t file_next(void *ctx, char *buf, size_t max)
{
    file_stream *fs = ctx;
    ssize_t n;
    do
        n = read(fs->fd, buf, max);
    while (n < 0 && errno == EINTR);
    return n > 0 ? n : -1; /* the end, or a read error: the reply ends there */
}

static void file_release(void *ctx)
{
    file_stream *fs = ctx;
    close(fs->fd);
    free(fs);
}

/* Fills rep with the file `name` of the web folder as a stream, or with a 404 (no folder
 * configured, a name not served, no such plain file) or 500. */
static void serve(const api_request *req, api_reply *rep, const char *name)
{
    const char *dir = req->app->web_dir;
    if (!dir) {
        api_error(rep, 404, "the demo page is not served: start hyperd with --web-dir DIR "
                            "(the clients/web folder of the source tree)");
        return;
    }
    const char *type = content_type(name);
    if (!safe_name(name) || !type) {
        api_error(rep, 404, "no file '%.64s' in the demo page (names: A-Z a-z 0-9 . _ -; "
                            "types: html, css, js, mjs, json, svg, png, ico, txt)", name);
        return;
    }
    char path[PATH_MAX];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, name) >= sizeof path) {
        api_error(rep, 404, "no file '%s' in the demo page: the path is too long", name);
        return;
    }
    /* O_NOFOLLOW: a link in the folder must not reach a file outside it */
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > STATIC_FILE_MAX) {
        if (fd >= 0)
            close(fd);
        if (strcmp(name, "index.html") == 0)
            api_error(rep, 404, "no index.html in the demo page's folder '%s' (--web-dir): start "
                                "hyperd in the source tree or point --web-dir at clients/web", dir);
        else
            api_error(rep, 404, "no file '%s' in the demo page's folder", name);
        return;
    }
    file_stream *fs = malloc(sizeof *fs);
    if (!fs) {
        close(fd);
        api_error(rep, 500, "out of memory");
        return;
    }
    fs->fd = fd;
    rep->status = 200;
    rep->streaming = 1;
    rep->stream = (api_stream){fs, file_next, file_release, type, NULL /* a file always has bytes */};
}

void api_static_index(const api_request *req, api_reply *rep)
{
    serve(req, rep, "index.html");
}

void api_static_file(const api_request *req, api_reply *rep)
{
    serve(req, rep, req->params[0]);
}
