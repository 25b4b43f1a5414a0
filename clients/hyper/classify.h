/*
 * classify.h — the `hyper` commands for the static-hypernetwork classifiers (classifier.h):
 * train --kind classifier, params --arch, info and eval of a classifier file, and classify.
 * Each takes the command's arguments (argv without the command's name) and returns the
 * exit status (0 done, 1 failed, 2 usage).
 */
#ifndef HYPER_CLI_CLASSIFY_H
#define HYPER_CLI_CLASSIFY_H

#include "checkpoint.h"
#include "trainer.h"

/* The MNIST digits `make` fetches (data/mnist/{0..9}.json). */
#define DEFAULT_MNIST_DIR "data/mnist"

/* 1 when argv holds "--kind classifier" (or --kind=classifier). */
int classify_kind_wanted(int argc, char **argv, const char *option, const char *value);

int classify_train(int argc, char **argv);
/* hyper params --arch A [...]: the table and the counts of A and of its twin. */
int classify_params(int argc, char **argv);
/* hyper info on a classifier file (already open). */
int classify_info(const char *path, const checkpoint *ck);
/* hyper eval --model CLASSIFIER [--data DIR]: test error on the fixed test split. */
int classify_eval(const char *path, const char *data);
/* hyper classify --model M IMAGE.png... : the label and probabilities of each image. */
int classify_images(int argc, char **argv);

/* 1 when the file at path is a classifier. */
int classify_is_classifier(const char *path);


#endif
