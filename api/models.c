/*
 * models.c — GET /v1/models and /v1/models/{name}.
 */
#include <stdlib.h>

#include "api.h"
#include "mdn.h"

/* The description of a loaded classifier (new reference). */
static json_t *classifier_json(const model_entry *e)
{
    const clf_config *c = &e->clf->cfg;
    clf_counts n;
    clf_param_counts(c, &n);
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:s, s:i, s:i}", "name", e->name, "kind", e->kind, "arch",
                          clf_arch_str((clf_arch)c->arch), "parameters", (json_int_t)e->params, "file", e->path,
                          "inputs", CLF_PIXELS, "classes", CLF_CLASSES);
    if (n.generated) {
        json_object_set_new(j, "generated_weights", json_integer((json_int_t)n.generated));
        json_object_set_new(j, "generator_parameters", json_integer((json_int_t)n.generator));
        json_object_set_new(j, "embedding_size", json_integer(c->embed));
    }
    return j;
}

/* The description of a loaded model (new reference). */
static json_t *model_json(const model_entry *e)
{
    if (e->clf)
        return classifier_json(e);
    const model_config *c = &e->m.cfg;
    int hyper = cell_is_hyper((cell_kind)c->cell);
    json_t *j = json_pack("{s:s, s:s, s:s, s:i, s:i, s:I, s:s}", "name", e->name, "kind", e->kind,
                          "cell", cell_kind_str((cell_kind)c->cell), "layers", c->layers, "units",
                          c->units, "parameters", (json_int_t)e->params, "file", e->path);
    json_object_set_new(j, "hyper_units", hyper ? json_integer(c->hyper_units) : json_null());
    json_object_set_new(j, "embedding_size", hyper ? json_integer(c->embed) : json_null());
    if (c->inputs == 0) {
        json_object_set_new(j, "vocabulary_size", json_integer(e->voc.size));
        size_t len = 0;
        char *chars = vocab_to_utf8(&e->voc, &len);
        json_object_set_new(j, "vocabulary", chars ? json_stringn(chars, len) : json_null());
        free(chars);
    } else {
        json_object_set_new(j, "inputs", json_integer(c->inputs));
        json_object_set_new(j, "outputs", json_integer(c->outputs));
        if (e->handwriting)
            json_object_set_new(j, "mixtures", json_integer(mdn_mixtures(c->outputs)));
    }
    return j;
}

void api_models_list(const api_request *req, api_reply *rep)
{
    json_t *arr = json_array();
    registry *r = req->app->models;
    int n = registry_count(r);
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, model_json(registry_at(r, i)));
    model_entry *def = registry_default(r);
    api_json(rep, 200, json_pack("{s:o, s:s?}", "models", arr, "default", def ? def->name : NULL));
}

void api_models_get(const api_request *req, api_reply *rep)
{
    model_entry *e = registry_find(req->app->models, req->params[0]);
    if (!e) {
        api_error(rep, 404, "no model named '%s'", req->params[0]);
        return;
    }
    api_json(rep, 200, model_json(e));
}

/* ---- hyper activity ------------------------------------------------------------------- */

int api_check_hyper(const model_entry *e, api_reply *rep)
{
    const cell_kind k = (cell_kind)e->m.cfg.cell;
    if (cell_is_hyper(k))
        return 0;
    api_error(rep, 400, "include_hyper: model '%s' is an %s, which has no hypernetwork "
                        "(hyperlstm and lnhyperlstm cells have one)", e->name, cell_kind_str(k));
    return -1;
}

json_t *api_hyper_json(const float *act)
{
    return json_pack("[f, f, f, f]", (double)act[0], (double)act[1], (double)act[2], (double)act[3]);
}

json_t *api_hyper_array(const float *act, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, api_hyper_json(act + 4 * i));
    return a;
}
