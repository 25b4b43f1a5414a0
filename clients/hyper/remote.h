/*
 * remote.h — the `hyper` commands that talk to a running hyperd over HTTP (libcurl):
 * generate, repl, models, sessions, datasets, jobs, and handwrite --server.
 *
 * Each takes the command's arguments (argv without the command's name) and returns the
 * process's exit status: 0 done; 1 the server refused (its message is printed, "hyper: 404:
 * no job abc"), could not be reached, or a job ended failed or cancelled; 2 a usage error.
 * The server is --url (HYPERD_URL, default http://127.0.0.1:8080); --api-key
 * (HYPERD_API_KEY) is sent as "Authorization: Bearer KEY".
 */
#ifndef HYPER_CLI_REMOTE_H
#define HYPER_CLI_REMOTE_H

/* Streams a session's continuation to stdout as it is produced (a new session when no
 * --session is given; its id goes to stderr). */
int remote_generate(int argc, char **argv);
/* Reads lines from stdin; each is fed to one session and the model's continuation printed. */
int remote_repl(int argc, char **argv);
/* The loaded models, as a table (--json: the server's reply). */
int remote_models(int argc, char **argv);
/* sessions [list] | delete ID. */
int remote_sessions(int argc, char **argv);
/* datasets upload NAME FILE | list | delete NAME. */
int remote_datasets(int argc, char **argv);
/* jobs submit | list | get ID | watch ID | cancel ID | delete ID. */
int remote_jobs(int argc, char **argv);

/* 1 when handwrite's arguments name a server (--server or --url): remote_handwrite draws,
 * with the server's model, instead of the local --model FILE. */
int remote_handwrite_wanted(int argc, char **argv);
int remote_handwrite(int argc, char **argv);

#endif
