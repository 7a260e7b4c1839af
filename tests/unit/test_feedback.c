/*
 * Tests of caller feedback and rework: the x-tollgate-feedback header and
 * the POST body, the owner check and the rows stored, the normalised last
 * user turn and its SHA-256 rework key, and the window of recent asks.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>
#include <sqlite3.h>

#include "feedback/feedback.h"
#include "feedback/rework.h"
#include "feedback/store.h"
#include "ledger/ledger.h"

#define ID "out_0123456789abcdef01234567"

static void test_feedback_header_takes_both_spellings(void **state)
{
    feedback_t fb;

    (void)state;
    assert_int_equal(feedback_from_header(ID " useful", &fb), 0);
    assert_string_equal(fb.outcome_id, ID);
    assert_true(fb.useful);
    assert_false(fb.has_score);

    assert_int_equal(feedback_from_header(ID " not-useful", &fb), 0);
    assert_false(fb.useful);

    assert_int_equal(
        feedback_from_header(" " ID "; useful=false; score=0.2", &fb), 0);
    assert_false(fb.useful);
    assert_true(fb.has_score);
    assert_true(fb.score == 0.2);

    assert_int_equal(feedback_from_header(ID ";useful=YES;score=-1e1", &fb), 0);
    assert_true(fb.useful);
    assert_true(fb.score == -10.0);
}

static void test_feedback_header_refuses_what_it_cannot_read(void **state)
{
    static const char *const bad[] = {
        "",
        ID,                                    /* no verdict */
        ID "; score=0.5",                      /* still no verdict */
        ID " useful not-useful",               /* two verdicts */
        ID "; useful=maybe",                   /* not a boolean */
        ID "; useful=true; score=high",        /* not a number */
        ID "; useful=true; score=nan",         /* not finite */
        ID "; useful=true; colour=red",        /* unknown */
        "out_0123456789ABCDEF01234567 useful", /* upper-case hex */
        "out_0123 useful",                     /* short id */
        "job_0123456789abcdef01234567 useful",
    };
    feedback_t fb;

    (void)state;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(feedback_from_header(bad[i], &fb), -EINVAL);
}

static void test_feedback_body_is_strict(void **state)
{
    const char good[] = "{\"useful\": false, \"score\": 3, \"note\": \"x\"}";
    char err[160];
    feedback_t fb;

    (void)state;
    assert_int_equal(
        feedback_from_json(ID, good, strlen(good), &fb, err, sizeof(err)), 0);
    assert_false(fb.useful);
    assert_true(fb.has_score && fb.score == 3.0);
    assert_string_equal(fb.note, "x");

    assert_int_equal(
        feedback_from_json(ID, "{\"useful\":1}", 12, &fb, err, sizeof(err)),
        -EINVAL);
    assert_non_null(strstr(err, "useful is required"));
    assert_int_equal(feedback_from_json(ID, "{\"useful\":true,\"x\":1}", 21,
                                        &fb, err, sizeof(err)),
                     -EINVAL);
    assert_non_null(strstr(err, "unknown field 'x'"));
    assert_int_equal(feedback_from_json(ID, "[true]", 6, &fb, err, sizeof(err)),
                     -EINVAL);
    assert_int_equal(feedback_from_json("out_x", "{\"useful\":true}", 15, &fb,
                                        err, sizeof(err)),
                     -EINVAL);
}

/* A ledger file with one outcome made by key "alpha". */
static char *make_ledger(char *dir)
{
    static char path[96];
    ledger_outcome_t out;
    char err[256];
    ledger_t *ledger;

    snprintf(dir, 64, "/tmp/tollgate-feedback-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/ledger.db", dir);
    ledger = ledger_open(path, 16, err, sizeof(err));
    assert_non_null(ledger);
    memset(&out, 0, sizeof(out));
    snprintf(out.id, sizeof(out.id), ID);
    snprintf(out.key_id, sizeof(out.key_id), "alpha");
    out.http_status = 200;
    out.useful = true;
    assert_int_equal(ledger_admit(ledger), 0);
    ledger_append(ledger, &out);
    ledger_close(ledger);
    return path;
}

static void remove_ledger(const char *dir, const char *path)
{
    char file[128];
    const char *suffix[] = {"", "-wal", "-shm"};

    for (size_t i = 0; i < 3; i++) {
        snprintf(file, sizeof(file), "%s%s", path, suffix[i]);
        unlink(file);
    }
    rmdir(dir);
}

static void test_feedback_store_checks_the_owner(void **state)
{
    char dir[64];
    char *path = make_ledger(dir);
    sqlite3 *db = store_open(path);
    sqlite3_stmt *st;
    feedback_t fb = {.outcome_id = ID,
                     .useful = false,
                     .has_score = true,
                     .score = 0.5,
                     .note = "late"};

    (void)state;
    assert_non_null(db);
    assert_int_equal(feedback_store(db, &fb, "beta", FEEDBACK_FROM_API, 7),
                     FEEDBACK_NOT_OWNER);
    assert_int_equal(feedback_store(db, &fb, "alpha", FEEDBACK_FROM_HEADER, 9),
                     FEEDBACK_STORED);
    assert_int_equal(feedback_store(db, &fb, NULL, FEEDBACK_FROM_API, 11),
                     FEEDBACK_STORED);
    snprintf(fb.outcome_id, sizeof(fb.outcome_id),
             "out_000000000000000000000000");
    assert_int_equal(feedback_store(db, &fb, NULL, FEEDBACK_FROM_API, 12),
                     FEEDBACK_NO_OUTCOME);

    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT at_ms, key_id, useful, score,"
                                        " note, source FROM feedback ORDER BY"
                                        " rowid",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), 9);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "alpha");
    assert_int_equal(sqlite3_column_int(st, 2), 0);
    assert_true(sqlite3_column_double(st, 3) == 0.5);
    assert_string_equal((const char *)sqlite3_column_text(st, 4), "late");
    assert_string_equal((const char *)sqlite3_column_text(st, 5), "header");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "admin");
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    remove_ledger(dir, path);
}

static void test_rework_normalise_folds_case_space_and_punctuation(void **s)
{
    char out[64];
    const char text[] = "  Summarise\tthe \n TICKET?!.  ";

    (void)s;
    assert_int_equal(rework_normalise(text, strlen(text), out, sizeof(out)),
                     20);
    assert_string_equal(out, "summarise the ticket");
    assert_int_equal(rework_normalise("a, b...", 7, out, sizeof(out)), 4);
    assert_string_equal(out, "a, b");
    assert_int_equal(rework_normalise("?!", 2, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    /* Bytes past ASCII are kept as they are. */
    assert_int_equal(rework_normalise("Caf\xc3\xa9!", 6, out, sizeof(out)), 5);
    assert_string_equal(out, "caf\xc3\xa9");
}

static void test_rework_key_hashes_key_task_and_last_user_turn(void **state)
{
    const char chat[] =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"old ask\"},"
        "{\"role\":\"assistant\",\"content\":\"an answer\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"Summarise\"},{\"type\":\"text\",\"text\":\"the  ticket.\"}]}]}";
    const char responses[] = "{\"input\":\"summarise the TICKET\"}";
    const char none[] = "{\"messages\":[{\"role\":\"system\",\"content\":"
                        "\"hello\"}]}";
    json_object *a = json_tokener_parse(chat);
    json_object *b = json_tokener_parse(responses);
    json_object *c = json_tokener_parse(none);
    char key[65], other[65];

    (void)state;
    assert_int_equal(rework_key("alpha", "triage", SURFACE_CHAT, a, key), 0);
    assert_string_equal(
        key,
        "5206cbc7529af9d0d8baf109b57a3793c8223ce2a6665eca7ec1ba485eb3e613");
    assert_int_equal(rework_key("alpha", "triage", SURFACE_RESPONSES, b, other),
                     0);
    assert_string_equal(key, other);
    assert_int_equal(rework_key("beta", "triage", SURFACE_CHAT, a, other), 0);
    assert_string_not_equal(key, other);
    assert_int_equal(rework_key("alpha", "triage", SURFACE_CHAT, c, other),
                     -ENOENT);
    assert_string_equal(other, "");
    json_object_put(a);
    json_object_put(b);
    json_object_put(c);
}

static void test_rework_links_repeats_within_the_window(void **state)
{
    rework_t *rw = rework_new(1000, 64);
    const char *k = "f420b2a7e2a5ef259f6eafd28eece5b889c5ed6feab03ecedff7846b"
                    "e161b048";
    char earlier[40] = "";

    (void)state;
    assert_false(rework_note(rw, k, "out_a", 100, earlier));
    assert_true(rework_note(rw, k, "out_b", 1100, earlier));
    assert_string_equal(earlier, "out_a");
    /* A chain links each repeat to the one before. */
    assert_true(rework_note(rw, k, "out_c", 1500, earlier));
    assert_string_equal(earlier, "out_b");
    /* Past the window it is a new ask. */
    assert_false(rework_note(rw, k, "out_d", 2501, earlier));
    rework_free(rw);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feedback_header_takes_both_spellings),
        cmocka_unit_test(test_feedback_header_refuses_what_it_cannot_read),
        cmocka_unit_test(test_feedback_body_is_strict),
        cmocka_unit_test(test_feedback_store_checks_the_owner),
        cmocka_unit_test(
            test_rework_normalise_folds_case_space_and_punctuation),
        cmocka_unit_test(test_rework_key_hashes_key_task_and_last_user_turn),
        cmocka_unit_test(test_rework_links_repeats_within_the_window),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
