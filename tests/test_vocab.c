/*
 * test_vocab.c — UTF-8 decoding and encoding, vocabulary building, text encoding and the
 * checkpoint string form of engine/vocab.h.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "vocab.h"

/* é U+00E9 (2 bytes), € U+20AC (3 bytes), 𝄞 U+1D11E (4 bytes), spelt out as bytes so the
 * test does not depend on the source file's encoding. */
#define E_ACUTE "\xC3\xA9"
#define EURO "\xE2\x82\xAC"
#define G_CLEF "\xF0\x9D\x84\x9E"

/* ---- UTF-8 ---------------------------------------------------------------------------- */

START_TEST(test_utf8_decode_multibyte)
{
    static const struct {
        const char *s;
        int len;
        uint32_t cp;
    } cases[] = {
        {"A", 1, 0x41}, {E_ACUTE, 2, 0xE9}, {EURO, 3, 0x20AC}, {G_CLEF, 4, 0x1D11E},
        {"\x7F", 1, 0x7F}, {"\xC2\x80", 2, 0x80}, {"\xDF\xBF", 2, 0x7FF},
        {"\xE0\xA0\x80", 3, 0x800}, {"\xED\x9F\xBF", 3, 0xD7FF}, {"\xEE\x80\x80", 3, 0xE000},
        {"\xEF\xBF\xBF", 3, 0xFFFF}, {"\xF0\x90\x80\x80", 4, 0x10000},
        {"\xF4\x8F\xBF\xBF", 4, 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint32_t cp = 0xFFFFFFFF;
        int k = utf8_decode(cases[i].s, strlen(cases[i].s), &cp);
        ck_assert_msg(k == cases[i].len && cp == cases[i].cp,
                      "case %zu: got length %d cp U+%04X, want %d U+%04X", i, k, (unsigned)cp,
                      cases[i].len, (unsigned)cases[i].cp);
    }
    /* U+0000 is a valid one-byte character when the length says it is there. */
    uint32_t cp = 1;
    ck_assert_int_eq(utf8_decode("", 1, &cp), 1);
    ck_assert_uint_eq(cp, 0);
}
END_TEST

START_TEST(test_utf8_decode_rejects_invalid)
{
    static const struct {
        const char *what;
        const char *s;
        size_t n;
    } bad[] = {
        {"empty input", "", 0},
        {"lone continuation byte", "\x80", 1},
        {"lone continuation byte 0xBF", "\xBF", 1},
        {"overlong 2-byte NUL", "\xC0\x80", 2},
        {"overlong 2-byte 0x7F", "\xC1\xBF", 2},
        {"overlong 3-byte", "\xE0\x80\x80", 3},
        {"overlong 3-byte 0x7FF", "\xE0\x9F\xBF", 3},
        {"overlong 4-byte", "\xF0\x80\x80\x80", 4},
        {"overlong 4-byte 0xFFFF", "\xF0\x8F\xBF\xBF", 4},
        {"surrogate U+D800", "\xED\xA0\x80", 3},
        {"surrogate U+DFFF", "\xED\xBF\xBF", 3},
        {"above U+10FFFF", "\xF4\x90\x80\x80", 4},
        {"lead 0xF5", "\xF5\x80\x80\x80", 4},
        {"lead 0xF8 (5-byte form)", "\xF8\x88\x80\x80\x80", 5},
        {"byte 0xFF", "\xFF", 1},
        {"truncated 2-byte", "\xC3", 1},
        {"truncated 3-byte", "\xE2\x82", 2},
        {"truncated 4-byte", "\xF0\x9D\x84", 3},
        {"truncated by n, bytes present", G_CLEF, 3},
        {"bad continuation", "\xC3\x41", 2},
        {"bad continuation in 3-byte", "\xE2\x28\xA1", 3},
        {"bad continuation in 4-byte", "\xF0\x9D\xC4\x9E", 4},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t cp = 0x12345;
        int k = utf8_decode(bad[i].s, bad[i].n, &cp);
        ck_assert_msg(k == 0, "%s: accepted with length %d (U+%04X)", bad[i].what, k,
                      (unsigned)cp);
    }
}
END_TEST

START_TEST(test_utf8_encode_round_trip_all)
{
    /* Every scalar value encodes and decodes back to itself with the same length. */
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        char buf[4];
        uint32_t back = 0xFFFFFFFF;
        int k = utf8_encode(cp, buf);
        int want = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
        ck_assert_msg(k == want, "U+%04X: encoded in %d bytes, want %d", (unsigned)cp, k, want);
        ck_assert_msg(utf8_decode(buf, (size_t)k, &back) == k && back == cp,
                      "U+%04X: decoded back as U+%04X", (unsigned)cp, (unsigned)back);
    }
    char buf[4];
    ck_assert_int_eq(utf8_encode(0x20AC, buf), 3);
    ck_assert_mem_eq(buf, EURO, 3);
    ck_assert_int_eq(utf8_encode(0x1D11E, buf), 4);
    ck_assert_mem_eq(buf, G_CLEF, 4);
}
END_TEST

START_TEST(test_utf8_encode_rejects_invalid)
{
    char buf[4];
    ck_assert_int_eq(utf8_encode(0xD800, buf), 0);
    ck_assert_int_eq(utf8_encode(0xDFFF, buf), 0);
    ck_assert_int_eq(utf8_encode(0x110000, buf), 0);
    ck_assert_int_eq(utf8_encode(0xFFFFFFFF, buf), 0);
}
END_TEST

/* ---- building ------------------------------------------------------------------------- */

START_TEST(test_build_sorted_unique)
{
    const char *text = "hello " G_CLEF EURO E_ACUTE "h" E_ACUTE "\n";
    vocab v;
    char err[HYPER_ERRMSG_MAX] = "";
    ck_assert_int_eq(vocab_build(&v, text, strlen(text), err), HYPER_OK);
    static const uint32_t want[] = {'\n', ' ', 'e', 'h', 'l', 'o', 0xE9, 0x20AC, 0x1D11E};
    ck_assert_int_eq(v.size, 9);
    for (int i = 0; i < 9; i++) {
        ck_assert_uint_eq(v.cp[i], want[i]);
        ck_assert_int_eq(vocab_id(&v, want[i]), i);
    }
    ck_assert_int_eq(vocab_id(&v, 'a'), -1);
    ck_assert_int_eq(vocab_id(&v, 0), -1);
    ck_assert_int_eq(vocab_id(&v, 0x10FFFF), -1);
    vocab_free(&v);
    ck_assert_ptr_null(v.cp);
    ck_assert_int_eq(v.size, 0);
    vocab_free(&v);    /* twice is harmless */
}
END_TEST

START_TEST(test_build_rejects_bad_text)
{
    vocab v;
    char err[HYPER_ERRMSG_MAX] = "";
    const char *text = "abc\xC0\x80xyz";
    ck_assert_int_eq(vocab_build(&v, text, strlen(text), err), HYPER_ERR_ENCODING);
    ck_assert_msg(strstr(err, "offset 3") != NULL, "message does not name offset 3: %s", err);
    ck_assert_ptr_null(v.cp);

    const char *cut = "ab" E_ACUTE "\xE2\x82";    /* truncated at the very end */
    ck_assert_int_eq(vocab_build(&v, cut, strlen(cut), err), HYPER_ERR_ENCODING);
    ck_assert_msg(strstr(err, "offset 4") != NULL, "message does not name offset 4: %s", err);

    ck_assert_int_eq(vocab_build(&v, "", 0, err), HYPER_ERR_ARG);
    ck_assert_int_eq(vocab_build(&v, "a\0b", 3, err), HYPER_ERR_ARG);
    ck_assert_int_eq(vocab_build(&v, "abc\xFF", 4, NULL), HYPER_ERR_ENCODING);
}
END_TEST

START_TEST(test_build_limit)
{
    /* VOCAB_MAX + 1 distinct characters, starting above the surrogates. */
    int32_t n = VOCAB_MAX + 1;
    char *text = malloc((size_t)n * 4);
    ck_assert_ptr_nonnull(text);
    size_t len = 0;
    for (int32_t i = 0; i < n; i++)
        len += (size_t)utf8_encode(0x10000 + (uint32_t)i, text + len);
    vocab v;
    char err[HYPER_ERRMSG_MAX] = "";
    ck_assert_int_eq(vocab_build(&v, text, len, err), HYPER_ERR_ARG);
    ck_assert_ptr_null(v.cp);
    /* One fewer fits exactly. */
    ck_assert_int_eq(vocab_build(&v, text, len - 4, err), HYPER_OK);
    ck_assert_int_eq(v.size, VOCAB_MAX);
    ck_assert_int_eq(vocab_id(&v, 0x10000 + VOCAB_MAX - 1), VOCAB_MAX - 1);
    vocab_free(&v);
    free(text);
}
END_TEST

START_TEST(test_from_codepoints)
{
    static const uint32_t cps[] = {0x20AC, 'b', 'a', 0x20AC, 'b', 0x1D11E, 'a'};
    vocab v;
    char err[HYPER_ERRMSG_MAX] = "";
    ck_assert_int_eq(vocab_from_codepoints(&v, cps, 7, err), HYPER_OK);
    ck_assert_int_eq(v.size, 4);
    ck_assert_uint_eq(v.cp[0], 'a');
    ck_assert_uint_eq(v.cp[1], 'b');
    ck_assert_uint_eq(v.cp[2], 0x20AC);
    ck_assert_uint_eq(v.cp[3], 0x1D11E);
    vocab_free(&v);

    static const uint32_t surrogate[] = {'a', 0xD800};
    static const uint32_t too_big[] = {0x110000};
    static const uint32_t nul[] = {'a', 0};
    ck_assert_int_eq(vocab_from_codepoints(&v, surrogate, 2, err), HYPER_ERR_ARG);
    ck_assert_int_eq(vocab_from_codepoints(&v, too_big, 1, err), HYPER_ERR_ARG);
    ck_assert_int_eq(vocab_from_codepoints(&v, nul, 2, err), HYPER_ERR_ARG);
    ck_assert_int_eq(vocab_from_codepoints(&v, cps, 0, err), HYPER_ERR_ARG);
    ck_assert_int_eq(vocab_from_codepoints(&v, cps, -1, NULL), HYPER_ERR_ARG);
    ck_assert_ptr_null(v.cp);
}
END_TEST

/* ---- encoding text -------------------------------------------------------------------- */

/* The vocabulary of "abc" plus €. */
static void small_vocab(vocab *v)
{
    static const uint32_t cps[] = {'a', 'b', 'c', 0x20AC};
    ck_assert_int_eq(vocab_from_codepoints(v, cps, 4, NULL), HYPER_OK);
}

START_TEST(test_encode_round_trip)
{
    vocab v;
    const char *text = "h" E_ACUTE "llo " EURO G_CLEF "!";
    char err[HYPER_ERRMSG_MAX] = "";
    ck_assert_int_eq(vocab_build(&v, text, strlen(text), err), HYPER_OK);
    int32_t *ids = NULL;
    size_t n = 0, skipped = 99;
    ck_assert_int_eq(vocab_encode(&v, text, strlen(text), 0, &ids, &n, &skipped, err), HYPER_OK);
    ck_assert_uint_eq(n, 9);
    ck_assert_uint_eq(skipped, 0);
    /* Decoding id by id gives back the exact bytes. */
    char back[64] = "";
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        char buf[5];
        int k = vocab_decode(&v, ids[i], buf);
        ck_assert_int_gt(k, 0);
        ck_assert_uint_eq(strlen(buf), (size_t)k);
        memcpy(back + at, buf, (size_t)k);
        at += (size_t)k;
    }
    ck_assert_uint_eq(at, strlen(text));
    ck_assert_mem_eq(back, text, at);
    ck_assert_int_eq(ids[1], vocab_id(&v, 0xE9));
    ck_assert_int_eq(ids[7], vocab_id(&v, 0x1D11E));
    free(ids);

    char buf[5] = "x";
    ck_assert_int_eq(vocab_decode(&v, -1, buf), 0);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(vocab_decode(&v, v.size, buf), 0);
    vocab_free(&v);
}
END_TEST

START_TEST(test_encode_unknown_named)
{
    vocab v;
    small_vocab(&v);
    const char *text = "ab" E_ACUTE "c" E_ACUTE EURO G_CLEF;
    int32_t *ids = (int32_t *)&v;    /* must be reset to NULL on failure */
    size_t n = 7;
    char err[HYPER_ERRMSG_MAX] = "";
    ck_assert_int_eq(vocab_encode(&v, text, strlen(text), 0, &ids, &n, NULL, err),
                     HYPER_ERR_VOCAB);
    ck_assert_ptr_null(ids);
    ck_assert_uint_eq(n, 0);
    ck_assert_msg(strstr(err, "U+00E9 '" E_ACUTE "'") != NULL, "é not named: %s", err);
    ck_assert_msg(strstr(err, "U+1D11E '" G_CLEF "'") != NULL, "clef not named: %s", err);
    ck_assert_msg(strstr(err, "3 characters") != NULL, "total count missing: %s", err);
    /* é appears twice but is named once. */
    ck_assert_ptr_null(strstr(strstr(err, "U+00E9") + 1, "U+00E9"));
    ck_assert_ptr_null(strstr(err, "U+0061"));
    vocab_free(&v);
}
END_TEST

START_TEST(test_encode_unknown_many)
{
    vocab v;
    small_vocab(&v);
    /* Seven distinct unknown letters: the first five are named, then an ellipsis. */
    const char *text = "adefghijk";
    char err[HYPER_ERRMSG_MAX] = "";
    int32_t *ids;
    size_t n;
    ck_assert_int_eq(vocab_encode(&v, text, strlen(text), 0, &ids, &n, NULL, err),
                     HYPER_ERR_VOCAB);
    ck_assert_msg(strstr(err, "8 characters") != NULL, "total count missing: %s", err);
    ck_assert_msg(strstr(err, "U+0064 'd'") && strstr(err, "U+0068 'h'"), "%s", err);
    ck_assert_msg(strstr(err, "U+0069") == NULL, "sixth character named: %s", err);
    ck_assert_msg(strstr(err, "...") != NULL, "no sign of more characters: %s", err);

    /* A control character is named by number only. */
    ck_assert_int_eq(vocab_encode(&v, "a\n", 2, 0, &ids, &n, NULL, err), HYPER_ERR_VOCAB);
    ck_assert_msg(strstr(err, "U+000A") != NULL && strchr(err, '\n') == NULL, "%s", err);
    ck_assert_msg(strstr(err, "1 character ") != NULL, "%s", err);

    /* err may be NULL. */
    ck_assert_int_eq(vocab_encode(&v, "z", 1, 0, &ids, &n, NULL, NULL), HYPER_ERR_VOCAB);
    vocab_free(&v);
}
END_TEST

START_TEST(test_encode_skip_unknown)
{
    vocab v;
    small_vocab(&v);
    const char *text = "ab" E_ACUTE "c" E_ACUTE EURO G_CLEF "a";
    int32_t *ids = NULL;
    size_t n = 0, skipped = 0;
    char err[HYPER_ERRMSG_MAX] = "";
    ck_assert_int_eq(vocab_encode(&v, text, strlen(text), 1, &ids, &n, &skipped, err),
                     HYPER_OK);
    ck_assert_uint_eq(skipped, 3);
    ck_assert_uint_eq(n, 5);
    static const int32_t want[] = {0, 1, 2, 3, 0};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(ids[i], want[i]);
    free(ids);

    /* Everything skipped: success, no ids, still a pointer to free. */
    ck_assert_int_eq(vocab_encode(&v, "xyz", 3, 1, &ids, &n, &skipped, err), HYPER_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_uint_eq(skipped, 3);
    free(ids);

    /* skipped may be NULL; empty text is fine. */
    ck_assert_int_eq(vocab_encode(&v, "", 0, 1, &ids, &n, NULL, err), HYPER_OK);
    ck_assert_uint_eq(n, 0);
    free(ids);
    vocab_free(&v);
}
END_TEST

START_TEST(test_encode_invalid_utf8)
{
    vocab v;
    small_vocab(&v);
    int32_t *ids = (int32_t *)&v;
    size_t n = 1;
    char err[HYPER_ERRMSG_MAX] = "";
    /* Invalid UTF-8 wins over skipping. */
    const char *text = "abc" EURO "\xED\xA0\x80" "a";
    ck_assert_int_eq(vocab_encode(&v, text, strlen(text), 1, &ids, &n, NULL, err),
                     HYPER_ERR_ENCODING);
    ck_assert_msg(strstr(err, "offset 6") != NULL, "offset 6 not named: %s", err);
    ck_assert_ptr_null(ids);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(vocab_encode(&v, "ab\xC3", 3, 0, &ids, &n, NULL, err), HYPER_ERR_ENCODING);
    ck_assert_msg(strstr(err, "offset 2") != NULL, "offset 2 not named: %s", err);
    vocab_free(&v);
}
END_TEST

/* ---- serialisation -------------------------------------------------------------------- */

START_TEST(test_utf8_string_round_trip)
{
    vocab v, w;
    const char *text = "the " E_ACUTE "t" E_ACUTE " of " EURO "5 " G_CLEF "\n";
    char err[HYPER_ERRMSG_MAX] = "";
    ck_assert_int_eq(vocab_build(&v, text, strlen(text), err), HYPER_OK);
    size_t len = 0;
    char *s = vocab_to_utf8(&v, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(strlen(s), len);
    ck_assert_str_eq(s, "\n 5efhot" E_ACUTE EURO G_CLEF);
    ck_assert_int_eq(vocab_from_utf8(&w, s, len, err), HYPER_OK);
    ck_assert_int_eq(w.size, v.size);
    ck_assert_mem_eq(w.cp, v.cp, (size_t)v.size * sizeof *v.cp);
    free(s);
    vocab_free(&v);
    vocab_free(&w);
}
END_TEST

START_TEST(test_utf8_string_rejects)
{
    vocab v;
    char err[HYPER_ERRMSG_MAX] = "";
    ck_assert_int_eq(vocab_from_utf8(&v, "", 0, err), HYPER_ERR_FORMAT);
    ck_assert_int_eq(vocab_from_utf8(&v, "ab\xC3", 3, err), HYPER_ERR_FORMAT);
    ck_assert_int_eq(vocab_from_utf8(&v, "a\xED\xA0\x80", 4, err), HYPER_ERR_FORMAT);
    ck_assert_int_eq(vocab_from_utf8(&v, "abb", 3, err), HYPER_ERR_FORMAT);
    ck_assert_msg(strstr(err, "U+0062") && strstr(err, "twice"), "%s", err);
    ck_assert_int_eq(vocab_from_utf8(&v, "ab" EURO "a", 6, err), HYPER_ERR_FORMAT);
    ck_assert_msg(strstr(err, "twice") != NULL, "non-adjacent duplicate: %s", err);
    /* Out of order would give every character a different id than it was trained with. */
    ck_assert_int_eq(vocab_from_utf8(&v, "ba", 2, err), HYPER_ERR_FORMAT);
    ck_assert_int_eq(vocab_from_utf8(&v, "a\0b", 3, NULL), HYPER_ERR_FORMAT);
    ck_assert_ptr_null(v.cp);
    ck_assert_int_eq(v.size, 0);
}
END_TEST

Suite *vocab_suite(void)
{
    Suite *s = suite_create("vocab");
    TCase *tc = tcase_create("utf8");
    tcase_set_timeout(tc, 30); /* the round trip of all 1.1M code points */
    tcase_add_test(tc, test_utf8_decode_multibyte);
    tcase_add_test(tc, test_utf8_decode_rejects_invalid);
    tcase_add_test(tc, test_utf8_encode_round_trip_all);
    tcase_add_test(tc, test_utf8_encode_rejects_invalid);
    suite_add_tcase(s, tc);

    tc = tcase_create("build");
    tcase_add_test(tc, test_build_sorted_unique);
    tcase_add_test(tc, test_build_rejects_bad_text);
    tcase_add_test(tc, test_build_limit);
    tcase_add_test(tc, test_from_codepoints);
    suite_add_tcase(s, tc);

    tc = tcase_create("encode");
    tcase_add_test(tc, test_encode_round_trip);
    tcase_add_test(tc, test_encode_unknown_named);
    tcase_add_test(tc, test_encode_unknown_many);
    tcase_add_test(tc, test_encode_skip_unknown);
    tcase_add_test(tc, test_encode_invalid_utf8);
    suite_add_tcase(s, tc);

    tc = tcase_create("serialise");
    tcase_add_test(tc, test_utf8_string_round_trip);
    tcase_add_test(tc, test_utf8_string_rejects);
    suite_add_tcase(s, tc);
    return s;
}
